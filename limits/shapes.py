"""Signal shape of one ALP mass: N_sig (f DSCB + (1 - f) Chebyshev), its fit and its bin integrals.

The peaking part is a double-sided Crystal Ball (DSCB; Oreglia, SLAC-R-236 (1980), App. D, with a
power-law tail on each side; ``numba_stats.crystalball_ex`` with one core width) of the
truth-matched diphoton candidates; the tail exponents n are fixed (physics.md "Signal shape and
fit"). The combinatorial part, wrong photon pairings, is a first-order Chebyshev polynomial
normalised on the nominal window [m - N sigma_m, m + N sigma_m].

With the candidates' truth label the extended likelihood of N (f DSCB + (1 - f) Cheb) factorises
into Poisson(N f) x prod DSCB (matched) and Poisson(N (1 - f)) x prod Cheb (unmatched), so the two
parts are fitted separately (same maximum, better conditioned), each with iminuit's
``ExtendedBinnedNLL`` on weighted histograms (scaled Poisson of Bohm & Zech, NIM A 748 (2014) 1).
All masses are GeV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from iminuit import Minuit
from iminuit.cost import ExtendedBinnedNLL
from numba_stats import crystalball_ex

__all__ = [
    "DEFAULT_TAIL_N",
    "SHAPE_PARAMETERS",
    "ShapeFit",
    "ShapeParameters",
    "chebyshev1_cdf",
    "dscb_cdf",
    "fit_shape",
    "signal_bin_fractions",
]

FloatArray = npt.NDArray[np.float64]

#: fixed tail exponents (n_left, n_right) of the DSCB
DEFAULT_TAIL_N = (3.0, 5.0)
#: names of the interpolated shape parameters, in the order of :class:`ShapeParameters`
SHAPE_PARAMETERS = ("offset", "sigma", "beta_left", "beta_right", "frac", "c1")
#: fewer effective matched entries than this and the DSCB is not fitted
_MIN_MATCHED = 25.0


@dataclass(frozen=True)
class ShapeParameters:
    """Shape of the signal at one mass.

    offset: peak position minus the nominal mass (GeV); sigma: DSCB core width (GeV);
    beta_left/right: where the tails start, in units of sigma; frac: f, the peaking fraction of
    the signal in the nominal window; c1: slope of the Chebyshev combinatorial part.
    """

    offset: float
    sigma: float
    beta_left: float
    beta_right: float
    frac: float
    c1: float
    n_left: float = DEFAULT_TAIL_N[0]
    n_right: float = DEFAULT_TAIL_N[1]


@dataclass(frozen=True)
class ShapeFit:
    """Fit of the signal shape at one simulated mass (values and errors keyed by
    :data:`SHAPE_PARAMETERS`), and the efficiency within +-N sigma_DSCB."""

    mass: float
    status: str
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    efficiency: float = 0.0
    efficiency_error: float = 0.0
    matched_entries: float = 0.0
    deviance: float = float("nan")
    ndof: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def dscb_cdf(x: npt.ArrayLike, loc: float, p: ShapeParameters) -> FloatArray:
    """Cumulative distribution of the DSCB peak at ``loc`` (GeV) with ``p``'s width and tails."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    return np.asarray(
        crystalball_ex.cdf(x, p.beta_left, p.n_left, p.sigma, p.beta_right, p.n_right, p.sigma, loc)
    )


def chebyshev1_cdf(x: npt.ArrayLike, c1: float, lo: float, hi: float) -> FloatArray:
    """CDF of (1 + c1 t)/2 on t = 2 (x - lo)/(hi - lo) - 1 in [-1, 1] (|c1| <= 1 keeps it
    non-negative); 0 below ``lo`` and 1 above ``hi``."""
    t = np.clip(2.0 * (np.asarray(x, dtype=np.float64) - lo) / (hi - lo) - 1.0, -1.0, 1.0)
    return np.asarray(0.5 * ((t + 1.0) + 0.5 * c1 * (t * t - 1.0)))


def signal_bin_fractions(
    lower: FloatArray,
    upper: FloatArray,
    mass: float,
    p: ShapeParameters,
    window: tuple[float, float],
    efficiency_window: tuple[float, float],
) -> tuple[FloatArray, FloatArray]:
    """Peaking and combinatorial signal in bins [lower, upper), per peaking candidate counted in
    ``efficiency_window``.

    The efficiency counts matched candidates inside ``efficiency_window`` (m +- 20 sigma), so the
    peak per bin is DSCB(bin) / DSCB(efficiency window); the combinatorial part is
    (1 - f) / (f DSCB(efficiency window)) x Cheb(bin), with f the peaking fraction and the
    Chebyshev normalised on the nominal ``window``. Multiply both by L sigma epsilon for expected
    counts.
    """
    loc = mass + p.offset
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    e = dscb_cdf(np.asarray(efficiency_window), loc, p)
    in_eff = max(float(e[1] - e[0]), 1e-12)
    peak = (dscb_cdf(upper, loc, p) - dscb_cdf(lower, loc, p)) / in_eff
    frac = min(max(p.frac, 1e-6), 1.0)
    cheb = chebyshev1_cdf(upper, p.c1, *window) - chebyshev1_cdf(lower, p.c1, *window)
    comb = (1.0 - frac) / (frac * in_eff) * cheb
    return peak, comb


def _weighted(h: FloatArray) -> FloatArray:
    """(B, 2) array of (sum w, sum w^2) with empty bins given a tiny variance (iminuit needs it)."""
    out = np.array(h, dtype=np.float64, copy=True)
    out[:, 1] = np.where(out[:, 1] > 0, out[:, 1], 1e-12)
    return out


def fit_shape(
    edges: FloatArray,
    matched: FloatArray,
    unmatched: FloatArray,
    mass: float,
    sigma_guess: float,
    window_nsigma: float,
    *,
    generated: float,
    efficiency_nsigma: float = 20.0,
    tail_n: tuple[float, float] = DEFAULT_TAIL_N,
) -> ShapeFit:
    """Fit the signal shape at ``mass`` to matched and unmatched candidates (after the cut).

    ``edges`` (GeV) are the M_gamma_gamma bin edges; ``matched`` and ``unmatched`` are (B, 2)
    arrays of summed weights and squared weights; ``sigma_guess`` is the mass resolution
    sigma_m(m) of the histogram binning, which also sets the nominal window
    m +- ``window_nsigma`` sigma_m; ``generated`` is the summed weight of all generated signal
    events, so that the efficiency is matched weight within +-``efficiency_nsigma`` sigma_DSCB
    divided by it (physics.md "Signal shape and fit").
    """
    edges = np.asarray(edges, dtype=np.float64)
    lo, hi = mass - window_nsigma * sigma_guess, mass + window_nsigma * sigma_guess
    centres = 0.5 * (edges[1:] + edges[:-1])
    sel = np.flatnonzero((centres > lo) & (centres < hi))
    matched = np.asarray(matched, dtype=np.float64)
    unmatched = np.asarray(unmatched, dtype=np.float64)

    def efficiency(sigma: float) -> tuple[float, float]:
        inside = np.abs(centres - mass) < efficiency_nsigma * sigma
        w, w2 = matched[inside, 0].sum(), matched[inside, 1].sum()
        if generated <= 0:
            return 0.0, 0.0
        return float(w / generated), float(np.sqrt(w2) / generated)

    if len(sel) < 8:
        eff, err = efficiency(sigma_guess)
        return ShapeFit(mass, "window outside the histogram", efficiency=eff, efficiency_error=err)
    m_h = matched[sel]
    u_h = unmatched[sel]
    w_sum = m_h[:, 0].sum()
    n_eff = w_sum**2 / m_h[:, 1].sum() if m_h[:, 1].sum() > 0 else 0.0
    if n_eff < _MIN_MATCHED:
        eff, err = efficiency(sigma_guess)
        return ShapeFit(
            mass,
            "too few matched candidates",
            efficiency=eff,
            efficiency_error=err,
            matched_entries=float(n_eff),
        )
    xe = edges[sel[0] : sel[-1] + 2]
    n_l, n_r = tail_n

    def peak_cdf(
        x: FloatArray, n: float, offset: float, sigma: float, bl: float, br: float
    ) -> FloatArray:
        return n * crystalball_ex.cdf(x, bl, n_l, sigma, br, n_r, sigma, mass + offset)

    cost_peak = ExtendedBinnedNLL(_weighted(m_h), xe, peak_cdf)
    mean = float(np.sum(m_h[:, 0] * centres[sel]) / w_sum)
    m_peak = Minuit(cost_peak, n=w_sum, offset=mean - mass, sigma=sigma_guess, bl=1.5, br=2.0)
    m_peak.limits["n"] = (0.0, 10.0 * w_sum)
    m_peak.limits["offset"] = (-3.0 * sigma_guess, 3.0 * sigma_guess)
    m_peak.limits["sigma"] = (0.2 * sigma_guess, 5.0 * sigma_guess)
    m_peak.limits["bl"] = (0.3, 8.0)
    m_peak.limits["br"] = (0.3, 8.0)
    m_peak.migrad()
    if not m_peak.valid:
        m_peak.migrad()
    if not m_peak.valid:
        eff, err = efficiency(sigma_guess)
        return ShapeFit(
            mass,
            "DSCB fit did not converge",
            efficiency=eff,
            efficiency_error=err,
            matched_entries=float(n_eff),
        )
    m_peak.hesse()

    u_sum = float(u_h[:, 0].sum())
    if u_sum > 0:

        def comb_cdf(x: FloatArray, n: float, c1: float) -> FloatArray:
            return n * chebyshev1_cdf(x, c1, lo, hi)

        cost_comb = ExtendedBinnedNLL(_weighted(u_h), xe, comb_cdf)
        m_comb = Minuit(cost_comb, n=u_sum, c1=0.0)
        m_comb.limits["n"] = (0.0, 10.0 * u_sum + 1.0)
        m_comb.limits["c1"] = (-1.0, 1.0)
        m_comb.migrad()
        m_comb.hesse()
        n_comb, n_comb_err = float(m_comb.values["n"]), float(m_comb.errors["n"])
        c1, c1_err = float(m_comb.values["c1"]), float(m_comb.errors["c1"])
        deviance_comb, ndof_comb = float(m_comb.fval), len(u_h) - 2
    else:  # no wrong pairing in the window: one candidate of the mean weight as the error
        mean_weight = float(m_h[:, 1].sum() / w_sum)
        n_comb, n_comb_err, c1, c1_err = 0.0, mean_weight, 0.0, 1.0
        deviance_comb, ndof_comb = 0.0, 0

    n_peak, n_peak_err = float(m_peak.values["n"]), float(m_peak.errors["n"])
    total = n_peak + n_comb
    frac = n_peak / total
    frac_err = np.hypot(n_comb * n_peak_err, n_peak * n_comb_err) / total**2
    sigma = float(m_peak.values["sigma"])
    eff, eff_err = efficiency(sigma)
    values = {
        "offset": float(m_peak.values["offset"]),
        "sigma": sigma,
        "beta_left": float(m_peak.values["bl"]),
        "beta_right": float(m_peak.values["br"]),
        "frac": float(frac),
        "c1": c1,
    }
    errors = {
        "offset": float(m_peak.errors["offset"]),
        "sigma": float(m_peak.errors["sigma"]),
        "beta_left": float(m_peak.errors["bl"]),
        "beta_right": float(m_peak.errors["br"]),
        "frac": float(max(frac_err, 1e-6)),
        "c1": float(max(c1_err, 1e-6)),
    }
    return ShapeFit(
        mass=mass,
        status="ok",
        values=values,
        errors=errors,
        efficiency=eff,
        efficiency_error=eff_err,
        matched_entries=float(n_eff),
        deviance=float(m_peak.fval) + deviance_comb,
        ndof=len(m_h) - 5 + ndof_comb,
    )
