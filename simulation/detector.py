"""Fast Belle II detector simulation: ECL clusters, CDC tracks and two trigger lines, per run.

What it models (numbers from physics.md; *estimates* come from :class:`alps.config.DetectorConfig`):

* each photon (and electron) travels in a straight line from its production point to the ECL
  surface (:mod:`simulation.geometry`); the cluster direction is reconstructed from the
  interaction point, so a displaced ALP decay gives wrong directions; a decay beyond the ECL front
  face, or a particle outside 12.4-155.1 degrees, gives no cluster;
* particles whose impact points are closer than ``merge_distance_cm`` (about one crystal) make one
  cluster with their summed energy and energy-weighted position;
* energies are smeared with the region's resolution (physics.md table) times the run's
  resolution scale, shifted by the energy scale, and given a low-side shower-leakage tail;
  angles are smeared with the angular resolution, time with the timing resolution; the stored
  errors (``errE``, ``errTheta``, ``errPhi``) are what reconstruction believes: the nominal model
  at the measured energy with the MC's resolution scale, whatever the true detector;
* muons leave a minimum-ionising cluster of about 0.2 GeV; electron clusters are like photons';
* beam background adds a Poisson number of soft clusters per event, flat in time;
* tracks: charged particles inside the CDC acceptance are found with probability
  1 - inefficiency, momenta smeared with sigma_pT/pT = 0.11% pT + 0.25%/beta (Belle II TDR,
  arXiv:1011.0352); fake low-momentum tracks from beam background, mostly displaced;
* triggers: ``trg_esum`` fires with an error-function turn-on in the summed trigger energy,
  ``trg_ncl`` when at least two clusters pass a per-cluster turn-on; the two lines use
  independent random numbers, so one can serve as the reference for the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from alps.config import DetectorConfig

from .events import TruthEvents
from .geometry import (
    BACKWARD_Z_CM,
    BARREL_RADIUS_CM,
    CDC_THETA_DEG,
    ECL_THETA_DEG,
    FORWARD_Z_CM,
    REGION_GAP,
    distance_to_ecl,
    ecl_region,
)
from .registry import RunBlock
from .resolution import energy_resolution, phi_resolution, theta_resolution, time_resolution

__all__ = ["CLUSTER_FIELDS", "TRACK_FIELDS", "DetectorConditions", "RecoEvents", "simulate"]

FloatArray = npt.NDArray[np.float64]

CLUSTER_FIELDS = (
    "E",
    "theta",
    "phi",
    "time",
    "errE",
    "errTheta",
    "errPhi",
    "region",
    "nHits",
    "mcIndex",
)
TRACK_FIELDS = ("px", "py", "pz", "charge", "dr", "dz")
#: mcIndex of a cluster made by a charged lepton (the contract's -1 is beam background)
MCINDEX_CHARGED = -2
_TRIGGER_ENERGY_RESOLUTION = 0.05  # relative, trigger cells (*estimate*)
_FWD_COS = (np.cos(np.radians(31.4)), np.cos(np.radians(ECL_THETA_DEG[0])))
_BWD_COS = (np.cos(np.radians(ECL_THETA_DEG[1])), np.cos(np.radians(130.7)))
_BARREL_COS = (np.cos(np.radians(128.7)), np.cos(np.radians(32.2)))


@dataclass(frozen=True)
class DetectorConditions:
    """The detector a run block is simulated with: the MC's nominal one or the pseudo-data's.

    ``resolution_scale`` and ``energy_scale`` smear; ``nominal_resolution_scale`` is what the
    reconstruction believes (it fills the cluster errors). ``bkg_clusters`` is the mean number
    of beam-background clusters, one number for the block or one per event (the pseudo-data's
    run-by-run level, :class:`alps.config.NatureConfig`).
    """

    energy_scale: float
    resolution_scale: float
    nominal_resolution_scale: float
    bkg_clusters: float | FloatArray
    trk_ineff: float
    trg_esum_threshold: float
    trg_esum_width: float
    trg_ncl_threshold: float
    trg_ncl_width: float

    @classmethod
    def for_block(cls, block: RunBlock, data: bool = False) -> DetectorConditions:
        return cls(
            energy_scale=block.data_energy_scale if data else 1.0,
            resolution_scale=block.ecl_res_scale * (block.data_res_scale if data else 1.0),
            nominal_resolution_scale=block.ecl_res_scale,
            bkg_clusters=block.bkg_clusters,
            trk_ineff=block.trk_ineff,
            trg_esum_threshold=block.trg_esum_threshold
            + (block.data_trg_esum_shift if data else 0.0),
            trg_esum_width=block.trg_esum_width,
            trg_ncl_threshold=block.trg_ncl_threshold,
            trg_ncl_width=block.trg_ncl_width,
        )


@dataclass(frozen=True)
class RecoEvents:
    """Detector-level events as flat arrays with per-event counts (the ntuple's jagged layout).

    ``clusters``/``tracks`` map field names (:data:`CLUSTER_FIELDS`, :data:`TRACK_FIELDS`) to flat
    arrays; ``n_merged`` counts, per event, the particles that were absorbed into another's cluster
    (a diagnostic, not written).
    """

    cluster_counts: npt.NDArray[np.int64]
    clusters: dict[str, np.ndarray]
    track_counts: npt.NDArray[np.int64]
    tracks: dict[str, np.ndarray]
    trg_esum: npt.NDArray[np.bool_]
    trg_ncl: npt.NDArray[np.bool_]
    n_merged: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.cluster_counts)


def _ecl_impact(
    vertex: FloatArray, momentum: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Where straight lines from ``vertex`` along ``momentum`` meet the ECL; and whether they
    do so inside the ECL acceptance with the production point inside the ECL's inner volume."""
    p = np.linalg.norm(momentum[..., 1:], axis=-1, keepdims=True)
    direction = momentum[..., 1:] / np.where(p > 0, p, 1.0)
    rho2 = vertex[..., 0] ** 2 + vertex[..., 1] ** 2
    inside = (
        (rho2 < BARREL_RADIUS_CM**2)
        & (vertex[..., 2] < FORWARD_Z_CM)
        & (vertex[..., 2] > BACKWARD_Z_CM)
    )
    path = distance_to_ecl(direction, vertex)
    point = vertex + np.where(np.isfinite(path), path, 0.0)[..., None] * direction
    theta = np.degrees(np.arctan2(np.hypot(point[..., 0], point[..., 1]), point[..., 2]))
    accepted = inside & (theta >= ECL_THETA_DEG[0]) & (theta <= ECL_THETA_DEG[1]) & (p[..., 0] > 0)
    return point, accepted


def _merge(
    energy: FloatArray,
    point: FloatArray,
    valid: npt.NDArray[np.bool_],
    mc_index: npt.NDArray[np.int32],
    delay: FloatArray,
    distance_cm: float,
) -> npt.NDArray[np.int64]:
    """Merge, in place, objects whose impact points are closer than ``distance_cm``.

    The lower-index object absorbs the other: energies add, the position is energy-weighted,
    ``mcIndex`` is the more energetic particle's. Returns the number of absorbed objects per event.
    """
    n, k = energy.shape
    merged = np.zeros(n, dtype=np.int64)
    if distance_cm <= 0:
        return merged
    for i in range(k):
        for j in range(i + 1, k):
            close = valid[:, i] & valid[:, j]
            close &= np.sum((point[:, i] - point[:, j]) ** 2, axis=-1) < distance_cm**2
            if not close.any():
                continue
            e_i, e_j = energy[close, i], energy[close, j]
            total = e_i + e_j
            point[close, i] = (
                e_i[:, None] * point[close, i] + e_j[:, None] * point[close, j]
            ) / total[:, None]
            mc_index[close, i] = np.where(e_j > e_i, mc_index[close, j], mc_index[close, i])
            delay[close, i] = np.minimum(delay[close, i], delay[close, j])
            energy[close, i] = total
            valid[close, j] = False
            merged += close
    return merged


@nb.njit(cache=True)
def _event_order(
    counts_a: npt.NDArray[np.int64], counts_b: npt.NDArray[np.int64], key: FloatArray
) -> npt.NDArray[np.int64]:
    """Permutation that interleaves two event-ordered flat segments (``a`` then ``b`` in ``key``)
    event by event, each event's entries by decreasing ``key``."""
    n = len(counts_a)
    total_a = counts_a.sum()
    order = np.empty(len(key), dtype=np.int64)
    start_a, start_b, out = 0, total_a, 0
    for i in range(n):
        first = out
        for j in range(counts_a[i]):
            order[out] = start_a + j
            out += 1
        for j in range(counts_b[i]):
            order[out] = start_b + j
            out += 1
        for j in range(first + 1, out):  # insertion sort, a few entries per event
            item = order[j]
            value = key[item]
            m = j - 1
            while m >= first and key[order[m]] < value:
                order[m + 1] = order[m]
                m -= 1
            order[m + 1] = item
        start_a += counts_a[i]
        start_b += counts_b[i]
    return order


def _merge_flat(
    dense: dict[str, np.ndarray],
    valid: npt.NDArray[np.bool_],
    flat: dict[str, np.ndarray],
    flat_counts: npt.NDArray[np.int64],
    key_name: str,
) -> tuple[npt.NDArray[np.int64], dict[str, np.ndarray]]:
    """Valid entries of dense ``(n, K)`` fields and event-ordered flat fields, as one flat,
    per-event list ordered by decreasing ``key_name``."""
    counts_a = valid.sum(axis=1).astype(np.int64)
    dense_index = np.flatnonzero(valid.ravel())
    total_a = len(dense_index)
    key = np.concatenate([dense[key_name].ravel().take(dense_index), flat[key_name]]).astype(
        np.float64
    )
    order = _event_order(counts_a, flat_counts.astype(np.int64), key)
    # one gather per field straight from its source (no concatenated copy to re-order)
    from_dense = order < total_a
    src_dense = dense_index.take(order[from_dense])
    src_flat = order[~from_dense] - total_a
    out = {}
    for name, values in dense.items():
        merged = np.empty(len(order), dtype=values.dtype)
        merged[from_dense] = values.ravel().take(src_dense)
        merged[~from_dense] = flat[name].take(src_flat)
        out[name] = merged
    return counts_a + flat_counts, out


def _background_clusters(
    rng: np.random.Generator, n: int, cond: DetectorConditions, det: DetectorConfig
) -> tuple[dict[str, np.ndarray], npt.NDArray[np.int64]]:
    """Beam-background clusters as event-ordered flat arrays, and their per-event counts."""
    counts = rng.poisson(cond.bkg_clusters, n).astype(np.int64)
    m = int(counts.sum())
    tail = rng.random(m) < det.background_tail_fraction
    mean = np.where(tail, det.background_tail_energy_GeV, det.background_energy_GeV)
    energy = (0.02 + rng.exponential(1.0, m) * mean) * cond.energy_scale
    # half in the endcaps (shared by solid angle), half in the barrel
    fwd_w = _FWD_COS[1] - _FWD_COS[0]
    bwd_w = _BWD_COS[1] - _BWD_COS[0]
    u = rng.random(m)
    endcap = rng.random(m) < 0.5
    in_fwd = u < fwd_w / (fwd_w + bwd_w)
    lo = np.where(endcap, np.where(in_fwd, _FWD_COS[0], _BWD_COS[0]), _BARREL_COS[0])
    hi = np.where(endcap, np.where(in_fwd, _FWD_COS[1], _BWD_COS[1]), _BARREL_COS[1])
    theta = np.arccos(lo + (hi - lo) * rng.random(m))
    region = ecl_region(theta)
    scale = cond.nominal_resolution_scale
    fields = {
        "E": energy,
        "theta": theta,
        "phi": rng.uniform(-np.pi, np.pi, m),
        "time": rng.uniform(-det.background_time_window_ns, det.background_time_window_ns, m),
        "errE": energy_resolution(energy, region, det.gap_resolution_scale) * scale * energy,
        "errTheta": theta_resolution(energy, region, det.endcap_angle_scale) * scale,
        "errPhi": phi_resolution(energy, region, det.endcap_angle_scale) * scale,
        "region": region,
        "nHits": 1 + rng.poisson(2.0, m),
        "mcIndex": np.full(m, -1, dtype=np.int32),
    }
    return fields, counts


def _calorimeter(
    rng: np.random.Generator, truth: TruthEvents, cond: DetectorConditions, det: DetectorConfig
) -> tuple[dict[str, np.ndarray], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Clusters of the generated particles as dense ``(n, K)`` arrays, their mask and merge count."""
    n = len(truth)
    lepton_vertex = np.zeros((*truth.leptons.shape[:2], 3))
    point_g, ok_g = _ecl_impact(truth.photon_vertex, truth.photons)
    point_l, ok_l = _ecl_impact(lepton_vertex, truth.leptons)
    is_muon = np.abs(truth.lepton_pdg) == 13
    lepton_energy = np.where(is_muon[None, :], 0.0, truth.leptons[..., 0])
    if is_muon.any():
        mip = det.muon_cluster_GeV * (1.0 + 0.1 * rng.gumbel(0.0, 1.0, truth.leptons.shape[:2]))
        lepton_energy = np.where(is_muon[None, :], np.clip(mip, 0.05, 0.6), lepton_energy)
    energy = np.concatenate([truth.photons[..., 0], lepton_energy], axis=1)
    point = np.concatenate([point_g, point_l], axis=1)
    valid = np.concatenate([ok_g, ok_l], axis=1)
    k_photons = truth.photons.shape[1]
    mc_index = np.concatenate(
        [
            np.broadcast_to(np.arange(k_photons, dtype=np.int32), (n, k_photons)),
            np.full(truth.leptons.shape[:2], MCINDEX_CHARGED, dtype=np.int32),
        ],
        axis=1,
    ).copy()
    delay = np.concatenate([truth.photon_delay_ns, np.zeros(truth.leptons.shape[:2])], axis=1)
    merged = _merge(energy, point, valid, mc_index, delay, det.merge_distance_cm)

    shape = energy.shape
    theta_true = np.arctan2(np.hypot(point[..., 0], point[..., 1]), point[..., 2])
    phi_true = np.arctan2(point[..., 1], point[..., 0])
    region = ecl_region(theta_true)
    in_gap = region == REGION_GAP
    sigma_e = energy_resolution(energy, region, det.gap_resolution_scale) * cond.resolution_scale
    leak = np.where(
        rng.random(shape) < det.leakage_probability, rng.exponential(det.leakage_mean, shape), 0.0
    )
    measured = energy * cond.energy_scale * (1.0 - np.where(in_gap, det.gap_energy_loss, 0.0))
    measured = (
        measured * np.clip(1.0 - leak, 0.5, 1.0) * (1.0 + sigma_e * rng.standard_normal(shape))
    )
    measured = np.maximum(measured, 1e-3)
    sigma_theta = theta_resolution(energy, region, det.endcap_angle_scale) * cond.resolution_scale
    sigma_phi = phi_resolution(energy, region, det.endcap_angle_scale) * cond.resolution_scale
    theta = np.clip(theta_true + sigma_theta * rng.standard_normal(shape), 1e-4, np.pi - 1e-4)
    phi = (
        np.remainder(phi_true + sigma_phi * rng.standard_normal(shape) + np.pi, 2.0 * np.pi) - np.pi
    )
    time = delay + time_resolution(
        energy, det.time_constant_ns, det.time_floor_ns
    ) * rng.standard_normal(shape)
    nominal = cond.nominal_resolution_scale
    n_hits = 1 + rng.poisson(1.0 + 8.0 * np.sqrt(energy), shape)
    fields = {
        "E": measured,
        "theta": theta,
        "phi": phi,
        "time": time,
        "errE": energy_resolution(measured, region, det.gap_resolution_scale) * nominal * measured,
        "errTheta": theta_resolution(measured, region, det.endcap_angle_scale) * nominal,
        "errPhi": phi_resolution(measured, region, det.endcap_angle_scale) * nominal,
        "region": region,
        "nHits": n_hits,
        "mcIndex": mc_index,
    }
    return fields, valid, merged


def _tracks(
    rng: np.random.Generator,
    truth: TruthEvents,
    cond: DetectorConditions,
    det: DetectorConfig,
    force_track_loss: bool,
) -> tuple[npt.NDArray[np.int64], dict[str, np.ndarray]]:
    n, m = truth.leptons.shape[:2]
    p = truth.leptons
    theta = np.degrees(np.arctan2(np.hypot(p[..., 1], p[..., 2]), p[..., 3]))
    in_cdc = (theta >= CDC_THETA_DEG[0]) & (theta <= CDC_THETA_DEG[1])
    found = in_cdc & (rng.random((n, m)) >= cond.trk_ineff) & (not force_track_loss)
    pt = np.hypot(p[..., 1], p[..., 2])
    momentum = np.linalg.norm(p[..., 1:], axis=-1)
    beta = momentum / np.where(p[..., 0] > 0, p[..., 0], 1.0)
    rel = np.hypot(0.0011 * pt, 0.0025 / np.maximum(beta, 0.1))
    scale = 1.0 + rel * rng.standard_normal((n, m))
    charge = np.broadcast_to(-np.sign(truth.lepton_pdg).astype(np.int32), (n, m))
    real = {
        "px": p[..., 1] * scale,
        "py": p[..., 2] * scale,
        "pz": p[..., 3] * scale,
        "charge": charge,
        "dr": rng.normal(0.0, 0.02, (n, m)),
        "dz": rng.normal(0.0, 0.05, (n, m)),
    }
    n_fake = np.asarray(rng.poisson(det.fake_track_rate, n), dtype=np.int64)
    m_fake = int(n_fake.sum())
    fake_pt = 0.05 + rng.exponential(0.15, m_fake)
    cos_t = rng.uniform(
        np.cos(np.radians(CDC_THETA_DEG[1])), np.cos(np.radians(CDC_THETA_DEG[0])), m_fake
    )
    phi = rng.uniform(-np.pi, np.pi, m_fake)
    fake = {
        "px": fake_pt * np.cos(phi),
        "py": fake_pt * np.sin(phi),
        "pz": fake_pt * cos_t / np.sqrt(1.0 - cos_t**2),
        "charge": rng.choice(np.array([-1, 1], dtype=np.int32), m_fake),
        "dr": rng.exponential(3.0, m_fake) * rng.choice(np.array([-1.0, 1.0]), m_fake),
        "dz": rng.normal(0.0, 15.0, m_fake),
        "pt": fake_pt,
    }
    real["pt"] = pt * scale
    counts, fields = _merge_flat(real, found, fake, n_fake, "pt")
    del fields["pt"]
    return counts, fields


def _triggers(
    rng: np.random.Generator,
    counts: npt.NDArray[np.int64],
    energy: FloatArray,
    cond: DetectorConditions,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Both trigger lines from the events' flat cluster energies (independent random numbers)."""
    n = len(counts)
    event = np.repeat(np.arange(n), counts)
    trigger_e = energy * (1.0 + _TRIGGER_ENERGY_RESOLUTION * rng.standard_normal(len(energy)))
    esum = np.bincount(event, weights=trigger_e, minlength=n)
    fires_esum = rng.random(n) < ndtr((esum - cond.trg_esum_threshold) / cond.trg_esum_width)
    p_cluster = ndtr((trigger_e - cond.trg_ncl_threshold) / cond.trg_ncl_width)
    passing = rng.random(len(energy)) < p_cluster
    n_trigger_clusters = np.bincount(event, weights=passing, minlength=n)
    return fires_esum, n_trigger_clusters >= 2


def simulate(
    truth: TruthEvents,
    cond: DetectorConditions,
    det: DetectorConfig,
    rng: np.random.Generator,
    *,
    data: bool = False,
    force_track_loss: bool = False,
) -> RecoEvents:
    """Detector response to ``truth`` under ``cond``.

    ``data`` hides the truth (``mcIndex`` = -1 everywhere). ``force_track_loss`` drops every
    track of the generated leptons: the caller weights (or counts) the events by the probability
    of that, inefficiency^(number of leptons inside the CDC acceptance).
    """
    n = len(truth)
    physics, physics_valid, merged = _calorimeter(rng, truth, cond, det)
    background, background_counts = _background_clusters(rng, n, cond, det)
    if data:
        physics["mcIndex"] = np.full(physics_valid.shape, -1, dtype=np.int32)
    cluster_counts, clusters = _merge_flat(
        physics, physics_valid, background, background_counts, "E"
    )
    trg_esum, trg_ncl = _triggers(rng, cluster_counts, clusters["E"], cond)
    track_counts, tracks = _tracks(rng, truth, cond, det, force_track_loss)
    return RecoEvents(cluster_counts, clusters, track_counts, tracks, trg_esum, trg_ncl, merged)
