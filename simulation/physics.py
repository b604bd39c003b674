"""Physical constants and closed-form formulas of the ALP search.

Every number here is taken from ``shared/physics.md`` and cites its source there. Functions are
pure and vectorised over numpy arrays; energies and masses are in GeV, lengths in cm, cross-sections
in pb unless a name says otherwise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALPHA",
    "BR_GG",
    "E_HER_NOMINAL",
    "E_LER_NOMINAL",
    "GEV2_TO_PB",
    "HALF_CROSSING_ANGLE",
    "HBARC_GEV_CM",
    "MESON_MASSES",
    "SIGMA_E_HER",
    "SIGMA_E_LER",
    "alp_decay_length",
    "alp_momentum_cms",
    "alp_width",
    "beam_four_momenta",
    "sigma_alp",
]

FloatArray = npt.NDArray[np.float64]

#: Fine-structure constant in the Thomson limit (CODATA 2018).
ALPHA = 1.0 / 137.035999084
#: Conversion of a cross-section from GeV^-2 to pb (physics.md: 1 GeV^-2 = 0.3894e9 pb).
GEV2_TO_PB = 0.3894e9
#: hbar * c in GeV cm (PDG).
HBARC_GEV_CM = 1.973269804e-14

#: SuperKEKB nominal beam energies (GeV) and energy spreads (GeV), physics.md "Beams".
E_HER_NOMINAL = 7.004
E_LER_NOMINAL = 4.002
SIGMA_E_HER = 5.13e-3
SIGMA_E_LER = 2.375e-3
#: Each beam makes 41.5 mrad with the z axis in the x-z plane (83 mrad crossing angle).
HALF_CROSSING_ANGLE = 41.5e-3

#: Pseudoscalar meson masses (GeV, PDG 2024).
MESON_MASSES = {"pi0": 0.1349768, "eta": 0.547862, "etaprime": 0.95778}
#: Branching fractions to two photons (physics.md "Backgrounds").
BR_GG = {"pi0": 0.988, "eta": 0.394, "etaprime": 0.022}


def beam_four_momenta(
    e_her: npt.ArrayLike, e_ler: npt.ArrayLike, half_angle: float = HALF_CROSSING_ANGLE
) -> tuple[FloatArray, FloatArray]:
    """Lab four-momenta ``(E, px, py, pz)`` of the electron (HER) and positron (LER) beams.

    The HER electron travels along +z and the LER positron along -z, both tilted by
    ``half_angle`` towards +x (Belle II convention: the boost points 0.151 rad away from z).
    Electron masses are neglected (m_e / E < 1e-4).

    >>> p_e, p_p = beam_four_momenta(7.004, 4.002)
    >>> s = (p_e + p_p)[0] ** 2 - ((p_e + p_p)[1:] ** 2).sum()
    >>> round(float(np.sqrt(s)), 4)
    10.5796
    """
    e_her = np.asarray(e_her, dtype=np.float64)
    e_ler = np.asarray(e_ler, dtype=np.float64)
    sin_a, cos_a = np.sin(half_angle), np.cos(half_angle)
    zero = np.zeros_like(e_her)
    p_electron = np.stack([e_her, e_her * sin_a, zero, e_her * cos_a], axis=-1)
    p_positron = np.stack([e_ler, e_ler * sin_a, np.zeros_like(e_ler), -e_ler * cos_a], axis=-1)
    return p_electron, p_positron


def sigma_alp(mass: npt.ArrayLike, coupling: npt.ArrayLike, sqrt_s: npt.ArrayLike) -> FloatArray:
    """Cross-section of e+e- -> gamma a in pb.

    sigma = alpha g^2 / 24 * (1 - m_a^2/s)^3 (Dolan et al., JHEP 12 (2017) 094, Eq. 2.4;
    physics.md "Signal"), g in GeV^-1.

    >>> round(float(sigma_alp(0.2, 1e-3, 10.58)), 3)
    0.118
    """
    mass = np.asarray(mass, dtype=np.float64)
    s = np.asarray(sqrt_s, dtype=np.float64) ** 2
    ratio = np.clip(1.0 - mass**2 / s, 0.0, None)
    return np.asarray(ALPHA * np.asarray(coupling) ** 2 / 24.0 * ratio**3 * GEV2_TO_PB)


def alp_width(mass: npt.ArrayLike, coupling: npt.ArrayLike) -> FloatArray:
    """Total width Gamma(a -> gamma gamma) = g^2 m_a^3 / (64 pi) in GeV (BR = 1)."""
    mass = np.asarray(mass, dtype=np.float64)
    return np.asarray(np.asarray(coupling) ** 2 * mass**3 / (64.0 * np.pi))


def alp_momentum_cms(mass: npt.ArrayLike, sqrt_s: npt.ArrayLike) -> FloatArray:
    """ALP momentum in the e+e- rest frame, p_a = (s - m_a^2) / (2 sqrt(s)), in GeV."""
    mass = np.asarray(mass, dtype=np.float64)
    sqrt_s = np.asarray(sqrt_s, dtype=np.float64)
    return np.asarray((sqrt_s**2 - mass**2) / (2.0 * sqrt_s))


def alp_decay_length(
    mass: npt.ArrayLike, coupling: npt.ArrayLike, momentum: npt.ArrayLike
) -> FloatArray:
    """Mean decay length L = (p / m) c tau in cm, with c tau = hbar c / Gamma.

    physics.md: m_a = 0.2 GeV, p_a = 5.29 GeV gives 0.13 mm at g = 1e-3 GeV^-1.

    >>> round(float(alp_decay_length(0.2, 1e-3, alp_momentum_cms(0.2, 10.58))) * 10, 2)
    0.13
    """
    mass = np.asarray(mass, dtype=np.float64)
    ctau = HBARC_GEV_CM / alp_width(mass, coupling)
    return np.asarray(np.asarray(momentum) / mass * ctau)
