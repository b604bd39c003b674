"""Which statistics limit the per-mass Punzi-net-vs-XGBoost comparison of a run (issue #13).

Reads a work directory after ``alps train`` (its skims, ``models/punzi.pt``, ``xgboost.json`` and
``sensitivity.json``), rebuilds the run's evaluation set (``training`` section of ``--config``),
applies the run's two selections of the fair comparison (the deployed net at its working point,
XGBoost at its best cut in the core windows m ± k σ_m, both read from ``sensitivity.json``) and
splits the paired bootstrap std of σ_min(net) − σ_min(XGBoost) per mass into the part the signal
MC and the part the background MC of the evaluation sample cause
(``models.evaluate.std_decomposition``). Prints medians over the trained and the held-out masses
(fractions of XGBoost's σ_min), the net's median advantage, the strict share (net ≤ XGBoost)
observed, and what a normal model of the true advantages projects for f times the evaluation
events, for both samples and for the signal alone (``models.evaluate.strict_share_projection``).

Run: ``python -P docs/selection_std.py WORKDIR --config YAML [--replicas 200] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import load_config
from models.evaluate import core_window_table, std_decomposition, strict_share_projection
from models.io import load_punzi, load_xgboost
from models.net import state_from_numpy
from models.param import with_hypothesis
from models.pipeline import load_training_sample
from models.punzi import sigma_min
from models.train import net_scores
from models.xgb import xgboost_scores

__all__ = ["FACTORS", "decompose"]

#: evaluation-statistics factors of the projection (1/0.3 ≈ 3.3: k-fold evaluation of every event)
FACTORS: tuple[float, ...] = (1.0, 1 / 0.3, 10.0, float("inf"))


def decompose(workdir: Path, config: Any, replicas: int = 200) -> dict[str, Any]:
    """Every figure of the module docstring, as a dict (also printed as ``name: value`` lines)."""
    tc = config.training
    ab = (tc.punzi_a, tc.punzi_b)
    sample = load_training_sample(workdir / "skims", config, features=list(tc.features))
    masses, lumi = sample.masses, sample.luminosity_pb
    valid = sample.evaluation_set()
    spec, state, features, meta = load_punzi(workdir / "models")
    if tuple(features) != tuple(tc.features):
        raise ValueError(f"net features {features} differ from the config's {tc.features}")
    x = valid.features
    hyp = meta.get("hypothesis_input")
    if hyp is not None:
        x = with_hypothesis(x, np.clip(valid.mgg, *hyp["range_GeV"]))
    s_net = net_scores(state_from_numpy(spec, state), x).astype(np.float64)
    booster, _, _ = load_xgboost(workdir / "models" / "xgboost.json")
    s_xgb = xgboost_scores(booster, valid.features).astype(np.float64)
    sens = json.loads((workdir / "models" / "sensitivity.json").read_text())
    fair = sens["fair_core_window"]
    chosen = sens.get("chosen", "parametrised")
    cut_n, cut_x = float(fair[chosen]["cut"]), float(fair["xgboost"]["cut"])
    core = core_window_table(valid, masses, tc.window_nsigma, tc.fair_window_nsigma)
    pass_n, pass_x = s_net >= cut_n, s_xgb >= cut_x
    sig_n = sigma_min(*core.yields(pass_n), lumi, *ab)
    sig_x = sigma_min(*core.yields(pass_x), lumi, *ab)
    stored = np.asarray([np.nan if v is None else v for v in fair[chosen]["sigma_min_pb"]])
    agree = float(np.nanmax(np.abs(sig_n / stored - 1)))
    parts = std_decomposition(
        core, pass_n, pass_x, sig_x, lumi, *ab, replicas=replicas, seed=int(config.seed)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        adv = (sig_x - sig_n) / sig_x
    held = masses.held_out
    out: dict[str, Any] = {
        "masses_GeV": masses.masses.tolist(),
        "held_out": held.tolist(),
        "net_cut": cut_n,
        "xgboost_cut": cut_x,
        "max_relative_deviation_from_sensitivity_json": agree,
        "std_parts": {k: v.tolist() for k, v in parts.items()},
        "advantage": adv.tolist(),
    }
    print(f"net_cut: {cut_n:g} score; xgboost_cut: {cut_x:g} score")
    print(f"sigma_min_agreement_with_sensitivity_json: {agree:.2e} relative")
    for label, mask in (("trained", ~held), ("held_out", held)):
        ok = mask & np.isfinite(parts["total"]) & np.isfinite(adv)
        entry: dict[str, Any] = {"masses": int(ok.sum())}
        for k, v in parts.items():
            entry[f"std_{k}_median"] = float(np.median(v[ok]))
            print(f"{label}_std_{k}: {entry[f'std_{k}_median']:.4g} fraction (median)")
        entry["quadrature_check_median"] = float(
            np.median(np.hypot(parts["signal"][ok], parts["background"][ok]) / parts["total"][ok])
        )
        entry["advantage_median"] = float(np.median(adv[ok]))
        entry["strict_share"] = float((adv[ok] >= 0).mean())
        entry["both"] = strict_share_projection(adv[ok], parts["total"][ok], FACTORS)
        only = strict_share_projection(
            adv[ok], parts["total"][ok], FACTORS, signal_std=parts["signal"][ok]
        )
        sig_only = {f"{f:g}": only[f"share_at_{f:g}x"] for f in FACTORS}
        entry["signal_only_share"] = sig_only
        out[label] = entry
        print(f"{label}_quadrature_check: {entry['quadrature_check_median']:.3g} (median)")
        print(f"{label}_advantage: {entry['advantage_median']:.4g} fraction (median)")
        print(f"{label}_strict_share: {entry['strict_share']:.3g} fraction ({entry['masses']})")
        b = entry["both"]
        print(
            f"{label}_projection: centre {b['centre']:.4g}, true spread "
            f"{b['true_spread']:.4g}; share at f x events "
            + ", ".join(f"{f:g}: {b[f'share_at_{f:g}x']:.3f}" for f in FACTORS)
            + "; signal only "
            + ", ".join(f"{k}: {v:.3f}" for k, v in sig_only.items())
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="an alps work directory after `alps train`")
    parser.add_argument("--config", type=Path, default=None, help="the run's analysis YAML")
    parser.add_argument("--replicas", type=int, default=200, help="bootstrap replicas")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    out = decompose(args.workdir, load_config(args.config), args.replicas)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
