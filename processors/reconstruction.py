"""Steps 2 and 3 of the processor: selection and kinematic fit of one set of photon energies.

For the events of the pool (triggered, with three loose candidates) and one set of candidate
energies (the nominal or a variation's), the leading three candidates above the threshold are
selected, the named cuts evaluated (a ``PackedSelection``), the three photons fitted to the
event's beam four-momentum, and the features computed. The result is a frozen
:class:`Reconstruction`; nothing here fills a histogram.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from coffea.analysis_tools import PackedSelection

import kinfit
from alps.config import KinfitConfig, PreselectionConfig
from simulation.geometry import REGION_GAP
from simulation.resolution import TIME_E_FLOOR_GEV, time_resolution

from .candidates import Candidates, Jagged, from_alp
from .corrections import Corrections
from .features import PAIRS, candidate_features, event_features, pair_masses, photon_momenta
from .kernels import leading_three, mass_and_timing_cuts, pick_three

__all__ = ["CUTS", "EventInputs", "FitSettings", "Reconstruction", "reconstruct"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: the cuts in the order of the cutflow; ``fit_finite``: the converged fit's chi2 and fitted
#: photons are finite (a fit that fails it is counted there and never filled as a mass)
CUTS = ("trigger", "three_photons", "m3g", "timing", "no_good_track", "fit_converged", "fit_finite")


@dataclass(frozen=True)
class FitSettings:
    """What the selection and fit need besides the events: the pre-selection cuts, the fit's
    settings, the photon time resolution sigma_t(E) = hypot(constant / E, floor) (ns, E in GeV)
    and, for the fit's covariance, the calibration (None: the cluster errors)."""

    preselection: PreselectionConfig
    kinfit: KinfitConfig
    time_constant_ns: float
    time_floor_ns: float
    corrections: Corrections | None = None


@dataclass(frozen=True)
class EventInputs:
    """Per-event arrays of the pool's events (indexed like ``pool``, which indexes the chunk)."""

    pool: npt.NDArray[np.int64]
    candidates: Candidates
    beam: FloatArray
    e_cms: FloatArray
    no_track: BoolArray
    n_events: int
    period: str
    is_data: bool
    #: the chunk's ``mc_photon_fromALP`` flags (None: data)
    alp_flags: Jagged | None = None


@dataclass(frozen=True)
class Reconstruction:
    """The selected, fitted events of one variation.

    ``cuts`` holds each cut's mask over the pool (``selection``: as a ``PackedSelection``, made
    when asked for: the cutflow reads it for the nominal only); ``selected`` is a mask over the
    whole chunk and ``rows`` the chunk indices of the selected events; the arrays below are per
    selected event (``(k,)``) or per candidate pairing (``(k, 3)``)."""

    cuts: dict[str, BoolArray]
    selected: BoolArray
    rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    mgg: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    matched: BoolArray = field(default_factory=lambda: np.zeros((0, 3), bool))
    features: dict[str, FloatArray] = field(default_factory=dict)
    candidate: dict[str, FloatArray] = field(default_factory=dict)
    pulls: FloatArray = field(default_factory=lambda: np.zeros((0, 3, 3)))
    fit_chi2: FloatArray = field(default_factory=lambda: np.zeros(0))
    fit_pvalue: FloatArray = field(default_factory=lambda: np.zeros(0))
    region: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    gap: BoolArray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def any(self) -> bool:
        return bool(self.selected.any())

    @property
    def selection(self) -> PackedSelection:
        """The cuts (:data:`CUTS` from the second on) as a ``PackedSelection``."""
        selection = PackedSelection()
        for name in CUTS[1:]:
            selection.add(name, self.cuts[name])
        return selection

    def table(self) -> dict[str, FloatArray]:
        """Event-level ``(k,)`` and candidate-level ``(k, 3)`` features by name."""
        return {**self.features, **self.candidate}


def _time_spread(time: FloatArray, sigma_t: FloatArray) -> FloatArray:
    """Largest pairwise time difference of the three photons in units of its resolution."""
    spread = np.zeros(len(time))
    for i, j in ((0, 1), (0, 2), (1, 2)):
        spread = np.maximum(
            spread, np.abs(time[:, i] - time[:, j]) / np.hypot(sigma_t[:, i], sigma_t[:, j])
        )
    return spread


def _finite_fit(fit: Any) -> BoolArray:
    """Per fitted event: chi2, p-value and every fitted E, theta, phi finite."""
    photons = np.isfinite(fit.E) & np.isfinite(fit.theta) & np.isfinite(fit.phi)
    return np.asarray(np.isfinite(fit.chi2) & np.isfinite(fit.pvalue) & photons.all(axis=1))


def _covariance(
    settings: FitSettings, pick: dict[str, np.ndarray], energy: FloatArray, period: str
) -> FloatArray:
    sigma_e = pick["errE"]
    if settings.kinfit.covariance == "calibration" and settings.corrections is not None:
        # corrected MC carries the data resolution too
        sigma_e = settings.corrections.resolution("data", period, pick["region"], energy) * energy
    return np.asarray(kinfit.diagonal_covariance(sigma_e, pick["errTheta"], pick["errPhi"]))


def reconstruct(
    events: Any,
    inputs: EventInputs,
    energy: FloatArray,
    settings: FitSettings,
    *,
    features: bool = True,
) -> Reconstruction:
    """Select and fit the pool's events with candidate energies ``energy`` (``(m, TOP)``).

    The cuts are decided by compiled kernels over the pool; everything else (the fit, the
    masses, the features) is computed for the events that reach the fit only. ``features=False``
    keeps of the features only what the mass histogram needs (``mgg``), for a variation that
    fills nothing else.
    """
    pre, fit_cfg = settings.preselection, settings.kinfit
    cands = inputs.candidates
    exactly = pre.photon_multiplicity == "exactly_three"
    three, order = leading_three(energy, pre.photon_e_min_GeV, exactly)
    rows3 = np.flatnonzero(three)
    mass_ok, time_ok = np.zeros(len(three), bool), np.zeros(len(three), bool)
    mass_ok[rows3], time_ok[rows3] = mass_and_timing_cuts(
        energy, cands.trig, cands.fields["time"], order, rows3,
        inputs.e_cms, pre.m3g_min_fraction, pre.m3g_max_fraction, settings.time_constant_ns,
        settings.time_floor_ns, TIME_E_FLOOR_GEV, pre.timing_nsigma,
    )  # fmt: skip
    cuts = {"three_photons": three, "m3g": mass_ok, "timing": time_ok}
    cuts["no_good_track"] = inputs.no_track
    idx = np.flatnonzero(three & mass_ok & time_ok & inputs.no_track)
    converged = np.zeros(len(three), dtype=bool)
    finite = np.zeros(len(three), dtype=bool)
    cuts["fit_converged"], cuts["fit_finite"] = converged, finite
    if not len(idx):
        return Reconstruction(cuts, np.zeros(inputs.n_events, dtype=bool))
    # the events that reach the fit: their three photons, as the numpy code always computed them
    order = order[idx]
    # a varied energy needs no photon times (they only enter the features)
    names = cands.names if features else tuple(k for k in cands.names if k != "time")
    pick = {k: pick_three(cands.fields[k], idx, order) for k in names}
    e3 = pick_three(energy, idx, order)
    cov = _covariance(settings, pick, e3, inputs.period)
    fit = kinfit.fit_three_photons(
        e3, pick["theta"], pick["phi"], cov, inputs.beam[idx],
        max_iterations=fit_cfg.max_iterations,
        chi2_tolerance=fit_cfg.chi2_tolerance,
        constraint_tolerance=fit_cfg.constraint_tolerance_GeV,
    )  # fmt: skip
    fit_ok = _finite_fit(fit)
    converged[idx] = fit.converged
    finite[idx] = fit_ok
    selected = np.zeros(inputs.n_events, dtype=bool)
    selected[inputs.pool[idx[fit.converged & fit_ok]]] = True
    if not selected.any():
        return Reconstruction(cuts, selected)
    ok = fit.converged & fit_ok
    local = idx[ok]
    rows = inputs.pool[local]
    beam = inputs.beam[local]
    p_fit = photon_momenta(fit.E[ok], fit.theta[ok], fit.phi[ok])
    alp = from_alp(inputs.alp_flags, rows, pick["mcIndex"][ok])
    matched = np.stack([alp[:, i] & alp[:, j] for i, j, _ in PAIRS], axis=1)
    if not features:
        mgg = pair_masses(p_fit)
        return Reconstruction(
            cuts, selected, rows=rows, mgg=mgg, matched=matched, candidate={"mgg": mgg}
        )
    p3 = photon_momenta(e3[ok], pick["theta"][ok], pick["phi"][ok])
    event = event_features(p_fit, beam)
    cand = candidate_features(p_fit, p3, beam)
    e_all = cands.energy[local]
    event["chi2"] = fit.chi2[ok]
    event["fit_pvalue"] = fit.pvalue[ok]
    total_e = np.nansum(np.where(np.isfinite(e_all), e_all, 0.0), axis=1)
    event["E_extra"] = np.clip(total_e - e3[ok].sum(axis=1), 0.0, None)
    event["n_extra"] = (np.isfinite(e_all).sum(axis=1) - 3).astype(np.float64)
    sigma_t = time_resolution(e3[ok], settings.time_constant_ns, settings.time_floor_ns)
    event["time_spread"] = _time_spread(pick["time"][ok], sigma_t)
    region = pick["region"][ok]
    return Reconstruction(
        cuts, selected, rows=rows, mgg=cand["mgg"], matched=matched, features=event,
        candidate=cand, pulls=fit.pulls[ok], fit_chi2=fit.chi2[ok], fit_pvalue=fit.pvalue[ok],
        region=region, gap=np.any(region == REGION_GAP, axis=1),
    )  # fmt: skip
