"""ECL photon resolution model (physics.md "ECL", basf2 ECLCovarianceMatrixModule parameters).

sigma = a/E + b/sqrt(E) + c/E^(1/4) + d, E in GeV: the relative energy resolution in percent per
region, the polar and azimuthal resolutions in mrad (barrel; the endcaps use the barrel form
scaled by ``endcap_scale``, an *estimate*; the gaps use the barrel energy form scaled by
``gap_scale``, an *estimate*). All functions are pure and vectorised.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

from .geometry import REGION_BACKWARD, REGION_BARREL, REGION_FORWARD, REGION_GAP

__all__ = [
    "ENERGY_PARAMETERS",
    "PHI_PARAMETERS",
    "THETA_PARAMETERS",
    "TIME_E_FLOOR_GEV",
    "energy_resolution",
    "phi_resolution",
    "theta_resolution",
    "time_resolution",
]

FloatArray = npt.NDArray[np.float64]

#: (a, b, c, d) of sigma_E/E in percent, per region (physics.md table)
ENERGY_PARAMETERS = {
    REGION_BARREL: (-0.0473491, 1.02015, -0.705164, 1.77086),
    REGION_FORWARD: (-0.0912379, 1.91849, -2.82169, 3.03119),
    REGION_BACKWARD: (-0.106729, 2.38163, -4.11299, 4.14056),
}
#: (a, b, c, d) of sigma_theta and sigma_phi in mrad, barrel
THETA_PARAMETERS = (-0.221073, 2.19876, 1.50833, 0.359609)
PHI_PARAMETERS = (-0.21842, 0.648976, 7.1901, -3.10025)

_E_FLOOR = 0.02  # GeV: the parametrisation is used no lower than this
#: the energy below which the time resolution is taken at this value (GeV)
TIME_E_FLOOR_GEV = _E_FLOOR
_ENERGY_TABLE = np.array(
    [
        ENERGY_PARAMETERS[REGION_BARREL],  # gap: the barrel form, scaled
        ENERGY_PARAMETERS[REGION_FORWARD],
        ENERGY_PARAMETERS[REGION_BARREL],
        ENERGY_PARAMETERS[REGION_BACKWARD],
    ]
)


@nb.njit(cache=True, inline="always")
def _form(e: float, a: float, b: float, c: float, d: float) -> float:
    e = max(e, _E_FLOOR)
    root = np.sqrt(e)
    return a / e + b / root + c / np.sqrt(root) + d


@nb.vectorize(["float64(float64, int64, float64)"], cache=True)
def _energy_resolution(energy: float, region: int, gap_scale: float) -> float:
    row = _ENERGY_TABLE[region]
    value = _form(energy, row[0], row[1], row[2], row[3])
    if region == REGION_GAP:
        value *= gap_scale
    return max(value, 0.3) / 100.0


@nb.vectorize(["float64(float64, int64, float64, float64, float64, float64, float64)"], cache=True)
def _angular(
    energy: float, region: int, scale: float, a: float, b: float, c: float, d: float
) -> float:
    value = max(_form(energy, a, b, c, d), 0.3) / 1000.0
    return value if region == REGION_BARREL else value * scale


def energy_resolution(
    energy: npt.ArrayLike, region: npt.ArrayLike, gap_scale: float = 2.0
) -> FloatArray:
    """Relative energy resolution sigma_E/E (a fraction, not percent).

    >>> round(float(energy_resolution(1.0, REGION_BARREL)), 4)
    0.0204
    """
    return np.asarray(_energy_resolution(energy, np.asarray(region, dtype=np.int64), gap_scale))


def theta_resolution(
    energy: npt.ArrayLike, region: npt.ArrayLike, endcap_scale: float = 1.5
) -> FloatArray:
    """Polar-angle resolution in radians."""
    return np.asarray(
        _angular(energy, np.asarray(region, dtype=np.int64), endcap_scale, *THETA_PARAMETERS)
    )


def phi_resolution(
    energy: npt.ArrayLike, region: npt.ArrayLike, endcap_scale: float = 1.5
) -> FloatArray:
    """Azimuthal-angle resolution in radians."""
    return np.asarray(
        _angular(energy, np.asarray(region, dtype=np.int64), endcap_scale, *PHI_PARAMETERS)
    )


def time_resolution(
    energy: npt.ArrayLike, constant_ns: float = 1.0, floor_ns: float = 1.0
) -> FloatArray:
    """Cluster time resolution in ns: sqrt((c/E)^2 + floor^2), about 10 ns at 100 MeV and 1-1.5 ns
    above 1 GeV (physics.md, *estimate*)."""
    e = np.maximum(np.asarray(energy, dtype=np.float64), _E_FLOOR)
    return np.asarray(np.hypot(constant_ns / e, floor_ns))
