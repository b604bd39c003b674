"""Photon covariance matrices of (E, θ, φ) for the kinematic fit.

Two sources (physics.md "ECL"): the cluster errors stored in the ntuples (``cluster_errE``,
``cluster_errTheta``, ``cluster_errPhi``: the diagonal of the basf2 photon covariance), or a
resolution table measured by the calibration stage (relative energy resolution and angular
resolutions per ECL region, polar-angle bin and energy bin, from e+e- → μ+μ-γ). Both give the
diagonal form ``(n, 3, 3)`` = (σ_E², σ_θ², σ_φ²) per photon that :func:`kinfit.fit_three_photons`
accepts; :func:`full_covariance` turns it into ``(n, 3, 3, 3)`` matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "ResolutionTable",
    "diagonal_covariance",
    "full_covariance",
    "resolution_covariance",
]

FloatArray = npt.NDArray[np.float64]

#: number of ECL region codes (0 gap, 1 forward, 2 barrel, 3 backward; design.md ntuple contract)
N_REGIONS = 4


def diagonal_covariance(
    errE: npt.ArrayLike, errTheta: npt.ArrayLike, errPhi: npt.ArrayLike
) -> FloatArray:
    """Per-photon variances ``(n, 3, 3)`` = (σ_E², σ_θ², σ_φ²) from the cluster errors.

    ``errE`` (GeV), ``errTheta`` and ``errPhi`` (rad) are ``(n, 3)`` standard deviations (the
    ntuple's ``cluster_errE``, ``cluster_errTheta``, ``cluster_errPhi`` of the three photons).

    >>> diagonal_covariance([[0.1, 0.2, 0.3]], [[1e-3] * 3], [[2e-3] * 3])[0, 0].tolist()
    [0.010000000000000002, 1e-06, 4e-06]
    """
    arrays = [np.asarray(x, dtype=np.float64) for x in (errE, errTheta, errPhi)]
    shape = np.broadcast_shapes(*(x.shape for x in arrays))
    out = np.empty((*shape, 3))
    for q, x in enumerate(arrays):
        out[..., q] = x * x
    return out


def full_covariance(diagonal: npt.ArrayLike) -> FloatArray:
    """Expand per-photon variances ``(..., 3)`` into diagonal 3x3 matrices ``(..., 3, 3)``.

    >>> full_covariance([[1.0, 2.0, 3.0]])[0].tolist()
    [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
    """
    diagonal = np.asarray(diagonal, dtype=np.float64)
    out = np.zeros((*diagonal.shape, 3))
    for q in range(3):
        out[..., q, q] = diagonal[..., q]
    return out


@dataclass(frozen=True, eq=False)
class ResolutionTable:
    """Photon resolutions binned in ECL region, polar angle and energy.

    ``rel_energy`` (σ_E/E, a fraction), ``sigma_theta`` and ``sigma_phi`` (rad) have shape
    ``(n_regions, n_theta_bins, n_energy_bins)``, with ``n_regions`` either 4 (indexed by the
    region code: 0 gap, 1 forward, 2 barrel, 3 backward) or 1 (no region dependence), and
    ``n_theta_bins`` = ``len(theta_edges) - 1`` (1 with the default edges [0, π]). A value is
    constant inside its bin; energies and angles outside the edges use the first or last bin.

    >>> table = ResolutionTable(energy_edges=[0.1, 1.0, 10.0], rel_energy=[[[0.03, 0.02]]],
    ...                         sigma_theta=[[[6e-3, 4e-3]]], sigma_phi=[[[8e-3, 4e-3]]])
    >>> table.lookup(np.array([2.0]), np.array([1.0]), np.array([2]))[0].tolist()
    [0.02, 0.004, 0.004]
    """

    energy_edges: FloatArray
    rel_energy: FloatArray
    sigma_theta: FloatArray
    sigma_phi: FloatArray
    theta_edges: FloatArray = field(default_factory=lambda: np.array([0.0, np.pi]))

    def __post_init__(self) -> None:
        def freeze(name: str, value: npt.ArrayLike) -> FloatArray:
            array = np.array(value, dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, name, array)
            return array

        for name in ("energy_edges", "theta_edges"):
            edges = freeze(name, getattr(self, name))
            if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
                raise ValueError(f"{name} must be a strictly increasing 1-d array of >= 2 edges")
        shape = (self.theta_edges.size - 1, self.energy_edges.size - 1)
        for name in ("rel_energy", "sigma_theta", "sigma_phi"):
            values = freeze(name, getattr(self, name))
            if values.ndim != 3 or values.shape[1:] != shape or values.shape[0] not in (1, 4):
                raise ValueError(
                    f"{name} must have shape (1 or {N_REGIONS}, {shape[0]}, {shape[1]}), "
                    f"got {values.shape}"
                )
            if not np.all(np.isfinite(values) & (values > 0)):
                raise ValueError(f"{name} must be finite and positive")

    def lookup(self, E: npt.ArrayLike, theta: npt.ArrayLike, region: npt.ArrayLike) -> FloatArray:
        """(σ_E/E, σ_θ, σ_φ) ``(..., 3)`` for photons of energy ``E`` (GeV), polar angle ``theta``
        (rad) and ECL region code ``region`` (values outside 0-3 use region 0, the gap)."""
        E = np.asarray(E, dtype=np.float64)
        theta = np.asarray(theta, dtype=np.float64)
        region = np.asarray(region)
        shape = np.broadcast_shapes(E.shape, theta.shape, region.shape)
        e_bin = _bin_index(self.energy_edges, np.broadcast_to(E, shape))
        t_bin = _bin_index(self.theta_edges, np.broadcast_to(theta, shape))
        if self.rel_energy.shape[0] == 1:
            r_bin = np.zeros(shape, dtype=np.intp)
        else:
            r_bin = np.broadcast_to(region, shape).astype(np.intp)
            r_bin = np.where((r_bin >= 0) & (r_bin < N_REGIONS), r_bin, 0)
        out = np.empty((*shape, 3))
        for q, values in enumerate((self.rel_energy, self.sigma_theta, self.sigma_phi)):
            out[..., q] = values[r_bin, t_bin, e_bin]
        return out


def _bin_index(edges: FloatArray, x: FloatArray) -> npt.NDArray[np.intp]:
    """Index of the bin holding x, clamped to the first and last bins (NaN goes to bin 0)."""
    index = np.searchsorted(edges, np.nan_to_num(x, nan=edges[0]), side="right") - 1
    return np.clip(index, 0, edges.size - 2)


def resolution_covariance(
    E: npt.ArrayLike,
    theta: npt.ArrayLike,
    region: npt.ArrayLike,
    table: ResolutionTable,
    *,
    full: bool = False,
) -> FloatArray:
    """Photon covariance from a resolution table: σ_E = (σ_E/E)·E, σ_θ, σ_φ looked up per photon.

    ``E`` (GeV), ``theta`` (rad) and ``region`` (ECL region code) are ``(n, 3)``; returns the
    diagonal form ``(n, 3, 3)`` = (σ_E², σ_θ², σ_φ²), or with ``full=True`` diagonal 3x3
    matrices ``(n, 3, 3, 3)``. The energy resolution is evaluated at the measured energy, as the
    calibration binned it. A non-finite ``E`` gives a non-finite variance, which the fit flags
    as bad input.
    """
    E = np.asarray(E, dtype=np.float64)
    sigmas = table.lookup(E, theta, region)
    sigmas[..., 0] *= np.abs(E)
    variances = sigmas * sigmas
    return full_covariance(variances) if full else variances
