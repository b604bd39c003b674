"""From projected histograms to the interpolated signal model of all masses.

For every simulated mass: the shape fit (:func:`limits.shapes.fit_shape`) of the signal MC after
the working point, its efficiency, and the relative effects of the stored variations
(:func:`limits.variations.variation_effects`). Then every quantity is interpolated in m_a
(:mod:`limits.interpolation`) and the interpolation is checked on masses left out of it. Mass
points can be fitted as tasks on a Dask cluster (``client``); without one they run in sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from alps.config import AnalysisConfig
from alps.tasks import map_tasks
from limits.inputs import Spectra
from limits.interpolation import INTERPOLATED, ShapeModel, fit_smooth_curve, held_out_check
from limits.shapes import DEFAULT_TAIL_N, ShapeFit, fit_shape
from limits.variations import EFFECTS, variation_effects

__all__ = ["build_shape_model", "fit_mass_shapes"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int], None]


def _fit_batch(items: Sequence[dict[str, Any]]) -> list[ShapeFit]:
    """Worker task: shape fits of a few masses (plain arrays in, frozen results out)."""
    return [
        fit_shape(
            it["edges"],
            it["matched"],
            it["unmatched"],
            it["mass"],
            it["sigma_m"],
            it["window_nsigma"],
            generated=it["generated"],
            efficiency_nsigma=it["eff_nsigma"],
            tail_n=it["tail_n"],
        )
        for it in items
    ]


def fit_mass_shapes(
    spectra: Spectra,
    config: AnalysisConfig,
    *,
    client: Any | None = None,
    progress: Progress | None = None,
    tail_n: tuple[float, float] = DEFAULT_TAIL_N,
) -> list[tuple[ShapeFit, dict[str, dict[str, float]]]]:
    """Shape fit and variation effects of every simulated mass, in mass order."""
    lcfg = config.limits
    res = config.histograms.resolution
    items: list[dict[str, Any]] = []
    for mass, name in spectra.signal_masses().items():
        m_w, m_v = spectra.get(name, truth="matched")
        u_w, u_v = spectra.get(name, truth="unmatched")
        items.append(
            {
                "dataset": name,
                "edges": spectra.edges,
                "matched": np.stack([m_w, m_v], axis=1),
                "unmatched": np.stack([u_w, u_v], axis=1),
                "mass": mass,
                "sigma_m": float(res.sigma(mass)),
                "window_nsigma": lcfg.window_nsigma,
                "generated": spectra.generated.get(name, 0.0),
                "eff_nsigma": lcfg.efficiency_window_nsigma,
                "tail_n": tail_n,
            }
        )
    batch = 8
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    batches = map_tasks(
        _fit_batch, [(c,) for c in chunks], client=client, progress=progress or False, count=len
    )
    results: list[ShapeFit] = [fit for batch in batches for fit in batch]
    # variation effects need the full arrays: measured here, they are cheap
    out = []
    for it, fit in zip(items, results):
        effects = (
            variation_effects(spectra, it["dataset"], fit, it["sigma_m"], lcfg.window_nsigma)
            if fit.ok
            else {}
        )
        out.append((fit, effects))
    return out


def build_shape_model(
    spectra: Spectra,
    config: AnalysisConfig,
    *,
    client: Any | None = None,
    progress: Progress | None = None,
    tail_n: tuple[float, float] = DEFAULT_TAIL_N,
    held_out_every: int = 5,
) -> ShapeModel:
    """Fit every simulated mass, interpolate in m_a and validate on held-out masses."""
    res = config.histograms.resolution
    fitted = fit_mass_shapes(spectra, config, client=client, progress=progress, tail_n=tail_n)
    fits = [f for f, _ in fitted]
    ok = [f for f in fits if f.ok]
    if not ok:
        raise ValueError(
            "no signal mass could be fitted: is there signal MC after the working point?"
        )
    m_ok = np.array([f.mass for f in ok])
    curves = {}
    validation: dict[str, Any] = {"held_out": {}}
    for name in INTERPOLATED:
        if name == "efficiency":
            have = [f for f in fits if f.efficiency_error > 0]
            x = np.array([f.mass for f in have])
            y = np.array([f.efficiency for f in have])
            e = np.array([f.efficiency_error for f in have])
        else:
            x = m_ok
            y = np.array([f.values[name] for f in ok])
            e = np.array([f.errors[name] for f in ok])
        curves[name] = fit_smooth_curve(x, y, e)
        validation["held_out"][name] = held_out_check(x, y, e, every=held_out_every)
    have = [f for f in fits if f.efficiency > 0]
    rel_err = fit_smooth_curve(
        [f.mass for f in have], [f.efficiency_error / f.efficiency for f in have]
    )
    systematics = {}
    variations = sorted({v for _, eff in fitted for v in eff})
    for variation in variations:
        pts = [(f.mass, eff[variation]) for f, eff in fitted if variation in eff]
        for effect in EFFECTS:
            systematics[f"{variation}/{effect}"] = fit_smooth_curve(
                [p[0] for p in pts], [p[1][effect] for p in pts]
            )
    # refit of the mass resolution sigma_m(m) = p0 + p1 m + p2 m^2 to the DSCB widths
    if len(ok) >= 3:
        sig = np.array([f.values["sigma"] for f in ok])
        err = np.array([f.errors["sigma"] for f in ok])
        coef = np.polynomial.polynomial.polyfit(m_ok, sig, 2, w=1.0 / np.maximum(err, 1e-9))
        validation["resolution_fit"] = {"p0": coef[0], "p1": coef[1], "p2": coef[2]}
    validation["n_fitted"] = len(ok)
    validation["n_masses"] = len(fits)
    return ShapeModel(
        curves=curves,
        systematics=systematics,
        efficiency_rel_error=rel_err,
        tail_n=tail_n,
        window_nsigma=config.limits.window_nsigma,
        efficiency_nsigma=config.limits.efficiency_window_nsigma,
        resolution=(res.p0, res.p1, res.p2),
        working_point=spectra.working_point,
        fits=tuple(fits),
        validation=validation,
    )
