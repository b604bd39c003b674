"""The fair per-mass σ_min table of a run's selection (issue #13), as Markdown for the README.

Reads ``<workdir>/models/sensitivity.json`` (written by ``alps train``) and prints, per signal
mass, σ_min [pb] in the core windows m ± k σ_m (``training.fair_window_nsigma``; only the
background under the peak counts) for the deployed Punzi net (parametrised), the plain net when
it was trained beside it (``training.compare_nets``), XGBoost at its best cut, the rectangular
cuts and no selection, with z = (net − XGBoost) / paired bootstrap std; then the means over the
trained and the held-out masses, the goal check and the significance summary
(``models.evaluate.paired_significance``), and the gain of the deployed net over no selection
(σ_min ratio; the expected limit on the cross-section scales about like σ_min).

Run: ``python -P docs/selection_table.py WORKDIR [--columns 2]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluate import paired_significance

__all__ = ["main", "table"]

_NAMES = {
    "parametrised": "param.",
    "punzi": "plain",
    "xgboost": "XGBoost",
    "cut_based": "cuts",
    "no_selection": "none",
}


def table(sens: dict[str, Any], columns: int = 2) -> list[str]:
    """Markdown lines: the per-mass table (``columns`` side by side) and its summary."""
    fair = sens["fair_core_window"]
    masses = np.asarray(sens["masses_GeV"])
    held = np.asarray(sens["held_out"], dtype=bool)
    search = np.asarray(sens.get("in_search_range", [True] * len(masses)), dtype=bool)
    chosen = sens.get("chosen", "parametrised")
    keys = [k for k in _NAMES if k in fair]
    stds = fair.get("difference_to_xgboost_bootstrap_std_pb", {})
    std = np.asarray(stds.get(chosen, [np.nan] * len(masses)), dtype=np.float64)
    net = np.asarray([np.nan if v is None else v for v in fair[chosen]["sigma_min_pb"]])
    xgb = np.asarray([np.nan if v is None else v for v in fair["xgboost"]["sigma_min_pb"]])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, (net - xgb) / np.where(std > 0, std, 1.0), np.nan)
    rows = []
    for j, m in enumerate(masses):
        mark = ("*" if held[j] else "") + ("" if search[j] else "†")
        cells = [f"{m:.3f}{mark}"]
        for k in keys:
            raw = fair[k]["sigma_min_pb"][j]
            if raw is None:  # no estimate at this mass (e.g. no selected signal in the window)
                cells.append("n/a")
                continue
            v = float(raw)
            bold = k == chosen and net[j] <= xgb[j]
            cells.append(f"**{v:.3g}**" if bold else f"{v:.3g}")
        cells.append(f"{z[j]:+.1f}")
        rows.append(cells)
    width = len(keys) + 2
    head = "| m_a [GeV] | " + " | ".join(_NAMES[k] for k in keys) + " | z |"
    per = (len(rows) + columns - 1) // columns
    lines = [
        " ".join([head] + [head[1:]] * (columns - 1)),
        "|" + ("---:|" * width) * columns,
    ]
    for i in range(per):
        cells: list[str] = []
        for c in range(columns):
            r = i + c * per
            cells += rows[r] if r < len(rows) else [""] * width
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    mean = fair["mean_sigma_min_pb"]
    lines.append("| mean σ_min [pb] | " + " | ".join(_NAMES[k] for k in keys) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for label in ("trained", "held_out"):
        n = int((~held).sum()) if label == "trained" else int(held.sum())
        vals = " | ".join(
            _mean_cell(mean[k][label], fair[k]["sigma_min_pb"], held, label) for k in keys
        )
        lines.append(f"| {label.replace('_', '-')} ({n} masses) | {vals} |")
    goal = fair["goal_vs_xgboost_best_cut"][chosen]
    sig = fair.get("no_worse_within_two_std", {}).get(chosen, {})
    if "trained_worse_by_2std" not in sig:  # written before the significance counts
        both = np.isfinite(net) & np.isfinite(xgb) & np.isfinite(std)
        sig = paired_significance((net - xgb)[both], std[both], held[both])
    none = np.asarray(fair["no_selection"]["sigma_min_pb"], dtype=np.float64)
    gain = none / net
    lines += [
        "",
        f"- {_NAMES[chosen]} Punzi net at score ≥ {fair[chosen]['cut']:g}; XGBoost at its best "
        f"cut {fair['xgboost']['cut']:.3g}; core windows ± {fair['core_window_nsigma']:g} σ_m.",
        f"- No worse than XGBoost (strictly) at {goal['trained_fraction_no_worse']:.0%} of the "
        f"trained masses ({int((~held).sum()) - goal['trained_masses_worse']}/"
        f"{int((~held).sum())}) and {goal['held_out_no_worse']}/{goal['held_out_masses']} "
        "held-out masses.",
        f"- Significantly worse (z > 2) at {sig.get('trained_worse_by_2std', float('nan')):.0f} "
        f"trained and {sig.get('held_out_worse_by_2std', float('nan')):.0f} held-out masses; "
        f"significantly better (z < −2) at {sig.get('trained_better_by_2std', float('nan')):.0f} "
        f"and {sig.get('held_out_better_by_2std', float('nan')):.0f}; within 1 std or better at "
        f"{sig.get('trained_within_1std', float('nan')):.0%} of the trained masses; combined z "
        f"{sig.get('trained_combined_z', float('nan')):+.1f} (trained), "
        f"{sig.get('held_out_combined_z', float('nan')):+.1f} (held-out).",
        f"- Gain over no selection (σ_min none / net): median {np.median(gain):.2f}, range "
        f"{gain.min():.2f}–{gain.max():.2f} (trained {np.median(gain[~held]):.2f}, held-out "
        f"{np.median(gain[held]) if held.any() else float('nan'):.2f}).",
    ]
    return lines


def _mean_cell(value: Any, per_mass: list[Any], held: np.ndarray, label: str) -> str:
    """The stored mean, or where it is missing (a mass without an estimate) the mean over the
    masses that have one, with their count."""
    if value is not None:
        return f"{float(value):.4g}"
    mask = held if label == "held_out" else ~held
    v = np.asarray([np.nan if x is None else x for x in per_mass], dtype=np.float64)[mask]
    ok = np.isfinite(v)
    return f"{v[ok].mean():.4g} ({int(ok.sum())} masses)" if ok.any() else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="an alps work directory after `alps train`")
    parser.add_argument("--columns", type=int, default=2, help="tables side by side")
    args = parser.parse_args(argv)
    sens = json.loads((args.workdir / "models" / "sensitivity.json").read_text())
    print("\n".join(table(sens, args.columns)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
