"""The HTML report (``report/index.html`` and its PNGs), built from the stored outputs only.

Sections: overview and stage timings, cutflow, data/MC comparisons with ratio panels and
chi2/ndf, the background composition and data/MC per M_gg range, kinematic-fit pulls and chi2, the mass resolution before and after the fit, the
calibration, the trigger efficiency, the selection (Punzi net against XGBoost and cuts), signal
shapes and efficiency, the limits (Brazil bands for sigma and g_agg, local significance) and the
provenance. A section whose inputs are missing says so instead of failing.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .composition import composition
from .config import AnalysisConfig
from .contract import is_data, is_signal
from .histio import read_histograms, read_provenance
from .plots import (
    plot_data_mc,
    plot_fit_quality,
    plot_mass_resolution,
    plot_resolution_bins,
    plot_trigger,
)

__all__ = ["build_report", "processed_inputs"]

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #aaa; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #eee; } img { max-width: 100%; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; } pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "nan" if not np.isfinite(value) else f"{value:.4g}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(name: str, caption: str = "") -> str:
    return f'<figure><img src="{html.escape(name)}" alt="{html.escape(caption)}"><figcaption class="note">{html.escape(caption)}</figcaption></figure>'


def _missing(what: str) -> str:
    return f'<p class="note">{html.escape(what)} not available (its stage has not run).</p>'


def _copy_images(source: Path, target: Path, prefix: str) -> list[str]:
    names = []
    for png in sorted(source.glob("*.png")) if source.is_dir() else []:
        name = f"{prefix}_{png.name}"
        shutil.copyfile(png, target / name)
        names.append(name)
    return names


def _cutflow(hists: Mapping[str, Any]) -> str:
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
    return _table(["dataset", *cuts, "efficiency"], rows)


def _sum_periods(h: Any) -> Any:
    return h[{"period": sum}] if "period" in h.axes.name else h


def _data_mc(hists: Mapping[str, Any], out: Path) -> str:
    parts = []
    rows = []
    backgrounds_all = [
        d for d in hists["mgg"].axes["dataset"] if not is_data(d) and not is_signal(d)
    ]
    for key, h in hists.items():
        if not key.startswith("feature_"):
            continue
        h = _sum_periods(h)
        datasets = list(h.axes["dataset"])
        if "data" not in datasets:
            continue
        backgrounds = {d: h[{"dataset": d}] for d in backgrounds_all if d in datasets}
        name = key[len("feature_") :]
        stats = plot_data_mc(
            h[{"dataset": "data"}], backgrounds, out / f"datamc_{name}.png", xlabel=name, title=name
        )
        rows.append(
            [name, stats["data"], stats["mc"], stats["chi2"], stats["ndf"], stats["p_value"]]
        )
        parts.append(_image(f"datamc_{name}.png", f"{name}: data/MC after the corrections"))
    mgg = hists["mgg"][{"period": sum, "variation": "nominal", "truth": sum}]
    if "data" in mgg.axes["dataset"]:
        backgrounds = {d: mgg[{"dataset": d}] for d in backgrounds_all}
        stats = plot_data_mc(mgg[{"dataset": "data"}], backgrounds, out / "datamc_mgg.png", xlabel=r"$M_{\gamma\gamma}$ [GeV]",
                             title="all candidates after pre-selection", rebin=10)  # fmt: skip
        rows.insert(
            0,
            [
                "M_gg (all candidates)",
                stats["data"],
                stats["mc"],
                stats["chi2"],
                stats["ndf"],
                stats["p_value"],
            ],
        )
        parts.insert(
            0,
            _image(
                "datamc_mgg.png",
                "diphoton mass of every candidate (three per event), data against MC",
            ),
        )
    table = _table(["distribution", "data", "MC", "chi2", "ndf", "p-value"], rows)
    return table + "".join(parts)


def _composition(hists: Mapping[str, Any], config: AnalysisConfig, out: Path) -> str:
    """MC composition and data/MC per M_gg range (also written to ``composition.json``)."""
    rows = composition(hists["mgg"])
    (out / "composition.json").write_text(json.dumps(rows, indent=1))
    table = []
    for row in rows:
        lo, hi = row["range_GeV"]
        top = sorted(row["share"].items(), key=lambda kv: -kv[1])[:4]
        table.append([
            f"{lo:g}-{hi:g}", row["mc"], row.get("data", float("nan")),
            row.get("data_over_mc", float("nan")), f"{row.get('chi2', float('nan')):.1f}/{row.get('ndf', 0)}",
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


def _fit_section(hists: Mapping[str, Any], out: Path) -> str:
    datasets = [
        d
        for d in ("ggg", "alp_m1175", "alp_m5175", "data")
        if d in hists["kinfit_pull"].axes["dataset"]
    ]
    summary = plot_fit_quality(
        hists["kinfit_pull"], hists["kinfit_chi2"], datasets, out / "kinfit_pulls.png"
    )
    rows = [[k, v["mean"], v["width"]] for k, v in summary.items()]
    resolution = plot_mass_resolution(hists["mass_resolution"], out / "mass_resolution.png")
    res_rows = [
        [
            r["mass_GeV"],
            r["sigma_raw_MeV"],
            r["sigma_fit_MeV"],
            r["sigma_fit_MeV"] / r["sigma_raw_MeV"],
        ]
        for r in resolution
    ]
    return (
        "<h3>Pulls and chi2</h3>" + _table(["dataset:quantity", "pull mean", "pull width"], rows)
        + _image("kinfit_pulls.png", "kinematic-fit pulls (photon energy resolution tails make the MC pulls non-Gaussian) and p-values")
        + "<h3>Mass resolution</h3>" + _image("mass_resolution.png", "signal M_gg resolution before and after the fit")
        + _table(["m_a [GeV]", "sigma raw [MeV]", "sigma fit [MeV]", "fit/raw"], res_rows)
    )  # fmt: skip


def _calibration(workdir: Path, out: Path) -> str:
    results_path = workdir / "calibration" / "results.json"
    if not results_path.exists():
        return _missing("Calibration")
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
    plot_resolution_bins(results["bins"], out / "calibration_bins.png")
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
    return (
        "<p>Resolution factors k relative to the physics.md form (data/MC is what the MC is smeared by):</p>"
        + _table(["quantity", "period", "region", "k data", "err", "k MC", "err", "data/MC"], rows)
        + "<p>Photon energy scale, data over MC:</p>" + _table(["period", "region", "scale", "err"], scale_rows)
        + _image("calibration_bins.png", "measured resolution per bin (mu mu gamma)")
        + "<h2>Trigger efficiency</h2>" + _table(["sample", "period", "eps_max", "mu [GeV]", "err", "width [GeV]", "err"], trig_rows)
        + _image("trigger.png", "trg_esum efficiency measured with trg_ncl as reference")
    )  # fmt: skip


def _selection(workdir: Path, out: Path) -> str:
    model_dir = workdir / "models"
    if not model_dir.is_dir():
        return _missing("The selection")
    parts = []
    for name in ("ranking.json",):
        path = model_dir / name
        if path.exists():
            parts.append(
                f"<h3>{name}</h3><pre>{html.escape(json.dumps(json.loads(path.read_text()), indent=1)[:4000])}</pre>"
            )
    if (model_dir / "working_point.json").exists():
        parts.append(
            _working_point_table(json.loads((model_dir / "working_point.json").read_text()))
        )
    sensitivity = model_dir / "sensitivity.json"
    if sensitivity.exists():
        parts.append(_sensitivity_table(json.loads(sensitivity.read_text())))
        parts.append(_fair_table(json.loads(sensitivity.read_text())))
    parts += [_image(name, name) for name in _copy_images(model_dir, out, "models")]
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
    cut_rows = [
        [k, g["mean_gain_score_edges"], g["mean_gain_any_cut"], g["max_gain_any_cut"]]
        for k, g in per_mass.items()
    ]
    return (
        f"<h3>Minimal detectable cross-section per mass (validation split; deployed: {html.escape(chosen)})</h3>"
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
        ]
        for k, g in fair["goal_vs_xgboost_best_cut"].items()
    ]
    return (
        f"<h3>Fair comparison: sigma_min in the core windows m +- {fair['core_window_nsigma']:g} sigma_m</h3>"
        + '<p class="note">Only the background under the signal peak counts, for every selection '
        "alike (a selection that learned M_gg cannot win by cutting the outer window); XGBoost "
        "at its best cut for this estimate; validation / held-out events.</p>"
        + _table(["m_a [GeV]", *[label for _, label in present]], rows)
        + _table(["net", "trained fraction no worse", "held-out", "goal met",
                  "trained fraction within 2 bootstrap std"], goal_rows)
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


def _limits(workdir: Path, out: Path, config: AnalysisConfig) -> str:
    parts = []
    shapes = workdir / "shapes"
    parts += [_image(name, name) for name in _copy_images(shapes, out, "shapes")]
    path = workdir / "limits" / "limits.json"
    if not path.exists():
        return "".join(parts) + _missing("The limits")
    limits = json.loads(path.read_text())
    parts += [_image(name, name) for name in _copy_images(workdir / "limits", out, "limits")]
    masses = limits["masses_GeV"]
    finite = [x for x in limits["observed"]["g_GeV-1"] if x is not None]
    summary = [
        ["masses", len(masses)],
        ["working point (score cut) of these limits", limits.get("working_point", "not recorded")],
        ["luminosity [fb^-1]", limits["luminosity_fb-1"]],
        ["global significance", limits["global_significance"]],
        [
            "largest local significance",
            max((x for x in limits["local_significance"] if x is not None), default=float("nan")),
        ],
        ["best observed g limit [GeV^-1]", min(finite) if finite else float("nan")],
        ["excluded mass regions [GeV]", json.dumps(limits["excluded_mass_regions_GeV"])],
        *_largest_excess(limits, config),
    ]
    return _table(["quantity", "value"], summary) + "".join(parts)


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


def build_report(config: AnalysisConfig, workdir: str | Path) -> Path:
    """Write ``workdir/report/index.html`` (with its PNGs) and return its path."""
    workdir = Path(workdir)
    out = workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str]] = []
    stages = []
    for record in sorted((workdir / ".alps").glob("*.json")):
        data = json.loads(record.read_text())
        if isinstance(data, dict) and "key" in data:
            stages.append([record.stem, data.get("seconds", float("nan")), data["key"]])
    manifest_path = workdir / "ntuples" / "manifest.json"
    overview = f"<p>Configuration <b>{html.escape(config.name)}</b>, run slice <code>{html.escape(config.run_slice)}</code>, seed {config.seed}.</p>"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        events: dict[str, int] = {}
        for entry in manifest["files"]:
            events[entry["sample"]] = events.get(entry["sample"], 0) + int(entry["events"])
        lumi = sum(manifest["luminosity_pb"].values())
        overview += f"<p>Integrated luminosity {lumi / 1000:.3f} fb<sup>-1</sup>; {sum(events.values())} events in {len(manifest['files'])} files.</p>"
        overview += _table(["sample", "events"], sorted(events.items()))
    overview += processed_inputs(workdir / "histograms" / "mgg.hist.zip")
    overview += _table(["stage", "seconds", "key"], stages)
    sections.append(("Overview", overview))
    histogram_path = workdir / "histograms" / "mgg.hist.zip"
    if histogram_path.exists():
        hists = read_histograms(histogram_path)
        sections.append(
            ("Cutflow (weighted events)", _cutflow({"cutflow": hists["cutflow"][{"period": sum}]}))  # type: ignore[dict-item]
        )
        sections.append(("Data and MC after corrections", _data_mc(hists, out)))
        sections.append(("Background composition per mass range", _composition(hists, config, out)))
        sections.append(("Kinematic fit", _fit_section(hists, out)))
        provenance = read_provenance(histogram_path)
    else:
        sections.append(("Processing", _missing("The processed histograms")))
        provenance = {}
    sections.append(("Calibration", _calibration(workdir, out)))
    sections.append(("Selection: Punzi net, XGBoost, cuts", _selection(workdir, out)))
    sections.append(("Signal shapes and limits", _limits(workdir, out, config)))
    prov = {
        k: provenance.get(k)
        for k in ("versions", "git_revision", "calibration", "model", "skipped")
    }
    prov["inputs"] = len(provenance.get("inputs", []))
    sections.append(
        ("Provenance", f"<pre>{html.escape(json.dumps(prov, indent=1, default=str))}</pre>")
    )
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
        f"from the stored outputs in {html.escape(str(workdir))}.</p><ul>{index}</ul>{body}</body></html>"
    )
    path = out / "index.html"
    path.write_text(page)
    return path
