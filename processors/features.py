"""Selection features of three-photon events, pure functions over ``(n, 3)`` photon arrays.

Energies in GeV, angles in radians. Event shapes are computed from the three (fitted) photons in
the e+e- centre-of-mass frame, with z* along the incoming electron:

* ``E_high``, ``E_mid``, ``E_low``: CM energies of the photons ordered by energy;
* ``u_*``, ``t_*``: 2u = E^2 (1 + cos theta*), 2t = E^2 (1 - cos theta*) per ordered photon
  (physics.md "Selection"; theta* the CM polar angle);
* ``sphericity``: 3/2 (lambda_2 + lambda_3) of S_ab = sum p_a p_b / sum |p|^2
  (Bjorken & Brodsky, Phys. Rev. D 1 (1970) 1416);
* ``fw_r2``: Fox-Wolfram moment ratio H2/H0 (Phys. Rev. Lett. 41 (1978) 1581);
* ``thrust``: for three massless particles exactly max_i 2|p_i| / sum |p|, along the most
  energetic photon;
* ``cleo_cone0`` ... ``cleo_cone8``: momentum flow in 10-degree cones about the thrust axis (both
  hemispheres folded), divided by the visible energy (CLEO, Phys. Rev. D 53 (1996) 1039).

Candidate features (one per photon pairing): the diphoton mass, the recoil photon's CM energy
and lab polar angle, and the helicity angle of the pair's decay.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulation.kinematics import CollisionFrame
from simulation.physics import HALF_CROSSING_ANGLE

__all__ = [
    "PAIRS",
    "beams_from_total",
    "candidate_features",
    "event_features",
    "pair_masses",
    "photon_momenta",
]

FloatArray = npt.NDArray[np.float64]

#: the three pairings (i, j) and the recoil photon k of each
PAIRS = ((1, 2, 0), (0, 2, 1), (0, 1, 2))


def photon_momenta(energy: FloatArray, theta: FloatArray, phi: FloatArray) -> FloatArray:
    """Massless four-momenta ``(..., 4)`` from energy and lab angles."""
    sin_t = np.sin(theta)
    return np.stack(
        [
            energy,
            energy * sin_t * np.cos(phi),
            energy * sin_t * np.sin(phi),
            energy * np.cos(theta),
        ],
        axis=-1,
    )


def beams_from_total(
    beam: FloatArray, half_angle: float = HALF_CROSSING_ANGLE
) -> tuple[FloatArray, FloatArray]:
    """The electron and positron beam four-momenta that add up to ``beam`` (n, 4), given the
    crossing geometry (both beams tilted by ``half_angle`` towards +x; physics.md "Beams"):
    P_z = (E_HER - E_LER) cos(alpha) fixes the split of E = E_HER + E_LER."""
    e_her = 0.5 * (beam[:, 0] + beam[:, 3] / np.cos(half_angle))
    e_ler = beam[:, 0] - e_her
    sin_a, cos_a = np.sin(half_angle), np.cos(half_angle)
    zero = np.zeros_like(e_her)
    electron = np.stack([e_her, e_her * sin_a, zero, e_her * cos_a], axis=-1)
    positron = np.stack([e_ler, e_ler * sin_a, zero, -e_ler * cos_a], axis=-1)
    return electron, positron


def _take(values: FloatArray, order: npt.NDArray[np.int64]) -> FloatArray:
    return np.take_along_axis(values, order, axis=1)


def event_features(p_lab: FloatArray, beam: FloatArray) -> dict[str, FloatArray]:
    """Event-level features of photons ``p_lab`` ``(n, 3, 4)`` with beam four-momentum ``(n, 4)``."""
    frame = CollisionFrame(*beams_from_total(beam))
    p = frame.from_lab(p_lab)
    energy = p[..., 0]
    momentum = np.linalg.norm(p[..., 1:], axis=-1)
    cos_t = p[..., 3] / np.where(momentum > 0, momentum, 1.0)
    order = np.argsort(-energy, axis=1)
    e_sorted = _take(energy, order)
    cos_sorted = _take(cos_t, order)
    out: dict[str, FloatArray] = {}
    for i, name in enumerate(("high", "mid", "low")):
        out[f"E_{name}"] = e_sorted[:, i]
        out[f"u_{name}"] = 0.5 * e_sorted[:, i] ** 2 * (1.0 + cos_sorted[:, i])
        out[f"t_{name}"] = 0.5 * e_sorted[:, i] ** 2 * (1.0 - cos_sorted[:, i])
        out[f"cos_{name}"] = cos_sorted[:, i]
    total_p = momentum.sum(axis=1)
    safe_total = np.where(total_p > 0, total_p, 1.0)
    # sphericity tensor eigenvalues
    vec = p[..., 1:]
    tensor = np.einsum("nia,nib->nab", vec, vec) / np.sum(momentum**2, axis=1)[:, None, None].clip(
        1e-12
    )
    eig = np.linalg.eigvalsh(tensor)  # ascending
    out["sphericity"] = 1.5 * (eig[:, 0] + eig[:, 1])
    # Fox-Wolfram H2/H0 over all pairs (i, j), including i = j
    unit = vec / np.where(momentum > 0, momentum, 1.0)[..., None]
    cos_ij = np.einsum("nia,nja->nij", unit, unit)
    weights = momentum[:, :, None] * momentum[:, None, :]
    h0 = weights.sum(axis=(1, 2))
    h2 = (weights * 0.5 * (3.0 * cos_ij**2 - 1.0)).sum(axis=(1, 2))
    out["fw_r2"] = h2 / np.where(h0 > 0, h0, 1.0)
    leading = np.argmax(momentum, axis=1)
    out["thrust"] = 2.0 * momentum[np.arange(len(p)), leading] / safe_total
    axis = unit[np.arange(len(p)), leading]
    angle = np.degrees(np.arccos(np.clip(np.abs(np.einsum("nia,na->ni", unit, axis)), 0.0, 1.0)))
    cone = np.minimum((angle // 10).astype(np.int64), 8)
    for k in range(9):
        out[f"cleo_cone{k}"] = np.sum(np.where(cone == k, momentum, 0.0), axis=1) / safe_total
    return out


def pair_masses(p_lab: FloatArray) -> FloatArray:
    """Diphoton masses ``(n, 3)`` of the three pairings (:data:`PAIRS` order) of ``(n, 3, 4)``."""
    out = np.empty((len(p_lab), 3))
    for c, (i, j, _) in enumerate(PAIRS):
        pair = p_lab[:, i] + p_lab[:, j]
        out[:, c] = np.sqrt(np.clip(pair[:, 0] ** 2 - np.sum(pair[:, 1:] ** 2, axis=-1), 0.0, None))
    return out


def candidate_features(
    p_lab: FloatArray, p_raw: FloatArray, beam: FloatArray
) -> dict[str, FloatArray]:
    """Per pairing (``(n, 3)`` arrays, columns in :data:`PAIRS` order): fitted and raw diphoton
    masses, the recoil photon's CM energy and lab polar angle, the helicity cosine of the pair
    (angle of its first photon, in the pair rest frame, to the pair's flight direction), and the
    pair's lab energy asymmetry."""
    frame = CollisionFrame(*beams_from_total(beam))
    p_cms = frame.from_lab(p_lab)
    n = len(p_lab)
    out = {
        name: np.empty((n, 3))
        for name in ("mgg", "mgg_raw", "E_recoil", "theta_recoil", "cos_helicity", "pair_asymmetry")
    }
    out["mgg"] = pair_masses(p_lab)
    out["mgg_raw"] = pair_masses(p_raw)
    for c, (i, j, k) in enumerate(PAIRS):
        out["E_recoil"][:, c] = p_cms[:, k, 0]
        recoil = p_lab[:, k]
        out["theta_recoil"][:, c] = np.arctan2(np.hypot(recoil[:, 1], recoil[:, 2]), recoil[:, 3])
        pair = p_lab[:, i] + p_lab[:, j]
        mass = out["mgg"][:, c]
        # helicity: |cos| of the decay angle, from the photon energies: E_1 - E_2 = p_pair cos* (for m > 0)
        p_pair = np.linalg.norm(pair[:, 1:], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos_star = (p_lab[:, i, 0] - p_lab[:, j, 0]) / np.where(p_pair > 0, p_pair, 1.0)
        out["cos_helicity"][:, c] = np.where(mass > 0, np.clip(np.abs(cos_star), 0.0, 1.0), 1.0)
        out["pair_asymmetry"][:, c] = np.abs(p_lab[:, i, 0] - p_lab[:, j, 0]) / (
            p_lab[:, i, 0] + p_lab[:, j, 0]
        )
    return out
