"""The background polynomial of one mass window: its order, a sideband fit, and its checks.

All fits here are binned Poisson maximum-likelihood fits of B(m) = sum_j c_j b_{j,k}(t), the
Bernstein basis of :func:`limits.workspace.bernstein_bin_integrals`, with c_j >= 0, to the counts
of a window (background only, no signal term).

* **Order by an F-test** (:func:`choose_order`): starting from order 0, the order is raised while
  one of the next two improves the fit significantly, i.e. while 2 Delta(-ln L) between orders k
  and k + d (d = 1, 2) exceeds the chi2(d) quantile at 1 - ``p_threshold`` (Wilks' theorem for
  nested models: an order-k Bernstein polynomial is one of order k + d by degree elevation;
  looking two orders ahead keeps a symmetric shape, which the odd order alone does not improve,
  from stopping the search). This is the likelihood-ratio
  form of the Fisher test used to choose the background function in the CMS H -> gamma gamma and
  H -> Z gamma searches (CMS, Eur. Phys. J. C 74 (2014) 3076, Sec. 4.2; JHEP 11 (2018) 152).
* **Sideband fit** (:func:`sideband_fit`): the same fit on the bins outside m_a +- n sigma_m; its
  coefficients can be fixed in the workspace (the seed's "later fixed in side bands"), and its
  goodness of fit (Poisson deviance against chi2(bins - order - 1), Baker & Cousins, Nucl.
  Instrum. Meth. 221 (1984) 437) tells when the polynomial cannot describe the sidebands.
* **Spurious signal** (:func:`spurious_signal`): the signal + background model fitted to the
  background-only MC of the window, the signal allowed negative: S_spur, the signal it fits where
  there is none, is compared to the statistical error of the signal fitted to the data (ATLAS,
  Phys. Rev. D 90 (2014) 112015, Sec. VI.A: the function is accepted where |S_spur| is below 20%
  of that error; this project reports the ratio at every mass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize, nnls
from scipy.stats import chi2

from limits.likelihood import CompiledModel, expected_main, fit, parameter_errors
from limits.significance import negative_poi_bounds

__all__ = [
    "BackgroundFit",
    "SpuriousSignal",
    "choose_order",
    "fit_polynomial",
    "sideband_fit",
    "spurious_signal",
]

FloatArray = npt.NDArray[np.float64]

#: ATLAS's acceptance threshold of |S_spur| / delta S (reported, not enforced)
SPURIOUS_THRESHOLD = 0.2


@dataclass(frozen=True)
class BackgroundFit:
    """A background-only polynomial fit: coefficients (per basis column, scaled as the columns
    passed in), -ln L, Poisson deviance, its degrees of freedom and p-value."""

    order: int
    coefficients: tuple[float, ...]
    nll: float
    deviance: float
    ndf: int
    p_value: float


def _poisson_nll(nu: FloatArray, n: FloatArray) -> float:
    nu = np.maximum(nu, 1e-10)
    return float(np.sum(nu - n * np.log(nu)))


def _deviance(nu: FloatArray, n: FloatArray) -> float:
    """Baker-Cousins Poisson deviance 2 sum [nu - n + n ln(n / nu)]."""
    nu = np.maximum(nu, 1e-10)
    log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / nu), 0.0)
    return float(2.0 * np.sum(nu - n + log_term))


def fit_polynomial(templates: FloatArray, counts: FloatArray) -> BackgroundFit:
    """Poisson fit of counts = templates @ c, c >= 0 (``templates`` is (bins, order + 1))."""
    templates = np.asarray(templates, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    start, _ = nnls(templates, n)
    start = np.maximum(start, 1e-3 * max(float(n.sum()), 1.0) / templates.sum())

    def fun(c: FloatArray) -> tuple[float, FloatArray]:
        nu = np.maximum(templates @ c, 1e-10)
        return float(np.sum(nu - n * np.log(nu))), templates.T @ (1.0 - n / nu)

    res = minimize(
        fun,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * templates.shape[1],
        options={"ftol": 1e-13, "gtol": 1e-9, "maxiter": 1000},
    )
    nu = templates @ res.x
    dev = _deviance(nu, n)
    ndf = max(len(n) - templates.shape[1], 1)
    return BackgroundFit(
        order=templates.shape[1] - 1,
        coefficients=tuple(float(v) for v in res.x),
        nll=_poisson_nll(nu, n),
        deviance=dev,
        ndf=ndf,
        p_value=float(chi2.sf(dev, ndf)),
    )


def choose_order(
    basis: dict[int, FloatArray], counts: FloatArray, p_threshold: float = 0.05
) -> tuple[int, dict[int, BackgroundFit]]:
    """The lowest order k (of the keys of ``basis``, each a (bins, k + 1) template array) whose
    next order does not improve the fit at the ``p_threshold`` level (module docstring), and
    the fits made on the way."""
    orders = sorted(basis)
    fits = {k: fit_polynomial(basis[k], counts) for k in orders[:3]}
    chosen = orders[0]
    while True:
        # one or two orders up: a symmetric shape (a parabola) gains nothing from the odd order
        # alone, so a test of the next order only would stop below it
        ahead = [k for k in orders if chosen < k <= chosen + 2]
        better = None
        for k in ahead:
            if k not in fits:
                fits[k] = fit_polynomial(basis[k], counts)
            gain = 2.0 * (fits[chosen].nll - fits[k].nll)
            if gain > float(chi2.isf(p_threshold, k - chosen)):
                better = k
                break
        if better is None:
            break
        chosen = better
    return chosen, fits


def sideband_fit(
    templates: FloatArray, counts: FloatArray, sideband: npt.ArrayLike
) -> BackgroundFit:
    """:func:`fit_polynomial` on the bins where ``sideband`` (bool) is true."""
    sel = np.asarray(sideband, dtype=bool)
    if sel.sum() <= templates.shape[1]:
        raise ValueError(
            f"{int(sel.sum())} sideband bins cannot fix a polynomial of order {templates.shape[1] - 1}"
        )
    return fit_polynomial(np.asarray(templates)[sel], np.asarray(counts)[sel])


@dataclass(frozen=True)
class SpuriousSignal:
    """Signal fitted to the background-only MC (events), its fit error, and the ratio to the
    statistical error of the signal fitted to the data."""

    signal: float
    error: float
    ratio_to_data_error: float


def spurious_signal(
    model: CompiledModel, background_mc: FloatArray, data_signal_error: float
) -> SpuriousSignal:
    """S_spur of ``model`` (a compiled mass workspace) on the MC background counts of its window
    (module docstring); ``data_signal_error`` is the error, in events, of the signal fitted to
    the data."""
    mc = np.asarray(background_mc, dtype=np.float64)
    poi = model.poi_index
    aux = model.aux_nominal
    bkg = fit(model, mc, aux, fixed={poi: 0.0})
    best = fit(model, mc, aux, init=bkg.pars, bounds=negative_poi_bounds(model, bkg.pars))
    err = float(parameter_errors(model, best.pars, mc, aux)[poi])
    unit = bkg.pars.copy()
    unit[poi] = 1.0
    per_mu = float(np.sum(expected_main(model, unit) - expected_main(model, bkg.pars)))
    signal = float(best.pars[poi]) * per_mu
    ratio = abs(signal) / data_signal_error if data_signal_error > 0 else float("nan")
    return SpuriousSignal(signal=signal, error=err * per_mu, ratio_to_data_error=ratio)
