"""Compiled core of the kinematic fit: one loop over events, scalar code inside.

This scalar kernel runs the fit with a free (unmeasured) energy and is the reference of the
standard fit, which runs in :mod:`kinfit.lanes` (the same arithmetic, eight events side by side).

The fit follows P. Avery, "Applied Fitting Theory VI: Formulas for Kinematic Fitting", CLEO note
CBX 98-37 (1998) (the same equations document his KWFIT routines): measured parameters α (here
the nine (E, θ, φ) of three photons) with covariance V₀, constraints H(α) = 0 linearised about
the current point α_A,

    H(α) ≈ D (α − α_A) + d,    D = ∂H/∂α,  d = H(α_A),

solved with Lagrange multipliers λ by minimising (α − α₀)ᵀV₀⁻¹(α − α₀) + 2λᵀ(D(α − α_A) + d):

    r = D (α₀ − α_A) + d,   V_D = (D V₀ Dᵀ)⁻¹,   λ = V_D r,
    α = α₀ − V₀ Dᵀ λ,       χ² = λᵀ r,            V_α = V₀ − V₀ Dᵀ V_D D V₀,

and iterated, each step linearising about the previous solution. With one unmeasured parameter
z (a free photon energy) the same note's section on unmeasured parameters gives

    V_E = (Eᵀ V_D E)⁻¹,  z = z_A − V_E Eᵀ V_D r,  λ = V_D (r + E δz),
    V_α = V₀ − V₀ Dᵀ V_D D V₀ + V₀ Dᵀ V_D E V_E Eᵀ V_D D V₀,  V_z = V_E,
    V_αz = −V₀ Dᵀ V_D E V_E,

with E = ∂H/∂z. Both are evaluated with the factorisation D V₀ Dᵀ = L Δ Lᵀ (L unit lower
triangular, no square roots): with u = L⁻¹ r and w = L⁻¹ E every product with V_D is xᵀ Δ⁻¹ y of
such vectors. The free parameter removes from u its Δ⁻¹-projection on w (χ² = uᵀ Δ⁻¹ u after
that), and the variance reduction V₀ − V_α, which is also the pull denominator σ²₀ − σ², is the
Δ⁻¹ Gram matrix of q_j = L⁻¹ (V₀ Dᵀ)_j, projected the same way: non-negative by construction.

The four constraints are Σ_i p_i − P_beam = 0 for massless photons
p = E (sinθ cosφ, sinθ sinφ, cosθ). Nothing here allocates per event (scratch arrays are made
once per call), and sin and cos come from one branch-free evaluation
(:func:`kinfit.numerics.sincos`). The Python-facing wrapper is :func:`kinfit.fit_three_photons`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .numerics import chi2_sf, jit, sincos

__all__ = [
    "STATUS_BAD_INPUT",
    "STATUS_NOT_CONVERGED",
    "STATUS_OK",
    "STATUS_SINGULAR",
    "STATUS_UNPHYSICAL",
    "empty_outputs",
    "fit_events",
]

FloatArray = npt.NDArray[np.float64]

STATUS_OK = 0
STATUS_NOT_CONVERGED = 1
STATUS_BAD_INPUT = 2
STATUS_SINGULAR = 3
STATUS_UNPHYSICAL = 4

#: smallest accepted LDLᵀ pivot Δ_c of D V₀ Dᵀ relative to its diagonal entry S_cc
_PIVOT_EPS = 1e-12
#: smallest accepted Cholesky pivot of a photon covariance relative to its diagonal
_COV_PIVOT_EPS = 1e-14
#: tolerated relative asymmetry |V_rc − V_cr| / sqrt(V_rr V_cc) of an input photon covariance
_SYMMETRY_TOL = 1e-8


@jit
def _load_covariance(
    cov_full: FloatArray, cov_diag: FloatArray, full: bool, i: int, f: int, V: FloatArray
) -> bool:
    """Copy event i's photon covariances into V (3,3,3), symmetrised, with the free energy's row
    and column zeroed; False unless each is finite, symmetric and positive definite (for the
    free photon: its (θ, φ) block)."""
    for k in range(3):
        start = 1 if k == f else 0
        if full:
            for r in range(start, 3):
                if not (math.isfinite(cov_full[i, k, r, r]) and cov_full[i, k, r, r] > 0.0):
                    return False
            for r in range(3):
                for c in range(r + 1):
                    if r < start or c < start:
                        V[k, r, c] = 0.0
                        V[k, c, r] = 0.0
                        continue
                    upper = cov_full[i, k, c, r]
                    lower = cov_full[i, k, r, c]
                    scale = math.sqrt(cov_full[i, k, r, r] * cov_full[i, k, c, c])
                    if not abs(upper - lower) <= _SYMMETRY_TOL * scale:  # NaN fails
                        return False
                    v = 0.5 * upper + 0.5 * lower  # no overflow
                    V[k, r, c] = v
                    V[k, c, r] = v
            # positive definiteness: Cholesky pivots of the used block
            l10 = 0.0
            l20 = 0.0
            if start == 0:
                l00 = math.sqrt(V[k, 0, 0])
                l10 = V[k, 1, 0] / l00
                l20 = V[k, 2, 0] / l00
            p11 = V[k, 1, 1] - l10 * l10
            if not p11 > _COV_PIVOT_EPS * V[k, 1, 1]:
                return False
            l21 = (V[k, 2, 1] - l20 * l10) / math.sqrt(p11)
            if not V[k, 2, 2] - l20 * l20 - l21 * l21 > _COV_PIVOT_EPS * V[k, 2, 2]:
                return False
        else:
            for r in range(3):
                v = cov_diag[i, k, r]
                if r < start:
                    v = 0.0
                elif not (math.isfinite(v) and v > 0.0):
                    return False
                V[k, r, r] = v
                for c in range(r):
                    V[k, r, c] = 0.0
                    V[k, c, r] = 0.0
    return True


@jit
def _kinematics_ok(
    E: FloatArray, theta: FloatArray, phi: FloatArray, beam: FloatArray, i: int, f: int
) -> bool:
    """Whether event i's measured photons and beam can be fitted (see FitStatus.BAD_INPUT)."""
    b0 = beam[i, 0]
    b1 = beam[i, 1]
    b2 = beam[i, 2]
    b3 = beam[i, 3]
    if not (math.isfinite(b0) and math.isfinite(b1) and math.isfinite(b2) and math.isfinite(b3)):
        return False
    if not (b0 > 0.0 and b0 * b0 > b1 * b1 + b2 * b2 + b3 * b3):
        return False
    for k in range(3):
        if not (0.0 <= theta[i, k] <= math.pi and math.isfinite(phi[i, k])):  # NaN fails
            return False
        if k != f and not (math.isfinite(E[i, k]) and E[i, k] > 0.0):
            return False
    return True


@jit
def _set_trig(a: FloatArray, T: FloatArray) -> None:
    """T (4,3) = (sinθ, cosθ, sinφ, cosφ) of each photon at the point a."""
    for k in range(3):
        T[0, k], T[1, k] = sincos(a[3 * k + 1])
        T[2, k], T[3, k] = sincos(a[3 * k + 2])


@jit
def _constraints(
    a: FloatArray, T: FloatArray, beam: FloatArray, i: int, D: FloatArray
) -> tuple[float, float, float, float]:
    """Constraint values H = Σ p_k − P_beam (GeV) at α = a (sines and cosines from T); fills the
    Jacobian D = ∂H/∂α (4x9)."""
    h0 = -beam[i, 0]
    h1 = -beam[i, 1]
    h2 = -beam[i, 2]
    h3 = -beam[i, 3]
    for k in range(3):
        j = 3 * k
        e = a[j]
        st = T[0, k]
        ct = T[1, k]
        sp = T[2, k]
        cp = T[3, k]
        ux = st * cp
        uy = st * sp
        h0 += e
        h1 += e * ux
        h2 += e * uy
        h3 += e * ct
        D[0, j] = 1.0
        D[0, j + 1] = 0.0
        D[0, j + 2] = 0.0
        D[1, j] = ux
        D[1, j + 1] = e * ct * cp
        D[1, j + 2] = -e * uy
        D[2, j] = uy
        D[2, j + 1] = e * ct * sp
        D[2, j + 2] = e * ux
        D[3, j] = ct
        D[3, j + 1] = -e * st
        D[3, j + 2] = 0.0
    return h0, h1, h2, h3


@jit
def _finite4(x: tuple[float, float, float, float]) -> bool:
    return (
        math.isfinite(x[0]) and math.isfinite(x[1]) and math.isfinite(x[2]) and math.isfinite(x[3])
    )


#: the LDLᵀ factor as a tuple (1/Δ₀, L₁₀, L₂₀, L₃₀, 1/Δ₁, L₂₁, L₃₁, 1/Δ₂, L₃₂, 1/Δ₃)
Factor = tuple[float, float, float, float, float, float, float, float, float, float]


@jit
def _factorise(V: FloatArray, D: FloatArray, B: FloatArray) -> tuple[bool, Factor]:
    """B = V₀ Dᵀ (9x4) and the LDLᵀ factorisation S = D V₀ Dᵀ = D B = L Δ Lᵀ (L unit lower
    triangular, no square roots), exploiting the block structure: V₀ block diagonal, D row 0 =
    (1, 0, 0) and D[3, φ] = 0 per photon.

    Returns (ok, factor); ok is False when S is not positive definite (a pivot Δ_c not above
    _PIVOT_EPS S_cc, or NaN).
    """
    s00 = s10 = s20 = s30 = s11 = s21 = s31 = s22 = s32 = s33 = 0.0
    for k in range(3):
        j = 3 * k
        d1a = D[1, j]
        d1b = D[1, j + 1]
        d1c = D[1, j + 2]
        d2a = D[2, j]
        d2b = D[2, j + 1]
        d2c = D[2, j + 2]
        d3a = D[3, j]
        d3b = D[3, j + 1]
        for r in range(3):
            v0 = V[k, r, 0]
            v1 = V[k, r, 1]
            v2 = V[k, r, 2]
            b1 = v0 * d1a + v1 * d1b + v2 * d1c
            b2 = v0 * d2a + v1 * d2b + v2 * d2c
            b3 = v0 * d3a + v1 * d3b
            B[j + r, 0] = v0
            B[j + r, 1] = b1
            B[j + r, 2] = b2
            B[j + r, 3] = b3
            if r == 0:
                s00 += v0
                s10 += b1
                s20 += b2
                s30 += b3
            s11 += D[1, j + r] * b1
            s21 += D[2, j + r] * b1
            s22 += D[2, j + r] * b2
            s31 += D[3, j + r] * b1
            s32 += D[3, j + r] * b2
            s33 += D[3, j + r] * b3
    bad = (False, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    # L_rc = t_rc / Δ_c with t_rc = S_rc − Σ_{m<c} L_rm t_cm
    if not s00 > 0.0:
        return bad
    inv0 = 1.0 / s00
    l10 = s10 * inv0
    l20 = s20 * inv0
    l30 = s30 * inv0
    p = s11 - l10 * s10
    if not p > _PIVOT_EPS * s11:
        return bad
    inv1 = 1.0 / p
    t21 = s21 - l20 * s10
    t31 = s31 - l30 * s10
    l21 = t21 * inv1
    l31 = t31 * inv1
    p = s22 - l20 * s20 - l21 * t21
    if not p > _PIVOT_EPS * s22:
        return bad
    inv2 = 1.0 / p
    t32 = s32 - l30 * s20 - l31 * t21
    l32 = t32 * inv2
    p = s33 - l30 * s30 - l31 * t31 - l32 * t32
    if not p > _PIVOT_EPS * s33:
        return bad
    return True, (inv0, l10, l20, l30, inv1, l21, l31, inv2, l32, 1.0 / p)


@jit
def _forward(
    L: Factor, x0: float, x1: float, x2: float, x3: float
) -> tuple[float, float, float, float]:
    """u = L⁻¹ x (unit lower-triangular L of _factorise)."""
    u1 = x1 - L[1] * x0
    u2 = x2 - L[2] * x0 - L[5] * u1
    u3 = x3 - L[3] * x0 - L[6] * u1 - L[8] * u2
    return x0, u1, u2, u3


@jit
def _backward(L: Factor, u: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """x = L⁻ᵀ Δ⁻¹ u, so that x = S⁻¹ r when u = L⁻¹ r."""
    x3 = u[3] * L[9]
    x2 = u[2] * L[7] - L[8] * x3
    x1 = u[1] * L[4] - L[5] * x2 - L[6] * x3
    x0 = u[0] * L[0] - L[1] * x1 - L[2] * x2 - L[3] * x3
    return x0, x1, x2, x3


@jit
def _wdot(
    L: Factor, x: tuple[float, float, float, float], y: tuple[float, float, float, float]
) -> float:
    """xᵀ Δ⁻¹ y: the S⁻¹ product of two vectors given as L⁻¹ x, L⁻¹ y."""
    return x[0] * y[0] * L[0] + x[1] * y[1] * L[4] + x[2] * y[2] * L[7] + x[3] * y[3] * L[9]


@jit
def _flag(i: int, code: int, E: FloatArray, theta: FloatArray, phi: FloatArray,
          cov_full: FloatArray, cov_diag: FloatArray, full: bool, out: tuple) -> None:  # fmt: skip
    """Event i gets the measured values (non-finite -> 0) and the flagged-event sentinels."""
    out_E, out_theta, out_phi, out_cov, chi2, pvalue, _, status, pulls = out
    for k in range(3):
        out_E[i, k] = E[i, k] if math.isfinite(E[i, k]) else 0.0
        out_theta[i, k] = theta[i, k] if math.isfinite(theta[i, k]) else 0.0
        out_phi[i, k] = phi[i, k] if math.isfinite(phi[i, k]) else 0.0
        for r in range(3):
            pulls[i, k, r] = 0.0
            for c in range(3):
                if full:
                    v = cov_full[i, k, r, c]
                else:
                    v = cov_diag[i, k, r] if r == c else 0.0
                out_cov[i, k, r, c] = v if math.isfinite(v) else 0.0
    chi2[i] = math.inf
    pvalue[i] = 0.0
    status[i] = code


@jit
def empty_outputs(n: int) -> tuple:
    """The result arrays of ``n`` fits (E, theta, phi, cov, chi2, pvalue, iterations, status,
    pulls; iterations zeroed), as :func:`fit_events` and :func:`kinfit.lanes.fit_events_lanes`
    return them."""
    return (
        np.empty((n, 3)),
        np.empty((n, 3)),
        np.empty((n, 3)),
        np.empty((n, 3, 3, 3)),
        np.empty(n),
        np.empty(n),
        np.zeros(n, dtype=np.int32),
        np.empty(n, dtype=np.int8),
        np.empty((n, 3, 3)),
    )


@jit
def fit_events(
    E: FloatArray,
    theta: FloatArray,
    phi: FloatArray,
    cov_full: FloatArray,
    cov_diag: FloatArray,
    full: bool,
    beam: FloatArray,
    free: npt.NDArray[np.int8],
    max_iterations: int,
    chi2_tolerance: float,
    constraint_tolerance: float,
) -> tuple:
    """Fit every event. Inputs are C-contiguous float64: E, theta, phi (n,3), beam (n,4); the
    covariance is ``cov_full`` (n,3,3,3) if ``full`` else ``cov_diag`` (n,3,3) (the other may be
    empty); ``free`` (n,) int8 is the index of the photon whose energy is unmeasured, or −1.

    Returns (E, theta, phi, cov, chi2, pvalue, iterations, status, pulls) as documented in
    :class:`kinfit.KinFitResult`.
    """
    n = E.shape[0]
    out = empty_outputs(n)
    out_E, out_theta, out_phi, out_cov, chi2, pvalue, iterations, status, pulls = out

    a0 = np.empty(9)  # measured point; the free energy's entry tracks the current z
    a = np.empty(9)  # current linearisation point
    T = np.empty((4, 3))  # sinθ, cosθ, sinφ, cosφ at a
    V = np.zeros((3, 3, 3))  # measured covariance, free-energy row and column zeroed
    D = np.empty((4, 9))
    B = np.empty((9, 4))
    Q = np.empty((9, 4))

    for i in range(n):
        f = int(free[i])
        jf = 3 * f
        if not (
            _kinematics_ok(E, theta, phi, beam, i, f)
            and _load_covariance(cov_full, cov_diag, full, i, f, V)
        ):
            _flag(i, STATUS_BAD_INPUT, E, theta, phi, cov_full, cov_diag, full, out)
            continue
        for k in range(3):
            a0[3 * k] = E[i, k]
            a0[3 * k + 1] = theta[i, k]
            a0[3 * k + 2] = phi[i, k]
        ndf = 4
        if f >= 0:
            ndf = 3
            if not (math.isfinite(E[i, f]) and E[i, f] > 0.0):
                # unusable measured value of the free energy: start from the energy balance
                start = beam[i, 0]
                for k in range(3):
                    if k != f:
                        start -= E[i, k]
                a0[jf] = max(start, 1e-3 * beam[i, 0])
        for j in range(9):
            a[j] = a0[j]
        _set_trig(a, T)

        code = STATUS_NOT_CONVERGED
        chi2_old = 0.0
        chi2_new = 0.0
        it = 0
        h = _constraints(a, T, beam, i, D)
        ok = _finite4(h)
        while ok and it < max_iterations:
            ok, L = _factorise(V, D, B)
            if not ok:
                break
            # r = D (α₀ − α_A) + d (D row 0 is (1, 0, 0) per photon); u = L⁻¹ r
            r0, r1, r2, r3 = h
            for k in range(3):
                j = 3 * k
                de = a0[j] - a[j]
                dt = a0[j + 1] - a[j + 1]
                dp = a0[j + 2] - a[j + 2]
                r0 += de
                r1 += D[1, j] * de + D[1, j + 1] * dt + D[1, j + 2] * dp
                r2 += D[2, j] * de + D[2, j + 1] * dt + D[2, j + 2] * dp
                r3 += D[3, j] * de + D[3, j + 1] * dt
            u = _forward(L, r0, r1, r2, r3)
            dz = 0.0
            if f >= 0:
                # unmeasured energy: δz = −V_E Eᵀ V_D r, then r ← r + E δz
                w = _forward(L, 1.0, D[1, jf], D[2, jf], D[3, jf])
                dz = -_wdot(L, w, u) / _wdot(L, w, w)
                u = (u[0] + w[0] * dz, u[1] + w[1] * dz, u[2] + w[2] * dz, u[3] + w[3] * dz)
            chi2_new = _wdot(L, u, u)  # = rᵀ S⁻¹ r = λᵀ r
            lam0, lam1, lam2, lam3 = _backward(L, u)
            # α = α₀ − V₀ Dᵀ λ
            for k in range(3):
                j = 3 * k
                e_new = a0[j] - (B[j, 0] * lam0 + B[j, 1] * lam1 + B[j, 2] * lam2 + B[j, 3] * lam3)
                t_new = a0[j + 1] - (
                    B[j + 1, 0] * lam0
                    + B[j + 1, 1] * lam1
                    + B[j + 1, 2] * lam2
                    + B[j + 1, 3] * lam3
                )
                p_new = a0[j + 2] - (
                    B[j + 2, 0] * lam0
                    + B[j + 2, 1] * lam1
                    + B[j + 2, 2] * lam2
                    + B[j + 2, 3] * lam3
                )
                if k == f:
                    e_new = a[j] + dz
                    a0[j] = e_new
                T[0, k], T[1, k] = sincos(t_new)
                T[2, k], T[3, k] = sincos(p_new)
                a[j] = e_new
                a[j + 1] = t_new
                a[j + 2] = p_new
            it += 1
            h = _constraints(a, T, beam, i, D)
            ok = _finite4(h)
            if not ok:
                break
            worst = max(max(abs(h[0]), abs(h[1])), max(abs(h[2]), abs(h[3])))
            if abs(chi2_new - chi2_old) < chi2_tolerance and worst < constraint_tolerance:
                code = STATUS_OK
                break
            chi2_old = chi2_new

        iterations[i] = it
        if ok and code == STATUS_OK:
            for k in range(3):
                if not (a[3 * k] > 0.0 and 0.0 <= a[3 * k + 1] <= math.pi):
                    code = STATUS_UNPHYSICAL
        if ok and code == STATUS_OK:
            # the covariance is linearised at the solution, where D was just evaluated
            ok, L = _factorise(V, D, B)
        if not ok:
            code = STATUS_SINGULAR
        if code != STATUS_OK:
            _flag(i, code, E, theta, phi, cov_full, cov_diag, full, out)
            continue

        # q_j = L⁻¹ (V₀ Dᵀ)_j, so that (V₀ Dᵀ S⁻¹ D V₀)_jk = q_jᵀ Δ⁻¹ q_k; with a free energy
        # the component along w = L⁻¹ E is projected out (module docstring)
        for j in range(9):
            q = _forward(L, B[j, 0], B[j, 1], B[j, 2], B[j, 3])
            for c in range(4):
                Q[j, c] = q[c]
        vz = 0.0
        if f >= 0:
            w = _forward(L, 1.0, D[1, jf], D[2, jf], D[3, jf])
            vz = 1.0 / _wdot(L, w, w)  # V_z = V_E = (Eᵀ V_D E)⁻¹
            for j in range(9):
                q = (Q[j, 0], Q[j, 1], Q[j, 2], Q[j, 3])
                s = _wdot(L, q, w) * vz
                if j == jf + 1 or j == jf + 2:
                    # V_αz = −V₀ Dᵀ V_D E V_E, for the free photon's own angles
                    out_cov[i, f, 0, j - jf] = -s
                    out_cov[i, f, j - jf, 0] = -s
                for c in range(4):
                    Q[j, c] -= s * w[c]
            out_cov[i, f, 0, 0] = vz
        for k in range(3):
            out_E[i, k] = a[3 * k]
            out_theta[i, k] = a[3 * k + 1]
            out_phi[i, k] = a[3 * k + 2]
            for rr in range(3):
                jr = 3 * k + rr
                qr = (Q[jr, 0], Q[jr, 1], Q[jr, 2], Q[jr, 3])
                for cc in range(rr + 1):
                    if k == f and cc == 0:
                        continue  # the free energy's row, filled above
                    jc = 3 * k + cc
                    v = V[k, rr, cc] - _wdot(L, qr, (Q[jc, 0], Q[jc, 1], Q[jc, 2], Q[jc, 3]))
                    out_cov[i, k, rr, cc] = v
                    out_cov[i, k, cc, rr] = v
                # pull = (fitted − measured) / sqrt(σ²₀ − σ²), σ²₀ − σ² = q_jᵀ Δ⁻¹ q_j ≥ 0
                red = _wdot(L, qr, qr)
                pull = 0.0
                if red > 1e-300 and not (k == f and rr == 0):
                    pull = (a[jr] - a0[jr]) / math.sqrt(red)
                pulls[i, k, rr] = pull
        chi2[i] = chi2_new
        pvalue[i] = chi2_sf(chi2_new, ndf)
        status[i] = STATUS_OK
    return out
