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
from simulation.resolution import time_resolution

from .candidates import Candidates, from_alp
from .corrections import Corrections
from .features import PAIRS, candidate_features, event_features, photon_momenta

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


@dataclass(frozen=True)
class Reconstruction:
    """The selected, fitted events of one variation.

    ``selection`` holds the cuts over the pool; ``selected`` is a mask over the whole chunk and
    ``rows`` the chunk indices of the selected events; the arrays below are per selected event
    (``(k,)``) or per candidate pairing (``(k, 3)``)."""

    selection: PackedSelection
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

    def table(self) -> dict[str, FloatArray]:
        """Event-level ``(k,)`` and candidate-level ``(k, 3)`` features by name."""
        return {**self.features, **self.candidate}


def _leading_three(
    energy: FloatArray, emin: float, exactly: bool = False
) -> tuple[BoolArray, npt.NDArray[np.int64]]:
    """Whether each event has three candidates above threshold (``exactly``: three and no
    more), and the indices of its three most energetic ones.

    The candidates are each event's most energetic few (more than three), so "no more than
    three" is decided on them.
    """
    usable = np.isfinite(energy) & (energy > emin)
    key = np.where(usable, energy, -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")[:, :3]
    count = usable.sum(axis=1)
    return (count == 3) if exactly else (count >= 3), order


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
    events: Any, inputs: EventInputs, energy: FloatArray, settings: FitSettings
) -> Reconstruction:
    """Select and fit the pool's events with candidate energies ``energy`` (``(m, TOP)``)."""
    pre, fit_cfg = settings.preselection, settings.kinfit
    cands = inputs.candidates
    exactly = pre.photon_multiplicity == "exactly_three"
    three, order = _leading_three(energy, pre.photon_e_min_GeV, exactly)
    stacked = np.take_along_axis(cands.table, order[:, :, None], axis=1)
    pick: dict[str, np.ndarray] = {k: stacked[:, :, i] for i, k in enumerate(cands.names)}
    pick["region"] = pick["region"].astype(np.int64)
    pick["mcIndex"] = pick["mcIndex"].astype(np.int64)
    e3 = np.where(three[:, None], np.take_along_axis(energy, order, axis=1), 1.0)
    p3 = photon_momenta(e3, pick["theta"], pick["phi"])
    total = p3.sum(axis=1)
    m3 = np.sqrt(np.clip(total[:, 0] ** 2 - np.sum(total[:, 1:] ** 2, axis=1), 0.0, None))
    ratio = m3 / inputs.e_cms
    sigma_t = time_resolution(e3, settings.time_constant_ns, settings.time_floor_ns)
    spread = _time_spread(pick["time"], sigma_t)
    selection = PackedSelection()
    selection.add("three_photons", three)
    selection.add("m3g", three & (ratio > pre.m3g_min_fraction) & (ratio < pre.m3g_max_fraction))
    selection.add("timing", three & (spread < pre.timing_nsigma))
    selection.add("no_good_track", inputs.no_track)
    idx = np.flatnonzero(selection.all(*CUTS[1:-2]))
    converged = np.zeros(len(e3), dtype=bool)
    finite = np.zeros(len(e3), dtype=bool)
    fit = None
    if len(idx):
        cov = _covariance(settings, {k: v[idx] for k, v in pick.items()}, e3[idx], inputs.period)
        fit = kinfit.fit_three_photons(
            e3[idx], pick["theta"][idx], pick["phi"][idx], cov, inputs.beam[idx],
            max_iterations=fit_cfg.max_iterations,
            chi2_tolerance=fit_cfg.chi2_tolerance,
            constraint_tolerance=fit_cfg.constraint_tolerance_GeV,
        )  # fmt: skip
        converged[idx] = fit.converged
        finite[idx] = _finite_fit(fit)
    selection.add("fit_converged", converged)
    selection.add("fit_finite", finite)
    selected = np.zeros(inputs.n_events, dtype=bool)
    selected[inputs.pool[selection.all(*CUTS[1:])]] = True
    if not selected.any() or fit is None:
        return Reconstruction(selection, selected)
    ok = fit.converged & finite[idx]
    local = idx[ok]
    rows = inputs.pool[local]
    beam = inputs.beam[local]
    p_fit = photon_momenta(fit.E[ok], fit.theta[ok], fit.phi[ok])
    features = event_features(p_fit, beam)
    cand = candidate_features(p_fit, p3[local], beam)
    alp = from_alp(events, rows, pick["mcIndex"][local], inputs.is_data)
    matched = np.stack([alp[:, i] & alp[:, j] for i, j, _ in PAIRS], axis=1)
    e_all = cands.energy[local]
    features["chi2"] = fit.chi2[ok]
    features["fit_pvalue"] = fit.pvalue[ok]
    total_e = np.nansum(np.where(np.isfinite(e_all), e_all, 0.0), axis=1)
    features["E_extra"] = np.clip(total_e - e3[local].sum(axis=1), 0.0, None)
    features["n_extra"] = (np.isfinite(e_all).sum(axis=1) - 3).astype(np.float64)
    features["time_spread"] = spread[local]
    region = pick["region"][local]
    return Reconstruction(
        selection, selected, rows=rows, mgg=cand["mgg"], matched=matched, features=features,
        candidate=cand, pulls=fit.pulls[ok], fit_chi2=fit.chi2[ok], fit_pvalue=fit.pvalue[ok],
        region=region, gap=np.any(region == REGION_GAP, axis=1),
    )  # fmt: skip
