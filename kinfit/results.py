"""The fixed result container of the kinematic fit and its status codes.

A :class:`KinFitResult` holds plain numpy arrays only, so it pickles (Dask ships it between
workers) and never changes shape with options. The conventions for events that did not fit are
part of the contract and are spelled out in :class:`FitStatus`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FitStatus", "KinFitResult", "photon_four_momenta"]

FloatArray = npt.NDArray[np.float64]


class FitStatus(enum.IntEnum):
    """Per-event status code of the fit (stored as ``int8`` in :attr:`KinFitResult.status`).

    Only ``OK`` events carry a fit. Every other code returns the *measured* values in
    ``E``, ``theta``, ``phi`` and ``cov`` (with any non-finite entry replaced by 0.0), ``chi2 = +inf``,
    ``pvalue = 0.0``, ``pulls = 0.0`` and ``converged = False``, so that no flagged output is NaN
    and none looks like a good fit.
    """

    #: converged: |Δχ²| < chi2_tolerance and every constraint |H_k| < constraint_tolerance (GeV),
    #: with every fitted energy > 0 and every fitted θ inside [0, π]
    OK = 0
    #: max_iterations linearisation steps done without meeting both convergence criteria
    NOT_CONVERGED = 1
    #: an input is unusable: a non-finite E, θ, φ, covariance or beam entry; E <= 0 (except for
    #: a free-energy photon); θ outside [0, π]; a photon covariance that is not symmetric positive
    #: definite; a beam with E <= 0 or not time-like (E² <= |p|²)
    BAD_INPUT = 2
    #: numerical failure: the constraint-space covariance D V Dᵀ is not positive definite (e.g.
    #: all photons collinear) or an intermediate value became non-finite
    SINGULAR = 3
    #: converged, but to a non-physical point: a fitted energy <= 0 or a fitted θ outside [0, π]
    UNPHYSICAL = 4


@dataclass(frozen=True, eq=False)
class KinFitResult:
    """Output of :func:`kinfit.fit_three_photons` for ``n`` events of three photons.

    Angles are in rad (lab frame, θ from +z), energies in GeV. ``phi`` is not wrapped: a fitted φ
    lies on the same branch as the measured one. For the meaning of the values of events with
    ``status != 0`` see :class:`FitStatus`.

    Attributes
    ----------
    E, theta, phi
        ``(n, 3)`` fitted energies and angles.
    cov
        ``(n, 3, 3, 3)`` fitted covariance of each photon's (E, θ, φ) (photon, row, column);
        correlations between different photons exist after the fit but are not stored.
    chi2
        ``(n,)`` χ² of the fit (``+inf`` for flagged events).
    ndf
        Degrees of freedom: the number of constraints minus the number of unmeasured
        parameters (4 for the standard fit, 3 with one free energy).
    pvalue
        ``(n,)`` upper-tail probability of χ² for ``ndf`` degrees of freedom (0 when flagged).
    iterations
        ``(n,)`` linearisation steps performed (0 for bad input).
    converged
        ``(n,)`` ``status == FitStatus.OK``.
    status
        ``(n,)`` ``int8`` :class:`FitStatus` code.
    pulls
        ``(n, 3, 3)`` (fitted − measured) / sqrt(σ²_measured − σ²_fitted) per photon and
        quantity (E, θ, φ); 0 for flagged events, for an unmeasured (free) energy and where the
        fit does not reduce the variance.
    """

    E: FloatArray
    theta: FloatArray
    phi: FloatArray
    cov: FloatArray
    chi2: FloatArray
    ndf: int
    pvalue: FloatArray
    iterations: npt.NDArray[np.int32]
    converged: npt.NDArray[np.bool_]
    status: npt.NDArray[np.int8]
    pulls: FloatArray

    def __len__(self) -> int:
        return int(self.chi2.shape[0])

    def four_momenta(self) -> FloatArray:
        """Fitted photon four-momenta ``(n, 3, 4)`` = (E, px, py, pz) in GeV."""
        return photon_four_momenta(self.E, self.theta, self.phi)


def photon_four_momenta(E: FloatArray, theta: FloatArray, phi: FloatArray) -> FloatArray:
    """Four-momenta (E, E sinθ cosφ, E sinθ sinφ, E cosθ) of massless photons, GeV.

    >>> p = photon_four_momenta(np.array([2.0]), np.array([np.pi / 2]), np.array([0.0]))
    >>> np.round(p, 12).tolist()
    [[2.0, 2.0, 0.0, 0.0]]
    """
    E = np.asarray(E, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    sin_t = np.sin(theta)
    out = np.empty((*np.broadcast_shapes(E.shape, theta.shape, phi.shape), 4))
    out[..., 0] = E
    out[..., 1] = E * sin_t * np.cos(phi)
    out[..., 2] = E * sin_t * np.sin(phi)
    out[..., 3] = E * np.cos(theta)
    return out
