"""The coffea processor of the search: pre-selection, kinematic fit, candidates, features,
histograms with every systematic variation, and per-candidate skims (physics.md "Pre-selection",
"Kinematic fit"; design.md "Histograms are the contract").

Per chunk, in one pass:

1. photon candidates: clusters with E > 100 MeV, polar angle inside the CDC acceptance and
   |t| < 200 ns; the three most energetic are kept (events with fewer are rejected);
2. named cuts (a ``PackedSelection``, with a weighted cutflow): ``trigger`` (``trg_esum``),
   ``three_photons``, ``m3g`` (0.8 < M_3gamma / E_cms < 1.05), ``timing`` (the three cluster times
   agree within ``timing_nsigma`` of their resolution), ``no_good_track`` (no track with
   |d_r| < 1 cm, |d_z| < 3 cm inside the CDC acceptance), ``fit_converged``;
3. the kinematic fit of the three photons to the event's beam four-momentum, the photon
   covariance from the calibrated resolution (or the cluster errors);
4. the three photon pairings as candidates, truth-matched in signal MC (both photons from the
   ALP), with their features;
5. histograms for the nominal reconstruction and the variations: photon energy scale up/down and
   resolution up/down (the selection and the fit re-run on varied energies), trigger efficiency
   and luminosity up/down (weights). Data fills only the nominal.

MC energies are corrected to data (scale and smearing) when the calibration is given; the smearing
numbers are a pure function of (experiment, run, event, cluster), so nothing depends on chunking.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt
from coffea import processor
from coffea.analysis_tools import PackedSelection

import kinfit
from alps.config import AnalysisConfig
from simulation.geometry import REGION_GAP
from simulation.resolution import time_resolution

from .corrections import Corrections
from .features import PAIRS, candidate_features, event_features, photon_momenta
from .histograms import FEATURE_BINNING, VARIATIONS, make_histograms
from .kernels import top_candidates

__all__ = ["CUTS", "ALPProcessor", "ChunkReadError"]

FloatArray = npt.NDArray[np.float64]

#: the cuts in the order of the cutflow
CUTS = ("trigger", "three_photons", "m3g", "timing", "no_good_track", "fit_converged")
_TOP = 5  # candidates kept per event before variations re-select the leading three
_SKIM_FEATURES = (
    "E_high", "E_mid", "E_low", "u_high", "u_mid", "u_low", "t_high", "t_mid", "t_low",
    "cos_high", "cos_mid", "cos_low", "sphericity", "fw_r2", "thrust",
    *(f"cleo_cone{k}" for k in range(9)), "chi2", "fit_pvalue", "E_extra", "n_extra", "time_spread",
)  # fmt: skip
_SKIM_CANDIDATE = ("mgg", "mgg_raw", "E_recoil", "theta_recoil", "cos_helicity", "pair_asymmetry")


class ChunkReadError(RuntimeError):
    """A chunk of an input file could not be read (corrupt or truncated file)."""


@dataclass(frozen=True)
class ProcessorSettings:
    """Everything a worker needs, validated and frozen (Dask pickles it to the workers)."""

    config: AnalysisConfig
    mass_edges: tuple[float, ...]
    corrections: Corrections | None = None
    scorer: Any = None
    skim_dir: str | None = None


def _numpy(array: ak.Array, dtype: type = np.float64) -> np.ndarray:
    return np.asarray(ak.to_numpy(array), dtype=dtype)


def _padded(array: ak.Array, width: int, fill: float, dtype: type = np.float64) -> np.ndarray:
    return _numpy(ak.fill_none(ak.pad_none(array, width, clip=True), fill), dtype)


class ALPProcessor(processor.ProcessorABC):  # type: ignore[misc]
    """Per-chunk processing of ALP ntuples into histograms and skims."""

    def __init__(self, settings: ProcessorSettings):
        self.settings = settings

    # ---- helpers ----------------------------------------------------------------------------
    def _candidates(self, events: Any, is_data: bool, period: str) -> dict[str, np.ndarray]:
        """The (up to) five leading photon candidates as ``(n, 5)`` arrays, MC corrected.

        A slightly looser energy threshold than the pre-selection's keeps the candidates that a
        varied energy can move across it; the variations re-select the leading three.
        """
        pre = self.settings.config.preselection
        cl = events.cluster
        counts = _numpy(ak.num(cl.E), np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        flat = {
            name: _numpy(ak.flatten(cl[name]))
            for name in ("E", "theta", "phi", "time", "errE", "errTheta", "errPhi")
        }
        flat["region"] = _numpy(ak.flatten(cl.region), np.int64)
        flat["mcIndex"] = _numpy(ak.flatten(cl.mcIndex), np.int64)
        index = top_candidates(
            offsets, flat["E"], flat["theta"], flat["time"], 0.9 * pre.photon_e_min_GeV,
            np.radians(pre.theta_min_deg), np.radians(pre.theta_max_deg), pre.time_window_ns, _TOP,
        )  # fmt: skip
        valid = index >= 0
        safe = np.where(valid, index, 0)
        fills = {
            "E": np.nan,
            "errE": 1.0,
            "errTheta": 1.0,
            "errPhi": 1.0,
            "region": 0,
            "mcIndex": -1,
        }
        out = {
            name: np.where(valid, values[safe] if len(values) else 0, fills.get(name, 0.0))
            for name, values in flat.items()
        }
        out["position"] = np.where(valid, index - offsets[:-1, None], -1)
        corrections = self.settings.corrections
        if corrections is not None and not is_data:
            valid = np.isfinite(out["E"])
            keys = (
                _numpy(events.exp, np.int64)[:, None],
                _numpy(events.run, np.int64)[:, None],
                _numpy(events.event, np.int64)[:, None],
                out["position"],
            )
            energy, theta, phi = corrections.correct_mc(
                period,
                out["region"],
                np.where(valid, out["E"], 1.0),
                out["theta"],
                out["phi"],
                keys,
                self.settings.config.seed,
            )
            out["E"] = np.where(valid, energy, np.nan)
            out["theta"] = np.where(valid, theta, out["theta"])
            out["phi"] = np.where(valid, phi, out["phi"])
        return out

    def _true_energy(self, events: Any, cands: dict[str, np.ndarray], is_data: bool) -> FloatArray:
        """Energy of the true photon behind each candidate (the measured one where there is none)."""
        if is_data or "mc_photon" not in events.fields:
            return cands["E"]
        truth = events.mc_photon.E
        width = int(ak.max(ak.num(truth), initial=0))
        table = _padded(truth, max(width, 1), np.nan)
        index = cands["mcIndex"]
        found = (index >= 0) & (index < table.shape[1])
        true = np.take_along_axis(table, np.where(found, index, 0), axis=1)
        return np.where(found & np.isfinite(true), true, cands["E"])

    def _select(
        self, energy: FloatArray, cands: dict[str, np.ndarray]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """Whether each event has three candidates above threshold, and their indices."""
        emin = self.settings.config.preselection.photon_e_min_GeV
        usable = np.isfinite(energy) & (energy > emin)
        key = np.where(usable, energy, -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")[:, :3]
        return usable.sum(axis=1) >= 3, order

    def _covariance(
        self, cands3: dict[str, np.ndarray], energy: FloatArray, is_data: bool, period: str
    ) -> FloatArray:
        cfg = self.settings.config
        sigma_e = cands3["errE"]
        if cfg.kinfit.covariance == "calibration" and self.settings.corrections is not None:
            # corrected MC carries the data resolution too
            sigma_e = (
                self.settings.corrections.resolution("data", period, cands3["region"], energy)
                * energy
            )
        return np.asarray(kinfit.diagonal_covariance(sigma_e, cands3["errTheta"], cands3["errPhi"]))

    # ---- the processing ----------------------------------------------------------------------
    def process(self, events: Any) -> dict[str, Any]:
        try:
            return self._process(events)
        except Exception as exc:
            if not _is_read_error(exc):
                raise
            meta = events.metadata
            where = (
                f"{meta.get('filename')} entries {meta.get('entrystart')}-{meta.get('entrystop')}"
            )
            if not self.settings.config.processing.skip_bad_files:
                raise ChunkReadError(f"cannot read {where}: {type(exc).__name__}: {exc}") from exc
            out = {
                name: h
                for name, h in make_histograms(self.settings.mass_edges, None).items()
                if name == "cutflow"
            }
            out["skipped"] = [{"file": meta.get("filename"), "entrystart": meta.get("entrystart"),
                               "entrystop": meta.get("entrystop"), "error": f"{type(exc).__name__}: {exc}"}]  # fmt: skip
            out["skims"] = []
            return out

    def _process(self, events: Any) -> dict[str, Any]:
        cfg = self.settings.config
        pre = cfg.preselection
        meta = events.metadata
        sample, period, is_data = meta["sample"], meta["period"], bool(meta["is_data"])
        mc_ma = float(meta.get("mc_ma", 0.0))
        hists = make_histograms(
            self.settings.mass_edges, cfg.histograms.score_edges if self.settings.scorer else None
        )
        n = len(events)
        weight = _numpy(events.weight)
        _add_to_bin(hists["generated"], weight, dataset=sample, period=period)

        beam = np.stack([_numpy(events[f"beam_{c}"]) for c in ("E", "px", "py", "pz")], axis=1)
        e_cms = np.sqrt(np.clip(beam[:, 0] ** 2 - np.sum(beam[:, 1:] ** 2, axis=1), 0.0, None))
        trg_esum = _numpy(events.trg_esum, bool)
        esum = _numpy(ak.sum(events.cluster.E, axis=1))

        cands = self._candidates(events, is_data, period)
        trk = events.track
        trk_theta = np.arctan2(np.hypot(trk.px, trk.py), trk.pz)
        good_track = (abs(trk.dr) < pre.track_dr_max_cm) & (abs(trk.dz) < pre.track_dz_max_cm)
        good_track = (
            good_track
            & (trk_theta > np.radians(pre.track_theta_min_deg))
            & (trk_theta < np.radians(pre.track_theta_max_deg))
        )
        no_track = _numpy(ak.sum(good_track, axis=1), np.int64) == 0

        trigger_weight = {
            "nominal": np.ones(n),
            "trigger_up": np.ones(n),
            "trigger_down": np.ones(n),
        }
        if self.settings.corrections is not None and not is_data:
            for name, variation in (
                ("nominal", "nominal"),
                ("trigger_up", "up"),
                ("trigger_down", "down"),
            ):
                trigger_weight[name] = self.settings.corrections.trigger_scale_factor(
                    period, esum, variation
                )

        true_energy = self._true_energy(events, cands, is_data)
        # only triggered events with three loose candidates can pass in any variation: the
        # variations work on that pool, the cutflow counts the rest as failing
        pool = np.flatnonzero(trg_esum & np.isfinite(cands["E"][:, 2]))
        cands = {k: v[pool] for k, v in cands.items()}
        true_energy = true_energy[pool]
        # every per-candidate field in one (m, 5, F) table, reordered once per variation
        names = [k for k in cands if k != "position"]
        cands["_table"] = np.stack([cands[k].astype(np.float64) for k in names], axis=2)
        cands["_names"] = names  # type: ignore[assignment]
        delta_s, delta_r = cfg.systematics.energy_scale, cfg.systematics.energy_resolution
        energy_variations = {"nominal": cands["E"]}
        if not is_data:
            energy_variations.update({
                "escale_up": cands["E"] * (1.0 + delta_s),
                "escale_down": cands["E"] * (1.0 - delta_s),
                "eres_up": true_energy + (cands["E"] - true_energy) * (1.0 + delta_r),
                "eres_down": true_energy + (cands["E"] - true_energy) * (1.0 - delta_r),
            })  # fmt: skip

        skim_rows: list[dict[str, np.ndarray]] = []
        for variation, energy in energy_variations.items():
            result = self._reconstruct(
                events,
                pool,
                cands,
                energy,
                beam[pool],
                e_cms[pool],
                no_track[pool],
                is_data,
                period,
            )
            if variation == "nominal":
                nominal_weight = weight * trigger_weight["nominal"]
                self._fill_cutflow(
                    hists, result["selection"], nominal_weight, pool, trg_esum, sample, period
                )
            sel = result["selected"]
            if not sel.any():
                continue
            weights = {variation: (weight * trigger_weight["nominal"])[sel]}
            if variation == "nominal" and not is_data:
                lumi = cfg.systematics.luminosity
                weights.update({
                    "lumi_up": weights["nominal"] * (1.0 + lumi),
                    "lumi_down": weights["nominal"] * (1.0 - lumi),
                })  # fmt: skip
                if cfg.systematics.trigger:
                    weights["trigger_up"] = (weight * trigger_weight["trigger_up"])[sel]
                    weights["trigger_down"] = (weight * trigger_weight["trigger_down"])[sel]
            truth = result["matched"] if not is_data else np.zeros_like(result["mgg"], dtype=bool)
            scores = self._scores(result) if self.settings.scorer is not None else None
            for name, w in weights.items():
                self._fill_main(hists, sample, period, name, result["mgg"], truth, w, scores)
            if variation == "nominal":
                self._fill_monitoring(
                    hists, sample, period, result, weights["nominal"], mc_ma, truth
                )
                skim_rows.append(
                    self._skim(
                        events, result, weights["nominal"], truth, sample, period, mc_ma, scores
                    )
                )
        out: dict[str, Any] = dict(hists)
        out["skipped"] = []
        out["skims"] = self._write_skims(skim_rows, meta) if self.settings.skim_dir else []
        return out

    def _reconstruct(
        self,
        events: Any,
        pool: npt.NDArray[np.int64],
        cands: dict[str, np.ndarray],
        energy: FloatArray,
        beam: FloatArray,
        e_cms: FloatArray,
        no_track: npt.NDArray[np.bool_],
        is_data: bool,
        period: str,
    ) -> dict[str, Any]:
        """Selection, fit and features of the pool's events (arrays indexed like ``pool``;
        the result's ``selected`` is a mask over all events, ``rows`` their indices)."""
        cfg = self.settings.config
        pre = cfg.preselection
        three, order = self._select(energy, cands)
        names, table = cands["_names"], cands["_table"]
        stacked = np.take_along_axis(table, order[:, :, None], axis=1)
        pick = {k: stacked[:, :, i] for i, k in enumerate(names)}
        pick["region"] = pick["region"].astype(np.int64)
        pick["mcIndex"] = pick["mcIndex"].astype(np.int64)
        e3 = np.where(three[:, None], np.take_along_axis(energy, order, axis=1), 1.0)
        p3 = photon_momenta(e3, pick["theta"], pick["phi"])
        total = p3.sum(axis=1)
        m3 = np.sqrt(np.clip(total[:, 0] ** 2 - np.sum(total[:, 1:] ** 2, axis=1), 0.0, None))
        ratio = m3 / e_cms
        sigma_t = time_resolution(
            e3, cfg.simulation.detector.time_constant_ns, cfg.simulation.detector.time_floor_ns
        )
        spread = np.zeros(len(e3))
        for i, j in ((0, 1), (0, 2), (1, 2)):
            spread = np.maximum(
                spread,
                np.abs(pick["time"][:, i] - pick["time"][:, j])
                / np.hypot(sigma_t[:, i], sigma_t[:, j]),
            )
        selection = PackedSelection()
        selection.add("three_photons", three)
        selection.add(
            "m3g", three & (ratio > pre.m3g_min_fraction) & (ratio < pre.m3g_max_fraction)
        )
        selection.add("timing", three & (spread < pre.timing_nsigma))
        selection.add("no_good_track", no_track)
        before_fit = selection.all(*CUTS[1:-1])
        idx = np.flatnonzero(before_fit)
        converged = np.zeros(len(e3), dtype=bool)
        fit = None
        if len(idx):
            cov = self._covariance({k: v[idx] for k, v in pick.items()}, e3[idx], is_data, period)
            fit = kinfit.fit_three_photons(
                e3[idx], pick["theta"][idx], pick["phi"][idx], cov, beam[idx],
                max_iterations=cfg.kinfit.max_iterations,
                chi2_tolerance=cfg.kinfit.chi2_tolerance,
                constraint_tolerance=cfg.kinfit.constraint_tolerance_GeV,
            )  # fmt: skip
            converged[idx] = fit.converged
        selection.add("fit_converged", converged)
        selected = np.zeros(len(events), dtype=bool)
        selected[pool[selection.all(*CUTS[1:])]] = True
        result: dict[str, Any] = {"selection": selection, "selected": selected}
        if not selected.any() or fit is None:
            result["mgg"] = np.zeros((0, 3))
            return result
        ok = fit.converged
        local = idx[ok]
        rows = pool[local]
        p_fit = photon_momenta(fit.E[ok], fit.theta[ok], fit.phi[ok])
        features = event_features(p_fit, beam[local])
        cand = candidate_features(p_fit, p3[local], beam[local])
        mc_index = pick["mcIndex"][local]
        from_alp = self._from_alp(events, rows, mc_index, is_data)
        matched = np.stack([from_alp[:, i] & from_alp[:, j] for i, j, _ in PAIRS], axis=1)
        e_all = cands["E"][local]
        features["chi2"] = fit.chi2[ok]
        features["fit_pvalue"] = fit.pvalue[ok]
        total_e = np.nansum(np.where(np.isfinite(e_all), e_all, 0.0), axis=1)
        features["E_extra"] = np.clip(total_e - e3[local].sum(axis=1), 0.0, None)
        features["n_extra"] = (np.isfinite(e_all).sum(axis=1) - 3).astype(np.float64)
        features["time_spread"] = spread[local]
        result.update(
            rows=rows, mgg=cand["mgg"], matched=matched, features=features, candidate=cand,
            pulls=fit.pulls[ok], fit_chi2=fit.chi2[ok], fit_pvalue=fit.pvalue[ok],
            region=pick["region"][local], gap=np.any(pick["region"][local] == REGION_GAP, axis=1),
        )  # fmt: skip
        return result

    def _from_alp(
        self,
        events: Any,
        rows: npt.NDArray[np.int64],
        mc_index: npt.NDArray[np.int64],
        is_data: bool,
    ) -> npt.NDArray[np.bool_]:
        if is_data or "mc_photon" not in events.fields:
            return np.zeros(mc_index.shape, dtype=bool)
        flags = events.mc_photon.fromALP
        width = int(ak.max(ak.num(flags), initial=0))
        table = _padded(flags, max(width, 1), 0, np.int64)[rows]
        found = (mc_index >= 0) & (mc_index < table.shape[1])
        return found & (np.take_along_axis(table, np.where(found, mc_index, 0), axis=1) > 0)

    def _scores(self, result: dict[str, Any]) -> FloatArray:
        """Selection scores per candidate, with the features laid out as in the skims (event-level
        features repeated for the three pairings)."""
        scorer = self.settings.scorer
        columns = _candidate_table(result)
        matrix = np.stack([_per_candidate(columns[name]) for name in scorer.features], axis=1)
        return np.asarray(scorer(matrix), dtype=np.float64).reshape(result["mgg"].shape)

    @staticmethod
    def _fill_cutflow(
        hists: dict[str, Any],
        selection: PackedSelection,
        weight: FloatArray,
        pool: npt.NDArray[np.int64],
        trigger: npt.NDArray[np.bool_],
        sample: str,
        period: str,
    ) -> None:
        """Weighted events after each successive cut; events outside the pool fail the second."""
        histogram = hists["cutflow"]
        _add_to_bin(histogram, weight, dataset=sample, period=period, cut="all")
        _add_to_bin(histogram, weight[trigger], dataset=sample, period=period, cut=CUTS[0])
        pooled = weight[pool]
        for i in range(1, len(CUTS)):
            passed = selection.all(*CUTS[1 : i + 1])
            _add_to_bin(histogram, pooled[passed], dataset=sample, period=period, cut=CUTS[i])

    def _fill_main(
        self,
        hists: dict[str, Any],
        sample: str,
        period: str,
        variation: str,
        mgg: FloatArray,
        truth: npt.NDArray[np.bool_],
        weight: FloatArray,
        scores: FloatArray | None,
    ) -> None:
        w = np.repeat(weight, 3)
        labels = np.where(truth.ravel(), "matched", "unmatched")
        hists["mgg"].fill(
            dataset=sample,
            period=period,
            variation=variation,
            truth=labels,
            mgg=mgg.ravel(),
            weight=w,
        )
        if scores is not None:
            hists["mgg_score"].fill(
                dataset=sample, period=period, variation=variation, truth=labels, mgg=mgg.ravel(),
                score=np.clip(scores.ravel(), 0.0, 1.0 - 1e-9), weight=w,
            )  # fmt: skip

    @staticmethod
    def _fill_monitoring(
        hists: dict[str, Any], sample: str, period: str, result: dict[str, Any], weight: FloatArray,
        mc_ma: float, truth: npt.NDArray[np.bool_],
    ) -> None:  # fmt: skip
        for q, quantity in enumerate(("E", "theta", "phi")):
            hists["kinfit_pull"].fill(
                dataset=sample,
                quantity=quantity,
                pull=result["pulls"][:, :, q].ravel(),
                weight=np.repeat(weight, 3),
            )
        hists["kinfit_chi2"].fill(
            dataset=sample, chi2=result["fit_chi2"], pvalue=result["fit_pvalue"], weight=weight
        )
        if mc_ma > 0 and truth.any():
            w3 = np.repeat(weight, 3)[truth.ravel()]
            for kind, key in (("raw", "mgg_raw"), ("fit", "mgg")):
                values = result["candidate"][key].ravel()[truth.ravel()]
                hists["mass_resolution"].fill(
                    dataset=sample, kind=kind, residual=values / mc_ma - 1.0, weight=w3
                )
        table = _candidate_table(result)
        for name in FEATURE_BINNING:
            values = table[name]
            if values.ndim == 2:  # candidate-level: one entry per candidate
                hists[f"feature_{name}"].fill(
                    dataset=sample,
                    period=period,
                    value=values.ravel(),
                    weight=np.repeat(weight, 3) / 3.0,
                )
            else:
                hists[f"feature_{name}"].fill(
                    dataset=sample, period=period, value=values, weight=weight
                )

    def _skim(
        self, events: Any, result: dict[str, Any], weight: FloatArray, truth: npt.NDArray[np.bool_],
        sample: str, period: str, mc_ma: float, scores: FloatArray | None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        rows = result["rows"]
        m = len(rows)
        table = _candidate_table(result)
        out: dict[str, np.ndarray] = {
            "dataset": np.full(3 * m, sample),
            "period": np.full(3 * m, period),
            "exp": np.repeat(_numpy(events.exp, np.int32)[rows], 3),
            "run": np.repeat(_numpy(events.run, np.int32)[rows], 3),
            "event": np.repeat(_numpy(events.event, np.int64)[rows], 3),
            "pair": np.tile(np.arange(3, dtype=np.int8), m),
            "is_signal": np.full(3 * m, mc_ma > 0),
            "mc_ma": np.full(3 * m, mc_ma),
            "truth_matched": truth.ravel(),
            "weight": np.repeat(weight, 3),
        }
        for name in _SKIM_FEATURES + _SKIM_CANDIDATE:
            out[name] = _per_candidate(table[name])
        if scores is not None:
            out["score"] = scores.ravel()
        return out

    def _write_skims(self, rows: list[dict[str, np.ndarray]], meta: dict[str, Any]) -> list[str]:
        if not rows or not len(rows[0]["weight"]):
            return []
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: np.concatenate([r[k] for r in rows]) for k in rows[0]})
        stem = Path(str(meta["filename"])).stem
        tag = hashlib.sha1(f"{meta['filename']}:{meta['entrystart']}".encode()).hexdigest()[:8]
        target = (
            Path(str(self.settings.skim_dir))
            / str(meta["sample"])
            / f"{stem}_{meta['entrystart']:09d}_{tag}.parquet"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(target)
        return [str(target)]

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


def _add_to_bin(histogram: Any, weight: FloatArray, **categories: str) -> None:
    """Add sum(w) and sum(w^2) of ``weight`` to the bin of a category-only histogram."""
    histogram.fill(**{k: [v] for k, v in categories.items()}, weight=[0.0])  # grows the axes
    index = tuple(axis.index(categories[axis.name]) for axis in histogram.axes)
    view = histogram.view(flow=False)
    view.value[index] += float(np.sum(weight))
    view.variance[index] += float(np.sum(np.square(weight)))


def _per_candidate(values: np.ndarray) -> np.ndarray:
    """One value per candidate: candidate-level ``(m, 3)`` arrays flattened event by event,
    event-level ``(m,)`` arrays repeated for the three pairings."""
    return values.ravel() if values.ndim == 2 else np.repeat(values, 3)


def _candidate_table(result: dict[str, Any]) -> dict[str, np.ndarray]:
    table: dict[str, np.ndarray] = dict(result["features"])
    table.update(result["candidate"])
    return table


def _is_read_error(exc: BaseException) -> bool:
    """Whether an exception (or one in its chain) comes from reading a damaged file."""
    import zlib

    import uproot

    kinds: tuple[type[BaseException], ...] = (
        OSError,
        EOFError,
        zlib.error,
        uproot.deserialization.DeserializationError,
    )
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kinds) or "decompress" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def variation_names(is_data: bool) -> tuple[str, ...]:
    """Variations a sample fills."""
    return ("nominal",) if is_data else VARIATIONS
