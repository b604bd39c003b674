"""Compiled numerical helpers of the kinematic fit: the numba settings, a fast sin/cos pair and
the χ² survival function for the fit's degrees of freedom."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["SINCOS_MAX", "chi2_sf", "jit", "jit_inline", "sincos", "sincos_reduced"]

# compiled once and cached; nogil: Dask's threaded workers can fit chunks side by side;
# error_model="numpy": a division by zero gives inf/NaN (caught by the finiteness tests) instead
# of raising; "contract" allows fused multiply-adds only (no assumption about NaN or infinities,
# which the flags rely on)
jit = nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
#: the same, inlined into the caller by numba (no call, hence no reference counting of array
#: arguments, which would keep a loop from vectorising)
jit_inline = nb.njit(
    cache=True, nogil=True, error_model="numpy", fastmath={"contract"}, inline="always"
)

# Constants of fdlibm's sin and cos (k_sin.c, k_cos.c, e_rem_pio2.c; Copyright (C) 1993 by Sun
# Microsystems, Inc., "Permission to use, copy, modify, and distribute this software is freely
# granted, provided that this notice is preserved"): π/2 in two parts for the argument
# reduction and the minimax polynomials of sin and cos on [−π/4, π/4]
_INV_PIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00
_PIO2_1T = 6.07710050650619224932e-11
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11
#: |x| above which sincos falls back to math.sin and math.cos
SINCOS_MAX = 1e5


@jit
def chi2_sf(chi2: float, ndf: int) -> float:
    """Upper-tail probability of a χ² variate for ndf = 3 or 4, from the closed forms of the
    regularised incomplete gamma function at integer and half-integer order:
    Q(χ²|4) = e^{−χ²/2}(1 + χ²/2), Q(χ²|3) = erfc(√(χ²/2)) + √(2χ²/π) e^{−χ²/2}.
    Other ndf return NaN.
    """
    if not chi2 > 0.0:
        return 1.0 if chi2 == 0.0 else 0.0
    if chi2 == math.inf:
        return 0.0
    half = 0.5 * chi2
    if ndf == 4:
        return math.exp(-half) * (1.0 + half)
    if ndf == 3:
        return math.erfc(math.sqrt(half)) + math.sqrt(2.0 * chi2 / math.pi) * math.exp(-half)
    return math.nan


@jit
def sincos(x: float) -> tuple[float, float]:
    """(sin x, cos x) in one branch-free evaluation, within 2 ulp of libm for |x| < 1e5: reduction
    x = nπ/2 + r with π/2 in two parts (exact products for |n| < 2²⁰), fdlibm's polynomials for
    r ∈ [−π/4, π/4], and the quadrant n mod 4 applied with exact 0/1 and ±1 factors (a branch on
    a random quadrant costs more than the arithmetic). Larger or non-finite x use libm."""
    if not abs(x) < SINCOS_MAX:
        return math.sin(x), math.cos(x)
    return sincos_reduced(x)


@jit
def sincos_reduced(x: float) -> tuple[float, float]:
    """The polynomial branch of :func:`sincos` alone, valid for |x| < 1e5 (``SINCOS_MAX``):
    straight-line code, so that a loop over independent angles vectorises; the caller sends
    larger or non-finite x to libm."""
    n = math.floor(x * _INV_PIO2 + 0.5)
    r = (x - n * _PIO2_1) - n * _PIO2_1T
    z = r * r
    s = r + r * z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    c = 1.0 - 0.5 * z + z * z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    q = np.int64(n)
    odd = float(q & 1)
    even = 1.0 - odd
    sign_s = float(1 - (q & 2))
    sign_c = float(1 - ((q + 1) & 2))
    return sign_s * (s * even + c * odd), sign_c * (c * even + s * odd)
