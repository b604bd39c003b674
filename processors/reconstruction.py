"""Steps 2 and 3 of the processor: selection and kinematic fit of the sets of photon energies.

For the events of the pool (triggered, with three loose candidates) and each set of candidate
energies (the nominal and the energy variations'), the leading three candidates above the
threshold are selected, the named cuts evaluated (the nominal's as a ``PackedSelection``, for the
cutflow), the three photons fitted to the event's beam four-momentum, and the features computed.
All sets share one compiled pass of cuts, one kinematic-fit call and one mass computation. The
result is a frozen :class:`Reconstruction` per set; nothing here fills a histogram.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from .features import PAIRS, momenta_and_masses, three_photon_features
from .kernels import pick_three, pick_three_stacked, select_for_fit

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
    energies: Sequence[FloatArray],
    settings: FitSettings,
    *,
    features: Sequence[bool],
) -> list[Reconstruction]:
    """Select and fit the pool's events for every set of candidate energies ``energies[v]``
    (``(m, TOP)``: the nominal first, then the energy variations), one :class:`Reconstruction`
    per set.

    The sets share one pass of compiled cuts over the pool
    (:func:`~processors.kernels.select_for_fit`), one gathering of the fit's inputs, one call of
    the kinematic fit and one computation of the masses (issue 12: the per-set work was five
    separate passes of small numpy steps); every event's values are computed as for that set
    alone. Only the first set's cuts over the pool are kept (``cuts``: its cutflow); the others
    have ``cuts == {}``. ``features[v]`` False keeps of set ``v``'s features only what the mass
    histogram needs (``mgg``), for a variation that fills nothing else.
    """
    pre, fit_cfg = settings.preselection, settings.kinfit
    cands = inputs.candidates
    exactly = pre.photon_multiplicity == "exactly_three"
    stack = np.stack(energies) if len(energies) > 1 else energies[0][None]
    first, offsets, idx, order = select_for_fit(
        stack, cands.fields["theta"], cands.fields["phi"], cands.fields["time"], inputs.e_cms,
        inputs.no_track,
        pre.photon_e_min_GeV, exactly, pre.m3g_min_fraction, pre.m3g_max_fraction,
        settings.time_constant_ns, settings.time_floor_ns, TIME_E_FLOOR_GEV, pre.timing_nsigma,
    )  # fmt: skip
    m = len(inputs.pool)
    cuts = {"three_photons": first[0], "m3g": first[1], "timing": first[2]}
    cuts["no_good_track"] = inputs.no_track
    converged = np.zeros(m, dtype=bool)
    finite = np.zeros(m, dtype=bool)
    cuts["fit_converged"], cuts["fit_finite"] = converged, finite
    sets = range(len(energies))
    if not len(idx):
        return [
            Reconstruction(cuts if v == 0 else {}, np.zeros(inputs.n_events, bool)) for v in sets
        ]
    # the events that reach the fit, set after set: their three photons
    # a variation without features needs no photon times (they only enter the features)
    names = cands.names if any(features) else tuple(k for k in cands.names if k != "time")
    pick = {k: pick_three(cands.fields[k], idx, order) for k in names}
    e3 = pick_three_stacked(stack, offsets, idx, order)
    cov = _covariance(settings, pick, e3, inputs.period)
    fit = kinfit.fit_three_photons(
        e3, pick["theta"], pick["phi"], cov, inputs.beam[idx],
        max_iterations=fit_cfg.max_iterations,
        chi2_tolerance=fit_cfg.chi2_tolerance,
        constraint_tolerance=fit_cfg.constraint_tolerance_GeV,
    )  # fmt: skip
    fit_ok = _finite_fit(fit)
    first_set = slice(offsets[0], offsets[1])
    converged[idx[first_set]] = fit.converged[first_set]
    finite[idx[first_set]] = fit_ok[first_set]
    good = fit.converged & fit_ok
    keep = np.flatnonzero(good)
    bounds = np.searchsorted(keep, offsets)  # set v at keep[bounds[v]:bounds[v + 1]]
    local = idx[keep]
    rows = inputs.pool[local]
    p_fit, mgg = momenta_and_masses(fit.E[keep], fit.theta[keep], fit.phi[keep])
    alp = from_alp(inputs.alp_flags, rows, pick["mcIndex"][keep])
    matched = np.stack([alp[:, i] & alp[:, j] for i, j, _ in PAIRS], axis=1)
    out = []
    for v in sets:
        s = slice(bounds[v], bounds[v + 1])
        selected = np.zeros(inputs.n_events, dtype=bool)
        selected[rows[s]] = True
        cuts_v = cuts if v == 0 else {}
        if s.start == s.stop:
            out.append(Reconstruction(cuts_v, selected))
        elif not features[v]:
            out.append(Reconstruction(
                cuts_v, selected, rows=rows[s], mgg=mgg[s], matched=matched[s],
                candidate={"mgg": mgg[s]},
            ))  # fmt: skip
        else:
            out.append(_featured(
                inputs, settings, cuts_v, selected, rows[s], local[s], matched[s], p_fit[s],
                fit, keep[s], {k: pick[k][keep[s]] for k in names}, e3[keep[s]],
            ))  # fmt: skip
    return out


def _featured(
    inputs: EventInputs,
    settings: FitSettings,
    cuts: dict[str, BoolArray],
    selected: BoolArray,
    rows: npt.NDArray[np.int64],
    local: npt.NDArray[np.int64],
    matched: BoolArray,
    p_fit: FloatArray,
    fit: Any,
    ok: npt.NDArray[np.int64],
    pick: dict[str, np.ndarray],
    e3: FloatArray,
) -> Reconstruction:
    """The :class:`Reconstruction` with every feature of the selected events of one set (``ok``:
    their positions in the fit's result; ``pick``, ``e3``: their three photons as measured)."""
    beam = inputs.beam[local]
    p3 = momenta_and_masses(e3, pick["theta"], pick["phi"])[0]
    event, cand = three_photon_features(p_fit, p3, beam)
    e_all = inputs.candidates.energy[local]
    event["chi2"] = fit.chi2[ok]
    event["fit_pvalue"] = fit.pvalue[ok]
    total_e = np.nansum(np.where(np.isfinite(e_all), e_all, 0.0), axis=1)
    event["E_extra"] = np.clip(total_e - e3.sum(axis=1), 0.0, None)
    event["n_extra"] = (np.isfinite(e_all).sum(axis=1) - 3).astype(np.float64)
    sigma_t = time_resolution(e3, settings.time_constant_ns, settings.time_floor_ns)
    event["time_spread"] = _time_spread(pick["time"], sigma_t)
    region = pick["region"]
    return Reconstruction(
        cuts, selected, rows=rows, mgg=cand["mgg"], matched=matched, features=event,
        candidate=cand, pulls=fit.pulls[ok], fit_chi2=fit.chi2[ok], fit_pvalue=fit.pvalue[ok],
        region=region, gap=np.any(region == REGION_GAP, axis=1),
    )  # fmt: skip
