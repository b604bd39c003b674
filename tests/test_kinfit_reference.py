"""The kinematic fit against an independent slow reference: scipy's SLSQP on the χ² with the four
equality constraints, event by event.

This module also holds the small three-photon event generator used by the other kinfit tests and
by ``benchmarks/kinfit.py``: massless photons whose four-momenta sum exactly to the beam, smeared
with known Gaussian resolutions and no radiation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import linalg, optimize

import kinfit

FloatArray = npt.NDArray[np.float64]

#: Belle II lab beam four-momentum (E, px, py, pz) in GeV: √s = 10.5796 GeV, boost along +z
#: tilted towards +x (physics.md "Beams")
BEAM = np.array([11.006, 0.4566, 0.0, 2.9994])
#: resolutions of the smearing: σ_E/E, σ_θ (rad), σ_φ (rad)
REL_SIGMA_E = 0.02
SIGMA_THETA = 4e-3
SIGMA_PHI = 4e-3


def three_photon_events(
    rng: np.random.Generator,
    n: int,
    beam: FloatArray = BEAM,
    theta_range_deg: tuple[float, float] = (17.0, 150.0),
    e_min: float = 0.1,
) -> FloatArray:
    """Lab four-momenta ``(n, 3, 4)`` of three massless photons summing exactly to ``beam``.

    Energies flat over the massless three-body Dalitz plot in the beam rest frame, isotropic
    orientation, boosted to the lab; events with a photon outside ``theta_range_deg`` or below
    ``e_min`` GeV are regenerated.
    """
    mass = np.sqrt(beam[0] ** 2 - beam[1:] @ beam[1:])
    beta = beam[1:] / beam[0]
    chunks: list[FloatArray] = []
    have = 0
    while have < n:
        m = 2 * (n - have) + 100
        x1, x2 = rng.uniform(0.0, 1.0, (2, m))
        x3 = 2.0 - x1 - x2
        keep = (x3 > 0.0) & (x3 < 1.0)
        x = np.stack([x1, x2, x3], axis=1)[keep]
        m = len(x)
        energies = 0.5 * mass * x
        # (p1 + p2)² = M²(1 − x3) = 2 E1 E2 (1 − cos θ12)
        cos12 = 1.0 - 2.0 * (1.0 - x[:, 2]) / (x[:, 0] * x[:, 1])
        sin12 = np.sqrt(np.clip(1.0 - cos12**2, 0.0, None))
        # random orthonormal frame (e1, e2, e3): photon 1 along e3, photon 2 in the e1-e3 plane
        e3 = rng.normal(size=(m, 3))
        e3 /= np.linalg.norm(e3, axis=1, keepdims=True)
        helper = rng.normal(size=(m, 3))
        e1 = helper - (helper * e3).sum(1, keepdims=True) * e3
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        p = np.empty((m, 3, 4))
        p[:, 0, 1:] = energies[:, :1] * e3
        p[:, 1, 1:] = energies[:, 1:2] * (sin12[:, None] * e1 + cos12[:, None] * e3)
        p[:, 2, 1:] = -p[:, 0, 1:] - p[:, 1, 1:]
        p[..., 0] = np.linalg.norm(p[..., 1:], axis=-1)
        # boost by beta (rest frame -> lab)
        b2 = beta @ beta
        gamma = 1.0 / np.sqrt(1.0 - b2)
        bp = p[..., 1:] @ beta
        lab = np.empty_like(p)
        lab[..., 0] = gamma * (p[..., 0] + bp)
        lab[..., 1:] = p[..., 1:] + ((gamma - 1.0) / b2 * bp + gamma * p[..., 0])[..., None] * beta
        theta = np.degrees(np.arctan2(np.hypot(lab[..., 1], lab[..., 2]), lab[..., 3]))
        accept = (
            (theta > theta_range_deg[0]) & (theta < theta_range_deg[1]) & (lab[..., 0] > e_min)
        ).all(axis=1)
        chunks.append(lab[accept])
        have += int(accept.sum())
    return np.concatenate(chunks)[:n]


def angles(p: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(E, θ, φ) of four-momenta (..., 4)."""
    theta = np.arctan2(np.hypot(p[..., 1], p[..., 2]), p[..., 3])
    return p[..., 0].copy(), theta, np.arctan2(p[..., 2], p[..., 1])


def smeared_sample(
    seed: int, n: int
) -> tuple[
    tuple[FloatArray, FloatArray, FloatArray], tuple[FloatArray, ...], FloatArray, FloatArray
]:
    """True (E, θ, φ), measured (E, θ, φ), the diagonal covariance (n, 3, 3) and the beam (n, 4)
    of ``n`` events smeared with REL_SIGMA_E, SIGMA_THETA and SIGMA_PHI."""
    rng = np.random.default_rng(seed)
    truth = angles(three_photon_events(rng, n))
    sigma = np.stack(
        [
            REL_SIGMA_E * truth[0],
            np.full_like(truth[0], SIGMA_THETA),
            np.full_like(truth[0], SIGMA_PHI),
        ]
    )
    measured = tuple(t + s * rng.normal(size=t.shape) for t, s in zip(truth, sigma))
    cov = kinfit.diagonal_covariance(*sigma)
    return truth, measured, cov, np.tile(BEAM, (n, 1))


def _constraint_and_jacobian(a: FloatArray, beam: FloatArray) -> tuple[FloatArray, FloatArray]:
    """H (4,) = Σ p − beam and ∂H/∂a (4, 9) for a = (E, θ, φ) × 3 (photon-major)."""
    e, t, p = a[0::3], a[1::3], a[2::3]
    st, ct, sp, cp = np.sin(t), np.cos(t), np.sin(p), np.cos(p)
    h = np.array([e.sum(), (e * st * cp).sum(), (e * st * sp).sum(), (e * ct).sum()]) - beam
    jac = np.zeros((4, 9))
    jac[0, 0::3] = 1.0
    jac[1, 0::3], jac[1, 1::3], jac[1, 2::3] = st * cp, e * ct * cp, -e * st * sp
    jac[2, 0::3], jac[2, 1::3], jac[2, 2::3] = st * sp, e * ct * sp, e * st * cp
    jac[3, 0::3], jac[3, 1::3] = ct, -e * st
    return h, jac


def reference_fit(
    E: FloatArray,
    theta: FloatArray,
    phi: FloatArray,
    cov: FloatArray,
    beam: FloatArray,
    free: int = -1,
) -> tuple[FloatArray, float]:
    """One event fitted by direct constrained minimisation (no linearisation, no Lagrange
    algebra): minimise χ² = (α − α₀)ᵀ V₀⁻¹ (α − α₀) subject to Σ p = beam with SLSQP, in the
    whitened variables x = L₀⁻¹ (α − α₀) (V₀ = L₀ L₀ᵀ). ``cov`` is the (3, 3, 3) per-photon
    covariance; ``free`` the photon whose energy is unmeasured (−1: none).

    Returns the fitted (E, θ, φ) as (3, 3) (photon, quantity) and the χ².
    """
    a0 = np.stack([E, theta, phi], axis=1).ravel()
    measured = np.array([j for j in range(9) if j != 3 * free])
    chol = linalg.cholesky(linalg.block_diag(*cov)[np.ix_(measured, measured)], lower=True)
    m = measured.size

    def alpha(x: FloatArray) -> FloatArray:
        a = a0.copy()
        a[measured] += chol @ x[:m]
        if free >= 0:
            a[3 * free] = x[m]
        return a

    def jac(x: FloatArray) -> FloatArray:
        full = _constraint_and_jacobian(alpha(x), beam)[1]
        out = full[:, measured] @ chol
        return out if free < 0 else np.hstack([out, full[:, 3 * free : 3 * free + 1]])

    x0 = np.zeros(m if free < 0 else m + 1)
    if free >= 0:
        x0[m] = E[free]
    weights = np.ones_like(x0)
    weights[m:] = 0.0
    result = optimize.minimize(
        lambda x: float(np.sum(weights * x * x)),
        x0,
        jac=lambda x: 2.0 * weights * x,
        constraints=[
            {"type": "eq", "fun": lambda x: _constraint_and_jacobian(alpha(x), beam)[0], "jac": jac}
        ],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 100},
    )
    fitted = alpha(result.x)
    # at this ftol SLSQP sometimes cycles at the rounding floor (status 9, iteration limit);
    # such a point is kept only if it meets the constraints
    closure = np.abs(_constraint_and_jacobian(fitted, beam)[0]).max()
    if not (result.success or result.status == 9) or closure > 1e-9:
        raise RuntimeError(f"reference fit failed: {result.message} (closure {closure:.1e})")
    return fitted.reshape(3, 3), float(result.fun)


def reference_fits(
    E: FloatArray, theta: FloatArray, phi: FloatArray, cov: FloatArray, beam: FloatArray,
    free: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:  # fmt: skip
    """:func:`reference_fit` over events: fitted (n, 3, 3) and χ² (n,); ``cov`` diagonal or full."""
    cov = np.asarray(cov)
    if cov.ndim == 3:
        cov = kinfit.full_covariance(cov)
    n = len(E)
    free_idx = np.full(n, -1) if free is None else np.asarray(free)
    fitted = np.empty((n, 3, 3))
    chi2 = np.empty(n)
    for i in range(n):
        fitted[i], chi2[i] = reference_fit(E[i], theta[i], phi[i], cov[i], beam[i], free_idx[i])
    return fitted, chi2


def _random_correlated_covariance(rng: np.random.Generator, E: FloatArray) -> FloatArray:
    """Full (n, 3, 3, 3) covariances with the sample's σ and random correlations |ρ| < 0.5."""
    sigma = np.stack(
        [REL_SIGMA_E * E, np.full_like(E, SIGMA_THETA), np.full_like(E, SIGMA_PHI)], axis=-1
    )
    rho = rng.uniform(-0.5, 0.5, (*E.shape, 3))
    corr = np.broadcast_to(np.eye(3), (*E.shape, 3, 3)).copy()
    for r, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        corr[..., i, j] = corr[..., j, i] = rho[..., r]
    # keep it positive definite: |ρ| < 0.5 with three variables can still fail, so shrink
    eig_min = np.linalg.eigvalsh(corr)[..., 0]
    corr = np.where((eig_min > 0.05)[..., None, None], corr, np.eye(3))
    return corr * sigma[..., :, None] * sigma[..., None, :]


def _assert_close(fit: kinfit.KinFitResult, fitted: FloatArray, chi2: FloatArray) -> None:
    assert fit.converged.all()
    ours = np.stack([fit.E, fit.theta, fit.phi], axis=-1)
    rel = np.abs(ours - fitted) / np.abs(fitted)
    assert rel.max() < 1e-6, f"worst relative difference in (E, θ, φ): {rel.max():.2e}"
    # χ² relative, with an absolute floor for the few χ² ≈ 0
    assert np.all(np.abs(fit.chi2 - chi2) <= 1e-6 * np.maximum(chi2, 1e-3))


def test_agrees_with_scipy_reference() -> None:
    _truth, (E, theta, phi), cov, beam = smeared_sample(seed=11, n=300)
    fit = kinfit.fit_three_photons(E, theta, phi, cov, beam)
    fitted, chi2 = reference_fits(E, theta, phi, cov, beam)
    _assert_close(fit, fitted, chi2)


def test_agrees_with_scipy_reference_full_covariance() -> None:
    rng = np.random.default_rng(12)
    _, (E, theta, phi), _, beam = smeared_sample(seed=12, n=150)
    cov = _random_correlated_covariance(rng, E)
    fit = kinfit.fit_three_photons(E, theta, phi, cov, beam)
    fitted, chi2 = reference_fits(E, theta, phi, cov, beam)
    _assert_close(fit, fitted, chi2)


def test_free_energy_agrees_with_scipy_reference() -> None:
    rng = np.random.default_rng(13)
    _, (E, theta, phi), cov, beam = smeared_sample(seed=13, n=150)
    free = rng.integers(0, 3, len(E))
    E = E.copy()
    E[np.arange(len(E)), free] *= rng.uniform(0.5, 1.2, len(E))  # its energy is not trusted
    fit = kinfit.fit_three_photons_free_energy(E, theta, phi, cov, beam, free)
    fitted, chi2 = reference_fits(E, theta, phi, cov, beam, free)
    _assert_close(fit, fitted, chi2)
    assert fit.ndf == 3


@pytest.mark.parametrize("implementation", ["numba", "numpy"])
def test_reference_closure(implementation: str) -> None:
    """The reference itself meets the constraints; both implementations match it."""
    from kinfit.batched import fit_three_photons_numpy

    _, (E, theta, phi), cov, beam = smeared_sample(seed=14, n=40)
    fit_fn = kinfit.fit_three_photons if implementation == "numba" else fit_three_photons_numpy
    fitted, chi2 = reference_fits(E, theta, phi, cov, beam)
    p = kinfit.photon_four_momenta(fitted[..., 0], fitted[..., 1], fitted[..., 2])
    assert np.abs(p.sum(axis=1) - beam).max() < 1e-9
    _assert_close(fit_fn(E, theta, phi, cov, beam), fitted, chi2)
