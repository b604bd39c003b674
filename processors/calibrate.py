"""``alps calibrate``: the calibration pass and its fits, written as a correctionlib file.

Outputs under ``workdir/calibration``: ``corrections.json`` (correctionlib, read by the processor),
``results.json`` (every bin's fit, the combined factors with their uncertainties, the trigger
turn-on parameters) and ``calibration.hist.zip`` (the histograms, with provenance).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import AnalysisConfig
from alps.contract import is_signal
from alps.histio import provenance, write_histograms

from .calibration import (
    MIN_EVENTS,
    TurnOnFit,
    build_corrections,
    central_width,
    combine,
    data_resolution,
    fit_residual,
    fit_turn_on,
    model_resolution,
)
from .calibration_processor import CalibrationProcessor
from .run import ProcessingError, build_fileset, check_files, manifest_checksums, read_manifest
from .schema import BelleIISchema
from .windowed import TREE_REDUCTION, WindowedDaskExecutor

__all__ = ["CalibrationResult", "run_calibration"]

_REGIONS = (1, 2, 3)
#: a bin's calorimeter width (MC truth) must be at least this fraction of the width against the
#: prediction for the bin to enter the combined resolution factors
MIN_CALORIMETER_FRACTION = 0.4


@dataclass(frozen=True)
class CalibrationResult:
    corrections: Path
    results: Path
    #: k[quantity][sample][period][region]: resolution relative to the physics.md form
    resolution_scale: dict[str, dict[str, dict[str, dict[int, float]]]]
    #: data/MC photon energy scale [period][region]
    energy_scale: dict[str, dict[int, float]]


def _run(
    config: AnalysisConfig, workdir: Path, client: Any, progress: bool
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    from coffea import processor

    manifest, expected = read_manifest(workdir)
    fileset = {
        k: v
        for k, v in build_fileset(workdir, manifest).items()
        if not is_signal(v["metadata"]["sample"])
    }
    fileset, skipped = check_files(
        fileset,
        expected,
        config.processing.skip_bad_files,
        checksums=manifest_checksums(workdir, manifest),
    )
    if client is not None:
        executor = WindowedDaskExecutor(
            client=client, retries=config.processing.retries, status=progress,
            treereduction=TREE_REDUCTION,
        )  # fmt: skip
    else:
        executor = processor.IterativeExecutor(status=progress)
    runner = processor.Runner(
        executor=executor, schema=BelleIISchema, chunksize=config.processing.chunk_size
    )
    output = runner(fileset, processor_instance=CalibrationProcessor(), treename="events")
    return output, skipped, [p for d in fileset.values() for p in d["files"]]


#: per calibrated quantity: its histogram and the kinds holding the residual to the prediction
#: and to the truth
_KINDS = {
    "energy": ("mumug_residual", "measured", "truth"),
    "theta": ("mumug_angle", "theta", "theta_truth"),
    "phi": ("mumug_angle", "phi", "phi_truth"),
}


def _bin_fits(histogram: Any, dataset: str, period: str, kind: str) -> dict[tuple[int, int], Any]:
    edges = histogram.axes["residual"].edges
    out = {}
    for region in _REGIONS:
        for b in range(len(histogram.axes["energy"])):
            h = histogram[
                {"dataset": dataset, "period": period, "kind": kind, "region": region, "energy": b}
            ]
            out[(region, b)] = fit_residual(h.values(), h.variances(), edges)
    return out


def _resolutions(
    histogram: Any, quantity: str, period: str
) -> tuple[list[dict[str, Any]], dict[str, dict[int, tuple[float, float]]], dict[str, Any]]:
    """Bin rows, the combined factors k per sample and region, and the fits, for one quantity.

    MC's resolution is the core width against the truth; the data's adds the extra smearing
    that the data/MC comparison against the prediction shows (:func:`data_resolution`)."""
    _, measured_kind, truth_kind = _KINDS[quantity]
    fits = {
        "data": _bin_fits(histogram, "data", period, measured_kind),
        "mc": _bin_fits(histogram, "mumug", period, measured_kind),
        "truth": _bin_fits(histogram, "mumug", period, truth_kind),
    }
    axis = histogram.axes["energy"]
    centers = np.sqrt(axis.edges[1:] * axis.edges[:-1])
    rows = []
    factors: dict[str, dict[int, tuple[float, float]]] = {"data": {}, "mc": {}}
    for region in _REGIONS:
        mc_factors: list[tuple[float, float]] = []
        ratios: list[tuple[float, float]] = []
        for b, energy in enumerate(centers):
            model = float(model_resolution(np.array([energy]), region, quantity)[0])
            truth, d_fit, m_fit = (
                fits["truth"][(region, b)],
                fits["data"][(region, b)],
                fits["mc"][(region, b)],
            )
            measured = {
                "mc": (truth.sigma, truth.sigma_err) if truth.valid else (math.nan, math.nan),
                "data": data_resolution(truth, d_fit, m_fit),
            }
            row: dict[str, Any] = {"quantity": quantity, "period": period, "region": region,
                                   "energy_lo": float(axis.edges[b]), "energy_hi": float(axis.edges[b + 1]),
                                   "model": model, "mc_truth": asdict(truth)}  # fmt: skip
            # a bin enters the combination where the prediction's spread does not swamp the
            # calorimeter's: its linearised error is then trustworthy
            row["used"] = bool(
                truth.valid
                and m_fit.valid
                and truth.sigma >= MIN_CALORIMETER_FRACTION * m_fit.sigma
            )
            for sample, fit in (("data", d_fit), ("mc", m_fit)):
                resolution, error = measured[sample]
                row[sample] = {**asdict(fit), "resolution": resolution, "resolution_err": error}
            (data_res, data_err), (mc_res, mc_err) = measured["data"], measured["mc"]
            if row["used"] and np.isfinite(data_res):
                mc_factors.append((mc_res / model, mc_err / model))
                ratios.append((data_res / mc_res, data_err / mc_res))
            rows.append(row)
        # k_MC from the truth widths; k_data = k_MC times the data/MC ratio combined bin by bin
        mc_values, ratio_values = (
            np.array(v or [(math.nan, math.nan)]) for v in (mc_factors, ratios)
        )
        k_mc, k_mc_err = combine(mc_values[:, 0], mc_values[:, 1])
        ratio, ratio_err = combine(ratio_values[:, 0], ratio_values[:, 1])
        factors["mc"][region] = (k_mc, k_mc_err)
        factors["data"][region] = (
            k_mc * ratio,
            k_mc * ratio * math.hypot(k_mc_err / k_mc, ratio_err / ratio),
        )
    return rows, factors, fits


def _energy_scale(fits: dict[str, Any], n_bins: int) -> dict[int, tuple[float, float]]:
    """Data/MC energy scale per region: the ratio of the residual peaks, combined over energy."""
    out = {}
    for region in _REGIONS:
        shifts = []
        for b in range(n_bins):
            d, m = fits["data"][(region, b)], fits["mc"][(region, b)]
            if d.valid and m.valid:
                shifts.append(
                    ((1.0 + d.mu) / (1.0 + m.mu), math.hypot(d.mu_err, m.mu_err) / (1.0 + m.mu))
                )
        arr = np.array(shifts or [(math.nan, math.nan)])
        out[region] = combine(arr[:, 0], arr[:, 1])
    return out


def run_calibration(
    config: AnalysisConfig, workdir: str | Path, *, client: Any = None, progress: bool = True
) -> CalibrationResult:
    """Measure the photon resolution and scale and the trigger efficiency; write the corrections."""
    workdir = Path(workdir)
    output, skipped, inputs = _run(config, workdir, client, progress)
    residual = output["mumug_residual"]
    trigger = output["trigger_turnon"]
    if not {"data", "mumug"} <= set(residual.axes["dataset"]):
        raise ProcessingError("calibration needs the pseudo-data and the mumug MC sample")
    periods = list(residual.axes["period"])
    prediction_edges = residual.axes["residual"].edges
    bins: list[dict[str, Any]] = []
    factors: dict[str, dict[str, dict[str, dict[int, tuple[float, float]]]]] = {
        q: {"data": {}, "mc": {}} for q in _KINDS
    }
    scale: dict[str, dict[int, tuple[float, float]]] = {}
    for period in periods:
        for quantity, (name, _, _) in _KINDS.items():
            rows, per_sample, fits = _resolutions(output[name], quantity, period)
            for sample in ("data", "mc"):
                factors[quantity][sample][period] = per_sample[sample]
            if quantity == "energy":
                scale[period] = _energy_scale(fits, len(residual.axes["energy"]))
                for row, b in zip(
                    rows, [b for _ in _REGIONS for b in range(len(residual.axes["energy"]))]
                ):
                    h = residual[
                        {
                            "dataset": "mumug",
                            "period": period,
                            "kind": "prediction",
                            "region": row["region"],
                            "energy": b,
                        }
                    ]
                    row["sigma_prediction"] = central_width(h.values(), prediction_edges)[0]
            bins.extend(rows)
    k_values = {
        q: {
            s: {p: {r: v[0] for r, v in per.items()} for p, per in by_s.items()}
            for s, by_s in by_q.items()
        }
        for q, by_q in factors.items()
    }

    turn_on: dict[str, dict[str, TurnOnFit]] = {"data": {}, "mc": {}}
    turn_on_table = []
    esum_edges = trigger.axes["esum"].edges
    for period in trigger.axes["period"]:
        for sample in ("data", "mc"):
            names = (
                ["data"]
                if sample == "data"
                else [d for d in trigger.axes["dataset"] if d != "data"]
            )
            if not names:
                continue
            sub = trigger[{"period": period}]
            fired = sum(sub[{"dataset": d, "fired": True}].values() for d in names)
            total = fired + sum(sub[{"dataset": d, "fired": False}].values() for d in names)
            if sample == "mc":  # binomial fit on effective counts of the weighted MC
                variance = sum(
                    sub[{"dataset": d, "fired": f}].variances()
                    for d in names
                    for f in (True, False)
                )
                factor = np.where(variance > 0, total / np.where(variance > 0, variance, 1.0), 1.0)
                fired, total = fired * factor, total * factor
            fit = fit_turn_on(esum_edges, fired, total)
            turn_on[sample][period] = fit
            turn_on_table.append({"sample": sample, "period": period, **asdict(fit),
                                  "errors": [math.sqrt(max(fit.covariance[i][i], 0.0)) for i in range(3)]})  # fmt: skip

    record = provenance(
        config=config.model_dump(mode="json"), inputs=inputs, stage="calibrate", skipped=skipped
    )
    target = workdir / "calibration"
    target.mkdir(parents=True, exist_ok=True)
    energy_scale = {p: {r: v[0] for r, v in per.items()} for p, per in scale.items()}
    corrections = build_corrections(
        k_values, energy_scale, turn_on, {"config_hash": config.section_hash()}
    )
    (target / "corrections.json").write_text(json.dumps(corrections, indent=1))
    results = {
        "min_events_per_bin": MIN_EVENTS,
        "resolution_scale": {
            q: {
                s: {p: {str(r): list(v) for r, v in per.items()} for p, per in by_s.items()}
                for s, by_s in by_q.items()
            }
            for q, by_q in factors.items()
        },
        "energy_scale": {p: {str(r): list(v) for r, v in per.items()} for p, per in scale.items()},
        "bins": bins,
        "trigger": turn_on_table,
        "provenance": {k: record[k] for k in ("versions", "git_revision", "skipped")},
    }
    (target / "results.json").write_text(json.dumps(results, indent=1, default=float))
    write_histograms(
        target / "calibration.hist.zip",
        {
            "mumug_residual": residual,
            "mumug_angle": output["mumug_angle"],
            "trigger_turnon": trigger,
        },
        record,
    )
    return CalibrationResult(
        target / "corrections.json", target / "results.json", k_values, energy_scale
    )
