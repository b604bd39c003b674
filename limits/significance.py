"""Local and global significance of an excess.

Local: the discovery test statistic q0 = -2 ln lambda(0) (Cowan, Cranmer, Gross, Vitells,
Eur. Phys. J. C 71 (2011) 1554, arXiv:1007.1727, Eq. 12) with the asymptotic p0 = 1 - Phi(sqrt q0)
(Eq. 53). The significance is reported signed: a deficit (best-fit signal below zero, the fit
allowed down to where the expectation of some bin would vanish) gets Z = -sqrt(q0'), with q0' the
likelihood ratio of mu = 0 to that negative best fit, so that background-only scans give Z
distributed about N(0, 1) rather than a spike at zero.

Global: the look-elsewhere effect by the method of Gross & Vitells, Eur. Phys. J. C 70 (2010) 525
(arXiv:1005.1891), Eq. 2 for a one-sided test with one degree of freedom:

    p_global = P(chi2_1 > u)/2 + <N(u0)> exp(-(u - u0)/2),

u = Z_max^2 the largest local q0 of the scan and <N(u0)> the mean number of upcrossings of the
q0(m) curve above a low reference level u0, counted on the observed scan (their Sec. 3) or
averaged over background-only toy scans. Alternatively (``method="toys"``) p_global is the
fraction of toy scans whose largest local significance reaches the observed one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from limits.cls import HypothesisTester
from limits.likelihood import CompiledModel, expected_main, fit, parameter_errors

__all__ = [
    "Discovery",
    "GlobalSignificance",
    "count_upcrossings",
    "discovery",
    "global_from_toys",
    "gross_vitells",
    "negative_poi_bounds",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Discovery:
    """Local discovery test of one mass: q0, signed Z, one-sided p0, and the best-fit POI
    (allowed negative) with its error."""

    q0: float
    z: float
    p0: float
    mu_hat: float
    mu_hat_error: float


@dataclass(frozen=True)
class GlobalSignificance:
    """Largest local significance of the scan, where it is, and its global significance."""

    method: str
    z_local_max: float
    mass_at_max: float
    p_local: float
    p_global: float
    z_global: float
    reference_level: float | None = None
    upcrossings: float | None = None
    n_toys: int = 0


def discovery(tester: HypothesisTester) -> Discovery:
    """Signed local significance from the fits a :class:`HypothesisTester` has made (plus one
    fit with the POI allowed below zero when the bounded best fit sits at zero)."""
    model = tester.model
    poi = model.poi_index
    free, bkg = tester.free, tester.bkg
    mu_hat = float(free.pars[poi])
    if mu_hat > 0:
        q0 = max(2.0 * (bkg.nll - free.nll), 0.0)
        err = parameter_errors(model, free.pars, tester.data, tester.aux)[poi]
        z = float(np.sqrt(q0))
        return Discovery(q0, z, float(ndtr(-z)), mu_hat, float(err))
    # best fit at the boundary: refit with mu < 0 allowed
    neg = fit(
        model, tester.data, tester.aux, init=bkg.pars, bounds=negative_poi_bounds(model, bkg.pars)
    )
    q0 = max(2.0 * (bkg.nll - neg.nll), 0.0)
    mu_neg = float(neg.pars[poi])
    err = parameter_errors(model, neg.pars, tester.data, tester.aux)[poi]
    z = -float(np.sqrt(q0)) if mu_neg < 0 else 0.0
    return Discovery(q0 if mu_neg > 0 else 0.0, z, float(ndtr(-z)), min(mu_neg, 0.0), float(err))


def negative_poi_bounds(model: CompiledModel, pars: FloatArray) -> FloatArray:
    """The model's bounds with the POI allowed below zero, down to 0.95 of where the expected
    counts at ``pars`` (POI ignored) would be cancelled in some bin with signal."""
    unit = np.array(pars, dtype=np.float64)
    unit[model.poi_index] = 0.0
    background = expected_main(model, unit)
    unit[model.poi_index] = 1.0
    signal = expected_main(model, unit) - background
    sel = signal > 1e-3 * signal.max()
    bounds = model.bounds.copy()
    if sel.any():
        bounds[model.poi_index, 0] = -0.95 * float(np.min(background[sel] / signal[sel]))
    else:
        bounds[model.poi_index, 0] = 0.0
    return bounds


def count_upcrossings(q: npt.ArrayLike, level: float, segments: npt.ArrayLike | None = None) -> int:
    """Number of upcrossings of ``level`` by the sequence ``q`` (points in scan order); a new
    ``segments`` label (e.g. across an excluded mass region) starts a new curve, and a curve
    that starts above the level counts as one upcrossing."""
    values = np.asarray(q, dtype=np.float64)
    seg = np.zeros(len(values), dtype=int) if segments is None else np.asarray(segments)
    above = values > level
    count = 0
    for s in np.unique(seg):
        a = above[seg == s]
        if len(a) == 0:
            continue
        count += int(a[0]) + int(np.sum(a[1:] & ~a[:-1]))
    return count


def _z_from_p(p: float) -> float:
    return float(max(-ndtri(min(max(p, 1e-300), 1.0)), 0.0))


def gross_vitells(
    z_local: npt.ArrayLike,
    masses: npt.ArrayLike,
    segments: npt.ArrayLike | None = None,
    *,
    reference_level: float = 0.5,
    upcrossings: float | None = None,
) -> GlobalSignificance:
    """Global significance of the largest local excess (module docstring, Gross & Vitells Eq. 2).

    ``z_local`` are signed local significances in scan order (NaN for masses not analysed, which
    are skipped); the one-sided q0 is max(Z, 0)^2. ``upcrossings`` overrides the count of
    upcrossings of ``reference_level`` on the observed curve (e.g. a mean over toys)."""
    z = np.asarray(z_local, dtype=np.float64)
    m = np.asarray(masses, dtype=np.float64)
    ok = np.isfinite(z)
    seg = np.zeros(len(z), dtype=int) if segments is None else np.asarray(segments)
    q = np.maximum(z[ok], 0.0) ** 2
    n_up = (
        float(count_upcrossings(q, reference_level, seg[ok]))
        if upcrossings is None
        else upcrossings
    )
    i = int(np.argmax(z[ok]))
    z_max = float(z[ok][i])
    u = max(z_max, 0.0) ** 2
    p_local = float(ndtr(-max(z_max, 0.0)))
    p_global = min(1.0, p_local + n_up * float(np.exp(-(u - reference_level) / 2.0)))
    p_global = max(p_global, p_local)
    return GlobalSignificance(
        method="gross-vitells",
        z_local_max=z_max,
        mass_at_max=float(m[ok][i]),
        p_local=p_local,
        p_global=p_global,
        z_global=_z_from_p(p_global),
        reference_level=reference_level,
        upcrossings=n_up,
    )


def global_from_toys(
    z_local: npt.ArrayLike, masses: npt.ArrayLike, z_max_toys: npt.ArrayLike
) -> GlobalSignificance:
    """p_global = fraction of background-only toy scans with max Z >= the observed max Z (with
    none, the bound p < 1/(n + 1) is reported as p = 1/(n + 1))."""
    z = np.asarray(z_local, dtype=np.float64)
    m = np.asarray(masses, dtype=np.float64)
    ok = np.isfinite(z)
    i = int(np.argmax(z[ok]))
    z_max = float(z[ok][i])
    toys = np.asarray(z_max_toys, dtype=np.float64)
    k = int(np.sum(toys >= z_max))
    p_global = (k if k > 0 else 1) / (len(toys) + (0 if k > 0 else 1))
    return GlobalSignificance(
        method="toys",
        z_local_max=z_max,
        mass_at_max=float(m[ok][i]),
        p_local=float(ndtr(-max(z_max, 0.0))),
        p_global=float(p_global),
        z_global=_z_from_p(p_global),
        n_toys=len(toys),
    )
