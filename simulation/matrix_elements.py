"""Tree-level QED matrix elements, spin-averaged and summed over final polarisations.

Each ``me2_*`` function takes centre-of-mass momenta ``k`` of shape ``(n, 3, 4)`` (last axis
``(E, px, py, pz)``, incoming electron along +z) and the events' sqrt(s), and returns
(1/4) sum |M|^2 in GeV^-2. The cross-section follows as
sigma = 1/(2s) * S * integral |M|^2 dPhi_3, with S the symmetry factor of identical final-state
particles (physics.md "Backgrounds"). They are numba-compiled loops over events.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

from .physics import ALPHA

__all__ = [
    "E2",
    "eikonal_factor",
    "me2_bhabha",
    "me2_bhabha_gamma",
    "me2_ee_to_mumu",
    "me2_ggg",
    "me2_mumu_gamma",
]

FloatArray = npt.NDArray[np.float64]

#: e^2 = 4 pi alpha
E2 = 4.0 * np.pi * ALPHA


@nb.njit(cache=True, inline="always")
def _dot(a0, a1, a2, a3, b0, b1, b2, b3):
    return a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3


@nb.njit(cache=True)
def _eikonal(legs: FloatArray, k: FloatArray) -> float:
    """-J.J for the four legs (rows: e-, e+ in; l-, l+ out) and photon ``k`` (see
    :func:`eikonal_factor`)."""
    eta = (1.0, -1.0, -1.0, 1.0)
    pk = np.empty(4)
    for i in range(4):
        pk[i] = _dot(legs[i, 0], legs[i, 1], legs[i, 2], legs[i, 3], k[0], k[1], k[2], k[3])
    total = 0.0
    for i in range(4):
        for j in range(4):
            pij = _dot(
                legs[i, 0], legs[i, 1], legs[i, 2], legs[i, 3],
                legs[j, 0], legs[j, 1], legs[j, 2], legs[j, 3],
            )  # fmt: skip
            total -= eta[i] * eta[j] * pij / (pk[i] * pk[j])
    return total


@nb.njit(cache=True)
def eikonal_factor(legs: FloatArray, k: FloatArray) -> FloatArray:
    """-J.J for photons ``k`` ``(n, 4)`` radiated off e-(p-) e+(p+) -> l-(q-) l+(q+).

    ``legs`` is ``(n, 4, 4)``: p-, p+, q-, q+. J = sum_i eta_i p_i / (p_i.k), eta = +1 for the
    incoming electron and the outgoing l+, -1 for the incoming positron and the outgoing l-. The
    soft-photon limit of every process here is |M_0|^2 e^2 (-J.J) (Yennie, Frautschi & Suura,
    Ann. Phys. 13 (1961) 379); the outgoing masses enter through the diagonal terms.
    """
    out = np.empty(len(k))
    for i in range(len(k)):
        out[i] = _eikonal(legs[i], k[i])
    return out


@nb.njit(cache=True)
def me2_ggg(k: FloatArray, sqrt_s: FloatArray) -> FloatArray:
    """e+e- -> 3 gamma, massless limit (Berends & Kleiss, Nucl. Phys. B186 (1981) 22):

    |M|^2 = e^6 s sum_i a_i b_i (a_i^2 + b_i^2) / prod_j a_j b_j,  a_i = p+.k_i, b_i = p-.k_i.

    With S = 1/3! this gives the physics.md cross-sections (186 pb, 72.0 pb, 14.7 pb for its
    three sets of cuts), which the tests check.
    """
    n = len(k)
    out = np.empty(n)
    e6 = E2**3
    for i in range(n):
        half = 0.5 * sqrt_s[i]
        num = 0.0
        den = 1.0
        for j in range(3):
            a = half * (k[i, j, 0] + k[i, j, 3])  # p+ = half (1, 0, 0, -1)
            b = half * (k[i, j, 0] - k[i, j, 3])  # p- = half (1, 0, 0, +1)
            num += a * b * (a * a + b * b)
            den *= a * b
        out[i] = e6 * sqrt_s[i] ** 2 * num / den
    return out


@nb.njit(cache=True)
def _lepton_legs(
    k: FloatArray, sqrt_s: float
) -> tuple[FloatArray, float, float, float, float, float, float]:
    half = 0.5 * sqrt_s
    legs = np.empty((4, 4))
    legs[0, 0], legs[0, 1], legs[0, 2], legs[0, 3] = half, 0.0, 0.0, half
    legs[1, 0], legs[1, 1], legs[1, 2], legs[1, 3] = half, 0.0, 0.0, -half
    legs[2] = k[0]
    legs[3] = k[1]
    pm, pp, qm, qp = legs[0], legs[1], legs[2], legs[3]
    s = sqrt_s * sqrt_s
    sq = qm + qp
    s1 = _dot(sq[0], sq[1], sq[2], sq[3], sq[0], sq[1], sq[2], sq[3])
    d = pp - qp
    t = _dot(d[0], d[1], d[2], d[3], d[0], d[1], d[2], d[3])
    d = pm - qm
    t1 = _dot(d[0], d[1], d[2], d[3], d[0], d[1], d[2], d[3])
    d = pp - qm
    u = _dot(d[0], d[1], d[2], d[3], d[0], d[1], d[2], d[3])
    d = pm - qp
    u1 = _dot(d[0], d[1], d[2], d[3], d[0], d[1], d[2], d[3])
    return legs, s, s1, t, t1, u, u1


@nb.njit(cache=True)
def me2_mumu_gamma(k: FloatArray, sqrt_s: FloatArray) -> FloatArray:
    """e+e- -> mu+ mu- gamma with initial- and final-state radiation and their interference.

    CALKUL form (Berends, Kleiss et al., Nucl. Phys. B177 (1981) 237; massless, photon exchange
    only): |M|^2 = e^6 (t^2 + t'^2 + u^2 + u'^2) / (s s') (-J.J), with t = (p+ - q+)^2,
    t' = (p- - q-)^2, u = (p+ - q-)^2, u' = (p- - q+)^2, s' = (q+ + q-)^2. The muon mass enters the
    kinematics and the eikonal factor's diagonal terms (it regulates radiation collinear to the
    muons); Z exchange (about 1% forward-backward asymmetry at 10.58 GeV) is neglected.
    ``k`` rows: mu-, mu+, gamma.
    """
    n = len(k)
    out = np.empty(n)
    e6 = E2**3
    for i in range(n):
        legs, s, s1, t, t1, u, u1 = _lepton_legs(k[i], sqrt_s[i])
        born_like = (t * t + t1 * t1 + u * u + u1 * u1) / (s * s1)
        out[i] = e6 * born_like * _eikonal(legs, k[i, 2])
    return out


@nb.njit(cache=True)
def me2_bhabha_gamma(k: FloatArray, sqrt_s: FloatArray) -> FloatArray:
    """Radiative Bhabha scattering e+e- -> e+e- gamma, massless CALKUL form:

    |M|^2 = e^6 [s s'(s^2 + s'^2) + t t'(t^2 + t'^2) + u u'(u^2 + u'^2)] / (s s' t t') (-J.J)
    (Berends et al., Nucl. Phys. B206 (1982) 61), invariants as in :func:`me2_mumu_gamma`.
    Not valid where the photon is collinear with a lepton (electron-mass effects): the generator
    keeps photons away from the leptons. ``k`` rows: e-, e+, gamma.
    """
    n = len(k)
    out = np.empty(n)
    e6 = E2**3
    for i in range(n):
        legs, s, s1, t, t1, u, u1 = _lepton_legs(k[i], sqrt_s[i])
        big = s * s1 * (s * s + s1 * s1) + t * t1 * (t * t + t1 * t1) + u * u1 * (u * u + u1 * u1)
        out[i] = e6 * big / (s * s1 * t * t1) * _eikonal(legs, k[i, 2])
    return out


def me2_ee_to_mumu(s: FloatArray, t: FloatArray) -> FloatArray:
    """Born e+e- -> mu+mu- (massless): 2 e^4 (t^2 + u^2) / s^2, u = -s - t."""
    u = -s - t
    return np.asarray(2.0 * E2**2 * (t * t + u * u) / (s * s))


def me2_bhabha(s: FloatArray, t: FloatArray) -> FloatArray:
    """Born Bhabha (massless): 2 e^4 (s^4 + t^4 + u^4) / (s^2 t^2), u = -s - t."""
    u = -s - t
    return np.asarray(2.0 * E2**2 * (s**4 + t**4 + u**4) / (s * s * t * t))
