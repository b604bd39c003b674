"""Belle II ECL and CDC geometry as the fast simulation models it (physics.md "ECL", "Tracking").

Lengths in cm, angles in degrees unless the name says radians. The ECL is modelled as a barrel
cylinder of radius 125 cm closed by two endcap planes at z = +196 cm (forward) and z = -102 cm
(backward); clusters are positioned where a straight line from the production point meets that
surface, and their direction is reconstructed from the interaction point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "BACKWARD_Z_CM",
    "BARREL_RADIUS_CM",
    "CDC_THETA_DEG",
    "CRYSTAL_SIZE_CM",
    "ECL_THETA_DEG",
    "FORWARD_Z_CM",
    "REGION_BACKWARD",
    "REGION_BARREL",
    "REGION_FORWARD",
    "REGION_GAP",
    "distance_to_ecl",
    "ecl_region",
]

FloatArray = npt.NDArray[np.float64]

BARREL_RADIUS_CM = 125.0
FORWARD_Z_CM = 196.0
BACKWARD_Z_CM = -102.0
CRYSTAL_SIZE_CM = 5.4
#: polar-angle coverage of the ECL and of the CDC, degrees
ECL_THETA_DEG = (12.4, 155.1)
CDC_THETA_DEG = (17.0, 150.0)
#: region boundaries, degrees: forward | gap | barrel | gap | backward
_REGION_EDGES_DEG = (12.4, 31.4, 32.2, 128.7, 130.7, 155.1)

REGION_GAP = 0
REGION_FORWARD = 1
REGION_BARREL = 2
REGION_BACKWARD = 3


def ecl_region(theta_rad: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """ECL region code of polar angles in radians: 0 gap (or outside), 1 forward, 2 barrel,
    3 backward (the ntuple's ``cluster_region``)."""
    deg = np.degrees(np.asarray(theta_rad, dtype=np.float64))
    e = _REGION_EDGES_DEG
    region = np.zeros(deg.shape, dtype=np.int32)
    region[(deg >= e[0]) & (deg < e[1])] = REGION_FORWARD
    region[(deg >= e[2]) & (deg < e[3])] = REGION_BARREL
    region[(deg >= e[4]) & (deg <= e[5])] = REGION_BACKWARD
    return region


def distance_to_ecl(direction: FloatArray, origin: FloatArray | None = None) -> FloatArray:
    """Path length (cm) from ``origin`` (default: the interaction point) along unit vectors
    ``direction`` ``(..., 3)`` to the ECL inner surface (barrel cylinder or endcap plane).

    The endcap holes around the beam pipe are ignored here: the detector acceptance is applied
    separately, by polar angle.
    """
    d = np.asarray(direction, dtype=np.float64)
    v = np.zeros_like(d) if origin is None else np.broadcast_to(origin, d.shape)
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = 2.0 * (v[..., 0] * d[..., 0] + v[..., 1] * d[..., 1])
    c = v[..., 0] ** 2 + v[..., 1] ** 2 - BARREL_RADIUS_CM**2
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_barrel = np.where(
            a > 0, (-b + np.sqrt(np.clip(b * b - 4 * a * c, 0, None))) / (2 * a), np.inf
        )
        lam_fwd = np.where(d[..., 2] > 0, (FORWARD_Z_CM - v[..., 2]) / d[..., 2], np.inf)
        lam_bwd = np.where(d[..., 2] < 0, (BACKWARD_Z_CM - v[..., 2]) / d[..., 2], np.inf)
    return np.asarray(np.minimum(lam_barrel, np.minimum(lam_fwd, lam_bwd)))
