"""A compiled, pyhf-equivalent binned likelihood with an analytic gradient, and its fits.

:func:`compile_workspace` turns a pyhf JSON workspace (the files written to
``workspaces/m<MeV>.json``) into flat numpy arrays, and :func:`nll` evaluates

    -ln L = sum_b [nu_b - n_b ln nu_b] + 1/2 sum_j (alpha_j - a_j)^2   (+ constants),

the same probability model that ``pyhf.Workspace.model().logpdf`` evaluates for the modifiers used
here (Cranmer et al., CERN-OPEN-2012-016; pyhf: Heinrich, Feickert, Stark, JOSS 6 (2021) 2823):

* ``normfactor``: a free multiplicative factor (at most one per sample);
* ``normsys``: pyhf's default ``code4`` interpolation: a factor hi^alpha (alpha >= 1),
  lo^-alpha (alpha <= -1), and in between the sixth-order polynomial that matches both
  exponentials with their first two derivatives at |alpha| = 1 (Antcheva et al., RooFit/HistFactory
  ``FlexibleInterpVar`` code 4);
* ``histosys``: pyhf's default ``code4p``: an additive shift alpha (hi - nom) (alpha > 1),
  alpha (nom - lo) (alpha < -1), and alpha S + A alpha^2 (15 - 10 alpha^2 + 3 alpha^4) in between,
  S = (d_up + d_dn)/2, A = (d_up - d_dn)/16; applied before the factors;
* normsys and histosys parameters have unit Gaussian constraints with auxiliary data a_j.

The constants dropped (ln n_b!, ln sqrt(2 pi)) cancel in every likelihood ratio; :func:`logpdf`
keeps them and equals pyhf's ``model.logpdf`` to rounding. Fits use L-BFGS-B with the analytic
gradient; the model is small (tens of bins, about ten parameters), so one fit takes milliseconds,
which is what makes a scan of a few hundred masses fit into a minute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import gammaln

__all__ = [
    "CompiledModel",
    "FitResult",
    "compile_workspace",
    "expected_main",
    "fit",
    "logpdf",
    "nll",
    "nll_and_grad",
    "parameter_errors",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: expected counts are floored here inside the likelihood so that a fit never takes the log of a
#: non-positive number (only reachable far outside the physical region)
_NU_FLOOR = 1e-10
_DEFAULT_NORMFACTOR_BOUNDS = (0.0, 10.0)
_DEFAULT_ALPHA_BOUNDS = (-5.0, 5.0)


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A single- or multi-channel model as flat arrays (bins of all channels concatenated).

    ``nominal`` is (samples, bins); modifier tables give, per modifier, the sample it acts on and
    the index of its parameter. ``observed`` holds the main-measurement counts of the workspace.
    """

    par_names: tuple[str, ...]
    poi_index: int
    nominal: FloatArray
    observed: FloatArray
    constrained: npt.NDArray[np.bool_]
    bounds: FloatArray
    inits: FloatArray
    nf_sample: IntArray
    nf_param: IntArray
    ns_sample: IntArray
    ns_param: IntArray
    ns_log_hi: FloatArray
    ns_log_lo: FloatArray
    ns_poly: FloatArray
    hs_sample: IntArray
    hs_param: IntArray
    hs_delta_hi: FloatArray
    hs_delta_lo: FloatArray
    sample_names: tuple[str, ...]

    @property
    def n_pars(self) -> int:
        return len(self.par_names)

    @property
    def aux_nominal(self) -> FloatArray:
        """Auxiliary data of the workspace: zero for every constrained parameter."""
        return np.zeros(int(self.constrained.sum()))

    def index(self, name: str) -> int:
        return self.par_names.index(name)


@dataclass(frozen=True)
class FitResult:
    """Result of one maximum-likelihood fit: parameters, -ln L (without constants), status."""

    pars: FloatArray
    nll: float
    success: bool
    n_evaluations: int


def compile_workspace(spec: Mapping[str, Any], measurement: str | None = None) -> CompiledModel:
    """Compile a pyhf JSON workspace (dict) into a :class:`CompiledModel`.

    Only normfactor, normsys and histosys modifiers are supported (what :mod:`limits.workspace`
    writes); anything else raises ``NotImplementedError`` rather than be silently mis-modelled.
    """
    measurements = spec["measurements"]
    meas = (
        measurements[0]
        if measurement is None
        else next(m for m in measurements if m["name"] == measurement)
    )
    poi = meas["config"]["poi"]
    par_cfg = {p["name"]: p for p in meas["config"].get("parameters", [])}
    observations = {
        o["name"]: np.asarray(o["data"], dtype=np.float64) for o in spec["observations"]
    }

    channels = sorted(spec["channels"], key=lambda c: c["name"])  # pyhf orders channels by name
    offsets, n_bins = {}, 0
    for ch in channels:
        offsets[ch["name"]] = n_bins
        n_bins += len(ch["samples"][0]["data"])

    sample_names: list[str] = []
    sample_rows: list[FloatArray] = []
    par_names: list[str] = []
    par_kind: dict[str, str] = {}
    nf, ns, hs = [], [], []
    for ch in channels:
        lo = offsets[ch["name"]]
        width = len(ch["samples"][0]["data"])
        for sample in ch["samples"]:
            row = np.zeros(n_bins)
            nom = np.asarray(sample["data"], dtype=np.float64)
            row[lo : lo + width] = nom
            s_idx = len(sample_rows)
            sample_rows.append(row)
            sample_names.append(f"{ch['name']}/{sample['name']}")
            n_nf = 0
            for mod in sample["modifiers"]:
                name, kind = mod["name"], mod["type"]
                if kind not in ("normfactor", "normsys", "histosys"):
                    raise NotImplementedError(f"modifier type {kind!r} ({name}) is not supported")
                if par_kind.setdefault(name, kind) != kind:
                    raise ValueError(f"parameter {name!r} used by two modifier types")
                if name not in par_names:
                    par_names.append(name)
                p_idx = par_names.index(name)
                if kind == "normfactor":
                    n_nf += 1
                    if n_nf > 1:
                        raise NotImplementedError("at most one normfactor per sample is supported")
                    nf.append((s_idx, p_idx))
                elif kind == "normsys":
                    ns.append((s_idx, p_idx, np.log(mod["data"]["hi"]), np.log(mod["data"]["lo"])))
                else:
                    d_hi = np.zeros(n_bins)
                    d_lo = np.zeros(n_bins)
                    d_hi[lo : lo + width] = np.asarray(mod["data"]["hi_data"]) - nom
                    d_lo[lo : lo + width] = nom - np.asarray(mod["data"]["lo_data"])
                    hs.append((s_idx, p_idx, d_hi, d_lo))

    n_pars = len(par_names)
    constrained = np.array([par_kind[n] != "normfactor" for n in par_names])
    bounds = np.empty((n_pars, 2))
    inits = np.empty(n_pars)
    for i, name in enumerate(par_names):
        default = _DEFAULT_ALPHA_BOUNDS if constrained[i] else _DEFAULT_NORMFACTOR_BOUNDS
        cfg = par_cfg.get(name, {})
        bounds[i] = cfg.get("bounds", [default])[0]
        inits[i] = cfg.get("inits", [0.0 if constrained[i] else 1.0])[0]
        if cfg.get("fixed", False):
            bounds[i] = (inits[i], inits[i])
    observed = np.zeros(n_bins)
    for ch in channels:
        obs = observations[ch["name"]]
        observed[offsets[ch["name"]] : offsets[ch["name"]] + len(obs)] = obs

    def _ints(items: Sequence[tuple[Any, ...]], k: int) -> IntArray:
        return np.array([it[k] for it in items], dtype=np.int64)

    return CompiledModel(
        par_names=tuple(par_names),
        poi_index=par_names.index(poi),
        nominal=np.array(sample_rows),
        observed=observed,
        constrained=constrained,
        bounds=bounds,
        inits=inits,
        nf_sample=_ints(nf, 0),
        nf_param=_ints(nf, 1),
        ns_sample=_ints(ns, 0),
        ns_param=_ints(ns, 1),
        ns_log_hi=np.array([it[2] for it in ns], dtype=np.float64),
        ns_log_lo=np.array([it[3] for it in ns], dtype=np.float64),
        ns_poly=_code4_coefficients(
            np.array([it[2] for it in ns], dtype=np.float64),
            np.array([it[3] for it in ns], dtype=np.float64),
        ),
        hs_sample=_ints(hs, 0),
        hs_param=_ints(hs, 1),
        hs_delta_hi=np.array([it[2] for it in hs], dtype=np.float64).reshape(len(hs), n_bins),
        hs_delta_lo=np.array([it[3] for it in hs], dtype=np.float64).reshape(len(hs), n_bins),
        sample_names=tuple(sample_names),
    )


# inverse of the 6x6 matching matrix of pyhf's code4 for alpha0 = 1 (pyhf.interpolators.code4)
_CODE4_AINV = np.array(
    [
        [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
        [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
        [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
        [-3 / 2, -3 / 2, 7 / 8, -7 / 8, -1 / 8, -1 / 8],
        [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
        [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16],
    ]
)


def _code4_coefficients(log_hi: FloatArray, log_lo: FloatArray) -> FloatArray:
    """(K, 6) polynomial coefficients a_1..a_6 of code4 for each normsys (alpha0 = 1)."""
    hi, lo = np.exp(log_hi), np.exp(log_lo)
    b = np.stack([hi - 1, lo - 1, log_hi * hi, -log_lo * lo, log_hi**2 * hi, log_lo**2 * lo])
    return np.asarray((_CODE4_AINV @ b).T).reshape(len(log_hi), 6)


def _code4(model: CompiledModel, a: FloatArray) -> tuple[FloatArray, FloatArray]:
    """normsys factors and their derivatives d factor / d alpha."""
    powers = a[:, None] ** np.arange(7)  # alpha^0 .. alpha^6
    poly = 1.0 + np.sum(model.ns_poly * powers[:, 1:], axis=1)
    dpoly = np.sum(model.ns_poly * np.arange(1, 7) * powers[:, :6], axis=1)
    up = np.exp(a * model.ns_log_hi)
    dn = np.exp(-a * model.ns_log_lo)
    value = np.where(a >= 1.0, up, np.where(a > -1.0, poly, dn))
    deriv = np.where(
        a >= 1.0, model.ns_log_hi * up, np.where(a > -1.0, dpoly, -model.ns_log_lo * dn)
    )
    return value, deriv


def _code4p(model: CompiledModel, a: FloatArray) -> tuple[FloatArray, FloatArray]:
    """histosys shifts (H, B) and their derivatives with respect to alpha."""
    up, dn = model.hs_delta_hi, model.hs_delta_lo
    s = 0.5 * (up + dn)
    asym = 0.0625 * (up - dn)
    a2 = a * a
    poly = a2 * (15.0 + a2 * (-10.0 + 3.0 * a2))
    dpoly = a * (30.0 + a2 * (-40.0 + 18.0 * a2))
    ac = a[:, None]
    inner = ac * s + poly[:, None] * asym
    d_inner = s + dpoly[:, None] * asym
    value = np.where(ac > 1.0, ac * up, np.where(ac < -1.0, ac * dn, inner))
    deriv = np.where(ac > 1.0, up, np.where(ac < -1.0, dn, d_inner))
    return value, deriv


def _per_sample(
    model: CompiledModel, pars: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """base (S,B), normfactor product (S,), normsys product (S,), normsys dF/dalpha / F (K,),
    histosys slopes (H,B)."""
    base = model.nominal.copy()
    a_hs = pars[model.hs_param]
    slopes = np.zeros((0, base.shape[1]))
    if len(a_hs):
        shift, slopes = _code4p(model, a_hs)
        np.add.at(base, model.hs_sample, shift)
    nf = np.ones(len(base))
    nf[model.nf_sample] = pars[model.nf_param]
    ns_fac = np.ones(len(base))
    dlog = np.zeros(0)
    if len(model.ns_param):
        value, deriv = _code4(model, pars[model.ns_param])
        np.multiply.at(ns_fac, model.ns_sample, value)
        dlog = deriv / value
    return base, nf, ns_fac, dlog, slopes


def expected_main(model: CompiledModel, pars: FloatArray) -> FloatArray:
    """Expected counts per bin, summed over samples."""
    base, nf, ns_fac, _, _ = _per_sample(model, np.asarray(pars, dtype=np.float64))
    return np.asarray((base * (nf * ns_fac)[:, None]).sum(axis=0))


@nb.njit(cache=True)
def _nll_grad_kernel(
    pars,
    data,
    aux,
    nominal,
    constrained,
    nf_sample,
    nf_param,
    ns_sample,
    ns_param,
    ns_log_hi,
    ns_log_lo,
    ns_poly,
    hs_sample,
    hs_param,
    hs_delta_hi,
    hs_delta_lo,
):
    n_s, n_b = nominal.shape
    base = nominal.copy()
    hs_slope = np.empty(hs_delta_hi.shape)
    for k in range(len(hs_param)):
        a = pars[hs_param[k]]
        s = hs_sample[k]
        a2 = a * a
        poly = a2 * (15.0 + a2 * (-10.0 + 3.0 * a2))
        dpoly = a * (30.0 + a2 * (-40.0 + 18.0 * a2))
        for b in range(n_b):
            up = hs_delta_hi[k, b]
            dn = hs_delta_lo[k, b]
            if a > 1.0:
                shift, slope = a * up, up
            elif a < -1.0:
                shift, slope = a * dn, dn
            else:
                sym = 0.5 * (up + dn)
                asym = 0.0625 * (up - dn)
                shift = a * sym + poly * asym
                slope = sym + dpoly * asym
            base[s, b] += shift
            hs_slope[k, b] = slope
    nf = np.ones(n_s)
    for k in range(len(nf_param)):
        nf[nf_sample[k]] *= pars[nf_param[k]]
    ns_fac = np.ones(n_s)
    ns_dlog = np.empty(len(ns_param))
    for k in range(len(ns_param)):
        a = pars[ns_param[k]]
        if a >= 1.0:
            v = np.exp(a * ns_log_hi[k])
            d = ns_log_hi[k] * v
        elif a > -1.0:
            v = 1.0
            d = 0.0
            ap = 1.0
            for i in range(6):
                d += (i + 1) * ns_poly[k, i] * ap
                ap *= a
                v += ns_poly[k, i] * ap
        else:
            v = np.exp(-a * ns_log_lo[k])
            d = -ns_log_lo[k] * v
        ns_fac[ns_sample[k]] *= v
        ns_dlog[k] = d / v
    fac = nf * ns_fac
    value = 0.0
    r = np.zeros(n_b)
    for b in range(n_b):
        nu = 0.0
        for s in range(n_s):
            nu += base[s, b] * fac[s]
        if nu > _NU_FLOOR:
            value += nu - (data[b] * np.log(nu) if data[b] > 0 else 0.0)
            r[b] = 1.0 - data[b] / nu
        else:
            value += _NU_FLOOR - data[b] * np.log(_NU_FLOOR)
    base_r = np.zeros(n_s)
    for s in range(n_s):
        acc = 0.0
        for b in range(n_b):
            acc += base[s, b] * r[b]
        base_r[s] = acc
    grad = np.zeros(len(pars))
    for k in range(len(nf_param)):
        s = nf_sample[k]
        grad[nf_param[k]] += ns_fac[s] * base_r[s]
    for k in range(len(ns_param)):
        s = ns_sample[k]
        grad[ns_param[k]] += ns_dlog[k] * fac[s] * base_r[s]
    for k in range(len(hs_param)):
        s = hs_sample[k]
        acc = 0.0
        for b in range(n_b):
            acc += hs_slope[k, b] * r[b]
        grad[hs_param[k]] += fac[s] * acc
    j = 0
    for i in range(len(pars)):
        if constrained[i]:
            d = pars[i] - aux[j]
            value += 0.5 * d * d
            grad[i] += d
            j += 1
    return value, grad


def nll_and_grad(
    pars: FloatArray, model: CompiledModel, data: FloatArray, aux: FloatArray
) -> tuple[float, FloatArray]:
    """-ln L without constants, and its gradient with respect to all parameters (numba)."""
    m = model
    value, grad = _nll_grad_kernel(
        pars,
        data,
        aux,
        m.nominal,
        m.constrained,
        m.nf_sample,
        m.nf_param,
        m.ns_sample,
        m.ns_param,
        m.ns_log_hi,
        m.ns_log_lo,
        m.ns_poly,
        m.hs_sample,
        m.hs_param,
        m.hs_delta_hi,
        m.hs_delta_lo,
    )
    return float(value), grad


def nll(pars: FloatArray, model: CompiledModel, data: FloatArray, aux: FloatArray) -> float:
    """-ln L without constants (see the module docstring)."""
    return nll_and_grad(np.asarray(pars, dtype=np.float64), model, data, aux)[0]


def logpdf(pars: FloatArray, model: CompiledModel, data: FloatArray, aux: FloatArray) -> float:
    """ln L with all constants, as ``pyhf`` ``model.logpdf(pars, data + aux)`` computes it."""
    nu = expected_main(model, pars)
    main = float(np.sum(data * np.log(nu) - nu - gammaln(data + 1.0)))
    alphas = np.asarray(pars)[model.constrained]
    constraint = float(np.sum(-0.5 * (aux - alphas) ** 2 - 0.5 * np.log(2 * np.pi)))
    return main + constraint


def fit(
    model: CompiledModel,
    data: FloatArray,
    aux: FloatArray,
    *,
    fixed: Mapping[int, float] | None = None,
    init: FloatArray | None = None,
    bounds: FloatArray | None = None,
) -> FitResult:
    """Minimise -ln L over the free parameters (L-BFGS-B, analytic gradient).

    ``fixed`` maps parameter indices to the values they are held at (e.g. ``{poi: mu}`` for a
    conditional fit); ``init`` are starting values (default: the workspace inits); ``bounds``
    replaces the workspace bounds (shape (P, 2)).
    """
    fixed = dict(fixed or {})
    start = np.array(model.inits if init is None else init, dtype=np.float64)
    lims = model.bounds if bounds is None else np.asarray(bounds, dtype=np.float64)
    for i, v in fixed.items():
        start[i] = v
    free = np.array([i for i in range(model.n_pars) if i not in fixed], dtype=np.int64)
    start[free] = np.clip(start[free], lims[free, 0], lims[free, 1])
    data = np.asarray(data, dtype=np.float64)
    aux = np.asarray(aux, dtype=np.float64)
    full = start.copy()

    def fun(x: FloatArray) -> tuple[float, FloatArray]:
        full[free] = x
        value, grad = nll_and_grad(full, model, data, aux)
        return value, grad[free]

    if len(free) == 0:
        return FitResult(start, nll(start, model, data, aux), True, 1)
    res = minimize(
        fun,
        start[free],
        jac=True,
        method="L-BFGS-B",
        bounds=lims[free],
        options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000, "maxcor": 20},
    )
    pars = start.copy()
    pars[free] = res.x
    value = nll(pars, model, data, aux)
    return FitResult(pars, value, bool(res.success), int(res.nfev))


def parameter_errors(
    model: CompiledModel, pars: FloatArray, data: FloatArray, aux: FloatArray
) -> FloatArray:
    """Standard errors from the inverse Hessian of -ln L at ``pars`` (central differences of the
    analytic gradient; parameters at a bound are treated as free)."""
    pars = np.asarray(pars, dtype=np.float64)
    n = len(pars)
    hess = np.empty((n, n))
    for i in range(n):
        h = 1e-5 * max(1.0, abs(pars[i]))
        up, dn = pars.copy(), pars.copy()
        up[i] += h
        dn[i] -= h
        hess[i] = (
            nll_and_grad(up, model, data, aux)[1] - nll_and_grad(dn, model, data, aux)[1]
        ) / (2 * h)
    hess = 0.5 * (hess + hess.T)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(hess)
    return np.sqrt(np.clip(np.diag(cov), 0.0, None))
