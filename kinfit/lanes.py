"""Compiled 4C kinematic fit over lanes of events: one step of ``LANES`` fits at a time.

The algorithm, its equations (P. Avery, CLEO CBX 98-37; see :mod:`kinfit.kernel`), its
convergence tests, status codes and flagged-event conventions are those of
:func:`kinfit.kernel.fit_events`, and so is the arithmetic, operation for operation. What differs
is the layout. The scalar kernel fits one event at a time; here a block of ``LANES`` events is
fitted side by side in a structure-of-arrays scratch block (quantity ``q`` of lane ``j`` at
``s[q * LANES + j]``), so that each stage of a linearisation step is one loop over the lanes with
straight-line code inside: the compiler evaluates it with vector instructions, one event per SIMD
lane.

- Branches become selects: a lane that has converged (or failed) is frozen, and a block steps
  until none of its lanes is iterating (three or four steps for nearly every event).
- Each call of a lane function runs ``SUPER`` blocks one after the other (64 events; blocks
  whose lanes have all stopped are skipped), so that what a call costs (numba counts the
  references of its array argument) is paid once per 64 events, while a block still waits only
  on its own 8 lanes.
- sin and cos come from :func:`kinfit.numerics.sincos_reduced` (no libm call in a vector loop);
  the rare angle outside its range (|x| >= 1e5 or non-finite) is recomputed by libm before it
  is used, as :func:`kinfit.numerics.sincos` does.
- The per-event work that branches (input checks, the χ² survival function, flagged outputs)
  stays scalar, once per event, outside the lane loops.
- Every helper of a lane loop is inlined by numba (``jit_inline``): numba runs a compiled
  callee's own copy in a process that compiled it, and that copy's loop is vectorised only if
  nothing in it is a call.

Without FMA contraction the two kernels give the same bits; with it (``kinfit.numerics.jit``)
the compiler fuses some multiply-adds differently in vector code, so fitted values agree to
rounding (``tests/test_kinfit_lanes.py``). A lane's result does not depend on its neighbours or
its position. Only the standard fit (no free energy) runs here;
:func:`kinfit.fit_three_photons_free_energy` uses the scalar kernel.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from . import kernel
from .kernel import (
    _PIVOT_EPS,
    STATUS_BAD_INPUT,
    STATUS_NOT_CONVERGED,
    STATUS_OK,
    STATUS_SINGULAR,
    STATUS_UNPHYSICAL,
    _flag,
    _load_covariance,
    empty_outputs,
)
from .numerics import SINCOS_MAX, chi2_sf, jit, jit_inline, sincos
from .numerics import sincos_reduced as _sincos_reduced

# the scalar kernel's small solves and the polynomial sin/cos, inlined by numba into the lane
# loops (the same Python functions, so the same arithmetic): a loop that calls a compiled
# function is vectorised only if the call happens to be inlined again at link time
_forward = jit_inline(kernel._forward.py_func)
_backward = jit_inline(kernel._backward.py_func)
_wdot = jit_inline(kernel._wdot.py_func)
sincos_reduced = jit_inline(_sincos_reduced.py_func)

__all__ = ["LANES", "fit_events_lanes"]

FloatArray = npt.NDArray[np.float64]

#: events fitted side by side (a multiple of the widest SIMD register's doubles, 8 for AVX-512)
LANES = 8

# Rows of a scratch block: row q of lane j of block b is s[b * _BLOCK + q * LANES + j], and the
# lane functions take ln = b * _BLOCK + j as the lane's index. Per photon k = 0, 1, 2:
# (E, θ, φ) at 3k, (sinθ, cosθ, sinφ, cosφ) at 4k, covariance (V00, V01, V02, V11, V12, V22)
# at 6k from the row's start.
_A0 = 0  # measured (E, θ, φ)
_A = 9  # current linearisation point
_T = 18  # sines and cosines at _A
_H = 30  # constraint values H = Σ p − P_beam at _A (GeV)
_V = 34  # measured covariance
_BEAM = 52  # beam (E, px, py, pz)
_CHI2 = 56  # χ² of the last accepted step (0 before the first)
_IT = 57  # accepted steps
_ACTIVE = 58  # 1.0 while the lane iterates
_GOOD = 59  # 0.0 after a numerical failure (status SINGULAR)
_CONV = 60  # 1.0 once converged
_AN = 61  # the step's new point
_TN = 70  # sines and cosines at _AN
_CHI2N = 82  # the step's χ²
_FOK = 83  # 1.0 if the step's factorisation succeeded
_COV = 84  # fitted covariance
_PULL = 102  # pulls (E, θ, φ) per photon
_CODE = 111  # status code (−1 until decided)
_NACT = 112  # lane 0: number of the block's lanes still iterating
_ROWS = 113
#: doubles per block of LANES events in the scratch; blocks follow each other
_BLOCK = _ROWS * LANES
#: blocks handled by one call of a lane function (their loops run block after block)
SUPER = 8

Sums = tuple[float, float, float, float, float, float, float, float, float, float]
Jac = tuple[float, float, float, float, float, float, float, float]
Cov6 = tuple[float, float, float, float, float, float]
Rows9 = tuple[float, float, float, float, float, float, float, float, float]


@jit_inline
def _three(s: FloatArray, row: int, ln: int) -> tuple[float, float, float]:
    """Rows row, row + 1, row + 2 of lane ln."""
    b = row * LANES + ln
    return s[b], s[b + LANES], s[b + 2 * LANES]


@jit_inline
def _put3(s: FloatArray, row: int, ln: int, x: tuple[float, float, float]) -> None:
    b = row * LANES + ln
    s[b] = x[0]
    s[b + LANES] = x[1]
    s[b + 2 * LANES] = x[2]


@jit_inline
def _four(s: FloatArray, row: int, ln: int) -> tuple[float, float, float, float]:
    b = row * LANES + ln
    return s[b], s[b + LANES], s[b + 2 * LANES], s[b + 3 * LANES]


@jit_inline
def _put4(s: FloatArray, row: int, ln: int, x: tuple[float, float, float, float]) -> None:
    b = row * LANES + ln
    s[b] = x[0]
    s[b + LANES] = x[1]
    s[b + 2 * LANES] = x[2]
    s[b + 3 * LANES] = x[3]


@jit_inline
def _six(s: FloatArray, row: int, ln: int) -> Cov6:
    b = row * LANES + ln
    return (s[b], s[b + LANES], s[b + 2 * LANES], s[b + 3 * LANES], s[b + 4 * LANES],
            s[b + 5 * LANES])  # fmt: skip


@jit_inline
def _jacobian(e: float, t: tuple[float, float, float, float]) -> Jac:
    """One photon's columns of D = ∂H/∂(E, θ, φ), rows 1-3 (row 0 is (1, 0, 0); D[3, φ] = 0):
    (D1E, D1θ, D1φ, D2E, D2θ, D2φ, D3E, D3θ), the expressions of the scalar kernel."""
    st, ct, sp, cp = t
    ux = st * cp
    uy = st * sp
    return ux, e * ct * cp, -e * uy, uy, e * ct * sp, e * ux, ct, -e * st


@jit_inline
def _add_momentum(
    h: tuple[float, float, float, float], e: float, t: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """h + (E, E sinθ cosφ, E sinθ sinφ, E cosθ) of one photon."""
    st, ct, sp, cp = t
    ux = st * cp
    uy = st * sp
    return h[0] + e, h[1] + e * ux, h[2] + e * uy, h[3] + e * ct


@jit_inline
def _constraints(
    s: FloatArray, a_row: int, t_row: int, ln: int
) -> tuple[float, float, float, float]:
    """H = Σ p_k − P_beam (GeV) of lane ln at the point in rows a_row (sines and cosines in
    t_row), summed photon by photon as the scalar kernel does."""
    beam = _four(s, _BEAM, ln)
    h = (-beam[0], -beam[1], -beam[2], -beam[3])
    # photon by photon, written out: an inner loop would keep the lane loop from vectorising
    h = _add_momentum(h, s[a_row * LANES + ln], _four(s, t_row, ln))
    h = _add_momentum(h, s[(a_row + 3) * LANES + ln], _four(s, t_row + 4, ln))
    return _add_momentum(h, s[(a_row + 6) * LANES + ln], _four(s, t_row + 8, ln))


@jit_inline
def _photon_products(sums: Sums, v: Cov6, d: Jac) -> tuple[Sums, Rows9]:
    """One photon's rows of B = V₀ Dᵀ (columns 1-3; column 0 is V₀'s first column) and its terms
    of S = D V₀ Dᵀ added to ``sums`` = (S00, S10, S20, S30, S11, S21, S31, S22, S32, S33), in
    the order of the scalar kernel's ``_factorise``."""
    s00, s10, s20, s30, s11, s21, s31, s22, s32, s33 = sums
    v00, v01, v02, v11, v12, v22 = v
    d1a, d1b, d1c, d2a, d2b, d2c, d3a, d3b = d
    b1a = v00 * d1a + v01 * d1b + v02 * d1c
    b2a = v00 * d2a + v01 * d2b + v02 * d2c
    b3a = v00 * d3a + v01 * d3b
    s00 += v00
    s10 += b1a
    s20 += b2a
    s30 += b3a
    s11 += d1a * b1a
    s21 += d2a * b1a
    s22 += d2a * b2a
    s31 += d3a * b1a
    s32 += d3a * b2a
    s33 += d3a * b3a
    b1b = v01 * d1a + v11 * d1b + v12 * d1c
    b2b = v01 * d2a + v11 * d2b + v12 * d2c
    b3b = v01 * d3a + v11 * d3b
    s11 += d1b * b1b
    s21 += d2b * b1b
    s22 += d2b * b2b
    s31 += d3b * b1b
    s32 += d3b * b2b
    s33 += d3b * b3b
    b1c = v02 * d1a + v12 * d1b + v22 * d1c
    b2c = v02 * d2a + v12 * d2b + v22 * d2c
    b3c = v02 * d3a + v12 * d3b
    s11 += d1c * b1c
    s21 += d2c * b1c
    s22 += d2c * b2c
    s31 += 0.0 * b1c  # D[3, φ] = 0, kept as the scalar kernel adds it
    s32 += 0.0 * b2c
    s33 += 0.0 * b3c
    return (s00, s10, s20, s30, s11, s21, s31, s22, s32, s33), (
        b1a, b2a, b3a, b1b, b2b, b3b, b1c, b2c, b3c
    )  # fmt: skip


@jit_inline
def _ldl(sums: Sums) -> tuple[bool, tuple]:
    """The scalar kernel's LDLᵀ factorisation of S without early exits: every pivot computed,
    ok when each passes (a failed lane's factor is garbage and never used)."""
    s00, s10, s20, s30, s11, s21, s31, s22, s32, s33 = sums
    inv0 = 1.0 / s00
    l10 = s10 * inv0
    l20 = s20 * inv0
    l30 = s30 * inv0
    p1 = s11 - l10 * s10
    inv1 = 1.0 / p1
    t21 = s21 - l20 * s10
    t31 = s31 - l30 * s10
    l21 = t21 * inv1
    l31 = t31 * inv1
    p2 = s22 - l20 * s20 - l21 * t21
    inv2 = 1.0 / p2
    t32 = s32 - l30 * s20 - l31 * t21
    l32 = t32 * inv2
    p3 = s33 - l30 * s30 - l31 * t31 - l32 * t32
    ok = (s00 > 0.0) & (p1 > _PIVOT_EPS * s11) & (p2 > _PIVOT_EPS * s22) & (p3 > _PIVOT_EPS * s33)
    return ok, (inv0, l10, l20, l30, inv1, l21, l31, inv2, l32, 1.0 / p3)


@jit_inline
def _linearise(s: FloatArray, ln: int) -> tuple:
    """At lane ln's current point: per photon its Jacobian columns and B rows, and the LDLᵀ
    factor of S = D V₀ Dᵀ with its success flag."""
    d0 = _jacobian(s[_A * LANES + ln], _four(s, _T, ln))
    d1 = _jacobian(s[(_A + 3) * LANES + ln], _four(s, _T + 4, ln))
    d2 = _jacobian(s[(_A + 6) * LANES + ln], _four(s, _T + 8, ln))
    sums = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    sums, b0 = _photon_products(sums, _six(s, _V, ln), d0)
    sums, b1 = _photon_products(sums, _six(s, _V + 6, ln), d1)
    sums, b2 = _photon_products(sums, _six(s, _V + 12, ln), d2)
    ok, L = _ldl(sums)
    return ok, L, (d0, d1, d2), (b0, b1, b2)


@jit_inline
def _residual(
    r: tuple[float, float, float, float],
    a0: tuple[float, float, float],
    a: tuple[float, float, float],
    d: Jac,
) -> tuple[float, float, float, float]:
    """r + D_k (α₀ − α_A)_k for one photon (D row 0 is (1, 0, 0))."""
    de = a0[0] - a[0]
    dt = a0[1] - a[1]
    dp = a0[2] - a[2]
    return (
        r[0] + de,
        r[1] + (d[0] * de + d[1] * dt + d[2] * dp),
        r[2] + (d[3] * de + d[4] * dt + d[5] * dp),
        r[3] + (d[6] * de + d[7] * dt),
    )


@jit_inline
def _moved(
    a0: tuple[float, float, float], v: Cov6, b: Rows9, lam: tuple[float, float, float, float]
) -> tuple[float, float, float]:
    """One photon's α = α₀ − V₀ Dᵀ λ (B row r = (V₀[r, 0], b[3r], b[3r + 1], b[3r + 2]))."""
    lam0, lam1, lam2, lam3 = lam
    e = a0[0] - (v[0] * lam0 + b[0] * lam1 + b[1] * lam2 + b[2] * lam3)
    t = a0[1] - (v[1] * lam0 + b[3] * lam1 + b[4] * lam2 + b[5] * lam3)
    p = a0[2] - (v[2] * lam0 + b[6] * lam1 + b[7] * lam2 + b[8] * lam3)
    return e, t, p


@jit_inline
def _put_trig(s: FloatArray, t_row: int, ln: int, theta: float, phi: float) -> int:
    """Sines and cosines of one photon's angles into t_row; returns how many angles lie outside
    sincos_reduced's range (their rows are then recomputed by _fix_trig)."""
    st, ct = sincos_reduced(theta)
    sp, cp = sincos_reduced(phi)
    _put4(s, t_row, ln, (st, ct, sp, cp))
    return int(not abs(theta) < SINCOS_MAX) + int(not abs(phi) < SINCOS_MAX)


@jit
def _trig(s: FloatArray, nb: int, a_row: int, t_row: int) -> int:
    """Sines and cosines of every lane's angles in a_row into t_row (vector loop)."""
    big = 0
    for blk in range(nb):
        for j in range(LANES):
            ln = blk * _BLOCK + j
            big += _put_trig(s, t_row, ln, s[(a_row + 1) * LANES + ln], s[(a_row + 2) * LANES + ln])
            big += _put_trig(
                s, t_row + 4, ln, s[(a_row + 4) * LANES + ln], s[(a_row + 5) * LANES + ln]
            )
            big += _put_trig(
                s, t_row + 8, ln, s[(a_row + 7) * LANES + ln], s[(a_row + 8) * LANES + ln]
            )
    return big


@jit
def _fix_trig(s: FloatArray, nb: int, a_row: int, t_row: int) -> None:
    """Sines and cosines of the angles outside sincos_reduced's range, from libm (scalar)."""
    for lane in range(nb * LANES):
        ln = (lane // LANES) * _BLOCK + lane % LANES
        for k in range(3):
            b = (a_row + 3 * k) * LANES + ln
            theta = s[b + LANES]
            phi = s[b + 2 * LANES]
            if not (abs(theta) < SINCOS_MAX and abs(phi) < SINCOS_MAX):
                st, ct = sincos(theta)
                sp, cp = sincos(phi)
                _put4(s, t_row + 4 * k, ln, (st, ct, sp, cp))


@jit_inline
def _finite4(x: tuple[float, float, float, float]) -> bool:
    return math.isfinite(x[0]) & math.isfinite(x[1]) & math.isfinite(x[2]) & math.isfinite(x[3])


@jit
def _start(s: FloatArray, nb: int) -> int:
    """Sines, cosines and constraints at the measured point; a lane whose constraints are not
    finite stops as SINGULAR before its first step. Returns the number of iterating lanes."""
    if _trig(s, nb, _A, _T):
        _fix_trig(s, nb, _A, _T)
    total = 0
    for blk in range(nb):
        active = 0
        for j in range(LANES):
            ln = blk * _BLOCK + j
            h = _constraints(s, _A, _T, ln)
            _put4(s, _H, ln, h)
            fin = _finite4(h)
            act = (s[_ACTIVE * LANES + ln] > 0.5) & fin
            s[_ACTIVE * LANES + ln] = 1.0 if act else 0.0
            s[_GOOD * LANES + ln] = 1.0 if (s[_GOOD * LANES + ln] > 0.5) & fin else 0.0
            active += int(act)
        s[blk * _BLOCK + _NACT * LANES] = active
        total += active
    return total


@jit
def _step(s: FloatArray, nb: int) -> int:
    """One linearisation step of every lane (vector loop): the new point, its sines and cosines,
    its χ² and whether the factorisation succeeded, into the _AN, _TN, _CHI2N, _FOK rows.
    Returns the number of angles outside sincos_reduced's range. Blocks with no iterating lane
    are skipped."""
    big = 0
    for blk in range(nb):
        if s[blk * _BLOCK + _NACT * LANES] > 0.5:
            for j in range(LANES):
                ln = blk * _BLOCK + j
                ok, L, d, b = _linearise(s, ln)
                r = _four(s, _H, ln)
                a0 = (_three(s, _A0, ln), _three(s, _A0 + 3, ln), _three(s, _A0 + 6, ln))
                r = _residual(r, a0[0], _three(s, _A, ln), d[0])
                r = _residual(r, a0[1], _three(s, _A + 3, ln), d[1])
                r = _residual(r, a0[2], _three(s, _A + 6, ln), d[2])
                u = _forward(L, r[0], r[1], r[2], r[3])
                s[_CHI2N * LANES + ln] = _wdot(L, u, u)  # = rᵀ S⁻¹ r = λᵀ r
                lam = _backward(L, u)
                m0 = _moved(a0[0], _six(s, _V, ln), b[0], lam)
                m1 = _moved(a0[1], _six(s, _V + 6, ln), b[1], lam)
                m2 = _moved(a0[2], _six(s, _V + 12, ln), b[2], lam)
                _put3(s, _AN, ln, m0)
                _put3(s, _AN + 3, ln, m1)
                _put3(s, _AN + 6, ln, m2)
                big += _put_trig(s, _TN, ln, m0[1], m0[2])
                big += _put_trig(s, _TN + 4, ln, m1[1], m1[2])
                big += _put_trig(s, _TN + 8, ln, m2[1], m2[2])
                s[_FOK * LANES + ln] = 1.0 if ok else 0.0
    return big


@jit_inline
def _pick3(c: bool, x: tuple[float, float, float], y: tuple[float, float, float]
           ) -> tuple[float, float, float]:  # fmt: skip
    """x if c else y, element by element."""
    return (x[0] if c else y[0]), (x[1] if c else y[1]), (x[2] if c else y[2])


@jit_inline
def _pick4(c: bool, x: tuple[float, float, float, float], y: tuple[float, float, float, float]
           ) -> tuple[float, float, float, float]:  # fmt: skip
    """x if c else y, element by element."""
    return (
        (x[0] if c else y[0]),
        (x[1] if c else y[1]),
        (x[2] if c else y[2]),
        (x[3] if c else y[3]),
    )


@jit
def _commit(s: FloatArray, nb: int, chi2_tolerance: float, constraint_tolerance: float) -> int:
    """Accept the step of every iterating lane whose factorisation succeeded (vector loop), with
    the scalar kernel's tests: a failed factorisation or non-finite constraints stop the lane as
    SINGULAR, |Δχ²| < chi2_tolerance with every |H| < constraint_tolerance as converged. Returns
    the number of lanes still iterating. Blocks with no iterating lane are skipped."""
    total = 0
    for blk in range(nb):
        if s[blk * _BLOCK + _NACT * LANES] > 0.5:
            active = 0
            for j in range(LANES):
                ln = blk * _BLOCK + j
                act = s[_ACTIVE * LANES + ln] > 0.5
                fok = s[_FOK * LANES + ln] > 0.5
                h = _constraints(s, _AN, _TN, ln)
                fin = _finite4(h)
                worst = max(max(abs(h[0]), abs(h[1])), max(abs(h[2]), abs(h[3])))
                chi2_new = s[_CHI2N * LANES + ln]
                conv = (abs(chi2_new - s[_CHI2 * LANES + ln]) < chi2_tolerance) & (
                    worst < constraint_tolerance
                )
                step = act & fok
                failed = act & (not (fok & fin))
                still = step & fin & (not conv)
                # selects of loaded values, not branches or inner loops: straight-line code
                _put3(s, _A, ln, _pick3(step, _three(s, _AN, ln), _three(s, _A, ln)))
                _put3(s, _A + 3, ln, _pick3(step, _three(s, _AN + 3, ln), _three(s, _A + 3, ln)))
                _put3(s, _A + 6, ln, _pick3(step, _three(s, _AN + 6, ln), _three(s, _A + 6, ln)))
                _put4(s, _T, ln, _pick4(step, _four(s, _TN, ln), _four(s, _T, ln)))
                _put4(s, _T + 4, ln, _pick4(step, _four(s, _TN + 4, ln), _four(s, _T + 4, ln)))
                _put4(s, _T + 8, ln, _pick4(step, _four(s, _TN + 8, ln), _four(s, _T + 8, ln)))
                _put4(s, _H, ln, _pick4(step, h, _four(s, _H, ln)))
                s[_CHI2 * LANES + ln] = chi2_new if step else s[_CHI2 * LANES + ln]
                s[_IT * LANES + ln] += 1.0 if step else 0.0
                s[_GOOD * LANES + ln] = 0.0 if failed else s[_GOOD * LANES + ln]
                s[_CONV * LANES + ln] = 1.0 if step & fin & conv else s[_CONV * LANES + ln]
                s[_ACTIVE * LANES + ln] = 1.0 if still else 0.0
                active += int(still)
            s[blk * _BLOCK + _NACT * LANES] = active
            total += active
    return total


@jit_inline
def _photon_cov(
    L: tuple, v: Cov6, b: Rows9, a: tuple[float, float, float], a0: tuple[float, float, float]
) -> tuple[Cov6, tuple[float, float, float]]:
    """One photon's fitted covariance V₀ − V₀ Dᵀ S⁻¹ D V₀ (its 3x3 block, upper triangle) and
    pulls (fitted − measured) / sqrt(σ²₀ − σ²), from q_r = L⁻¹ (V₀ Dᵀ)_r as in the scalar
    kernel."""
    q0 = _forward(L, v[0], b[0], b[1], b[2])
    q1 = _forward(L, v[1], b[3], b[4], b[5])
    q2 = _forward(L, v[2], b[6], b[7], b[8])
    cov = (
        v[0] - _wdot(L, q0, q0),
        v[1] - _wdot(L, q1, q0),
        v[2] - _wdot(L, q2, q0),
        v[3] - _wdot(L, q1, q1),
        v[4] - _wdot(L, q2, q1),
        v[5] - _wdot(L, q2, q2),
    )
    # every lane takes the root (of |red|: the compiler then needs no libm call for a negative
    # argument, and the value is only used where red > 1e-300): no branch
    red0 = _wdot(L, q0, q0)
    red1 = _wdot(L, q1, q1)
    red2 = _wdot(L, q2, q2)
    pull0 = (a[0] - a0[0]) / math.sqrt(abs(red0))
    pull1 = (a[1] - a0[1]) / math.sqrt(abs(red1))
    pull2 = (a[2] - a0[2]) / math.sqrt(abs(red2))
    return cov, (
        pull0 if red0 > 1e-300 else 0.0,
        pull1 if red1 > 1e-300 else 0.0,
        pull2 if red2 > 1e-300 else 0.0,
    )


@jit_inline
def _finish_photon(s: FloatArray, ln: int, k: int, L: tuple, b: Rows9) -> bool:
    """Photon k's fitted covariance and pulls into the _COV and _PULL rows; whether its fitted
    E > 0 and θ inside [0, π]."""
    a = _three(s, _A + 3 * k, ln)
    cov, pulls = _photon_cov(L, _six(s, _V + 6 * k, ln), b, a, _three(s, _A0 + 3 * k, ln))
    c = (_COV + 6 * k) * LANES + ln
    s[c] = cov[0]
    s[c + LANES] = cov[1]
    s[c + 2 * LANES] = cov[2]
    s[c + 3 * LANES] = cov[3]
    s[c + 4 * LANES] = cov[4]
    s[c + 5 * LANES] = cov[5]
    _put3(s, _PULL + 3 * k, ln, pulls)
    return (a[0] > 0.0) & (a[1] >= 0.0) & (a[1] <= math.pi)


@jit
def _finish(s: FloatArray, nb: int) -> None:
    """Status code of every lane, and for converged ones the covariance and pulls linearised at
    the solution (vector loop)."""
    for blk in range(nb):
        for j in range(LANES):
            ln = blk * _BLOCK + j
            ok, L, _, b = _linearise(s, ln)
            physical = _finish_photon(s, ln, 0, L, b[0])
            physical = _finish_photon(s, ln, 1, L, b[1]) & physical
            physical = _finish_photon(s, ln, 2, L, b[2]) & physical
            code = float(STATUS_OK)
            if not ok:
                code = float(STATUS_SINGULAR)
            if not physical:
                code = float(STATUS_UNPHYSICAL)
            if not s[_CONV * LANES + ln] > 0.5:
                code = float(STATUS_NOT_CONVERGED)
            if not s[_GOOD * LANES + ln] > 0.5:
                code = float(STATUS_SINGULAR)
            if s[_CODE * LANES + ln] >= 0.0:
                code = s[_CODE * LANES + ln]  # bad input
            s[_CODE * LANES + ln] = code


@jit_inline
def _measured_ok(
    b: tuple[float, float, float, float],
    E: tuple[float, float, float],
    theta: tuple[float, float, float],
    phi: tuple[float, float, float],
) -> bool:
    """:func:`kinfit.kernel._kinematics_ok` of the standard fit on one event's values (scalars
    only: inlined helpers that take arrays would count references once per event)."""
    b0, b1, b2, b3 = b
    if not (math.isfinite(b0) and math.isfinite(b1) and math.isfinite(b2) and math.isfinite(b3)):
        return False
    if not (b0 > 0.0 and b0 * b0 > b1 * b1 + b2 * b2 + b3 * b3):
        return False
    for k in range(3):
        if not (0.0 <= theta[k] <= math.pi and math.isfinite(phi[k])):  # NaN fails
            return False
        if not (math.isfinite(E[k]) and E[k] > 0.0):
            return False
    return True


@jit_inline
def _variance_ok(v: float) -> bool:
    return math.isfinite(v) and v > 0.0


@jit_inline
def _load(
    s: FloatArray, nb: int, i0: int, n: int, E: FloatArray, theta: FloatArray, phi: FloatArray,
    cov_full: FloatArray, cov_diag: FloatArray, full: bool, beam: FloatArray, V: FloatArray,
) -> None:  # fmt: skip
    """Events i0 … i0 + nb·LANES − 1 into nb blocks of lanes (scalar): the input checks of the
    scalar kernel; a bad event (or a lane past n) gets zeros and status BAD_INPUT, and never
    steps. The arrays are indexed here directly (see _measured_ok)."""
    for lane in range(nb * LANES):
        ln = (lane // LANES) * _BLOCK + lane % LANES
        i = min(i0 + lane, n - 1)
        e = (E[i, 0], E[i, 1], E[i, 2])
        t = (theta[i, 0], theta[i, 1], theta[i, 2])
        p = (phi[i, 0], phi[i, 1], phi[i, 2])
        b = (beam[i, 0], beam[i, 1], beam[i, 2], beam[i, 3])
        ok = i0 + lane < n and _measured_ok(b, e, t, p)
        if ok:
            if full:
                # symmetrised, checked positive definite (the scalar kernel's function)
                ok = _load_covariance(cov_full, cov_diag, full, i, -1, V)
            else:
                for k in range(3):
                    for r in range(3):
                        ok = ok and _variance_ok(cov_diag[i, k, r])
        for k in range(3):
            j = (_A0 + 3 * k) * LANES + ln
            s[j] = e[k] if ok else 0.0
            s[j + LANES] = t[k] if ok else 0.0
            s[j + 2 * LANES] = p[k] if ok else 0.0
            j = (_A + 3 * k) * LANES + ln
            s[j] = e[k] if ok else 0.0
            s[j + LANES] = t[k] if ok else 0.0
            s[j + 2 * LANES] = p[k] if ok else 0.0
            j = (_V + 6 * k) * LANES + ln
            for q in range(6):
                s[j + q * LANES] = 0.0
            if ok and full:
                s[j] = V[k, 0, 0]
                s[j + LANES] = V[k, 0, 1]
                s[j + 2 * LANES] = V[k, 0, 2]
                s[j + 3 * LANES] = V[k, 1, 1]
                s[j + 4 * LANES] = V[k, 1, 2]
                s[j + 5 * LANES] = V[k, 2, 2]
            elif ok:
                s[j] = cov_diag[i, k, 0]
                s[j + 3 * LANES] = cov_diag[i, k, 1]
                s[j + 5 * LANES] = cov_diag[i, k, 2]
        for q in range(4):
            s[(_BEAM + q) * LANES + ln] = b[q] if ok else 0.0
        s[_CHI2 * LANES + ln] = 0.0
        s[_IT * LANES + ln] = 0.0
        s[_ACTIVE * LANES + ln] = 1.0 if ok else 0.0
        s[_GOOD * LANES + ln] = 1.0 if ok else 0.0
        s[_CONV * LANES + ln] = 0.0
        s[_CODE * LANES + ln] = -1.0 if ok else float(STATUS_BAD_INPUT)


@jit_inline
def _store(
    s: FloatArray, nb: int, i0: int, n: int, E: FloatArray, theta: FloatArray, phi: FloatArray,
    cov_full: FloatArray, cov_diag: FloatArray, full: bool, out: tuple,
) -> None:  # fmt: skip
    """The lanes' results into the output arrays (scalar; the χ² probability here)."""
    out_E, out_theta, out_phi, out_cov, chi2, pvalue, iterations, status, pulls = out
    for lane in range(min(nb * LANES, n - i0)):
        ln = (lane // LANES) * _BLOCK + lane % LANES
        i = i0 + lane
        iterations[i] = int(s[_IT * LANES + ln])
        code = int(s[_CODE * LANES + ln])
        if code != STATUS_OK:
            _flag(i, code, E, theta, phi, cov_full, cov_diag, full, out)
            continue
        for k in range(3):
            j = (_A + 3 * k) * LANES + ln
            out_E[i, k] = s[j]
            out_theta[i, k] = s[j + LANES]
            out_phi[i, k] = s[j + 2 * LANES]
            j = (_PULL + 3 * k) * LANES + ln
            pulls[i, k, 0] = s[j]
            pulls[i, k, 1] = s[j + LANES]
            pulls[i, k, 2] = s[j + 2 * LANES]
            j = (_COV + 6 * k) * LANES + ln
            out_cov[i, k, 0, 0] = s[j]
            out_cov[i, k, 0, 1] = out_cov[i, k, 1, 0] = s[j + LANES]
            out_cov[i, k, 0, 2] = out_cov[i, k, 2, 0] = s[j + 2 * LANES]
            out_cov[i, k, 1, 1] = s[j + 3 * LANES]
            out_cov[i, k, 1, 2] = out_cov[i, k, 2, 1] = s[j + 4 * LANES]
            out_cov[i, k, 2, 2] = s[j + 5 * LANES]
        c2 = s[_CHI2 * LANES + ln]
        chi2[i] = c2
        pvalue[i] = chi2_sf(c2, 4)
        status[i] = STATUS_OK


@jit
def fit_events_lanes(
    E: FloatArray,
    theta: FloatArray,
    phi: FloatArray,
    cov_full: FloatArray,
    cov_diag: FloatArray,
    full: bool,
    beam: FloatArray,
    max_iterations: int,
    chi2_tolerance: float,
    constraint_tolerance: float,
) -> tuple:
    """The standard 4C fit of every event, ``LANES`` at a time. Arguments and result as
    :func:`kinfit.kernel.fit_events` without ``free`` (no unmeasured energy)."""
    n = E.shape[0]
    out = empty_outputs(n)
    s = np.zeros(SUPER * _BLOCK)  # the scratch blocks, reused for every SUPER blocks of events
    V = np.zeros((3, 3, 3))
    for i0 in range(0, n, SUPER * LANES):
        nb = min(SUPER, (n - i0 + LANES - 1) // LANES)
        _load(s, nb, i0, n, E, theta, phi, cov_full, cov_diag, full, beam, V)
        active = _start(s, nb)
        for _ in range(max_iterations):
            if active == 0:
                break
            if _step(s, nb):
                _fix_trig(s, nb, _AN, _TN)
            active = _commit(s, nb, chi2_tolerance, constraint_tolerance)
        _finish(s, nb)
        _store(s, nb, i0, n, E, theta, phi, cov_full, cov_diag, full, out)
    return out
