"""Smooth interpolation of the signal model in m_a, and its check on masses left out of it.

Each shape parameter, f, the efficiency and the relative effects of the systematic variations are
interpolated with a penalised cubic smoothing spline (Reinsch, Numer. Math. 10 (1967) 177), its
smoothing chosen by generalised cross-validation (Craven & Wahba, Numer. Math. 31 (1978) 377;
``scipy.interpolate.make_smoothing_spline``), weighted by the inverse squared fit errors. Outside
the simulated range the curves are held at their end values. With fewer than five masses the
spline is replaced by linear interpolation (one mass: a constant).

:func:`held_out_check` refits every curve without every k-th mass and reports the pulls
(fitted - interpolated) / error at the masses left out: mean near 0 and RMS near 1 mean the
interpolation describes the parameters within their statistical precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.interpolate import BSpline, make_interp_spline, make_smoothing_spline

from limits.shapes import DEFAULT_TAIL_N, SHAPE_PARAMETERS, ShapeFit, ShapeParameters

__all__ = [
    "INTERPOLATED",
    "ShapeModel",
    "SmoothCurve",
    "fit_smooth_curve",
    "held_out_check",
]

FloatArray = npt.NDArray[np.float64]

#: quantities interpolated from the per-mass fits
INTERPOLATED = (*SHAPE_PARAMETERS, "efficiency")
#: physical range each interpolated quantity is clipped to
_CLIP = {
    "sigma": (1e-5, np.inf),
    "beta_left": (0.3, 8.0),
    "beta_right": (0.3, 8.0),
    "frac": (0.01, 1.0),
    "c1": (-1.0, 1.0),
    "efficiency": (0.0, 1.0),
}


@dataclass(frozen=True)
class SmoothCurve:
    """A spline y(x) stored as knots and coefficients (JSON friendly), constant outside x_range."""

    knots: tuple[float, ...]
    coefficients: tuple[float, ...]
    degree: int
    x_range: tuple[float, float]

    def __call__(self, x: npt.ArrayLike) -> FloatArray:
        xc = np.clip(np.asarray(x, dtype=np.float64), *self.x_range)
        if self.degree == 0:
            return np.full_like(xc, self.coefficients[0])
        spline = BSpline(np.asarray(self.knots), np.asarray(self.coefficients), self.degree)
        return np.asarray(spline(xc))

    def to_dict(self) -> dict[str, Any]:
        return {
            "knots": list(self.knots),
            "coefficients": list(self.coefficients),
            "degree": self.degree,
            "x_range": list(self.x_range),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SmoothCurve:
        return cls(
            tuple(d["knots"]), tuple(d["coefficients"]), int(d["degree"]), tuple(d["x_range"])
        )


def fit_smooth_curve(
    x: npt.ArrayLike, y: npt.ArrayLike, err: npt.ArrayLike | None = None, lam: float | None = None
) -> SmoothCurve:
    """Smoothing spline through (x, y) with weights 1/err^2 (GCV smoothing unless ``lam``)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) == 0:
        raise ValueError("no points to interpolate")
    if len(x) == 1:
        return SmoothCurve((), (float(y[0]),), 0, (float(x[0]), float(x[0])))
    rng = (float(x[0]), float(x[-1]))
    if len(x) < 5:
        spline = make_interp_spline(x, y, k=1)
    else:
        w = None
        if err is not None:
            e = np.asarray(err, dtype=np.float64)[order]
            e = np.where(np.isfinite(e) & (e > 0), e, np.nan)
            floor = np.nanmedian(e) * 1e-2 if np.isfinite(e).any() else 1.0
            e = np.where(
                np.isfinite(e), np.maximum(e, floor), np.nanmax(e) if np.isfinite(e).any() else 1.0
            )
            w = 1.0 / e**2
            w = w / w.mean()
        spline = make_smoothing_spline(x, y, w=w, lam=lam)
    return SmoothCurve(
        tuple(float(t) for t in spline.t),
        tuple(float(c) for c in spline.c),
        int(spline.k),
        rng,
    )


def held_out_check(
    x: npt.ArrayLike, y: npt.ArrayLike, err: npt.ArrayLike, every: int = 5
) -> dict[str, Any]:
    """Leave out every ``every``-th point (starting from the third), interpolate the rest, and
    return the held-out masses, their pulls and the pulls' mean, RMS and largest modulus."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    held = np.zeros(len(x), dtype=bool)
    held[2::every] = True
    held[[0, -1]] = False  # keep the ends: no extrapolation
    if held.sum() == 0 or (~held).sum() < 2:
        return {"masses_GeV": [], "pulls": [], "mean": None, "rms": None, "max_abs": None}
    curve = fit_smooth_curve(x[~held], y[~held], err[~held])
    pulls = (y[held] - curve(x[held])) / err[held]
    return {
        "masses_GeV": [float(v) for v in x[held]],
        "pulls": [float(v) for v in pulls],
        "mean": float(np.mean(pulls)),
        "rms": float(np.sqrt(np.mean(pulls**2))),
        "max_abs": float(np.max(np.abs(pulls))),
    }


@dataclass(frozen=True)
class ShapeModel:
    """Interpolated signal model: shape parameters, f and efficiency as functions of m_a, the
    relative effects of the systematic variations, and the per-mass fits they came from.

    ``systematics`` maps ``"<variation>/<effect>"`` (effect: ``shift`` = peak shift / m,
    ``width`` = width ratio - 1, ``yield`` = yield ratio - 1) to curves in m_a.
    """

    curves: dict[str, SmoothCurve]
    systematics: dict[str, SmoothCurve] = field(default_factory=dict)
    efficiency_rel_error: SmoothCurve | None = None
    tail_n: tuple[float, float] = DEFAULT_TAIL_N
    window_nsigma: float = 10.0
    efficiency_nsigma: float = 20.0
    resolution: tuple[float, float, float] = (0.006, 0.008, 0.0)
    working_point: float | None = None
    fits: tuple[ShapeFit, ...] = ()
    validation: dict[str, Any] = field(default_factory=dict)

    def sigma_m(self, mass: float) -> float:
        """The binning resolution sigma_m(m) = p0 + p1 m + p2 m^2 (GeV) that set the nominal
        window m +- window_nsigma sigma_m of the fits (HistogramConfig.resolution)."""
        p0, p1, p2 = self.resolution
        return float(p0 + p1 * mass + p2 * mass**2)

    def parameters(self, mass: float) -> ShapeParameters:
        """Interpolated :class:`ShapeParameters` at ``mass`` (GeV), clipped to physical values."""
        vals = {}
        for name in SHAPE_PARAMETERS:
            v = float(self.curves[name](mass))
            lo, hi = _CLIP.get(name, (-np.inf, np.inf))
            vals[name] = min(max(v, lo), hi)
        return ShapeParameters(**vals, n_left=self.tail_n[0], n_right=self.tail_n[1])

    def efficiency(self, mass: float) -> float:
        """Interpolated efficiency (matched candidates within +-N sigma_DSCB / generated)."""
        return float(np.clip(self.curves["efficiency"](mass), 0.0, 1.0))

    def systematic(self, variation: str, effect: str, mass: float) -> float | None:
        curve = self.systematics.get(f"{variation}/{effect}")
        return None if curve is None else float(curve(mass))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tail_n": list(self.tail_n),
            "window_nsigma": self.window_nsigma,
            "efficiency_nsigma": self.efficiency_nsigma,
            "resolution": list(self.resolution),
            "working_point": self.working_point,
            "interpolation": {k: c.to_dict() for k, c in self.curves.items()},
            "systematics": {k: c.to_dict() for k, c in self.systematics.items()},
            "efficiency_rel_error": (
                None if self.efficiency_rel_error is None else self.efficiency_rel_error.to_dict()
            ),
            "fits": [
                {
                    "mass_GeV": f.mass,
                    "status": f.status,
                    "values": f.values,
                    "errors": f.errors,
                    "efficiency": f.efficiency,
                    "efficiency_error": f.efficiency_error,
                    "matched_entries": f.matched_entries,
                    "deviance": None if not np.isfinite(f.deviance) else f.deviance,
                    "ndof": f.ndof,
                }
                for f in self.fits
            ],
            "validation": self.validation,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShapeModel:
        fits = tuple(
            ShapeFit(
                mass=f["mass_GeV"],
                status=f["status"],
                values=dict(f["values"]),
                errors=dict(f["errors"]),
                efficiency=f["efficiency"],
                efficiency_error=f["efficiency_error"],
                matched_entries=f["matched_entries"],
                deviance=f["deviance"] if f["deviance"] is not None else float("nan"),
                ndof=f["ndof"],
            )
            for f in d.get("fits", [])
        )
        rel = d.get("efficiency_rel_error")
        return cls(
            curves={k: SmoothCurve.from_dict(c) for k, c in d["interpolation"].items()},
            systematics={k: SmoothCurve.from_dict(c) for k, c in d.get("systematics", {}).items()},
            efficiency_rel_error=None if rel is None else SmoothCurve.from_dict(rel),
            tail_n=(float(d["tail_n"][0]), float(d["tail_n"][1])),
            window_nsigma=float(d["window_nsigma"]),
            efficiency_nsigma=float(d["efficiency_nsigma"]),
            resolution=tuple(float(v) for v in d["resolution"]),  # type: ignore[arg-type]
            working_point=d.get("working_point"),
            fits=fits,
            validation=dict(d.get("validation", {})),
        )
