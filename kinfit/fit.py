"""Kinematic fit of three photons to the beam four-momentum (physics.md "Kinematic fit").

Each photon is measured as (E, θ, φ) with a 3x3 covariance; the four constraints
Σ_i p_i = P_beam (E, px, py, pz) are imposed with Lagrange multipliers and iterative linearisation
(P. Avery, "Applied Fitting Theory VI: Formulas for Kinematic Fitting", CLEO CBX 98-37; the
same formulation as V. Blobel and E. Lohrmann, "Statistische und numerische Methoden der
Datenanalyse", Teubner 1998, chapter on fits with constraints). The compiled loops live in
:mod:`kinfit.lanes` (the standard fit, eight events side by side in SIMD lanes) and
:mod:`kinfit.kernel` (one event at a time: the fit with a free energy, and the baseline the
lanes kernel is checked and timed against); this module checks array shapes, makes the inputs
contiguous and packs the :class:`KinFitResult`.
Per-event problems never raise: they are flagged in ``status`` (see :class:`kinfit.FitStatus`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .kernel import fit_events
from .lanes import fit_events_lanes
from .results import KinFitResult

__all__ = [
    "check_options",
    "fit_three_photons",
    "fit_three_photons_free_energy",
    "prepare_inputs",
]

FloatArray = npt.NDArray[np.float64]

_EMPTY_FULL = np.empty((0, 3, 3, 3))
_EMPTY_DIAG = np.empty((0, 3, 3))


def prepare_inputs(
    E: npt.ArrayLike,
    theta: npt.ArrayLike,
    phi: npt.ArrayLike,
    cov: npt.ArrayLike,
    beam: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Check shapes and return C-contiguous float64 arrays (views where the input already is):
    E, theta, phi ``(n, 3)``, cov ``(n, 3, 3)`` (diagonal) or ``(n, 3, 3, 3)`` (full), beam
    ``(n, 4)``. Raises ``ValueError`` on a shape mismatch, the only error the fit raises; bad
    *values* are flagged per event instead."""
    E, theta, phi = (np.ascontiguousarray(x, dtype=np.float64) for x in (E, theta, phi))
    beam = np.ascontiguousarray(beam, dtype=np.float64)
    cov = np.ascontiguousarray(cov, dtype=np.float64)
    if E.ndim != 2 or E.shape[1] != 3:
        raise ValueError(f"E must have shape (n, 3), got {E.shape}")
    n = E.shape[0]
    for name, x in (("theta", theta), ("phi", phi)):
        if x.shape != (n, 3):
            raise ValueError(f"{name} must have shape {(n, 3)} like E, got {x.shape}")
    if beam.shape != (n, 4):
        raise ValueError(f"beam must have shape {(n, 4)} (E, px, py, pz), got {beam.shape}")
    if cov.shape not in ((n, 3, 3), (n, 3, 3, 3)):
        raise ValueError(
            f"cov must have shape {(n, 3, 3)} (diagonal variances) or {(n, 3, 3, 3)} (full), "
            f"got {cov.shape}"
        )
    return E, theta, phi, cov, beam


def check_options(max_iterations: int, chi2_tolerance: float, constraint_tolerance: float) -> None:
    """Raise ``ValueError`` unless the iteration bound and the tolerances are positive."""
    if int(max_iterations) != max_iterations or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}")
    if not chi2_tolerance > 0:
        raise ValueError(f"chi2_tolerance must be > 0, got {chi2_tolerance!r}")
    if not constraint_tolerance > 0:
        raise ValueError(f"constraint_tolerance must be > 0, got {constraint_tolerance!r}")


def _run(
    E: npt.ArrayLike,
    theta: npt.ArrayLike,
    phi: npt.ArrayLike,
    cov: npt.ArrayLike,
    beam: npt.ArrayLike,
    free: npt.NDArray[np.int8],
    ndf: int,
    max_iterations: int,
    chi2_tolerance: float,
    constraint_tolerance: float,
    lanes: bool = True,
) -> KinFitResult:
    check_options(max_iterations, chi2_tolerance, constraint_tolerance)
    E, theta, phi, cov, beam = prepare_inputs(E, theta, phi, cov, beam)
    if free.shape != (E.shape[0],):
        raise ValueError(f"free_photon must have shape {(E.shape[0],)}, got {free.shape}")
    full = cov.ndim == 4
    cov_full = cov if full else _EMPTY_FULL
    cov_diag = _EMPTY_DIAG if full else cov
    options = (int(max_iterations), float(chi2_tolerance), float(constraint_tolerance))
    if ndf == 4 and lanes:
        # the standard fit: lanes of events side by side (kinfit.lanes)
        out = fit_events_lanes(E, theta, phi, cov_full, cov_diag, full, beam, *options)
    else:
        out = fit_events(E, theta, phi, cov_full, cov_diag, full, beam, free, *options)
    fE, ftheta, fphi, fcov, chi2, pvalue, iterations, status, pulls = out
    return KinFitResult(
        E=fE,
        theta=ftheta,
        phi=fphi,
        cov=fcov,
        chi2=chi2,
        ndf=ndf,
        pvalue=pvalue,
        iterations=iterations,
        converged=status == 0,
        status=status,
        pulls=pulls,
    )


def fit_three_photons(
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
    """Fit three massless photons per event to the beam four-momentum (4 constraints, ndf = 4).

    Parameters
    ----------
    E, theta, phi
        ``(n, 3)`` measured energies (GeV), polar angles from +z (rad) and azimuths (rad), lab.
    cov
        ``(n, 3, 3)``: per-photon variances (σ_E², σ_θ², σ_φ²) in GeV², rad², rad²; or
        ``(n, 3, 3, 3)``: each photon's full symmetric 3x3 covariance of (E, θ, φ).
    beam
        ``(n, 4)`` beam four-momentum (E, px, py, pz) in GeV, lab.
    max_iterations
        Bound on the number of linearisation steps.
    chi2_tolerance
        Convergence requires |χ²_k − χ²_{k−1}| below this.
    constraint_tolerance
        Convergence also requires every |Σ p_i − P_beam| component below this (GeV) at the
        fitted point.

    Each step solves the linearised problem with Lagrange multipliers (Avery CBX 98-37, see
    :mod:`kinfit.kernel`); the fitted covariance is V₀ − V₀Dᵀ(DV₀Dᵀ)⁻¹DV₀ with D
    taken at the solution. Events that cannot be fitted are flagged, never raised: see
    :class:`kinfit.FitStatus` for the codes and the values then returned.

    >>> beam = np.array([[10.0, 0.0, 0.0, 0.0]])
    >>> E = np.array([[4.0, 3.0, 3.0]])
    >>> theta = np.full((1, 3), np.pi / 2)
    >>> phi = np.array([[0.0, np.pi - np.arccos(2 / 3), np.pi + np.arccos(2 / 3)]])
    >>> cov = np.broadcast_to([0.01, 1e-5, 1e-5], (1, 3, 3))
    >>> result = fit_three_photons(E * 1.01, theta, phi, cov, beam)
    >>> int(result.status[0]), result.ndf, bool(abs(result.E.sum() - 10.0) < 1e-9)
    (0, 4, True)
    """
    n = np.shape(E)[0] if np.ndim(E) > 0 else 0
    free = np.full(n, -1, dtype=np.int8)
    return _run(E, theta, phi, cov, beam, free, 4, max_iterations, chi2_tolerance,
                constraint_tolerance)  # fmt: skip


def _fit_three_photons_scalar(
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
    """:func:`fit_three_photons` through the scalar kernel (:func:`kinfit.kernel.fit_events`,
    one event at a time) instead of the lanes kernel: the baseline that
    ``tests/test_kinfit_lanes.py`` and ``benchmarks/kinfit.py`` compare the lanes kernel with."""
    n = np.shape(E)[0] if np.ndim(E) > 0 else 0
    free = np.full(n, -1, dtype=np.int8)
    return _run(E, theta, phi, cov, beam, free, 4, max_iterations, chi2_tolerance,
                constraint_tolerance, lanes=False)  # fmt: skip


def fit_three_photons_free_energy(
    E: npt.ArrayLike,
    theta: npt.ArrayLike,
    phi: npt.ArrayLike,
    cov: npt.ArrayLike,
    beam: npt.ArrayLike,
    free_photon: npt.ArrayLike,
    *,
    max_iterations: int = 20,
    chi2_tolerance: float = 1e-4,
    constraint_tolerance: float = 1e-7,
) -> KinFitResult:
    """The fit of :func:`fit_three_photons` with one photon's energy unmeasured (3C, ndf = 3).

    Why: a photon whose direction is good but whose energy response is not a single photon's (a
    cluster in an ECL gap or with shower leakage, physics.md "ECL"; two nearby photons merged into
    one cluster, whose single-photon energy correction and resolution do not apply) should not
    pull the fit through its energy. Its energy becomes an unmeasured parameter fixed by the
    constraints (Avery CBX 98-37, unmeasured parameters) and the χ² tests the three remaining
    degrees of freedom. The same fit predicts a photon's energy from the other two and the beam,
    which is a check of the energy scale in three-photon events. A photon with a *wrong
    direction* (an ALP decaying far from the interaction point) is not cured by this.

    ``free_photon`` is ``(n,)`` with the index 0, 1 or 2 of the free photon in each event. Its
    measured energy is only the starting value (if it is not finite and positive the start is
    E_beam − the other two energies, at least 1e-3 E_beam); its energy variance and correlations
    are ignored, and its (θ, φ) 2x2 block must be positive definite. In the result its energy
    pull is 0 and ``cov`` holds its fitted variance and its correlations with its own angles.
    """
    free = np.asarray(free_photon)
    if free.ndim != 1 or (free.size and not np.isin(free, (0, 1, 2)).all()):
        raise ValueError("free_photon must be a 1-d array of photon indices 0, 1 or 2")
    return _run(E, theta, phi, cov, beam, free.astype(np.int8), 3, max_iterations,
                chi2_tolerance, constraint_tolerance)  # fmt: skip
