"""Multichannel importance sampling of three-body phase space, for the QED backgrounds.

Three-body matrix elements with a soft, collinear photon (1/(omega^2 sin^2 theta)) make flat phase
space useless: for e+e- -> 3 gamma the largest weight is about 4000 times the mean. Each channel
here maps one photon's singularities away: in the centre-of-mass frame (z along the electron) it
draws that photon's energy omega with density 1/omega and its polar angle with 1/sin^2 theta, and
decays the recoiling pair isotropically in azimuth with a polar density chosen per process
(symmetric 1/sin^2, forward 1/(1 - cos)^2 for t-channel scattering, or flat). The channels are
combined with the multichannel method (Kleiss & Pittau, Comput. Phys. Commun. 83 (1994) 141): an
event's weight is |M|^2 divided by the average over channels of g_c, each g_c being that channel's
density with respect to dPhi_3, so the weights are unbiased whatever channel made the event. Each
angular density is mixed with a 5% flat part, so all of phase space is covered even where the
peaked part (restricted to the detector's acceptance) is zero.

Phase space factorises as dPhi_3 = dPhi_2(s; k_c, Q) dQ^2/(2 pi) dPhi_2(Q^2; k_a, k_b), which gives
dPhi_3 = (1/8pi)^2 (2 omega beta*/pi) d omega dOmega_c dOmega* / (4 pi)^2 for a massless k_c
(beta* is the pair's velocity in its rest frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["N_UNIFORMS", "ThreeBodySampler"]

FloatArray = npt.NDArray[np.float64]

#: Uniform random numbers one event needs.
N_UNIFORMS = 8
_FLAT_MIX = 0.05
_KINDS = {"symmetric": 0, "forward": 1, "flat": 2}


@nb.njit(cache=True, inline="always")
def _cos_draw(u_mix: float, u_val: float, kind: int, lo: float, hi: float) -> float:
    if u_mix < _FLAT_MIX:
        return -1.0 + 2.0 * u_mix / _FLAT_MIX
    if kind == 0:
        y_lo, y_hi = np.arctanh(lo), np.arctanh(hi)
        return np.tanh(y_lo + u_val * (y_hi - y_lo))
    if kind == 1:
        a, b = 1.0 / (1.0 - lo), 1.0 / (1.0 - hi)
        return 1.0 - 1.0 / (a + u_val * (b - a))
    return -1.0 + 2.0 * u_val


@nb.njit(cache=True, inline="always")
def _cos_density(c: float, kind: int, lo: float, hi: float) -> float:
    if kind == 2:
        return 0.5
    flat = 0.5 * _FLAT_MIX
    if c < lo or c > hi:
        return flat
    if kind == 0:
        norm = np.arctanh(hi) - np.arctanh(lo)
        return flat + (1.0 - _FLAT_MIX) / (norm * (1.0 - c * c))
    norm = 1.0 / (1.0 - hi) - 1.0 / (1.0 - lo)
    return flat + (1.0 - _FLAT_MIX) / (norm * (1.0 - c) ** 2)


@nb.njit(cache=True)
def _sample(
    u: FloatArray,
    sqrt_s: FloatArray,
    masses: FloatArray,
    soft: npt.NDArray[np.int64],
    pair_kind: int,
    omega_min: float,
    c_lo: float,
    c_hi: float,
    p_lo: float,
    p_hi: float,
) -> FloatArray:
    n = len(sqrt_s)
    n_channels = len(soft)
    k = np.empty((n, 3, 4))
    for i in range(n):
        c = soft[min(int(u[i, 0] * n_channels), n_channels - 1)]
        a = 0 if c != 0 else 1
        b = 3 - c - a
        rs = sqrt_s[i]
        m_a, m_b = masses[a], masses[b]
        w_hi = (rs * rs - (m_a + m_b) ** 2) / (2.0 * rs)
        omega = omega_min * (w_hi / omega_min) ** u[i, 1]
        cos_c = _cos_draw(u[i, 2], u[i, 3], 0, c_lo, c_hi)
        sin_c = np.sqrt(max(0.0, 1.0 - cos_c * cos_c))
        phi = 2.0 * np.pi * u[i, 4]
        k[i, c, 0] = omega
        k[i, c, 1] = omega * sin_c * np.cos(phi)
        k[i, c, 2] = omega * sin_c * np.sin(phi)
        k[i, c, 3] = omega * cos_c
        # the recoiling pair Q = P - k_c, decayed in its rest frame
        q_e = rs - omega
        qx, qy, qz = -k[i, c, 1], -k[i, c, 2], -k[i, c, 3]
        m_pair = np.sqrt(rs * rs - 2.0 * rs * omega)
        e_a = (m_pair * m_pair + m_a * m_a - m_b * m_b) / (2.0 * m_pair)
        p_star = np.sqrt(max(0.0, e_a * e_a - m_a * m_a))
        cos_s = _cos_draw(u[i, 5], u[i, 6], pair_kind, p_lo, p_hi)
        sin_s = np.sqrt(max(0.0, 1.0 - cos_s * cos_s))
        phi_s = 2.0 * np.pi * u[i, 7]
        sx, sy, sz = p_star * sin_s * np.cos(phi_s), p_star * sin_s * np.sin(phi_s), p_star * cos_s
        bx, by, bz = qx / q_e, qy / q_e, qz / q_e
        gamma = q_e / m_pair
        bp = bx * sx + by * sy + bz * sz
        b2 = bx * bx + by * by + bz * bz
        coeff = (gamma - 1.0) / b2 * bp + gamma * e_a if b2 > 0.0 else e_a
        k[i, a, 0] = gamma * (e_a + bp)
        k[i, a, 1] = sx + coeff * bx
        k[i, a, 2] = sy + coeff * by
        k[i, a, 3] = sz + coeff * bz
        k[i, b, 0] = q_e - k[i, a, 0]
        k[i, b, 1] = qx - k[i, a, 1]
        k[i, b, 2] = qy - k[i, a, 2]
        k[i, b, 3] = qz - k[i, a, 3]
    return k


@nb.njit(cache=True)
def _density(
    k: FloatArray,
    sqrt_s: FloatArray,
    masses: FloatArray,
    soft: npt.NDArray[np.int64],
    pair_kind: int,
    omega_min: float,
    c_lo: float,
    c_hi: float,
    p_lo: float,
    p_hi: float,
) -> FloatArray:
    n = len(k)
    out = np.zeros(n)
    pi3 = 128.0 * np.pi**3
    for i in range(n):
        rs = sqrt_s[i]
        total = 0.0
        for c in soft:
            a = 0 if c != 0 else 1
            b = 3 - c - a
            w_hi = (rs * rs - (masses[a] + masses[b]) ** 2) / (2.0 * rs)
            omega = k[i, c, 0]
            if omega < omega_min or omega > w_hi:
                continue
            f_omega = 1.0 / (omega * np.log(w_hi / omega_min))
            p_c = np.sqrt(k[i, c, 1] ** 2 + k[i, c, 2] ** 2 + k[i, c, 3] ** 2)
            cos_c = k[i, c, 3] / p_c
            # particle a in the pair rest frame
            q_e = k[i, a, 0] + k[i, b, 0]
            qx = k[i, a, 1] + k[i, b, 1]
            qy = k[i, a, 2] + k[i, b, 2]
            qz = k[i, a, 3] + k[i, b, 3]
            m_pair = np.sqrt(max(1e-300, q_e * q_e - qx * qx - qy * qy - qz * qz))
            bx, by, bz = -qx / q_e, -qy / q_e, -qz / q_e
            gamma = q_e / m_pair
            bp = bx * k[i, a, 1] + by * k[i, a, 2] + bz * k[i, a, 3]
            b2 = bx * bx + by * by + bz * bz
            coeff = (gamma - 1.0) / b2 * bp + gamma * k[i, a, 0] if b2 > 0.0 else k[i, a, 0]
            sx = k[i, a, 1] + coeff * bx
            sy = k[i, a, 2] + coeff * by
            sz = k[i, a, 3] + coeff * bz
            p_star = np.sqrt(sx * sx + sy * sy + sz * sz)
            beta_star = 2.0 * p_star / m_pair
            g = (
                f_omega
                * _cos_density(cos_c, 0, c_lo, c_hi)
                * _cos_density(sz / p_star, pair_kind, p_lo, p_hi)
                * pi3
                / (omega * beta_star)
            )
            total += g
        out[i] = total / len(soft)
    return out


@dataclass(frozen=True)
class ThreeBodySampler:
    """Samples three-body final states in the centre-of-mass frame, z along the electron.

    ``masses`` are the three particles' masses; ``soft`` lists the (massless) photons that get a
    channel; ``pair_density`` is the polar density of the first particle of the recoiling pair in
    the pair's rest frame; ``omega_min`` is the lowest soft-photon energy (GeV, CM frame) the
    channels draw, which must lie below the energy that any generator cut lets through;
    ``photon_cos`` and ``pair_cos`` bound the peaked parts of the angular densities (the detector
    acceptance seen from the CM frame).
    """

    masses: tuple[float, float, float]
    soft: tuple[int, ...]
    pair_density: Literal["symmetric", "forward", "flat"]
    omega_min: float
    photon_cos: tuple[float, float] = (-0.999, 0.999)
    pair_cos: tuple[float, float] = (-0.999, 0.999)

    def _args(self) -> tuple:
        return (
            np.asarray(self.masses, dtype=np.float64),
            np.asarray(self.soft, dtype=np.int64),
            _KINDS[self.pair_density],
            float(self.omega_min),
            *map(float, self.photon_cos),
            *map(float, self.pair_cos),
        )

    def sample(self, rng: np.random.Generator, sqrt_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Momenta ``(n, 3, 4)`` and their density with respect to dPhi_3, one event per sqrt_s."""
        u = rng.random((len(sqrt_s), N_UNIFORMS))
        k = _sample(u, np.ascontiguousarray(sqrt_s, dtype=np.float64), *self._args())
        return k, self.density(k, sqrt_s)

    def density(self, k: FloatArray, sqrt_s: FloatArray) -> FloatArray:
        """Multichannel density of momenta ``k`` with respect to dPhi_3."""
        return _density(
            np.ascontiguousarray(k, dtype=np.float64),
            np.ascontiguousarray(sqrt_s, dtype=np.float64),
            *self._args(),
        )
