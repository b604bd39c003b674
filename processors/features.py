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

import numba as nb
import numpy as np
import numpy.typing as npt

from simulation.kinematics import CollisionFrame
from simulation.physics import HALF_CROSSING_ANGLE

__all__ = [
    "PAIRS",
    "beams_from_total",
    "candidate_features",
    "event_features",
    "momenta_and_masses",
    "pair_masses",
    "photon_momenta",
    "three_photon_features",
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


def three_photon_features(
    p_lab: FloatArray, p_raw: FloatArray, beam: FloatArray, half_angle: float = HALF_CROSSING_ANGLE
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """:func:`event_features` of ``p_lab`` and :func:`candidate_features` of ``(p_lab, p_raw)``
    in one compiled pass (issue 12: some 4 us per event in numpy, most of it the numpy calls on
    ``(n, 3, 4)`` arrays), the same values to the bit: the arithmetic is done in the numpy code's
    order, and what numpy computes with its own routines (the eigenvalues of the sphericity
    tensor, arccos, arctan2 and hypot, the floor division of the cone angles) is left to numpy."""
    sin_a, cos_a = np.sin(half_angle), np.cos(half_angle)  # as beams_from_total computes them
    p, tensor, unit_dot, masses, cand = _shape_kernel(
        np.ascontiguousarray(p_lab, dtype=np.float64),
        np.ascontiguousarray(p_raw, dtype=np.float64),
        np.ascontiguousarray(beam, dtype=np.float64),
        float(sin_a),
        float(cos_a),
    )
    energy, momentum, cos_t = p[0], p[1], p[2]
    out: dict[str, FloatArray] = {}
    for i, name in enumerate(("high", "mid", "low")):
        out[f"E_{name}"] = energy[:, i]
        out[f"u_{name}"] = p[3][:, i]
        out[f"t_{name}"] = p[4][:, i]
        out[f"cos_{name}"] = cos_t[:, i]
    eig = np.linalg.eigvalsh(tensor)  # ascending
    out["sphericity"] = 1.5 * (eig[:, 0] + eig[:, 1])
    out["fw_r2"] = masses[:, 0]
    out["thrust"] = masses[:, 1]
    angle = np.degrees(np.arccos(unit_dot))
    cone = np.minimum((angle // 10).astype(np.int64), 8)
    cones = _cone_sums(cone, momentum, masses[:, 2])
    for k in range(9):
        out[f"cleo_cone{k}"] = cones[:, k]
    candidate = {
        "mgg": cand[0],
        "mgg_raw": cand[1],
        "E_recoil": cand[2],
        # the recoil photon of pairing c is photon c (PAIRS)
        "theta_recoil": np.arctan2(np.hypot(p_lab[:, :, 1], p_lab[:, :, 2]), p_lab[:, :, 3]),
        "cos_helicity": cand[3],
        "pair_asymmetry": cand[4],
    }
    return out, candidate


@nb.njit(cache=True, nogil=True)
def _boost_into(out: FloatArray, p: FloatArray, bx: float, by: float, bz: float) -> None:
    """:func:`simulation.kinematics.boost` of one four-vector ``p`` by ``(bx, by, bz)``, in its
    order of operations."""
    b2 = (bx * bx + by * by) + bz * bz
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = (bx * p[1] + by * p[2]) + bz * p[3]
    safe_b2 = b2 if b2 > 0.0 else 1.0
    coeff = ((gamma - 1.0) / safe_b2 if b2 > 0.0 else 0.0) * bp + gamma * p[0]
    out[0] = gamma * (p[0] + bp)
    out[1] = p[1] + coeff * bx
    out[2] = p[2] + coeff * by
    out[3] = p[3] + coeff * bz


@nb.njit(cache=True, nogil=True)
def _shape_kernel(
    p_lab: FloatArray, p_raw: FloatArray, beam: FloatArray, sin_a: float, cos_a: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per event: the CM photons (:class:`simulation.kinematics.CollisionFrame` of
    :func:`beams_from_total`), sorted by CM energy; the normalised sphericity tensor; the
    clipped |cos| of each photon to the thrust axis; Fox-Wolfram R2, thrust and the summed
    momentum; and the candidate features. Returns ``shapes`` ``(5, n, 3)`` (sorted E, |p| in
    photon order, sorted cos theta*, u, t), ``tensor`` ``(n, 3, 3)``, ``unit_dot`` ``(n, 3)``,
    ``event`` ``(n, 3)`` (fw_r2, thrust, sum |p|) and ``cand`` ``(5, n, 3)`` (mgg, mgg_raw,
    E_recoil, cos_helicity, pair_asymmetry)."""
    n = len(p_lab)
    shapes = np.empty((5, n, 3))
    tensor = np.empty((n, 3, 3))
    unit_dot = np.empty((n, 3))
    event = np.empty((n, 3))
    cand = np.empty((5, n, 3))
    beam_e = np.empty(4)
    e_cm = np.empty(4)
    cm = np.empty((3, 4))
    mom = np.empty(3)
    unit = np.empty((3, 3))
    cos_t = np.empty(3)
    pairs = ((1, 2, 0), (0, 2, 1), (0, 1, 2))
    w = np.empty(9)  # scratch of the Fox-Wolfram sums (allocated once, not per event)
    h = np.empty(9)
    for r in range(n):
        # beams_from_total, CollisionFrame.__init__
        e_her = 0.5 * (beam[r, 0] + beam[r, 3] / cos_a)
        e_ler = beam[r, 0] - e_her
        t0 = e_her + e_ler
        t1 = e_her * sin_a + e_ler * sin_a
        t3 = e_her * cos_a + -e_ler * cos_a
        bx, by, bz = t1 / t0, 0.0 / t0, t3 / t0
        beam_e[0] = e_her
        beam_e[1] = e_her * sin_a
        beam_e[2] = 0.0
        beam_e[3] = e_her * cos_a
        _boost_into(e_cm, beam_e, -bx, -by, -bz)
        norm = np.sqrt((e_cm[1] * e_cm[1] + e_cm[2] * e_cm[2]) + e_cm[3] * e_cm[3])
        # from_lab: boost by -beta, then rotate with the axis mirrored in x and y
        ax, ay, c = -(e_cm[1] / norm), -(e_cm[2] / norm), e_cm[3] / norm
        k = 1.0 / (1.0 + c)
        for i in range(3):
            _boost_into(e_cm, p_lab[r, i], -bx, -by, -bz)
            x, y, z = e_cm[1], e_cm[2], e_cm[3]
            cm[i, 0] = e_cm[0]
            cm[i, 1] = ((c + k * ay * ay) * x + (-k * ax * ay) * y) + ax * z
            cm[i, 2] = ((-k * ax * ay) * x + (c + k * ax * ax) * y) + ay * z
            cm[i, 3] = (-ax * x - ay * y) + c * z
        # event_features
        for i in range(3):
            mom[i] = np.sqrt((cm[i, 1] * cm[i, 1] + cm[i, 2] * cm[i, 2]) + cm[i, 3] * cm[i, 3])
            safe = mom[i] if mom[i] > 0 else 1.0
            cos_t[i] = cm[i, 3] / safe
            for a in range(3):
                unit[i, a] = cm[i, 1 + a] / safe
        # argsort(-E): the larger first, ties in photon order
        o0, o1, o2 = 0, 1, 2
        if cm[o1, 0] > cm[o0, 0]:
            o0, o1 = o1, o0
        if cm[o2, 0] > cm[o1, 0]:
            o1, o2 = o2, o1
            if cm[o1, 0] > cm[o0, 0]:
                o0, o1 = o1, o0
        for q in range(3):
            o = o0 if q == 0 else (o1 if q == 1 else o2)
            e = cm[o, 0]
            shapes[0, r, q] = e
            shapes[2, r, q] = cos_t[o]
            shapes[3, r, q] = 0.5 * (e * e) * (1.0 + cos_t[o])
            shapes[4, r, q] = 0.5 * (e * e) * (1.0 - cos_t[o])
            shapes[1, r, q] = mom[q]
        total_p = (mom[0] + mom[1]) + mom[2]
        safe_total = total_p if total_p > 0 else 1.0
        norm2 = (mom[0] * mom[0] + mom[1] * mom[1]) + mom[2] * mom[2]
        norm2 = max(norm2, 1e-12)
        for a in range(3):
            for b in range(3):
                s = (cm[0, 1 + a] * cm[0, 1 + b] + cm[1, 1 + a] * cm[1, 1 + b]) + (
                    cm[2, 1 + a] * cm[2, 1 + b]
                )
                tensor[r, a, b] = s / norm2
        # Fox-Wolfram over all pairs (i, j), i = j included: numpy's pairwise sum of 9 terms
        for i in range(3):
            for j in range(3):
                # einsum's order over a contiguous axis of three: (0 + 2) + 1
                cij = (unit[i, 0] * unit[j, 0] + unit[i, 2] * unit[j, 2]) + unit[i, 1] * unit[j, 1]
                w[3 * i + j] = mom[i] * mom[j]
                h[3 * i + j] = (w[3 * i + j] * 0.5) * (3.0 * (cij * cij) - 1.0)
        h0 = (((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]))) + w[8]
        h2 = (((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]))) + h[8]
        event[r, 0] = h2 / (h0 if h0 > 0 else 1.0)
        lead = 0
        for i in range(1, 3):
            if mom[i] > mom[lead]:
                lead = i
        event[r, 1] = 2.0 * mom[lead] / safe_total
        event[r, 2] = safe_total
        for i in range(3):
            d = (unit[i, 0] * unit[lead, 0] + unit[i, 2] * unit[lead, 2]) + unit[i, 1] * unit[
                lead, 1
            ]
            d = abs(d)
            unit_dot[r, i] = d if d < 1.0 else 1.0  # np.clip(d, 0, 1); NaN stays NaN
            if d != d:
                unit_dot[r, i] = d
        # candidate_features (lab pairs; the recoil's CM energy)
        for ci in range(3):
            i, j, kk = pairs[ci]
            for which in range(2):
                src = p_lab if which == 0 else p_raw
                e = src[r, i, 0] + src[r, j, 0]
                x = src[r, i, 1] + src[r, j, 1]
                y = src[r, i, 2] + src[r, j, 2]
                z = src[r, i, 3] + src[r, j, 3]
                m2 = e * e - ((x * x + y * y) + z * z)
                cand[which, r, ci] = np.sqrt(m2 if not (m2 < 0.0) else 0.0)
            cand[2, r, ci] = cm[kk, 0]
            x = p_lab[r, i, 1] + p_lab[r, j, 1]
            y = p_lab[r, i, 2] + p_lab[r, j, 2]
            z = p_lab[r, i, 3] + p_lab[r, j, 3]
            p_pair = np.sqrt((x * x + y * y) + z * z)
            diff = p_lab[r, i, 0] - p_lab[r, j, 0]
            cos_star = diff / (p_pair if p_pair > 0 else 1.0)
            hel = abs(cos_star)
            hel = hel if not (hel > 1.0) else 1.0  # np.clip(|cos|, 0, 1); NaN stays NaN
            cand[3, r, ci] = hel if cand[0, r, ci] > 0 else 1.0
            cand[4, r, ci] = abs(diff) / (p_lab[r, i, 0] + p_lab[r, j, 0])
    return shapes, tensor, unit_dot, event, cand


@nb.njit(cache=True, nogil=True)
def _cone_sums(cone: npt.NDArray[np.int64], momentum: FloatArray, total: FloatArray) -> FloatArray:
    """Momentum in each of the nine cones, over the summed momentum ``total``, ``(n, 9)``."""
    n = len(cone)
    out = np.empty((n, 9))
    for r in range(n):
        for k in range(9):
            s = 0.0
            for i in range(3):
                s = s + (momentum[r, i] if cone[r, i] == k else 0.0)
            out[r, k] = s / total[r]
    return out


@nb.njit(cache=True, nogil=True)
def momenta_and_masses(
    energy: FloatArray, theta: FloatArray, phi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`photon_momenta` ``(n, 3, 4)`` of three photons and their :func:`pair_masses`
    ``(n, 3)`` in one compiled pass, the same values to the bit (numba's sine and cosine are
    numpy's; the arithmetic in numpy's order)."""
    n = energy.shape[0]
    p = np.empty((n, 3, 4))
    mgg = np.empty((n, 3))
    for r in range(n):
        for i in range(3):
            e = energy[r, i]
            sin_t = np.sin(theta[r, i])
            p[r, i, 0] = e
            p[r, i, 1] = e * sin_t * np.cos(phi[r, i])
            p[r, i, 2] = e * sin_t * np.sin(phi[r, i])
            p[r, i, 3] = e * np.cos(theta[r, i])
        for c in range(3):
            i = 1 if c == 0 else 0
            j = 1 if c == 2 else 2
            s0 = p[r, i, 0] + p[r, j, 0]
            s1 = p[r, i, 1] + p[r, j, 1]
            s2 = p[r, i, 2] + p[r, j, 2]
            s3 = p[r, i, 3] + p[r, j, 3]
            m2 = s0 * s0 - ((s1 * s1 + s2 * s2) + s3 * s3)
            mgg[r, c] = np.sqrt(m2 if not (m2 < 0.0) else 0.0)  # np.clip(m2, 0, None)
    return p, mgg
