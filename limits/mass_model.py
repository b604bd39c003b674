"""The statistical model of one mass hypothesis, from the stored histograms and the signal model.

Puts together what :mod:`limits.workspace` documents: the window's observed counts (dataset
"data"), the Bernstein background basis, the signal template from the interpolated shape
normalised to L x epsilon x sigma, and the systematics: variations named ``<x>_up``/``<x>_down``
in the histograms become a ``histosys`` (energy scale, resolution and any other variation that
may change the shape) or, for ``trigger``, a ``normsys`` (the configured relative uncertainty when
the variation is absent); the luminosity uncertainty is always the configured one (a
normalisation, so the stored lumi_up/down are not needed and changing it re-runs only the limits);
the efficiency ``normsys`` is the configured uncertainty added in quadrature to the efficiency's MC statistical error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from alps.config import AnalysisConfig
from limits.background import choose_order, sideband_fit
from limits.inputs import Spectra
from limits.interpolation import ShapeModel
from limits.shapes import ShapeParameters, signal_bin_fractions
from limits.workspace import bernstein_bin_integrals, build_workspace, mass_window
from simulation.physics import MESON_MASSES

__all__ = [
    "NORM_ONLY",
    "MassModelInfo",
    "WindowBackground",
    "excluded_regions",
    "is_excluded",
    "mass_workspace",
    "signal_per_pb",
    "window_background",
]

FloatArray = npt.NDArray[np.float64]

#: variation groups that change only the normalisation (normsys); all others are histosys
NORM_ONLY = {"trigger": "trigger"}
#: variations the model takes from the configuration instead: the luminosity uncertainty is a pure
#: normalisation (``systematics.luminosity``), so changing it re-runs the limits alone
FROM_CONFIG = ("lumi",)
#: fewer bins than this in a window and the mass is not analysed
MIN_BINS = 8


@dataclass(frozen=True)
class MassModelInfo:
    """What went into one mass's workspace: sigma_ref (pb), expected signal events per pb,
    interpolated efficiency (prompt decays), window (GeV) and its number of bins."""

    mass: float
    sigma_ref_pb: float
    signal_per_pb: float
    efficiency: float
    window: tuple[float, float]
    n_bins: int
    systematics: tuple[str, ...]
    background_order: int = -1
    sideband_p_value: float = float("nan")
    background_mc: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)
class WindowBackground:
    """The background model of a window: polynomial order, its Bernstein bin integrals, the
    coefficients fixed by the sideband fit (None: floating), and the sideband fit's p-value."""

    order: int
    basis: FloatArray
    fixed_coefficients: FloatArray | None
    sideband_p_value: float


def window_background(
    config: AnalysisConfig,
    lower: FloatArray,
    upper: FloatArray,
    window: tuple[float, float],
    observed: FloatArray,
    sideband: npt.NDArray[np.bool_],
) -> WindowBackground:
    """The order (``limits.background_order``: fixed, or by the F-test of
    :func:`limits.background.choose_order` on the window's data with orders 0 to
    ``background_polynomial_order``) and, with ``limits.background_fit: sidebands``, the
    coefficients fitted to the sideband bins (``sideband``, bool per bin); the sideband fit's
    goodness of fit is computed in both cases."""
    lcfg = config.limits
    top = lcfg.background_polynomial_order
    if lcfg.background_order == "ftest":
        # a polynomial is only ever fitted with at least two bins per coefficient
        top = max(min(top, int(np.sum(sideband)) // 2 - 1), 0)
        basis = {k: bernstein_bin_integrals(lower, upper, *window, k) for k in range(top + 1)}
        order, _ = choose_order(basis, observed)
        chosen = basis[order]
    else:
        order = top
        chosen = bernstein_bin_integrals(lower, upper, *window, order)
    try:
        side = sideband_fit(chosen, observed, sideband)
    except ValueError:
        if lcfg.background_fit == "sidebands":
            raise
        return WindowBackground(order, chosen, None, float("nan"))
    fixed = np.asarray(side.coefficients) if lcfg.background_fit == "sidebands" else None
    return WindowBackground(order, chosen, fixed, side.p_value)


def excluded_regions(config: AnalysisConfig) -> list[tuple[float, float]]:
    """|m - m_P| < exclusion_nsigma sigma_m(m_P) for the configured mesons, as GeV intervals."""
    res = config.histograms.resolution
    out = []
    for key in config.limits.excluded_mesons:
        m_p = MESON_MASSES[key]
        half = config.limits.exclusion_nsigma * float(res.sigma(m_p))
        out.append((m_p - half, m_p + half))
    return out


def is_excluded(mass: float, regions: list[tuple[float, float]]) -> bool:
    return any(lo < mass < hi for lo, hi in regions)


def signal_per_pb(
    lower: FloatArray,
    upper: FloatArray,
    mass: float,
    params: ShapeParameters,
    shape_model: ShapeModel,
    luminosity_pb: float,
    efficiency: float,
) -> FloatArray:
    """Expected signal per bin for sigma = 1 pb: L epsilon (peak + combinatorial) per bin."""
    half = shape_model.window_nsigma * shape_model.sigma_m(mass)
    eff_half = shape_model.efficiency_nsigma * params.sigma
    peak, comb = signal_bin_fractions(
        lower, upper, mass, params, (mass - half, mass + half), (mass - eff_half, mass + eff_half)
    )
    return luminosity_pb * efficiency * (peak + comb)


def mass_workspace(
    spectra: Spectra,
    shape_model: ShapeModel,
    config: AnalysisConfig,
    mass: float,
    *,
    prompt_fraction_ref: float = 1.0,
    regions: list[tuple[float, float]] | None = None,
) -> tuple[dict[str, Any], MassModelInfo] | None:
    """The pyhf workspace of ``mass`` (GeV) and what went into it; None when the window has too
    few bins or no signal is expected. ``prompt_fraction_ref`` is P_decay at the reference
    coupling of the signal MC: the efficiency is divided by it to refer to ALPs that decay
    inside the detector."""
    lcfg = config.limits
    res = config.histograms.resolution
    regions = excluded_regions(config) if regions is None else regions
    sigma_m = float(res.sigma(mass))
    window = mass_window(
        spectra.edges, mass, sigma_m, lcfg.window_nsigma, lcfg.scan_range_GeV, regions
    )
    if len(window.bins) < MIN_BINS:
        return None
    lower, upper = window.edges(spectra.edges)
    idx = np.asarray(window.bins)
    observed = spectra.get("data")[0][idx]
    params = shape_model.parameters(mass)
    eff = shape_model.efficiency(mass) / max(prompt_fraction_ref, 1e-12)
    lumi = spectra.luminosity_total_pb

    def template(p: ShapeParameters, scale: float = 1.0) -> FloatArray:
        return scale * signal_per_pb(lower, upper, mass, p, shape_model, lumi, eff)

    nominal = template(params)
    if not np.isfinite(nominal).all() or nominal.sum() <= 0:
        return None
    histosys: dict[str, tuple[FloatArray, FloatArray]] = {}
    normsys: dict[str, tuple[float, float]] = {}
    groups = sorted(
        {v.rsplit("_", 1)[0] for v in spectra.variations if v.endswith(("_up", "_down"))}
    )
    for group in groups:
        if group in FROM_CONFIG:
            continue
        effects = []
        for direction in ("up", "down"):
            name = f"{group}_{direction}"
            shift = shape_model.systematic(name, "shift", mass)
            width = shape_model.systematic(name, "width", mass)
            yld = shape_model.systematic(name, "yield", mass)
            effects.append((shift, width, yld))
        if any(e[2] is None for e in effects):
            continue
        if group in NORM_ONLY:
            hi, lo = 1.0 + effects[0][2], 1.0 + effects[1][2]  # type: ignore[operator]
            if abs(hi - 1.0) > 1e-6 or abs(lo - 1.0) > 1e-6:
                normsys[NORM_ONLY[group]] = (hi, lo)
            continue
        varied = []
        for shift, width, yld in effects:
            p = replace(
                params,
                offset=params.offset + (shift or 0.0) * mass,
                sigma=params.sigma * (1.0 + (width or 0.0)),
            )
            varied.append(template(p, 1.0 + (yld or 0.0)))
        if not (np.allclose(varied[0], nominal) and np.allclose(varied[1], nominal)):
            histosys[group] = (varied[0], varied[1])
    if config.systematics.luminosity > 0:
        u = config.systematics.luminosity
        normsys["luminosity"] = (1.0 + u, 1.0 - u)
    if "trigger" not in normsys and config.systematics.trigger and lcfg.trigger_uncertainty > 0:
        u = lcfg.trigger_uncertainty
        normsys["trigger"] = (1.0 + u, 1.0 - u)
    stat = (
        float(shape_model.efficiency_rel_error(mass)) if shape_model.efficiency_rel_error else 0.0
    )
    u_eff = float(np.hypot(lcfg.efficiency_uncertainty, max(stat, 0.0)))
    if u_eff > 0:
        normsys["efficiency"] = (1.0 + u_eff, max(1.0 - u_eff, 0.01))
    centres = 0.5 * (lower + upper)
    sideband = np.abs(centres - mass) > lcfg.sideband_nsigma * sigma_m
    bkg = window_background(config, lower, upper, (window.lo, window.hi), observed, sideband)
    spec, sigma_ref = build_workspace(
        mass=mass,
        observed=observed,
        background_basis=bkg.basis,
        background_fixed=bkg.fixed_coefficients,
        signal_per_pb=nominal,
        histosys_per_pb=histosys,
        normsys=normsys,
    )
    info = MassModelInfo(
        mass=mass,
        sigma_ref_pb=sigma_ref,
        signal_per_pb=float(nominal.sum()),
        efficiency=eff,
        window=(window.lo, window.hi),
        n_bins=len(window.bins),
        systematics=tuple(sorted([*histosys, *normsys])),
        background_order=bkg.order,
        sideband_p_value=bkg.sideband_p_value,
        background_mc=tuple(float(v) for v in spectra.background_mc()[idx]),
    )
    return spec, info
