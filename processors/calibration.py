"""Fits of the calibration histograms and the correctionlib file they produce.

Photon resolution and scale: in each bin of predicted energy, region and period the residual
E/E_pred - 1 is fitted with a Crystal Ball function (a Gaussian core with the low-side tail of
shower leakage; Oreglia, SLAC-R-236 (1980)). The core width is the calorimeter resolution folded
with the spread of the prediction, which is not Gaussian and, below about 1 GeV, as large as the
resolution itself; but data and MC share the prediction (the same tracking), so it cancels in
their comparison: the data need an extra smearing sigma_extra^2 = sigma_fit,data^2 -
sigma_fit,MC^2, and the data resolution is sqrt(sigma_MC^2 + sigma_extra^2), with sigma_MC the
core width of E/E_true - 1 in MC. Per (sample, period, region) the bin values are combined into one
factor k relative to the physics.md resolution form (sigma(E) = k sigma_model(E)), which
extrapolates to every energy the kinematic fit needs; the energy scale of data relative to MC is
the ratio of the fitted peak positions, combined likewise.

Trigger: the efficiency of ``trg_esum`` among events with the reference ``trg_ncl``, fitted with
eps(x) = eps_max Phi((x - mu)/w) by a binomial likelihood; the up/down variations follow the fit's
1 sigma band.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from iminuit import Minuit
from iminuit.cost import ExtendedBinnedNLL
from numba_stats import crystalball
from scipy.special import ndtr

from simulation.resolution import energy_resolution, phi_resolution, theta_resolution

__all__ = [
    "MIN_EVENTS",
    "QUANTITIES",
    "BinFit",
    "TurnOnFit",
    "build_corrections",
    "combine",
    "fit_residual",
    "fit_turn_on",
]

FloatArray = npt.NDArray[np.float64]

#: a bin needs this many (effective) events for a resolution measurement
MIN_EVENTS = 150
_ENERGY_GRID = np.geomspace(0.02, 12.0, 121)
_TAIL_EXPONENT = 3.0


@dataclass(frozen=True)
class BinFit:
    """Crystal Ball fit of one residual histogram: peak position and core width (fractions)."""

    mu: float
    mu_err: float
    sigma: float
    sigma_err: float
    n_eff: float
    valid: bool


def _effective(values: FloatArray, variances: FloatArray) -> FloatArray:
    """Counts with the statistical power of the weighted entries (sum w)^2 / sum w^2 per bin."""
    scale = values.sum() / max(variances.sum(), 1e-300)
    return values * scale


def fit_residual(values: FloatArray, variances: FloatArray, edges: FloatArray) -> BinFit:
    """Binned extended maximum-likelihood Crystal Ball fit of a residual histogram."""
    counts = _effective(
        np.asarray(values, dtype=np.float64), np.asarray(variances, dtype=np.float64)
    )
    n_eff = float(counts.sum())
    if n_eff < MIN_EVENTS:
        return BinFit(math.nan, math.nan, math.nan, math.nan, n_eff, False)
    centers = 0.5 * (edges[1:] + edges[:-1])
    mean = float(np.average(centers, weights=counts))
    core = float(np.sqrt(np.average((centers - mean) ** 2, weights=counts)))

    def model(
        x: FloatArray, n: float, beta: float, m: float, loc: float, scale: float
    ) -> FloatArray:
        return n * crystalball.cdf(x, beta, m, loc, scale)

    cost = ExtendedBinnedNLL(counts, edges, model)
    fit = Minuit(cost, n=n_eff, beta=1.5, m=_TAIL_EXPONENT, loc=mean, scale=max(core * 0.7, 1e-3))
    fit.fixed["m"] = True  # the tail's power is degenerate with beta at these statistics
    fit.limits["n"] = (0.0, None)
    fit.limits["beta"] = (0.3, 10.0)
    fit.limits["scale"] = (1e-4, 0.2)
    fit.limits["loc"] = (edges[0], edges[-1])
    fit.migrad()
    if not fit.valid:
        fit.simplex().migrad()
    fit.hesse()
    return BinFit(
        float(fit.values["loc"]), float(fit.errors["loc"]), float(fit.values["scale"]),
        float(fit.errors["scale"]), n_eff, bool(fit.valid),
    )  # fmt: skip


def central_width(values: FloatArray, edges: FloatArray) -> tuple[float, float]:
    """Half the 16-84% interval of a histogram (sigma for a Gaussian) and its error
    sigma / sqrt(2 n_eff); NaN with fewer than ``MIN_EVENTS`` effective entries."""
    values = np.asarray(values, dtype=np.float64)
    total = values.sum()
    if total <= 0:
        return math.nan, math.nan
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total
    lo, hi = np.interp([0.158655, 0.841345], cumulative, edges)
    width = 0.5 * (hi - lo)
    return float(width), float(width / math.sqrt(2.0 * total))


def data_resolution(mc_truth: BinFit, data: BinFit, mc: BinFit) -> tuple[float, float]:
    """sqrt(sigma_MC^2 + sigma_fit,data^2 - sigma_fit,MC^2) and its error (NaN if a fit failed)."""
    if not (mc_truth.valid and data.valid and mc.valid):
        return math.nan, math.nan
    extra = data.sigma**2 - mc.sigma**2
    value = math.sqrt(max(mc_truth.sigma**2 + extra, 1e-8))
    d_extra = 2.0 * math.hypot(data.sigma * data.sigma_err, mc.sigma * mc.sigma_err)
    return value, math.hypot(mc_truth.sigma * mc_truth.sigma_err, 0.5 * d_extra) / value


def combine(values: FloatArray, errors: FloatArray) -> tuple[float, float]:
    """Inverse-variance weighted mean of finite measurements and its error."""
    values, errors = np.asarray(values), np.asarray(errors)
    ok = np.isfinite(values) & np.isfinite(errors) & (errors > 0)
    if not ok.any():
        return math.nan, math.nan
    w = 1.0 / errors[ok] ** 2
    return float(np.sum(w * values[ok]) / w.sum()), float(1.0 / math.sqrt(w.sum()))


#: calibrated quantities: the correction's name and the physics.md reference form
QUANTITIES = {
    "energy": ("photon_energy_resolution", energy_resolution),
    "theta": ("photon_theta_resolution", theta_resolution),
    "phi": ("photon_phi_resolution", phi_resolution),
}


def model_resolution(energy: FloatArray, region: int, quantity: str = "energy") -> FloatArray:
    """physics.md resolution at ``energy`` in ``region``: sigma_E/E, or sigma_theta, sigma_phi in
    rad (the reference form the measured factors multiply)."""
    function = QUANTITIES[quantity][1]
    return np.asarray(
        function(np.asarray(energy, dtype=np.float64), np.full(np.shape(energy), region))
    )


@dataclass(frozen=True)
class TurnOnFit:
    """eps(x) = eps_max Phi((x - mu)/w) with its parameter covariance."""

    eps_max: float
    mu: float
    width: float
    covariance: tuple[tuple[float, ...], ...]
    valid: bool

    def efficiency(self, x: npt.ArrayLike) -> FloatArray:
        return np.asarray(self.eps_max * ndtr((np.asarray(x) - self.mu) / self.width))

    def band(
        self, x: npt.ArrayLike, n_samples: int = 400, seed: int = 1
    ) -> tuple[FloatArray, FloatArray]:
        """1 sigma band of the efficiency (from sampling the parameter covariance)."""
        x = np.asarray(x, dtype=np.float64)
        rng = np.random.default_rng(seed)
        draws = rng.multivariate_normal(
            [self.eps_max, self.mu, self.width], np.asarray(self.covariance), n_samples
        )
        curves = np.clip(draws[:, :1], 0, 1) * ndtr(
            (x[None, :] - draws[:, 1:2]) / np.abs(draws[:, 2:3]).clip(1e-4)
        )
        lo, hi = np.quantile(curves, [0.1587, 0.8413], axis=0)
        return np.asarray(lo), np.asarray(hi)


def fit_turn_on(edges: FloatArray, passed: FloatArray, total: FloatArray) -> TurnOnFit:
    """Binomial maximum-likelihood fit of the turn-on, bins at their centres."""
    centers = 0.5 * (edges[1:] + edges[:-1])
    k, n = np.asarray(passed, dtype=np.float64), np.asarray(total, dtype=np.float64)
    use = n > 0

    def nll(eps_max: float, mu: float, width: float) -> float:
        p = np.clip(eps_max * ndtr((centers[use] - mu) / width), 1e-12, 1 - 1e-12)
        return float(-np.sum(k[use] * np.log(p) + (n[use] - k[use]) * np.log1p(-p)))

    nll.errordef = Minuit.LIKELIHOOD  # type: ignore[attr-defined]
    first_half = (
        centers[use][np.argmax(k[use] / n[use] > 0.5)] if np.any(k[use] / n[use] > 0.5) else 1.0
    )
    fit = Minuit(nll, eps_max=0.99, mu=first_half, width=0.1)
    fit.limits["eps_max"] = (0.5, 1.0)
    fit.limits["width"] = (1e-3, 2.0)
    fit.migrad()
    fit.hesse()
    cov = tuple(tuple(float(c) for c in row) for row in np.asarray(fit.covariance))
    return TurnOnFit(
        float(fit.values["eps_max"]),
        float(fit.values["mu"]),
        float(fit.values["width"]),
        cov,
        bool(fit.valid),
    )


def _category(key: str, content: dict[str, Any], default: Any = None) -> dict[str, Any]:
    node = {
        "nodetype": "category",
        "input": key,
        "content": [{"key": k, "value": v} for k, v in content.items()],
    }
    if default is not None:
        node["default"] = default
    return node


def _region_node(per_region: dict[int, Any], default: Any) -> dict[str, Any]:
    node = {
        "nodetype": "category",
        "input": "region",
        "content": [{"key": int(r), "value": v} for r, v in per_region.items()],
        "default": default,
    }
    return node


def _resolution_curve(k: float, region: int, quantity: str) -> dict[str, Any]:
    """Binned k * sigma_model(E) on a fine logarithmic energy grid, clamped outside it."""
    centers = np.sqrt(_ENERGY_GRID[1:] * _ENERGY_GRID[:-1])
    values = k * model_resolution(centers, region, quantity)
    return {
        "nodetype": "binning",
        "input": "energy",
        "edges": [float(e) for e in _ENERGY_GRID],
        "content": [float(v) for v in values],
        "flow": "clamp",
    }


def build_corrections(
    resolution_scale: dict[str, dict[str, dict[str, dict[int, float]]]],
    energy_scale: dict[str, dict[int, float]],
    trigger: dict[str, dict[str, TurnOnFit]],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """The correctionlib (schema v2) CorrectionSet as a JSON-able dict.

    ``resolution_scale[quantity][sample][period][region]`` = k (quantity: energy, theta, phi);
    ``energy_scale[period][region]`` = data/MC;
    ``trigger[sample][period]`` the turn-on fits. Regions without a measurement take the period's
    barrel value (the gap region scales like the barrel form it uses).
    """
    import correctionlib.schemav2 as cs

    grid = [
        float(x) for x in np.concatenate([np.arange(0.0, 3.0, 0.02), np.arange(3.0, 12.01, 0.25)])
    ]
    centers = 0.5 * (np.asarray(grid[1:]) + np.asarray(grid[:-1]))

    def resolution_for(quantity: str, sample: str) -> dict[str, Any]:
        periods = {}
        for period, per_region in resolution_scale[quantity][sample].items():
            fallback = per_region.get(2, float(np.nanmean(list(per_region.values()))))
            fallback = fallback if np.isfinite(fallback) else 1.0
            nodes = {
                r: _resolution_curve(k if np.isfinite(k) else fallback, r, quantity)
                for r, k in per_region.items()
            }
            periods[period] = _region_node(nodes, _resolution_curve(fallback, 0, quantity))
        return _category("period", periods)

    def resolution_correction(quantity: str) -> dict[str, Any]:
        unit = "sigma_E/E" if quantity == "energy" else f"sigma_{quantity} in rad"
        return {
            "name": QUANTITIES[quantity][0],
            "description": f"photon {quantity} resolution ({unit}) measured with mu+mu- gamma",
            "version": 1,
            "inputs": [
                {"name": "sample", "type": "string", "description": "data or mc"},
                {"name": "period", "type": "string"},
                {"name": "region", "type": "int"},
                {"name": "energy", "type": "real", "description": "GeV"},
            ],
            "output": {"name": "sigma", "type": "real"},
            "data": _category(
                "sample", {s: resolution_for(quantity, s) for s in resolution_scale[quantity]}
            ),
        }

    def scale_for(period: str) -> dict[str, Any]:
        per_region = energy_scale[period]
        fallback = per_region.get(2, 1.0)
        return _region_node(
            {r: float(v) if np.isfinite(v) else fallback for r, v in per_region.items()},
            float(fallback),
        )

    def trigger_curve(fit: TurnOnFit, variation: str) -> dict[str, Any]:
        lo, hi = fit.band(centers)
        values = {"nominal": fit.efficiency(centers), "up": hi, "down": lo}[variation]
        return {
            "nodetype": "binning",
            "input": "esum",
            "edges": grid,
            "content": [float(v) for v in values],
            "flow": "clamp",
        }

    corrections = [
        {
            "name": "photon_energy_scale",
            "description": "E_data / E_MC from e+e- -> mu+mu- gamma",
            "version": 1,
            "inputs": [
                {"name": "period", "type": "string"},
                {
                    "name": "region",
                    "type": "int",
                    "description": "0 gap, 1 forward, 2 barrel, 3 backward",
                },
                {"name": "energy", "type": "real", "description": "GeV"},
            ],
            "output": {"name": "scale", "type": "real"},
            "data": _category("period", {p: scale_for(p) for p in energy_scale}),
        },
        *(resolution_correction(q) for q in resolution_scale),
        {
            "name": "trigger_efficiency",
            "description": "efficiency of trg_esum measured with trg_ncl as reference",
            "version": 1,
            "inputs": [
                {"name": "sample", "type": "string"},
                {"name": "period", "type": "string"},
                {"name": "esum", "type": "real", "description": "sum of cluster energies, GeV"},
                {"name": "variation", "type": "string", "description": "nominal, up, down"},
            ],
            "output": {"name": "efficiency", "type": "real"},
            "data": _category(
                "sample",
                {
                    s: _category(
                        "period",
                        {
                            p: _category(
                                "variation",
                                {v: trigger_curve(f, v) for v in ("nominal", "up", "down")},
                            )
                            for p, f in per.items()
                        },
                    )
                    for s, per in trigger.items()
                },
            ),
        },
    ]
    cset = cs.CorrectionSet.model_validate(
        {
            "schema_version": 2,
            "description": f"alps calibration ({provenance.get('config_hash', '')})",
            "corrections": corrections,
        }
    )
    return dict(cset.model_dump(mode="json", exclude_unset=True))


def fit_summary(fit: BinFit) -> dict[str, Any]:
    return asdict(fit)
