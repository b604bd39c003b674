"""The HTML report (``report/index.html``), built from the stored outputs only.

Sections: overview and stage timings, cutflow per sample, data/MC comparisons (every monitored
feature, every input of the net, the selection score) with ratio panels and chi2/ndf, the
background composition per M_gg range, the kinematic fit (pulls against the summed MC, chi2
calibration against chi2 with 4 dof), the mass resolution, the calibration, the trigger
efficiency, the selection (ranking, working point, Punzi net against XGBoost and cuts), signal
shapes, the limits (table at chosen masses, Brazil bands for sigma x P_decay and g_agg, local
significance) and the provenance. A section whose inputs are missing says so instead of failing.

The page is self-contained: every figure is embedded as a base64 PNG, and its vector version
(PDF) is written beside ``index.html`` and linked. ``report.blind`` hides the observed limits, the
significances and the data in the signal windows; ``report.published_limits`` draws a
user-supplied limit over the coupling limit (:mod:`alps.overlay`).
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from limits.mass_model import excluded_regions
from limits.plots import COUPLING_LABEL, XSEC_LABEL, plot_brazil, plot_significance

from .composition import composition
from .config import AnalysisConfig
from .contract import FEATURE_BINNING, is_data, is_signal
from .fitcheck import chi2_calibration
from .histio import iter_categories, read_histograms, read_provenance
from .overlay import read_published_limits
from .plots import (
    FEATURE_LABELS,
    plot_chi2_pvalues,
    plot_data_mc,
    plot_fit_quality,
    plot_mass_resolution,
    plot_resolution_bins,
    plot_trigger,
)

__all__ = ["blinded_windows", "build_report", "limits_table", "processed_inputs"]

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #aaa; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #eee; } img { max-width: 100%; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; } .blind { color: #a00; font-weight: bold; }
td.t { text-align: left; } pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table: numbers to 4 significant digits, right-aligned; text escaped, left-aligned."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "<td>" + ("nan" if not np.isfinite(value) else f"{value:.4g}") + "</td>"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"<td>{value}</td>"
        return f'<td class="t">{html.escape(str(value))}</td>'

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(out: Path, name: str, caption: str = "") -> str:
    """The PNG ``out/name`` embedded as base64 (the page needs no other file), with a link to
    its PDF beside it when there is one."""
    path = out / name
    if not path.exists():
        return _missing(caption or name)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    pdf = path.with_suffix(".pdf")
    link = f' <a href="{html.escape(pdf.name)}">PDF</a>' if pdf.exists() else ""
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption or name)}">'
        f'<figcaption class="note">{html.escape(caption)}{link}</figcaption></figure>'
    )


def _missing(what: str) -> str:
    return f'<p class="note">{html.escape(what)} not available (its stage has not run).</p>'


def _copy_images(source: Path, target: Path, prefix: str, skip: Iterable[str] = ()) -> list[str]:
    """Copy ``source/*.png`` (and their PDFs) to ``target`` as ``prefix_name``; the PNG names."""
    names = []
    skipped = set(skip)
    for png in sorted(source.glob("*.png")) if source.is_dir() else []:
        if png.name in skipped:
            continue
        name = f"{prefix}_{png.name}"
        shutil.copyfile(png, target / name)
        if png.with_suffix(".pdf").exists():
            shutil.copyfile(png.with_suffix(".pdf"), (target / name).with_suffix(".pdf"))
        names.append(name)
    return names


def blinded_windows(config: AnalysisConfig) -> list[tuple[float, float]]:
    """The signal windows a blinded report hides: the scan range outside the meson vetoes
    (which are control regions and stay visible), as M_gg intervals in GeV."""
    lo, hi = config.limits.scan_range_GeV
    windows = []
    start = lo
    for v_lo, v_hi in sorted(excluded_regions(config)):
        if v_hi <= start or v_lo >= hi:
            continue
        if v_lo > start:
            windows.append((start, v_lo))
        start = max(start, v_hi)
    if start < hi:
        windows.append((start, hi))
    return windows


def _cutflow(hists: Mapping[str, Any]) -> str:
    """Weighted events after each cut, one row per sample, and passed/generated."""
    cutflow = hists["cutflow"]
    cuts = list(cutflow.axes["cut"])
    rows = []
    for dataset in cutflow.axes["dataset"]:
        values = [
            float(
                cutflow[{"dataset": dataset, "cut": c}].project().value
                if "period" in cutflow.axes.name
                else cutflow[{"dataset": dataset, "cut": c}].value
            )
            for c in cuts
        ]
        rows.append([dataset, *values, values[-1] / values[0] if values[0] else float("nan")])
    return (
        '<p class="note">Weighted events (MC scaled to the luminosity) after each cut; the '
        '"all" column is the generated weight, so the efficiency is passed/generated.</p>'
        + _table(["sample", *cuts, "efficiency"], rows)
    )


def _sum_periods(h: Any) -> Any:
    return h[{"period": sum}] if "period" in h.axes.name else h


def _backgrounds(hists: Mapping[str, Any]) -> list[str]:
    return [d for d in hists["mgg"].axes["dataset"] if not is_data(d) and not is_signal(d)]


def _data_mc(
    hists: Mapping[str, Any], out: Path, config: AnalysisConfig, lumi_fb: float | None
) -> str:
    """Data against the stacked MC for M_gg and every monitored feature (the net's inputs
    marked); features of the net without a histogram are named."""
    parts = []
    rows = []
    backgrounds_all = _backgrounds(hists)
    inputs = set(config.training.features)
    blind = blinded_windows(config) if config.report.blind else []
    for name in FEATURE_BINNING:
        key = f"feature_{name}"
        if key not in hists:
            continue
        h = _sum_periods(hists[key])
        datasets = list(h.axes["dataset"])
        if "data" not in datasets:
            continue
        backgrounds = {d: h[{"dataset": d}] for d in backgrounds_all if d in datasets}
        label = FEATURE_LABELS.get(name, name)
        stats = plot_data_mc(h[{"dataset": "data"}], backgrounds, out / f"datamc_{name}.png",
                             xlabel=label, title=name, lumi_fb=lumi_fb)  # fmt: skip
        net = "yes" if name in inputs else ""
        rows.append(
            [name, net, stats["data"], stats["mc"], stats["chi2"], stats["ndf"], stats["p_value"]]
        )
        parts.append(
            _image(out, f"datamc_{name}.png",
                   f"{name}{' (input of the net)' if net else ''}: data/MC after the corrections")
        )  # fmt: skip
    mgg = hists["mgg"][{"period": sum, "variation": "nominal", "truth": sum}]
    if "data" in mgg.axes["dataset"]:
        backgrounds = {d: mgg[{"dataset": d}] for d in backgrounds_all}
        stats = plot_data_mc(mgg[{"dataset": "data"}], backgrounds, out / "datamc_mgg.png",
                             xlabel=r"$M_{\gamma\gamma}$ [GeV]", per="GeV", blind=blind,
                             title="all candidates after pre-selection", rebin=10,
                             lumi_fb=lumi_fb)  # fmt: skip
        rows.insert(0, ["M_gg (all candidates)", "", stats["data"], stats["mc"], stats["chi2"],
                        stats["ndf"], stats["p_value"]])  # fmt: skip
        caption = "diphoton mass of every candidate (three per event), data against MC"
        if blind:
            caption += "; the data in the signal windows are hidden (blinded)"
        parts.insert(0, _image(out, "datamc_mgg.png", caption))
    missing = sorted(inputs - set(FEATURE_BINNING))
    note = (
        f'<p class="note">Inputs of the net without a monitoring histogram: {", ".join(missing)}.</p>'
        if missing
        else '<p class="note">Every input of the net has a data/MC comparison below '
        '(column "net input").</p>'
    )
    header = ["distribution", "net input", "data", "MC", "chi2", "ndf", "p-value"]
    return note + _table(header, rows) + "".join(parts)


def _score(
    workdir: Path, out: Path, config: AnalysisConfig, lumi_fb: float | None, cut: float | None
) -> str:
    """Data against the stacked MC in the selection score (all masses, nominal)."""
    path = workdir / "histograms" / "mgg_score.hist.zip"
    if not path.exists():
        return _missing("The selection-score histograms")
    # the score stage's mgg has a score axis; read one dataset at a time (its size grows with
    # the run periods) and reduced at once to the score
    reduced: dict[str, Any] = {}
    one: Any
    for dataset, one in iter_categories(path, "mgg"):
        if "score" not in one.axes.name:
            return '<p class="note">The score histograms have no score axis.</p>'
        if is_data(dataset) or not is_signal(dataset):
            part = one[{"period": sum, "variation": "nominal", "truth": sum, "mgg": sum}]
            reduced[dataset] = part[{"dataset": dataset}]
    if "data" not in reduced:
        return '<p class="note">No data in the score histograms.</p>'
    backgrounds = {d: h for d, h in reduced.items() if not is_data(d)}
    blind = [(cut, 1.0)] if config.report.blind and cut is not None else []
    stats = plot_data_mc(reduced["data"], backgrounds, out / "datamc_score.png",
                         xlabel="selection score [dimensionless]", per="unit score",
                         title="selection score, every candidate", blind=blind, lumi_fb=lumi_fb)  # fmt: skip
    edges = reduced["data"].axes["score"].edges
    data = reduced["data"].values()
    mc = sum(v.values() for v in backgrounds.values())
    rows = [
        [f"{edges[i]:g}-{edges[i + 1]:g}", float(data[i]), float(mc[i]),
         float(data[i] / mc[i]) if mc[i] > 0 else float("nan")]
        for i in range(len(data))
        if not (blind and edges[i] >= blind[0][0])
    ]  # fmt: skip
    caption = "selection score, data against the stacked MC"
    if blind:
        caption += f"; data at score >= {cut:g} (the working point) are hidden (blinded)"
    return (
        f"<p>chi2/ndf = {stats['chi2']:.1f}/{stats['ndf']} (p = {stats['p_value']:.3g}).</p>"
        + _table(["score bin", "data", "MC", "data/MC"], rows)
        + _image(out, "datamc_score.png", caption)
    )


def _composition(hists: Mapping[str, Any], config: AnalysisConfig, out: Path) -> str:
    """MC composition and data/MC per M_gg range (also written to ``composition.json``)."""
    rows = composition(hists["mgg"])
    blind = blinded_windows(config) if config.report.blind else []
    if blind:
        for row in rows:
            lo, hi = row["range_GeV"]
            if any(lo < b_hi and hi > b_lo for b_lo, b_hi in blind):
                for key in ("data", "data_over_mc", "chi2", "ndf"):
                    row.pop(key, None)
    (out / "composition.json").write_text(json.dumps(rows, indent=1))
    table = []
    for row in rows:
        lo, hi = row["range_GeV"]
        top = sorted(row["share"].items(), key=lambda kv: -kv[1])[:4]
        table.append([
            f"{lo:g}-{hi:g}", row["mc"], row.get("data", "blinded" if blind else float("nan")),
            row.get("data_over_mc", float("nan")),
            f"{row['chi2']:.1f}/{row.get('ndf', 0)}" if "chi2" in row else "",
            ", ".join(f"{name} {100 * share:.1f}%" for name, share in top if share > 0),
        ])  # fmt: skip
    nature = config.simulation.data.nature
    note = (
        f'<p class="note">The pseudo-data contain what the MC does not know ("nature": '
        f"{', '.join(nature.backgrounds)}; beam-background level x{nature.background_level_scale:g} "
        f"varying by run; correlated track loss; docs/background_model.md): a data/MC difference "
        f"here is expected.</p>"
        if nature.enabled
        else '<p class="note">Nature is off: the pseudo-data come from the MC processes.</p>'
    )
    header = ["M_gg [GeV]", "MC", "data", "data/MC", "chi2/ndf", "largest MC shares"]
    return note + _table(header, table)


def _fit_groups(datasets: Iterable[str]) -> dict[str, list[str]]:
    """Data, the summed MC backgrounds, and the signal samples summed."""
    names = list(datasets)
    return {
        "data": [d for d in names if is_data(d)],
        "MC (sum of backgrounds)": [d for d in names if not is_data(d) and not is_signal(d)],
        "signal (all masses)": [d for d in names if is_signal(d)],
    }


def _fit_section(hists: Mapping[str, Any], out: Path, lumi_fb: float | None) -> str:
    groups = _fit_groups(hists["kinfit_pull"].axes["dataset"])
    summary = plot_fit_quality(
        hists["kinfit_pull"], groups, out / "kinfit_pulls.png", lumi_fb=lumi_fb
    )
    rows = [[*k.split(":"), v["mean"], v["width"]] for k, v in summary.items()]
    chi2_groups = _fit_groups(hists["kinfit_chi2"].axes["dataset"])
    plot_chi2_pvalues(
        hists["kinfit_chi2"], chi2_groups, out / "kinfit_pvalues.png", lumi_fb=lumi_fb
    )
    calibration = chi2_calibration(hists["kinfit_chi2"], chi2_groups)
    chi2_rows = [
        [r["group"], r["events"], r["median_chi2"], r["expected_median_chi2"],
         r["fraction_p_below_0.01"], r["expected_fraction"]]
        for r in calibration
    ]  # fmt: skip
    resolution = plot_mass_resolution(hists["mass_resolution"], out / "mass_resolution.png")
    res_rows = [
        [r["mass_GeV"], r["sigma_raw_MeV"], r["sigma_fit_MeV"], r["sigma_fit_MeV"] / r["sigma_raw_MeV"]]
        for r in resolution
    ]  # fmt: skip
    return (
        "<h3>Pulls against the summed MC</h3>"
        + _table(["sample", "quantity", "pull mean", "pull RMS"], rows)
        + _image(out, "kinfit_pulls.png", "kinematic-fit pulls of the data against the summed MC backgrounds (photon energy resolution tails make them non-Gaussian)")
        + "<h3>chi2 calibration</h3>"
        + '<p class="note">The 4C fit has 4 degrees of freedom: for a calibrated photon covariance the median chi2 is 3.36 and 1% of the events have p &lt; 0.01 (chi2 &gt; 13.28). Read from the chi2 histogram (0.5-wide bins, overflow counted; alps/fitcheck.py).</p>'
        + _table(["sample", "events (weighted)", "median chi2", "chi2(4) median", "fraction p < 0.01", "chi2(4)"], chi2_rows)
        + _image(out, "kinfit_pvalues.png", "kinematic-fit p-value: flat when calibrated")
        + "<h3>Mass resolution</h3>" + _image(out, "mass_resolution.png", "signal M_gg resolution before and after the fit")
        + _table(["m_a [GeV]", "sigma raw [MeV]", "sigma fit [MeV]", "fit/raw"], res_rows)
    )  # fmt: skip


def _calibration(workdir: Path, out: Path) -> tuple[str, str]:
    """The calibration section and the trigger-efficiency section."""
    results_path = workdir / "calibration" / "results.json"
    if not results_path.exists():
        return _missing("Calibration"), _missing("The trigger efficiency")
    results = json.loads(results_path.read_text())
    rows = []
    for quantity, by_sample in results["resolution_scale"].items():
        for period, regions in by_sample["data"].items():
            for region, (k_data, e_data) in regions.items():
                k_mc, e_mc = by_sample["mc"][period][region]
                rows.append(
                    [
                        quantity,
                        period,
                        region,
                        k_data,
                        e_data,
                        k_mc,
                        e_mc,
                        k_data / k_mc if k_mc else float("nan"),
                    ]
                )
    scale_rows = [
        [p, r, v[0], v[1]]
        for p, regions in results["energy_scale"].items()
        for r, v in regions.items()
    ]
    points = plot_resolution_bins(results["bins"], out / "calibration_bins.png")
    hists = read_histograms(workdir / "calibration" / "calibration.hist.zip", ["trigger_turnon"])
    plot_trigger(hists["trigger_turnon"], results["trigger"], out / "trigger.png")
    trig_rows = [
        [
            t["sample"],
            t["period"],
            t["eps_max"],
            t["mu"],
            t["errors"][1],
            t["width"],
            t["errors"][2],
        ]
        for t in results["trigger"]
    ]
    caption = (
        f"measured resolution per bin (mu mu gamma); hollow: bins not used in the combination; "
        f"{points['failed']} failed fits left out, {points['clipped']} points outside the drawn range"
    )
    calibration = (
        "<p>Resolution factors k relative to the physics.md form (data/MC is what the MC is smeared by):</p>"
        + _table(["quantity", "period", "region", "k data", "err", "k MC", "err", "data/MC"], rows)
        + "<p>Photon energy scale, data over MC:</p>" + _table(["period", "region", "scale", "err"], scale_rows)
        + _image(out, "calibration_bins.png", caption)
    )  # fmt: skip
    trigger = _table(
        ["sample", "period", "eps_max", "mu [GeV]", "err", "width [GeV]", "err"], trig_rows
    ) + _image(out, "trigger.png", "trg_esum efficiency measured with trg_ncl as reference")
    return calibration, trigger


def _selection(workdir: Path, out: Path) -> str:
    model_dir = workdir / "models"
    if not model_dir.is_dir():
        return _missing("The selection")
    parts = []
    ranking_path = model_dir / "ranking.json"
    if ranking_path.exists():
        ranking = json.loads(ranking_path.read_text())
        selected = set(ranking.get("selected", []))
        rows = [
            [f["rank"], f["name"], "yes" if f["name"] in selected else "", f["gain"],
             f["permutation"], f["permutation_std"]]
            for f in ranking.get("features", [])[:15]
        ]  # fmt: skip
        parts.append(
            f"<h3>Feature ranking</h3><p class='note'>{html.escape(str(ranking.get('method', '')))}; "
            f"validation AUC {_num(ranking.get('auc')):.4g}; the 15 best of "
            f"{len(ranking.get('features', []))}.</p>"
            + _table(["rank", "feature", "net input", "gain share", "permutation (AUC drop)", "err"], rows)
        )  # fmt: skip
    if (model_dir / "working_point.json").exists():
        parts.append(
            _working_point_table(json.loads((model_dir / "working_point.json").read_text()))
        )
    sensitivity = model_dir / "sensitivity.json"
    if sensitivity.exists():
        parts.append(_sensitivity_table(json.loads(sensitivity.read_text())))
        parts.append(_fair_table(json.loads(sensitivity.read_text())))
    parts += [_image(out, name, name) for name in _copy_images(model_dir, out, "models")]
    return "".join(parts)


_SELECTIONS = (
    ("punzi", "Punzi net"),
    ("parametrised", "param. Punzi net"),
    ("xgboost", "XGBoost (best cut)"),
    ("cut_based", "cut-based"),
    ("no_selection", "no selection"),
)


def _sensitivity_table(sens: Mapping[str, Any]) -> str:
    """σ_min per mass for every selection, the chosen one's gain over no selection, the goal."""
    present = [(k, label) for k, label in _SELECTIONS if sens.get(k)]
    chosen = sens.get("chosen", "punzi")
    none = sens["no_selection"]["sigma_min_pb"]
    in_search = sens.get("in_search_range") or [True] * len(none)
    rows = []
    for j, m in enumerate(sens["masses_GeV"]):
        mark = ("*" if sens["held_out"][j] else "") + ("" if in_search[j] else " (outside search)")
        values = [sens[k]["sigma_min_pb"][j] for k, _ in present]
        best = sens[chosen]["sigma_min_pb"][j]
        gain = none[j] / best if best and none[j] else None
        rows.append([f"{m:.3f}{mark}", *[_num(v) for v in values], _num(gain)])
    means = sens["mean_sigma_min_pb"]
    for split in ("trained", "held_out", "search_range", "all"):
        if split in means[present[0][0]]:
            rows.append([f"mean, {split}", *[_num(means[k][split]) for k, _ in present], ""])
    goal = sens.get("goal_vs_xgboost_best_cut", {})
    goal_rows = [
        [
            k,
            g["trained_fraction_no_worse"],
            f"{g['held_out_no_worse']}/{g['held_out_masses']}",
            "yes" if g["met"] else "no",
        ]
        for k, g in goal.items()
    ]
    per_mass = sens.get("per_mass_cuts", {})
    folds = int(sens.get("evaluation_folds") or 0)
    where = f"{folds}-fold cross-validated, every event once" if folds else "validation split"
    cut_rows = [
        [k, g["mean_gain_score_edges"], g["mean_gain_any_cut"], g["max_gain_any_cut"]]
        for k, g in per_mass.items()
    ]
    return (
        f"<h3>Minimal detectable cross-section per mass ({where}; deployed: {html.escape(chosen)})</h3>"
        + '<p class="note">sigma_min [pb] (Punzi, arXiv:physics/0308063; 5 sigma discovery, 90% power) '
        "inside the +-N sigma_m window of each mass; * = held-out mass (never trained on). The last "
        "column is sigma_min without selection over the deployed selection's (the gain in "
        "sensitivity; the expected CLs limit follows in the limits section).</p>"
        + _table(["m_a [GeV]", *[label for _, label in present], "gain over none"], rows)
        + "<p>Where each net is no worse than XGBoost at its best cut (goal: at least 90% of the "
        "trained masses and every held-out mass):</p>"
        + _table(["net", "trained fraction", "held-out", "goal met"], goal_rows)
        + "<p>Per-mass cuts against one fixed cut (mean relative gain in sigma_min, search range; "
        "'any cut' is chosen on the same events and so optimistic):</p>"
        + _table(["selection", "mean gain, score edges", "mean gain, any cut", "max gain"], cut_rows)
        + "<p>M_gg sculpting: share of the selected background of each trained window within its "
        "central fifth (about 0.2 for a smooth spectrum; more means the selection learned the "
        "trained masses):</p>"
        + _table(["selection", "core fraction"], list(sens.get("background_core_fraction", {}).items()))
    )  # fmt: skip


def _working_point_table(wp: Mapping[str, Any]) -> str:
    """The sensitivity curve at the score edges (the cuts the histograms allow) and the scores."""
    chosen = wp.get("model", "punzi")
    curves, dist = wp.get("curves", {}), wp.get("score_distribution", {})
    edges = wp["score_edges"][:-1]
    rows = []
    for i, e in enumerate(edges):
        row: list[Any] = [e]
        for k in curves:
            cuts = curves[k]["cuts"]
            j = min(range(len(cuts)), key=lambda n: abs(cuts[n] - e))
            row.append(curves[k]["mean_sigma_min_pb"][j])
        core = curves.get(chosen, {})
        if "core_window_cuts" in core:
            cc = core["core_window_cuts"]
            j = min(range(len(cc)), key=lambda n: abs(cc[n] - e))
            row.append(core["core_window_mean_sigma_min_pb"][j])
        if chosen in dist:
            row += [dist[chosen]["signal"][i], dist[chosen]["background"][i]]
        rows.append(row)
    head = ["score >= edge", *[f"{k}: mean sigma_min [pb]" for k in curves]]
    head += [f"{chosen}: core window"] if "core_window_cuts" in curves.get(chosen, {}) else []
    head += [f"{chosen}: signal in bin", f"{chosen}: background in bin"] if chosen in dist else []
    return (
        f"<h3>Working point: {html.escape(str(chosen))} score &gt;= {wp['cut']:g}</h3>"
        f"<p>{html.escape(str(wp.get('rule', '')))} (tolerance {wp.get('tolerance', 0)}; plateau "
        f"{html.escape(str(wp.get('plateau', [])))}; unbinned optimum {wp.get('best_cut_unbinned', float('nan')):.3g}, "
        f"{wp.get('best_mean_sigma_min_pb_unbinned', float('nan')):.4g} pb). The bin shares are fractions of the trained "
        "signal's efficiency and of the background in each score bin (validation split).</p>"
        + _table(head, rows)
    )


def _fair_table(sens: Mapping[str, Any]) -> str:
    """σ_min in the core windows (only the background under the peak counts) and the goal."""
    fair = sens.get("fair_core_window")
    if not fair:
        return ""
    present = [(k, label) for k, label in _SELECTIONS if k in fair]
    rows = []
    for j, m in enumerate(sens["masses_GeV"]):
        mark = "*" if sens["held_out"][j] else ""
        rows.append([f"{m:.3f}{mark}", *[fair[k]["sigma_min_pb"][j] for k, _ in present]])
    goal_rows = [
        [
            k,
            g["trained_fraction_no_worse"],
            f"{g['held_out_no_worse']}/{g['held_out_masses']}",
            "yes" if g["met"] else "no",
            _num(fair.get("no_worse_within_two_std", {}).get(k, {}).get("trained")),
            _num(fair.get("no_worse_within_two_std", {}).get(k, {}).get("trained_worse_by_2std")),
            _num(fair.get("no_worse_within_two_std", {}).get(k, {}).get("trained_combined_z")),
        ]
        for k, g in fair["goal_vs_xgboost_best_cut"].items()
    ]
    return (
        f"<h3>Fair comparison: sigma_min in the core windows m +- {fair['core_window_nsigma']:g} sigma_m</h3>"
        + '<p class="note">Only the background under the signal peak counts, for every selection '
        "alike (a selection that learned M_gg cannot win by cutting the outer window); XGBoost "
        "at its best cut for this estimate; validation / held-out events. The per-mass difference "
        "net - XGBoost has a paired bootstrap std; two selections of equal sensitivity are each "
        "no worse at only about half of the masses, so the masses where the net is worse by "
        "more than 2 std are the significant deficits.</p>"
        + _table(["m_a [GeV]", *[label for _, label in present]], rows)
        + _table(["net", "trained fraction no worse", "held-out", "goal met",
                  "trained fraction within 2 bootstrap std",
                  "trained masses worse by > 2 std", "combined z (trained; < 0: net better)"],
                 goal_rows)
    )  # fmt: skip


def _num(value: Any) -> Any:
    return float("nan") if value is None else float(value)


def _largest_excess(limits: Mapping[str, Any], config: AnalysisConfig) -> list[list[Any]]:
    """Summary rows: where the largest local excess is, its fitted cross-section, and whether
    the pseudo-data contain an injected signal (``simulation.data.inject``)."""
    lee = limits.get("look_elsewhere", {})
    rows: list[list[Any]] = []
    if "mass_at_max" in lee:
        masses = limits["masses_GeV"]
        i = min(range(len(masses)), key=lambda k: abs(masses[k] - lee["mass_at_max"]))
        fitted = limits.get("fitted_xsec_pb", [None] * len(masses))[i]
        error = limits.get("fitted_xsec_pb_error", [None] * len(masses))[i]
        rows.append(["mass of the largest local excess [GeV]", lee["mass_at_max"]])
        if fitted is not None and error is not None:
            rows.append(["fitted cross-section there [pb]", f"{fitted:.4g} ± {error:.2g}"])
        if lee.get("upcrossings") is not None:
            rows.append(["upcrossings (Gross-Vitells)", lee["upcrossings"]])
    status = [s for s in limits.get("fit_status", []) if s not in (None, "ok", "excluded")]
    if status:
        rows.append(
            ["masses without a result (failed fits, see limits.json fit_status)", len(status)]
        )
    inject = config.simulation.data.inject
    rows.append(
        [
            "pseudo-data",
            "no injected signal"
            if inject is None
            else f"contain an injected ALP signal: m_a = {inject.mass_GeV} GeV, "
            f"g = {inject.coupling_GeV:g} GeV^-1",
        ]
    )
    return rows


def _nearest(masses: Sequence[float], wanted: Iterable[float], usable: Sequence[bool]) -> list[int]:
    """Indices of the usable scanned masses (not vetoed) nearest each wanted mass, each once."""
    m = np.asarray(masses, dtype=np.float64)
    ok = np.asarray(usable, dtype=bool)
    if not ok.any():
        return []
    candidates = np.flatnonzero(ok)
    return sorted({int(candidates[np.argmin(np.abs(m[candidates] - w))]) for w in wanted})


def limits_table(
    limits: Mapping[str, Any], wanted: Iterable[float], blind: bool
) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the limits at the scanned masses (outside the meson vetoes) nearest
    ``wanted``: expected median and 1-sigma band of sigma x P_decay and of g, the observed ones and the local significance
    unless ``blind``."""
    masses = limits["masses_GeV"]
    exp_x, exp_g = limits["expected"]["xsec_pb"], limits["expected"]["g_GeV-1"]
    status = limits.get("fit_status") or [None] * len(masses)
    header = ["m_a [GeV]", "exp. sigma x P_decay [pb] (-1s, +1s)", "exp. g [GeV^-1] (-1s, +1s)"]
    if not blind:
        header += ["obs. sigma x P_decay [pb]", "obs. g [GeV^-1]", "local Z"]
    header.append("fit status")

    def band(row: Sequence[float] | None) -> str:
        return "vetoed" if row is None else f"{row[2]:.3g} ({row[1]:.3g}, {row[3]:.3g})"

    rows = []
    for i in _nearest(masses, wanted, [row is not None for row in exp_x]):
        row: list[Any] = [f"{masses[i]:.3f}", band(exp_x[i]), band(exp_g[i])]
        if not blind:
            row += [
                _num(limits["observed"]["xsec_pb"][i]),
                _num(limits["observed"]["g_GeV-1"][i]),
                _num(limits["local_significance"][i]),
            ]
        row.append(status[i] if status[i] is not None else "vetoed")
        rows.append(row)
    return header, rows


def _limits(workdir: Path, out: Path, config: AnalysisConfig, lumi_fb: float | None = None) -> str:
    blind = config.report.blind
    parts = []
    shapes = workdir / "shapes"
    parts += [_image(out, name, name) for name in _copy_images(shapes, out, "shapes")]
    path = workdir / "limits" / "limits.json"
    if not path.exists():
        return "".join(parts) + _missing("The limits")
    limits = json.loads(path.read_text())
    masses = limits["masses_GeV"]
    vetoes = [tuple(r) for r in limits["excluded_mass_regions_GeV"]]
    overlays = []
    if config.report.published_limits is not None:
        published = read_published_limits(
            config.report.published_limits, config.report.published_label
        )
        overlays.append((published.label, published.masses_GeV, published.g_GeV))
    observed = (
        (None, None) if blind else (limits["observed"]["xsec_pb"], limits["observed"]["g_GeV-1"])
    )
    plot_brazil(masses, observed[0], limits["expected"]["xsec_pb"], out / "limits_xsec.png",
                ylabel=XSEC_LABEL, excluded=vetoes, lumi_fb=lumi_fb)  # fmt: skip
    plot_brazil(masses, observed[1], limits["expected"]["g_GeV-1"], out / "limits_coupling.png",
                ylabel=COUPLING_LABEL, excluded=vetoes, overlays=overlays, lumi_fb=lumi_fb)  # fmt: skip
    figures = [
        _image(out, "limits_xsec.png", "95% CL upper limit on sigma(e+e- -> gamma a) x P_decay: the visible cross-section of ALPs that decay inside the ECL (limits/coupling.py)"),
        _image(out, "limits_coupling.png", "95% CL upper limit on g_agg" + (f"; overlay: {overlays[0][0]} (user file {config.report.published_limits})" if overlays else "")),
    ]  # fmt: skip
    if not blind:
        glob = limits.get("look_elsewhere", {})
        plot_significance(masses, limits["local_significance"], out / "limits_significance.png",
                          excluded=vetoes, global_z=glob.get("z_global", limits.get("global_significance")))  # fmt: skip
        figures.append(_image(out, "limits_significance.png", "local significance"))
        figures += [
            _image(out, name, "the largest local excess: the S+B and B-only fits")
            for name in _copy_images(workdir / "limits", out, "limits_stage", skip=("xsec.png", "coupling.png", "significance.png"))
        ]  # fmt: skip
    finite = [x for x in limits["observed"]["g_GeV-1"] if x is not None]
    summary: list[list[Any]] = [
        ["masses", len(masses)],
        ["working point (score cut) of these limits", limits.get("working_point", "not recorded")],
        ["luminosity [fb^-1]", limits["luminosity_fb-1"]],
        ["meson vetoes [GeV]", ", ".join(f"{lo:.3f}-{hi:.3f}" for lo, hi in vetoes)],
    ]
    if blind:
        summary.append(["observed limits and significances", "blinded (report.blind: true)"])
    else:
        summary += [
            ["global significance", limits["global_significance"]],
            ["largest local significance",
             max((x for x in limits["local_significance"] if x is not None), default=float("nan"))],
            ["best observed g limit [GeV^-1]", min(finite) if finite else float("nan")],
            *_largest_excess(limits, config),
        ]  # fmt: skip
    header, rows = limits_table(limits, config.report.table_masses, blind)
    note = (
        '<p class="blind">Blinded: the observed limits, the significances and the data in the '
        "signal windows are hidden. Set <code>report.blind: false</code> to unblind.</p>"
        if blind
        else ""
    )
    return (
        note + _table(["quantity", "value"], summary)
        + "<h3>Limits at chosen masses</h3>"
        + '<p class="note">The scanned mass nearest each of <code>report.table_masses</code>; the cross-section limit is on sigma x P_decay.</p>'
        + _table(header, rows) + "".join(figures) + "".join(parts)
    )  # fmt: skip


def processed_inputs(histogram_path: Path) -> str:
    """The luminosity actually processed, the inputs skipped and the out-of-range counts, from
    the histograms' provenance (processors.bookkeeping, processors.integrity)."""
    if not histogram_path.exists():
        return ""
    record = read_provenance(histogram_path)
    read = sum((record.get("luminosity_pb") or {}).values())
    planned = sum(
        (record.get("planned_luminosity_pb") or record.get("luminosity_pb") or {}).values()
    )
    text = f"<p>Processed luminosity {read / 1000:.4g} of {planned / 1000:.4g} fb<sup>-1</sup>.</p>"
    skipped = record.get("skipped") or []
    if skipped:
        text += f"<p class='note'>{len(skipped)} input(s) skipped in processing; the luminosity and the MC normalisation follow the files processed.</p>"
        text += _table(["skipped input", "why"], [[s.get("file"), s.get("error")] for s in skipped])
    for lost in record.get("mc_lost") or []:
        text += f"<p class='note'>Every file of {html.escape(lost)} was skipped: that MC is missing.</p>"
    odd = record.get("out_of_range") or {}
    if odd:
        text += _table(
            ["file with out-of-range values", "counts"],
            [[f, json.dumps(c)] for f, c in odd.items()],
        )
    return text


def _provenance(provenance: Mapping[str, Any]) -> str:
    """Versions, git revision and inputs as tables (not a JSON dump)."""
    rows: list[list[Any]] = [
        ["git revision", provenance.get("git_revision")],
        ["inputs", len(provenance.get("inputs", []))],
        ["calibration", provenance.get("calibration")],
        ["model", provenance.get("model")],
        ["skipped inputs", len(provenance.get("skipped") or [])],
    ]
    versions = provenance.get("versions") or {}
    return _table(["record", "value"], rows) + _table(
        ["package", "version"], sorted(versions.items()) if isinstance(versions, dict) else []
    )


def build_report(config: AnalysisConfig, workdir: str | Path) -> Path:
    """Write ``workdir/report/index.html`` (figures embedded; PDFs beside it); return its path."""
    workdir = Path(workdir)
    out = workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("*.png"), *out.glob("*.pdf")):
        old.unlink()  # figures of an earlier build (e.g. unblinded) never linger
    sections: list[tuple[str, str]] = []
    stages = []
    for record in sorted((workdir / ".alps").glob("*.json")):
        data = json.loads(record.read_text())
        if isinstance(data, dict) and "key" in data:
            stages.append([record.stem, data.get("seconds", float("nan")), data["key"]])
    manifest_path = workdir / "ntuples" / "manifest.json"
    overview = f"<p>Configuration <b>{html.escape(config.name)}</b>, run slice <code>{html.escape(config.run_slice)}</code>, seed {config.seed}.</p>"
    if config.report.blind:
        overview += '<p class="blind">This report is blinded (report.blind: true).</p>'
    lumi_fb: float | None = None
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        events: dict[str, int] = {}
        for entry in manifest["files"]:
            events[entry["sample"]] = events.get(entry["sample"], 0) + int(entry["events"])
        lumi = sum(manifest["luminosity_pb"].values())
        lumi_fb = lumi / 1000
        overview += f"<p>Integrated luminosity {lumi / 1000:.3f} fb<sup>-1</sup>; {sum(events.values())} events in {len(manifest['files'])} files.</p>"
        overview += _table(["sample", "events"], sorted(events.items()))
    overview += processed_inputs(workdir / "histograms" / "mgg.hist.zip")
    overview += _table(["stage", "seconds", "key"], stages)
    sections.append(("Overview", overview))
    histogram_path = workdir / "histograms" / "mgg.hist.zip"
    if histogram_path.exists():
        hists = read_histograms(histogram_path)
        cutflow: Any = hists["cutflow"]
        sections.append(
            (
                "Cutflow per sample (weighted events)",
                _cutflow({"cutflow": cutflow[{"period": sum}]}),
            )
        )
        sections.append(("Data and MC after corrections", _data_mc(hists, out, config, lumi_fb)))
        sections.append(("Background composition per mass range", _composition(hists, config, out)))
        sections.append(("Kinematic fit", _fit_section(hists, out, lumi_fb)))
        provenance = read_provenance(histogram_path)
    else:
        sections.append(("Processing", _missing("The processed histograms")))
        provenance = {}
    calibration, trigger = _calibration(workdir, out)
    sections.append(("Calibration", calibration))
    sections.append(("Trigger efficiency", trigger))
    cut = None
    wp_path = workdir / "models" / "working_point.json"
    if wp_path.exists():
        cut = json.loads(wp_path.read_text()).get("cut")
    sections.append(
        ("Selection: Punzi net, XGBoost, cuts",
         _selection(workdir, out) + "<h3>Data and MC in the selection score</h3>" + _score(workdir, out, config, lumi_fb, cut))
    )  # fmt: skip
    sections.append(("Signal shapes and limits", _limits(workdir, out, config, lumi_fb)))
    sections.append(("Provenance", _provenance(provenance)))
    body = "".join(
        f'<h2 id="s{i}">{html.escape(title)}</h2>{content}'
        for i, (title, content) in enumerate(sections)
    )
    index = "".join(
        f'<li><a href="#s{i}">{html.escape(title)}</a></li>'
        for i, (title, _) in enumerate(sections)
    )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ALP search report</title><style>{_STYLE}</style></head>"
        f"<body><h1>Belle II ALP &rarr; &gamma;&gamma; search</h1><p class='note'>Built {time.strftime('%Y-%m-%d %H:%M')} "
        f"from the stored outputs in {html.escape(str(workdir))}. Self-contained: the figures are embedded; their PDFs lie beside this file.</p><ul>{index}</ul>{body}</body></html>"
    )
    path = out / "index.html"
    path.write_text(page)
    return path
