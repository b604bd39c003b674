"""Calibration pass: e+e- -> mu+mu- gamma for the photon energy scale and resolution, and the
trigger turn-on (physics.md "Backgrounds": the calibration channel).

mu mu gamma selection: exactly two good tracks (|d_r| < 1 cm, |d_z| < 3 cm, inside the CDC
acceptance, p > 0.5 GeV) of opposite charge; the photon predicted from the beams and the muons,
p_gamma = p_beams - p_mu+ - p_mu- (muon mass included), must be nearly massless
(|M^2_miss| < ``MISSING_MASS2_MAX``) and matched by a cluster within ``MATCH_ANGLE`` of its
direction, isolated from both tracks. The residual E_measured / E_predicted - 1 is histogrammed in
bins of the *predicted* energy (no bias from the cluster's own fluctuation), of the cluster's ECL
region and of the run period. MC also records the residuals against the true photon energy, which
separate the calorimeter resolution from the spread of the prediction.

Trigger: in every event where the reference line ``trg_ncl`` fired, whether ``trg_esum`` fired,
versus the offline cluster-energy sum.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import hist
import numpy as np
from coffea import processor

from simulation.generators import MUON_MASS

from .kernels import segment_argmax
from .memory import collect_if_grown

__all__ = ["CALIBRATION_ENERGY_EDGES", "CalibrationProcessor", "trigger_histogram"]

#: predicted photon energy bins, GeV
CALIBRATION_ENERGY_EDGES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
MISSING_MASS2_MAX = 0.5  # GeV^2
MATCH_ANGLE = 0.05  # rad
ISOLATION_ANGLE = np.radians(15.0)
_ESUM_EDGES = np.concatenate([np.arange(0.0, 3.0, 0.05), [3.5, 4.0, 6.0, 8.0, 12.0]])


def trigger_histogram() -> hist.Hist:
    return hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.StrCategory([], growth=True, name="period"),
        hist.axis.Variable(_ESUM_EDGES, name="esum", label=r"$\sum E_{cluster}$ [GeV]"),
        hist.axis.Boolean(name="fired"),
        storage=hist.storage.Weight(),
    )


def _residual_histogram() -> hist.Hist:
    return hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.StrCategory([], growth=True, name="period"),
        hist.axis.StrCategory(["measured", "truth", "prediction"], name="kind"),
        hist.axis.IntCategory([0, 1, 2, 3], name="region"),
        hist.axis.Variable(CALIBRATION_ENERGY_EDGES, name="energy", label=r"$E_\gamma$ [GeV]"),
        hist.axis.Regular(240, -0.3, 0.3, name="residual", label=r"$E/E_{ref} - 1$"),
        storage=hist.storage.Weight(),
    )


def _angle_histogram() -> hist.Hist:
    return hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.StrCategory([], growth=True, name="period"),
        hist.axis.StrCategory(["theta", "phi", "theta_truth", "phi_truth"], name="kind"),
        hist.axis.IntCategory([0, 1, 2, 3], name="region"),
        hist.axis.Variable(CALIBRATION_ENERGY_EDGES, name="energy", label=r"$E_\gamma$ [GeV]"),
        hist.axis.Regular(240, -0.03, 0.03, name="residual", label="angle - reference [rad]"),
        storage=hist.storage.Weight(),
    )


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.remainder(angle + np.pi, 2.0 * np.pi) - np.pi


def _unit(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
    v = np.stack([px, py, pz], axis=-1)
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)


class CalibrationProcessor(processor.ProcessorABC):
    """Fills the mu mu gamma residuals and the trigger turn-on."""

    def process(self, events: Any) -> dict[str, Any]:
        collect_if_grown()  # the earlier chunks' reference cycles (processors.memory)
        meta = events.metadata
        sample, period, is_data = meta["sample"], meta["period"], bool(meta["is_data"])
        weight = np.asarray(events.weight, dtype=np.float64)
        out: dict[str, Any] = {
            "trigger_turnon": trigger_histogram(),
            "mumug_residual": _residual_histogram(),
            "mumug_angle": _angle_histogram(),
        }
        esum = np.asarray(ak.sum(events.cluster.E, axis=1), dtype=np.float64)
        reference = np.asarray(events.trg_ncl, dtype=bool)
        fired = np.asarray(events.trg_esum, dtype=bool)
        out["trigger_turnon"].fill(
            dataset=sample,
            period=period,
            esum=esum[reference],
            fired=fired[reference],
            weight=weight[reference],
        )
        if is_data or sample == "mumug":
            self._mumug(
                events, out["mumug_residual"], out["mumug_angle"], sample, period, is_data, weight
            )
        return out

    @staticmethod
    def _mumug(
        events: Any,
        histogram: hist.Hist,
        angles: hist.Hist,
        sample: str,
        period: str,
        is_data: bool,
        weight: np.ndarray,
    ) -> None:
        trk = events.track
        p = np.sqrt(trk.px**2 + trk.py**2 + trk.pz**2)
        theta = np.arctan2(np.hypot(trk.px, trk.py), trk.pz)
        good = (
            (abs(trk.dr) < 1.0)
            & (abs(trk.dz) < 3.0)
            & (theta > np.radians(17.0))
            & (theta < np.radians(150.0))
            & (p > 0.5)
        )
        two = np.asarray(ak.sum(good, axis=1) == 2)
        if not two.any():
            return
        idx = np.flatnonzero(two)
        tracks = trk[good][idx]
        charge = np.asarray(ak.to_numpy(tracks.charge), dtype=np.int64)
        opposite = charge[:, 0] * charge[:, 1] < 0
        idx, tracks = idx[opposite], tracks[opposite]
        if not len(idx):
            return
        mom = np.stack(
            [np.asarray(ak.to_numpy(tracks[c]), dtype=np.float64) for c in ("px", "py", "pz")],
            axis=-1,
        )
        energy = np.sqrt(np.sum(mom**2, axis=-1) + MUON_MASS**2)
        beam = np.stack(
            [
                np.asarray(events[f"beam_{c}"], dtype=np.float64)[idx]
                for c in ("E", "px", "py", "pz")
            ],
            axis=1,
        )
        miss_e = beam[:, 0] - energy.sum(axis=1)
        miss_p = beam[:, 1:] - mom.sum(axis=1)
        miss_m2 = miss_e**2 - np.sum(miss_p**2, axis=1)
        e_pred = np.linalg.norm(miss_p, axis=1)
        direction = miss_p / e_pred[:, None].clip(1e-12)
        track_dirs = mom / np.linalg.norm(mom, axis=-1, keepdims=True)

        cl = events.cluster[idx]
        counts = np.asarray(ak.num(cl.E), dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        flat = {k: np.asarray(ak.flatten(cl[k]), dtype=np.float64) for k in ("E", "theta", "phi")}
        cl_dir = _unit(
            np.sin(flat["theta"]) * np.cos(flat["phi"]),
            np.sin(flat["theta"]) * np.sin(flat["phi"]),
            np.cos(flat["theta"]),
        )
        cos_pred = np.sum(cl_dir * np.repeat(direction, counts, axis=0), axis=1)
        best = segment_argmax(offsets, cos_pred)  # the cluster closest to the predicted photon
        has = best >= 0
        safe = np.where(has, best, 0)
        cos_best = np.where(has, cos_pred[safe] if len(cos_pred) else -1.0, -1.0)
        c_dir = cl_dir[safe] if len(cl_dir) else np.zeros((len(idx), 3))
        isolated = np.all(
            np.einsum("na,nka->nk", c_dir, track_dirs) < np.cos(ISOLATION_ANGLE), axis=1
        )
        select = (
            has
            & (np.abs(miss_m2) < MISSING_MASS2_MAX)
            & (cos_best > np.cos(MATCH_ANGLE))
            & isolated
        )
        if not select.any():
            return
        chosen = safe[select]
        e_meas = flat["E"][chosen]
        region = np.asarray(ak.flatten(cl.region), dtype=np.int64)[chosen]
        e_pred = e_pred[select]
        w = weight[idx][select]
        histogram.fill(
            dataset=sample,
            period=period,
            kind="measured",
            region=region,
            energy=e_pred,
            residual=e_meas / e_pred - 1.0,
            weight=w,
        )
        theta_pred = np.arccos(np.clip(direction[select, 2], -1.0, 1.0))
        phi_pred = np.arctan2(direction[select, 1], direction[select, 0])
        theta_meas, phi_meas = flat["theta"][chosen], flat["phi"][chosen]
        angles.fill(
            dataset=sample,
            period=period,
            kind="theta",
            region=region,
            energy=e_pred,
            residual=theta_meas - theta_pred,
            weight=w,
        )
        angles.fill(
            dataset=sample,
            period=period,
            kind="phi",
            region=region,
            energy=e_pred,
            residual=_wrap(phi_meas - phi_pred),
            weight=w,
        )
        if is_data:
            return
        index = np.asarray(ak.flatten(cl.mcIndex), dtype=np.int64)[chosen]
        truth = events.mc_photon.E[idx][select]
        width = int(ak.max(ak.num(truth), initial=1))
        table = np.asarray(
            ak.fill_none(ak.pad_none(truth, width, clip=True), np.nan).to_numpy(), dtype=np.float64
        )
        ok = (index >= 0) & (index < width)
        e_true = np.take_along_axis(table, np.where(ok, index, 0)[:, None], axis=1)[:, 0]
        ok &= np.isfinite(e_true)
        histogram.fill(
            dataset=sample,
            period=period,
            kind="truth",
            region=region[ok],
            energy=e_pred[ok],
            residual=e_meas[ok] / e_true[ok] - 1.0,
            weight=w[ok],
        )
        histogram.fill(
            dataset=sample,
            period=period,
            kind="prediction",
            region=region[ok],
            energy=e_pred[ok],
            residual=e_pred[ok] / e_true[ok] - 1.0,
            weight=w[ok],
        )
        for name in ("theta", "phi"):
            table = np.asarray(
                ak.fill_none(
                    ak.pad_none(events.mc_photon[name][idx][select], width, clip=True), np.nan
                ).to_numpy(),
                dtype=np.float64,
            )
            true = np.take_along_axis(table, np.where(ok, index, 0)[:, None], axis=1)[:, 0]
            measured = (theta_meas if name == "theta" else phi_meas)[ok]
            angles.fill(
                dataset=sample,
                period=period,
                kind=f"{name}_truth",
                region=region[ok],
                energy=e_pred[ok],
                residual=_wrap(measured - true[ok]),
                weight=w[ok],
            )

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator
