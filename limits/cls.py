"""Asymptotic CLs upper limits with the q~_mu test statistic, as pyhf computes them.

Formulae of Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554 (arXiv:1007.1727):
q~_mu (Eq. 16, with mu_hat >= 0 and q~_mu = 0 for mu_hat > mu), its Asimov value q_mu,A from the
background-only Asimov data set (Sec. 5; built, as in pyhf, from the mu = 0 fit to the observed
data, auxiliary data included), and the test statistic's Wald-approximation distributions
(Eqs. 64-66) in pyhf's parametrisation (``pyhf.infer.calculators.AsymptoticCalculator``):

    t = sqrt(q) - sqrt(qA)               if sqrt(q) <= sqrt(qA)
        (q - qA) / (2 sqrt(qA))           otherwise,
    CLs+b = Phi(-(t + sqrt(qA))),  CLb = Phi(-t),  CLs = CLs+b / CLb  (Read, J. Phys. G 28 (2002)
    2693).

The expected band n sigma (n = 2, 1, 0, -1, -2 gives the -2 sigma ... +2 sigma limits) replaces t
by n, so CLs_exp,n = Phi(-(n + sqrt(qA))) / Phi(-n): the expected limit is where sqrt(q_mu,A)
reaches s_n = -n - Phi^-1(alpha Phi(-n)). Limits are found by root finding on mu (no scan), each
probe being one conditional fit; the results agree with ``pyhf.infer.intervals.upper_limits``
with a fine scan (tests/test_limits_pyhf.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

from limits.likelihood import CompiledModel, FitResult, expected_main, fit, nll, parameter_errors

__all__ = [
    "BAND_SIGMAS",
    "HypothesisTester",
    "UpperLimit",
    "asymptotic_upper_limit",
    "cls_observed",
    "expected_band_sqrt_qa",
    "expected_limits",
    "observed_limit",
]

FloatArray = npt.NDArray[np.float64]

#: order of the expected limits: -2 sigma, -1 sigma, median, +1 sigma, +2 sigma (pyhf's order)
BAND_SIGMAS = (2.0, 1.0, 0.0, -1.0, -2.0)


@dataclass(frozen=True)
class UpperLimit:
    """Upper limits on the POI: observed, expected (-2, -1, 0, +1, +2 sigma), the best fit
    (mu_hat >= 0) with its error, and the number of fits it took."""

    observed: float
    expected: tuple[float, float, float, float, float]
    mu_hat: float
    mu_hat_error: float
    n_fits: int


def cls_observed(sqrt_q: float, sqrt_qa: float) -> float:
    """CLs for observed sqrt(q~_mu) and Asimov sqrt(q_mu,A) (Cowan et al. Eqs. 64-66)."""
    if sqrt_qa <= 0:
        return 1.0
    if sqrt_q <= sqrt_qa:
        t = sqrt_q - sqrt_qa
    else:
        t = (sqrt_q**2 - sqrt_qa**2) / (2.0 * sqrt_qa)
    return float(ndtr(-(t + sqrt_qa)) / ndtr(-t))


def expected_band_sqrt_qa(level: float = 0.05) -> FloatArray:
    """The sqrt(q_mu,A) at which each expected band (order of :data:`BAND_SIGMAS`) reaches CLs =
    ``level``: s_n = -n - Phi^-1(level Phi(-n))."""
    n = np.asarray(BAND_SIGMAS)
    return np.asarray(-n - ndtri(level * ndtr(-n)))


class HypothesisTester:
    """Caches the fits behind q~_mu(obs) and q_mu,A for one model and one data set.

    Construction runs the free fit (mu_hat in [0, mu_max]) and the mu = 0 fit whose expectation
    is the Asimov data set; each later probe of mu is one conditional fit per data set, started
    from the nearest probe already made.
    """

    def __init__(self, model: CompiledModel, data: FloatArray, aux: FloatArray):
        self.model = model
        self.data = np.asarray(data, dtype=np.float64)
        self.aux = np.asarray(aux, dtype=np.float64)
        self.poi = model.poi_index
        self.n_fits = 0
        self.free = self._fit(self.data, self.aux, None, None)
        self.bkg = self._fit(self.data, self.aux, 0.0, self.free.pars)
        self.asimov = expected_main(model, self.bkg.pars)
        self.asimov_aux = self.bkg.pars[model.constrained]
        # the Asimov data are the expectation at bkg.pars: that is the free fit to them
        self.asimov_min = self._nll_at(self.bkg.pars, self.asimov, self.asimov_aux)
        self._obs: dict[float, FitResult] = {}
        self._asi: dict[float, FitResult] = {0.0: self.bkg}

    def _nll_at(self, pars: FloatArray, data: FloatArray, aux: FloatArray) -> float:
        return nll(pars, self.model, data, aux)

    def _fit(
        self, data: FloatArray, aux: FloatArray, mu: float | None, init: FloatArray | None
    ) -> FitResult:
        self.n_fits += 1
        fixed = None if mu is None else {self.poi: mu}
        best = fit(self.model, data, aux, fixed=fixed, init=init)
        if mu is not None and init is not None and self._at_bound(best.pars):
            # the background polynomial's coefficients sit at their bounds in some windows, and
            # a warm start can then stop in a local minimum: q_mu would jump between nearby mu
            # and the root finding land on the jump. A second start from the workspace inits
            # keeps the lower minimum (what the global conditional fit is).
            self.n_fits += 1
            other = fit(self.model, data, aux, fixed=fixed, init=None)
            if other.nll < best.nll:
                best = other
        return best

    def _at_bound(self, pars: FloatArray) -> bool:
        """True when a parameter other than the POI sits at a bound (where a warm start can
        stop in a local minimum)."""
        lims = self.model.bounds
        hit = (pars <= lims[:, 0] + 1e-9) | (pars >= lims[:, 1] - 1e-9)
        hit[self.poi] = False
        return bool(np.any(hit & (lims[:, 1] > lims[:, 0])))

    @staticmethod
    def _nearest(cache: dict[float, FitResult], mu: float) -> FloatArray | None:
        if not cache:
            return None
        key = min(cache, key=lambda k: abs(k - mu))
        return cache[key].pars

    def sqrt_qa(self, mu: float) -> float:
        """sqrt(q_mu,A) on the background-only Asimov data."""
        if mu not in self._asi:
            self._asi[mu] = self._fit(
                self.asimov, self.asimov_aux, mu, self._nearest(self._asi, mu)
            )
        q = 2.0 * (self._asi[mu].nll - self.asimov_min)
        return float(np.sqrt(max(q, 0.0)))

    def sqrt_q(self, mu: float) -> float:
        """sqrt(q~_mu) on the observed data (0 when mu_hat > mu)."""
        mu_hat = self.free.pars[self.poi]
        if mu_hat > mu:
            return 0.0
        if mu not in self._obs:
            init = self._nearest(self._obs, mu)
            self._obs[mu] = self._fit(
                self.data, self.aux, mu, self.free.pars if init is None else init
            )
        q = 2.0 * (self._obs[mu].nll - self.free.nll)
        return float(np.sqrt(max(q, 0.0)))

    def cls(self, mu: float) -> float:
        """Observed CLs at ``mu``."""
        return cls_observed(self.sqrt_q(mu), self.sqrt_qa(mu))


def _solve_increasing(
    f: Callable[[float], float], target: float, x0: float, x_max: float, rtol: float
) -> float:
    """x in (0, x_max] with f(x) = target for increasing f with f(0) = 0 (secant steps from the
    origin, then Brent once bracketed)."""
    pts = [(0.0, 0.0)]
    x = x0
    for _ in range(60):
        y = f(x)
        pts.append((x, y))
        if abs(y - target) <= rtol * target:
            return x
        below = [p for p in pts if p[1] < target]
        above = [p for p in pts if p[1] > target]
        if above:
            a = max(below, key=lambda p: p[0])
            b = min(above, key=lambda p: p[0])
            if b[0] - a[0] <= rtol * b[0]:
                return a[0] + (target - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            x_new = a[0] + (target - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            # keep the secant step away from the bracket ends (guarantees progress)
            width = b[0] - a[0]
            x_new = min(max(x_new, a[0] + 0.02 * width), b[0] - 0.02 * width)
        else:
            a = max(below, key=lambda p: p[0])
            if a[0] >= x_max:
                return float("nan")
            slope = a[1] / a[0] if a[0] > 0 else 0.0
            x_new = min(target / slope * 1.02 if slope > 0 else 10.0 * a[0], 10.0 * a[0], x_max)
        x = x_new
    return x


def expected_limits(
    tester: HypothesisTester, *, level: float = 0.05, rtol: float = 2e-4, mu_start: float = 1.0
) -> tuple[float, float, float, float, float]:
    """Expected limits (-2, -1, 0, +1, +2 sigma) from the tester's background-only Asimov data."""
    model = tester.model
    mu_max = float(model.bounds[model.poi_index, 1])
    targets = expected_band_sqrt_qa(level)
    guess = mu_start
    s1 = tester.sqrt_qa(guess)
    if s1 > 0:
        guess = guess * targets[2] / s1
    out = []
    for s_target in targets:
        x0 = min(guess * s_target / targets[2], mu_max)
        out.append(_solve_increasing(tester.sqrt_qa, float(s_target), x0, mu_max, rtol))
    return tuple(float(v) for v in out)  # type: ignore[return-value]


def observed_limit(
    tester: HypothesisTester, *, level: float = 0.05, rtol: float = 2e-4, scale: float = 1.0
) -> float:
    """Observed limit: the mu where CLs(mu) = ``level`` (Brent's method on ln CLs, bracketed
    from mu_hat upwards; ``scale`` is the expected size of the limit). NaN when CLs stays above
    ``level`` up to the POI's upper bound."""
    model = tester.model
    mu_max = float(model.bounds[model.poi_index, 1])
    mu_hat = float(tester.free.pars[model.poi_index])

    def g(mu: float) -> float:
        return float(np.log(max(tester.cls(mu), 1e-300)) - np.log(level))

    lo = max(mu_hat, 1e-4 * scale)
    while g(lo) <= 0 and lo > 1e-9 * scale:
        lo *= 0.1
    hi = min(max(1.5 * lo, mu_hat + 1.5 * scale), mu_max)
    while g(hi) > 0 and hi < mu_max:
        lo, hi = hi, min(2.0 * hi, mu_max)
    if not (g(hi) <= 0 < g(lo)):
        return float("nan")
    return float(brentq(g, lo, hi, xtol=1e-12, rtol=rtol / 4))


def asymptotic_upper_limit(
    model: CompiledModel,
    data: FloatArray | None = None,
    aux: FloatArray | None = None,
    *,
    level: float = 0.05,
    rtol: float = 2e-4,
    mu_start: float = 1.0,
    tester: HypothesisTester | None = None,
) -> UpperLimit:
    """Observed and expected CLs upper limits on the POI at CL = 1 - ``level``.

    ``data``/``aux`` default to the workspace observations and nominal auxiliary data;
    ``mu_start`` is a first guess of the limit's scale. Limits beyond the POI's upper bound are
    returned as NaN.
    """
    data = model.observed if data is None else data
    aux = model.aux_nominal if aux is None else aux
    ht = tester if tester is not None else HypothesisTester(model, data, aux)
    expected = expected_limits(ht, level=level, rtol=rtol, mu_start=mu_start)
    scale = expected[2] if np.isfinite(expected[2]) else mu_start
    observed = observed_limit(ht, level=level, rtol=rtol, scale=scale)
    errors = parameter_errors(model, ht.free.pars, ht.data, ht.aux)
    return UpperLimit(
        observed=observed,
        expected=expected,
        mu_hat=float(ht.free.pars[model.poi_index]),
        mu_hat_error=float(errors[model.poi_index]),
        n_fits=ht.n_fits,
    )
