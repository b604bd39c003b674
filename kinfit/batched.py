"""Numpy reference implementation of the kinematic fit, vectorised over events.

The same algorithm as the compiled :func:`kinfit.fit_three_photons` (Avery CBX 98-37 Lagrange
multipliers, iterative linearisation, the LDLᵀ factorisation of D V₀ Dᵀ, the same convergence
tests and status codes), written with numpy array operations over all events still iterating.
It exists as a readable cross-check for the tests and as the baseline of
``benchmarks/kinfit.py``; the processor uses the compiled fit. It covers the 4C fit only (no free
energy).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .covariance import full_covariance
from .fit import check_options, prepare_inputs
from .kernel import (
    _COV_PIVOT_EPS,
    _PIVOT_EPS,
    _SYMMETRY_TOL,
    STATUS_BAD_INPUT,
    STATUS_NOT_CONVERGED,
    STATUS_OK,
    STATUS_SINGULAR,
    STATUS_UNPHYSICAL,
)
from .results import KinFitResult

__all__ = ["fit_three_photons_numpy"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _valid_inputs(
    E: FloatArray, theta: FloatArray, phi: FloatArray, cov: FloatArray, beam: FloatArray
) -> BoolArray:
    """Events whose inputs pass the FitStatus.BAD_INPUT tests."""
    ok = np.isfinite(beam).all(axis=1)
    ok &= (beam[:, 0] > 0) & (beam[:, 0] ** 2 > (beam[:, 1:] ** 2).sum(axis=1))
    ok &= ((theta >= 0) & (theta <= np.pi) & np.isfinite(phi)).all(axis=1)
    ok &= (np.isfinite(E) & (E > 0)).all(axis=1)
    diag = np.diagonal(cov, axis1=-2, axis2=-1)
    ok &= (np.isfinite(diag) & (diag > 0)).all(axis=(1, 2))
    scale = np.sqrt(diag[..., :, None] * diag[..., None, :])
    ok &= (np.abs(cov - np.swapaxes(cov, -1, -2)) <= _SYMMETRY_TOL * scale).all(axis=(1, 2, 3))
    # positive definite: the Cholesky pivots of each symmetrised 3x3
    v = 0.5 * cov + 0.5 * np.swapaxes(cov, -1, -2)
    l10 = v[..., 1, 0] / np.sqrt(v[..., 0, 0])
    l20 = v[..., 2, 0] / np.sqrt(v[..., 0, 0])
    p11 = v[..., 1, 1] - l10**2
    l21 = (v[..., 2, 1] - l20 * l10) / np.sqrt(p11)
    p22 = v[..., 2, 2] - l20**2 - l21**2
    pd = (p11 > _COV_PIVOT_EPS * v[..., 1, 1]) & (p22 > _COV_PIVOT_EPS * v[..., 2, 2])
    ok &= pd.all(axis=1)
    return np.asarray(ok)


def _constraints(a: FloatArray, beam: FloatArray) -> tuple[FloatArray, FloatArray]:
    """H (m,4) = Σ p − P_beam and D (m,4,3,3) = ∂H/∂(E, θ, φ) per photon at a (m,3,3)."""
    e, t, p = a[..., 0], a[..., 1], a[..., 2]
    st, ct, sp, cp = np.sin(t), np.cos(t), np.sin(p), np.cos(p)
    ux, uy = st * cp, st * sp
    D = np.empty((a.shape[0], 4, 3, 3))
    D[:, 0, :, 0] = 1.0
    D[:, 0, :, 1:] = 0.0
    D[:, 1, :, 0] = ux
    D[:, 1, :, 1] = e * ct * cp
    D[:, 1, :, 2] = -e * uy
    D[:, 2, :, 0] = uy
    D[:, 2, :, 1] = e * ct * sp
    D[:, 2, :, 2] = e * ux
    D[:, 3, :, 0] = ct
    D[:, 3, :, 1] = -e * st
    D[:, 3, :, 2] = 0.0
    H = np.stack([e.sum(1), (e * ux).sum(1), (e * uy).sum(1), (e * ct).sum(1)], axis=1) - beam
    return H, D


def _ldl(S: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
    """S (m,4,4) = L Δ Lᵀ: unit lower L (m,4,4), 1/Δ (m,4), and whether every pivot passes."""
    m = S.shape[0]
    L = np.zeros((m, 4, 4))
    t = np.zeros((m, 4, 4))  # t_rc = L_rc Δ_c
    inv = np.zeros((m, 4))
    ok = np.ones(m, dtype=bool)
    for c in range(4):
        pivot = S[:, c, c] - np.einsum("mk,mk->m", L[:, c, :c], t[:, c, :c])
        ok &= pivot > (_PIVOT_EPS * S[:, c, c] if c else 0.0)
        inv[:, c] = 1.0 / pivot
        L[:, c, c] = 1.0
        for r in range(c + 1, 4):
            t[:, r, c] = S[:, r, c] - np.einsum("mk,mk->m", L[:, r, :c], t[:, c, :c])
            L[:, r, c] = t[:, r, c] * inv[:, c]
    return L, inv, ok


def _forward(L: FloatArray, x: FloatArray) -> FloatArray:
    """u = L⁻¹ x for unit lower L (m,4,4) and x (m,...,4)."""
    u = np.array(x, dtype=np.float64)
    for r in range(1, 4):
        u[..., r] -= np.einsum("mk,m...k->m...", L[:, r, :r], u[..., :r])
    return u


def _backward(L: FloatArray, inv: FloatArray, u: FloatArray) -> FloatArray:
    """x = L⁻ᵀ Δ⁻¹ u for u (m,4)."""
    x = u * inv
    for r in range(2, -1, -1):
        x[:, r] -= np.einsum("mk,mk->m", L[:, r + 1 :, r], x[:, r + 1 :])
    return x


def _flagged_values(x: FloatArray) -> FloatArray:
    return np.where(np.isfinite(x), x, 0.0)


def fit_three_photons_numpy(
    E: npt.ArrayLike,
    theta: npt.ArrayLike,
    phi: npt.ArrayLike,
    cov: npt.ArrayLike,
    beam: npt.ArrayLike,
    *,
    max_iterations: int = 20,
    chi2_tolerance: float = 1e-4,
    constraint_tolerance: float = 1e-7,
) -> KinFitResult:
    """The fit of :func:`kinfit.fit_three_photons` (same arguments, same result) in numpy."""
    check_options(max_iterations, chi2_tolerance, constraint_tolerance)
    E, theta, phi, cov, beam = prepare_inputs(E, theta, phi, cov, beam)
    # overflow and NaN in bad events are expected and end up flagged, as in the compiled fit
    with np.errstate(all="ignore"):
        return _fit(E, theta, phi, cov, beam, max_iterations, chi2_tolerance, constraint_tolerance)


def _fit(
    E: FloatArray,
    theta: FloatArray,
    phi: FloatArray,
    cov: FloatArray,
    beam: FloatArray,
    max_iterations: int,
    chi2_tolerance: float,
    constraint_tolerance: float,
) -> KinFitResult:
    if cov.ndim == 3:
        cov = full_covariance(cov)
    n = E.shape[0]
    a0 = np.stack([E, theta, phi], axis=-1)  # (n, photon, quantity)
    V = 0.5 * cov + 0.5 * np.swapaxes(cov, -1, -2)
    status = np.full(n, STATUS_NOT_CONVERGED, dtype=np.int8)
    valid = _valid_inputs(E, theta, phi, cov, beam)
    status[~valid] = STATUS_BAD_INPUT
    iterations = np.zeros(n, dtype=np.int32)
    chi2 = np.zeros(n)
    a = a0.copy()

    idx = np.flatnonzero(valid)
    H, D = _constraints(a[idx], beam[idx])
    chi2_old = np.zeros(idx.size)
    for _ in range(max_iterations):
        if idx.size == 0:
            break
        Vi, a0i, ai = V[idx], a0[idx], a[idx]
        B = np.einsum("mpqr,mcpr->mpqc", Vi, D)  # V₀ Dᵀ per photon (m,3,3,4)
        S = np.einsum("mcpq,mpqd->mcd", D, B)
        L, inv, ok = _ldl(S)
        r = H + np.einsum("mcpq,mpq->mc", D, a0i - ai)
        u = _forward(L, r)
        chi2_new = (u * u * inv).sum(axis=1)
        lam = _backward(L, inv, u)
        a_new = a0i - np.einsum("mpqc,mc->mpq", B, lam)
        H_new, D_new = _constraints(a_new, beam[idx])
        iterations[idx[ok]] += 1  # a step counts once the factorisation succeeded
        ok &= np.isfinite(H_new).all(axis=1)
        a[idx[ok]] = a_new[ok]
        chi2[idx[ok]] = chi2_new[ok]
        status[idx[~ok]] = STATUS_SINGULAR
        done = ok & (np.abs(chi2_new - chi2_old) < chi2_tolerance)
        done &= (np.abs(H_new) < constraint_tolerance).all(axis=1)
        status[idx[done]] = STATUS_OK
        keep = ok & ~done
        idx, H, D, chi2_old = idx[keep], H_new[keep], D_new[keep], chi2_new[keep]

    conv = status == STATUS_OK
    physical = (a[..., 0] > 0).all(axis=1) & ((a[..., 1] >= 0) & (a[..., 1] <= np.pi)).all(axis=1)
    status[conv & ~physical] = STATUS_UNPHYSICAL

    # covariance and pulls, linearised at the solution
    idx = np.flatnonzero(status == STATUS_OK)
    fit_cov = np.empty((n, 3, 3, 3))
    pulls = np.zeros((n, 3, 3))
    _, D = _constraints(a[idx], beam[idx])
    B = np.einsum("mpqr,mcpr->mpqc", V[idx], D)
    S = np.einsum("mcpq,mpqd->mcd", D, B)
    L, inv, ok = _ldl(S)
    Q = _forward(L, B)  # (m,3,3,4)
    reduction = np.einsum("mpqc,mprc,mc->mpqr", Q, Q, inv)
    fit_cov[idx] = V[idx] - reduction
    red = np.diagonal(reduction, axis1=-2, axis2=-1)
    pulls[idx] = np.where(red > 1e-300, (a[idx] - a0[idx]) / np.sqrt(red), 0.0)
    status[idx[~ok]] = STATUS_SINGULAR

    flagged = status != STATUS_OK
    a[flagged] = _flagged_values(a0[flagged])
    fit_cov[flagged] = _flagged_values(cov[flagged])
    pulls[flagged] = 0.0
    chi2[flagged] = np.inf
    half = 0.5 * chi2
    pvalue = np.where(flagged, 0.0, np.exp(-half) * (1.0 + half))
    return KinFitResult(
        E=np.ascontiguousarray(a[..., 0]),
        theta=np.ascontiguousarray(a[..., 1]),
        phi=np.ascontiguousarray(a[..., 2]),
        cov=fit_cov,
        chi2=chi2,
        ndf=4,
        pvalue=pvalue,
        iterations=iterations,
        converged=~flagged,
        status=status,
        pulls=pulls,
    )
