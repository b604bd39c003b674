"""From a cross-section limit to a limit on g_agg, with the ALP required to decay in the detector.

The expected signal is N_sig = L sigma(g, m) epsilon(m) P_decay(g, m) (physics.md "Signal shape
and fit"), with sigma(g, m) = alpha g^2 / 24 (1 - m^2/s)^3 (Dolan et al., JHEP 12 (2017) 094) and
P_decay the probability that the ALP decays before it reaches the ECL inner surface:

    P_decay = < 1 - exp(-D(direction) / L(p_lab)) >,    L = (p_lab / m) c tau,

averaged over the production angle in the e+e- rest frame, dsigma/dcos theta* ~ 1 + cos^2
theta* (Gauss-Legendre in cos theta*, uniform in phi*), each direction boosted to the lab with the
nominal SuperKEKB beams; D is ``simulation.geometry.distance_to_ecl``. The cross-section limit is
on sigma x P_decay (the visible cross-section of ALPs that decay inside the ECL); the coupling
limit solves sigma(g, m) P_decay(g, m) = sigma_UL(m), whose left side rises monotonically with g.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from simulation.geometry import distance_to_ecl
from simulation.kinematics import CollisionFrame
from simulation.physics import (
    E_HER_NOMINAL,
    E_LER_NOMINAL,
    alp_decay_length,
    beam_four_momenta,
    sigma_alp,
)

__all__ = ["DecayGeometry", "coupling_limit", "decay_geometry", "decay_probability", "mean_xsec"]

FloatArray = npt.NDArray[np.float64]
_G_RANGE = (1e-9, 10.0)


@dataclass(frozen=True, eq=False)
class DecayGeometry:
    """Quadrature of the ALP directions of one mass: lab momentum (GeV), distance to the ECL
    (cm) and weight (summing to one) of each node."""

    mass: float
    momentum: FloatArray
    distance: FloatArray
    weight: FloatArray


def decay_geometry(
    mass: float,
    e_her: float = E_HER_NOMINAL,
    e_ler: float = E_LER_NOMINAL,
    n_theta: int = 48,
    n_phi: int = 24,
) -> DecayGeometry:
    """Lab momenta and ECL distances of ALPs of ``mass`` (GeV) on a (cos theta*, phi*) grid."""
    x, wx = np.polynomial.legendre.leggauss(n_theta)
    wx = wx * (1.0 + x**2) * 3.0 / 8.0  # 1 + cos^2 theta*, normalised on [-1, 1]
    phi = (np.arange(n_phi) + 0.5) * 2.0 * np.pi / n_phi
    cos_t = np.repeat(x, n_phi)
    w = np.repeat(wx, n_phi) / n_phi
    ph = np.tile(phi, n_theta)
    sin_t = np.sqrt(1.0 - cos_t**2)
    p_e, p_p = beam_four_momenta(np.full(1, e_her), np.full(1, e_ler))
    frame = CollisionFrame(p_e, p_p)
    sqrt_s = float(frame.sqrt_s[0])
    p = (sqrt_s**2 - mass**2) / (2.0 * sqrt_s)
    cm = np.stack(
        [
            np.full_like(cos_t, np.hypot(p, mass)),
            p * sin_t * np.cos(ph),
            p * sin_t * np.sin(ph),
            p * cos_t,
        ],
        axis=-1,
    )
    lab = frame.to_lab(cm[None, :, :])[0]
    p_lab = np.linalg.norm(lab[:, 1:], axis=-1)
    direction = lab[:, 1:] / p_lab[:, None]
    return DecayGeometry(mass, p_lab, distance_to_ecl(direction), w / w.sum())


def decay_probability(geometry: DecayGeometry, coupling: float) -> float:
    """P_decay(g, m): probability that the ALP decays before the ECL inner surface."""
    length = alp_decay_length(geometry.mass, coupling, geometry.momentum)
    return float(np.sum(geometry.weight * -np.expm1(-geometry.distance / length)))


def mean_xsec(
    mass: float, coupling: float, luminosity_pb: Mapping[str, float], sqrt_s: Mapping[str, float]
) -> float:
    """Luminosity-weighted sigma(e+e- -> gamma a) in pb over the run periods."""
    total = sum(luminosity_pb.values())
    return float(
        sum(lumi * sigma_alp(mass, coupling, sqrt_s[p]) for p, lumi in luminosity_pb.items())
        / total
    )


def coupling_limit(
    xsec_limit_pb: float,
    geometry: DecayGeometry,
    luminosity_pb: Mapping[str, float],
    sqrt_s: Mapping[str, float],
) -> float:
    """g_agg (GeV^-1) at which sigma(g, m) P_decay(g, m) equals ``xsec_limit_pb``; NaN if that
    needs g outside [1e-9, 10] GeV^-1 or the limit is not finite."""
    if not np.isfinite(xsec_limit_pb) or xsec_limit_pb <= 0:
        return float("nan")
    unit = mean_xsec(geometry.mass, 1.0, luminosity_pb, sqrt_s)  # sigma at g = 1 GeV^-1

    def f(log_g: float) -> float:
        g = 10.0**log_g
        return float(
            np.log(unit * g * g * max(decay_probability(geometry, g), 1e-300))
            - np.log(xsec_limit_pb)
        )

    lo, hi = np.log10(_G_RANGE[0]), np.log10(_G_RANGE[1])
    if f(lo) > 0 or f(hi) < 0:
        return float("nan")
    return float(10.0 ** brentq(f, lo, hi, xtol=1e-10, rtol=1e-10))
