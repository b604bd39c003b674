"""Kinematic fit of three photons to the beam four-momentum (physics.md "Kinematic fit").

Pure functions over arrays, compiled with numba; no files, no framework objects.
"""

from __future__ import annotations

from .covariance import (
    ResolutionTable,
    diagonal_covariance,
    full_covariance,
    resolution_covariance,
)
from .fit import fit_three_photons, fit_three_photons_free_energy
from .results import FitStatus, KinFitResult, photon_four_momenta

__all__ = [
    "FitStatus",
    "KinFitResult",
    "ResolutionTable",
    "diagonal_covariance",
    "fit_three_photons",
    "fit_three_photons_free_energy",
    "full_covariance",
    "photon_four_momenta",
    "resolution_covariance",
]
