"""Vectorised relativistic kinematics: four-vector products, boosts, frames, two-body decays.

Four-vectors are numpy arrays whose last axis is ``(E, px, py, pz)`` in GeV. All functions
broadcast over leading axes and hold no state.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = [
    "CollisionFrame",
    "boost",
    "dot",
    "isotropic_directions",
    "mass",
    "polar_angle",
    "rotate_from_z",
    "two_body_decay",
]

FloatArray = npt.NDArray[np.float64]


def dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Minkowski product a.b with metric (+, -, -, -)."""
    return np.asarray(a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], axis=-1))


def mass(p: FloatArray) -> FloatArray:
    """Invariant mass, sqrt(max(p.p, 0))."""
    return np.sqrt(np.clip(dot(p, p), 0.0, None))


def polar_angle(p: FloatArray) -> FloatArray:
    """Polar angle of the three-momentum with respect to +z, in radians."""
    return np.arctan2(np.hypot(p[..., 1], p[..., 2]), p[..., 3])


def boost(p: FloatArray, beta: FloatArray) -> FloatArray:
    """Boost four-vectors ``p`` by velocity ``beta`` (the frame moving with -beta sees p boosted).

    A particle at rest boosted by ``beta`` moves with velocity ``beta``.
    """
    beta = np.asarray(beta, dtype=np.float64)
    b2 = np.sum(beta * beta, axis=-1)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p[..., 1:], axis=-1)
    safe_b2 = np.where(b2 > 0.0, b2, 1.0)
    coeff = np.where(b2 > 0.0, (gamma - 1.0) / safe_b2, 0.0) * bp + gamma * p[..., 0]
    out = np.empty(np.broadcast_shapes(p.shape, (*beta.shape[:-1], 4)), dtype=np.float64)
    out[..., 0] = gamma * (p[..., 0] + bp)
    out[..., 1:] = p[..., 1:] + coeff[..., None] * beta
    return out


def rotate_from_z(v: FloatArray, axis: FloatArray) -> FloatArray:
    """Rotate three-vectors ``v`` given in a frame whose z axis is ``axis`` into the base frame.

    ``axis`` is a unit vector (broadcastable to ``v``); the rotation is the smallest one taking
    (0, 0, 1) onto ``axis`` (Rodrigues' formula).
    """
    ax, ay, az = axis[..., 0], axis[..., 1], axis[..., 2]
    # rotation about k = z x axis = (-ay, ax, 0) by the angle between z and axis
    c = az
    k = 1.0 / (1.0 + c)  # singular only for axis = -z, excluded by construction (beam frames)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    out = np.empty(np.broadcast_shapes(v.shape, axis.shape), dtype=np.float64)
    out[..., 0] = (c + k * ay * ay) * x + (-k * ax * ay) * y + ax * z
    out[..., 1] = (-k * ax * ay) * x + (c + k * ax * ax) * y + ay * z
    out[..., 2] = -ax * x - ay * y + c * z
    return out


def isotropic_directions(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    """Unit vectors distributed uniformly on the sphere."""
    cos_t = rng.uniform(-1.0, 1.0, shape)
    phi = rng.uniform(0.0, 2.0 * np.pi, shape)
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def two_body_decay(
    parent: FloatArray, m1: float | FloatArray, m2: float | FloatArray, direction: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Decay ``parent`` into two particles; ``direction`` is daughter 1's unit vector in the
    parent rest frame. Returns both daughters' four-momenta in the parent's frame of reference.
    """
    m_parent = mass(parent)
    m1 = np.asarray(m1, dtype=np.float64)
    m2 = np.asarray(m2, dtype=np.float64)
    e1 = (m_parent**2 + m1**2 - m2**2) / (2.0 * m_parent)
    p_star = np.sqrt(np.clip(e1**2 - m1**2, 0.0, None))
    d1 = np.empty((*direction.shape[:-1], 4), dtype=np.float64)
    d1[..., 0] = e1
    d1[..., 1:] = p_star[..., None] * direction
    d2 = np.empty_like(d1)
    d2[..., 0] = m_parent - e1
    d2[..., 1:] = -d1[..., 1:]
    beta = parent[..., 1:] / parent[..., :1]
    return boost(d1, beta), boost(d2, beta)


class CollisionFrame:
    """The e+e- centre-of-mass frame of each event, with z* along the incoming electron.

    Built from the lab four-momenta of the electron and positron (``(n, 4)`` each). Momenta
    generated in that frame are taken to the lab with :meth:`to_lab`.
    """

    def __init__(self, p_electron: FloatArray, p_positron: FloatArray):
        total = p_electron + p_positron
        self.s: FloatArray = dot(total, total)
        self.sqrt_s: FloatArray = np.sqrt(self.s)
        self.beta: FloatArray = total[..., 1:] / total[..., :1]
        e_cm = boost(p_electron, -self.beta)
        self.axis: FloatArray = e_cm[..., 1:] / np.linalg.norm(
            e_cm[..., 1:], axis=-1, keepdims=True
        )

    def to_lab(self, p: FloatArray) -> FloatArray:
        """Momenta ``(n, ..., 4)`` given in the frame (z* along the electron) to the lab."""
        flat = np.ascontiguousarray(p, dtype=np.float64).reshape(len(p), -1, 4)
        return _to_lab(flat, self.axis, self.beta).reshape(p.shape)

    def from_lab(self, p: FloatArray) -> FloatArray:
        """Lab momenta to the frame (inverse of :meth:`to_lab`)."""
        extra = p.ndim - 2
        axis = self.axis.reshape(self.axis.shape[:1] + (1,) * extra + (3,))
        beta = self.beta.reshape(self.beta.shape[:1] + (1,) * extra + (3,))
        cm = boost(p, -beta)
        # inverse rotation: rotate by the transpose, i.e. with the axis mirrored in x and y
        inverse_axis = np.concatenate([-axis[..., :2], axis[..., 2:]], axis=-1)
        out = np.empty_like(cm)
        out[..., 0] = cm[..., 0]
        out[..., 1:] = rotate_from_z(cm[..., 1:], inverse_axis)
        return out


@nb.njit(cache=True)
def _to_lab(p: FloatArray, axis: FloatArray, beta: FloatArray) -> FloatArray:
    """Rotate z onto ``axis`` then boost by ``beta``, per event; ``p`` is ``(n, m, 4)``."""
    out = np.empty_like(p)
    for i in range(p.shape[0]):
        ax, ay, c = axis[i, 0], axis[i, 1], axis[i, 2]
        k = 1.0 / (1.0 + c)
        bx, by, bz = beta[i, 0], beta[i, 1], beta[i, 2]
        b2 = bx * bx + by * by + bz * bz
        gamma = 1.0 / np.sqrt(1.0 - b2)
        g2 = (gamma - 1.0) / b2 if b2 > 0.0 else 0.0
        for j in range(p.shape[1]):
            x, y, z = p[i, j, 1], p[i, j, 2], p[i, j, 3]
            rx = (c + k * ay * ay) * x - k * ax * ay * y + ax * z
            ry = -k * ax * ay * x + (c + k * ax * ax) * y + ay * z
            rz = -ax * x - ay * y + c * z
            e = p[i, j, 0]
            bp = bx * rx + by * ry + bz * rz
            coeff = g2 * bp + gamma * e
            out[i, j, 0] = gamma * (e + bp)
            out[i, j, 1] = rx + coeff * bx
            out[i, j, 2] = ry + coeff * by
            out[i, j, 3] = rz + coeff * bz
    return out
