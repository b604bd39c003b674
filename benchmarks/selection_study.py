"""Why the Punzi net loses to XGBoost where both were trained: one change at a time (issue #13).

Reads the processor's skims once, trains XGBoost once, then trains the Punzi net with one setting
changed per variant (capacity, training length, learning-rate schedule, soft-cut sharpness, BCE
class balance, how the per-mass σ_min are combined, the mass-parametrised net) and prints, per
variant, ``name: value unit`` lines: the mean σ_min over the trained, the held-out and all masses
at the variant's working point (best score-bin edge, trained masses in the search range), the
fraction of trained masses and the number of held-out masses where it is no worse than XGBoost
at its best cut, and the training time; then the fair comparison (``<variant>_fair_*``: σ_min in
the core windows m ± 2σ_m, XGBoost at its best cut there, the masses strictly no worse, within
1 and 2 paired-bootstrap std, significantly worse or better, the combined z) and the net's
training CPU time (``time.process_time``). ``p_*`` variants change one thing on the parametrised
net; ``p_seeds_3`` averages the scores of three seeds (and prints each seed's fair lines).

Every variant starts from ``--config``'s training section: with the shipped ``default.yaml``
(``loss_combination: relative`` since issue #13's third round) ``p_base`` is the relative loss
and ``p_mean`` / ``p_mean_seed_1`` the earlier mean σ_min.

``p_own_mass`` trains the parametrised net at the deployed hypothesis (its own M_γγ,
``training.training_hypothesis: candidate``), ``p_window_*`` in the core windows m ± k σ_m (the
windows narrowed for training only), ``p_log`` / ``p_relative`` combine the masses differently.

Every fair comparison also splits the per-mass bootstrap std of (net − XGBoost) into the part the
signal statistics and the part the background statistics of the evaluation sample cause
(``<variant>_fair_std_*``: medians over the trained masses, as fractions of XGBoost's σ_min;
``models.evaluate.std_decomposition``).

``--folds K``: k-fold cross-validated evaluation (issue #13). The events are cut into K folds by
the same event hash as the validation split; for each fold XGBoost and the variant's net are
trained on the other K − 1 folds and score only the fold's own events, so every event is evaluated
once, by models that never saw it (about 1 / validation_fraction times the evaluation events of
the single split; K times the training). The comparison is then of the training procedures (each
fold's model is one draw of it), at one cut for all folds; ``<variant>_fold0_fair_*`` gives the
same nets judged on fold 0 alone, the single-split figure, for contrast.

Run: ``python benchmarks/selection_study.py --skims DIR [--config YAML] [--epochs BCE PUNZI]
[--variants a,b] [--folds K] [--json OUT]`` (``--epochs``: a shortened schedule for every
variant); ``--quick`` uses a toy sample, 2 + 4 epochs and three variants (under a minute).
Training runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import AnalysisConfig, load_config
from models import (
    deployed_scores,
    goal_check,
    scan_at_hypothesis,
    train_punzi_net,
)
from models.evaluate import (
    background_core_fraction,
    core_window_table,
    paired_significance,
    selection_at,
    std_decomposition,
    strict_share_projection,
)
from models.pipeline import (
    fair_comparison,
    load_training_sample,
    read_training_skims,
    search_mask,
)
from models.sample import Candidates
from models.working_point import choose_working_point, scan_cuts, scan_sigma_min
from models.xgb import train_xgboost, xgboost_scores

#: one change each against the baseline (the demo's training section)
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "wide_64": {"width": 64},
    "shallow_4": {"hidden_layers": 4},
    "long_x3": {"punzi_epochs_factor": 3},
    "plateau": {"lr_schedule": "plateau"},
    "sharp_50": {"soft_cut_sharpness": 50.0},
    "no_bce": {"bce_epochs": 0, "punzi_epochs_factor": 1.5},
    "bce_signal_0.1": {"bce_signal_fraction": 0.1},
    "combine_log": {"loss_combination": "log"},
    "combine_relative": {"loss_combination": "relative"},
    "parametrised": {"parametrised": True},
    "parametrised_log": {"parametrised": True, "loss_combination": "log"},
    # the seed's features without the post-fit mass proxies (E_high, u_high, t_high: after the 4C
    # fit the recoil photon's CM energy is (s - M_gg^2) / 2 sqrt(s), see the study's docstring)
    "no_proxy": {"features": "no_proxy"},
    "no_proxy_parametrised": {"features": "no_proxy", "parametrised": True},
    "parametrised_log_long": {
        "parametrised": True,
        "loss_combination": "log",
        "lr_schedule": "plateau",
        "punzi_epochs_factor": 3,
    },
    # the levers left open by the last study, each on the parametrised (shipped) net
    "p_base": {"parametrised": True},
    "p_seed_1": {"parametrised": True, "seed_offset": 1},
    "p_wide_64": {"parametrised": True, "width": 64},
    "p_4x64": {"parametrised": True, "hidden_layers": 4, "width": 64},
    "p_plateau": {"parametrised": True, "lr_schedule": "plateau"},
    "p_long_x3_plateau": {"parametrised": True, "lr_schedule": "plateau", "punzi_epochs_factor": 3},
    "p_anneal_5_100": {
        "parametrised": True,
        "soft_cut_sharpness": 5.0,
        "soft_cut_sharpness_final": 100.0,
    },
    "p_sharp_60": {"parametrised": True, "soft_cut_sharpness": 60.0},
    "p_bce_signal_0.2": {"parametrised": True, "bce_signal_fraction": 0.2},
    "p_bce_signal_0.8": {"parametrised": True, "bce_signal_fraction": 0.8},
    # the mean of the scores of nets trained with seeds seed, seed + 1, ...
    "p_seeds_3": {"parametrised": True, "seeds": 3},
    # the full-grid levers (issue #13): how the masses are combined, and training in the core
    # windows m ± 2 σ_m that the fair comparison evaluates (instead of ± window_nsigma σ_m)
    "p_log": {"parametrised": True, "loss_combination": "log"},
    "p_relative": {"parametrised": True, "loss_combination": "relative"},
    "p_window_2": {"parametrised": True, "train_window_nsigma": 2.0},
    # trained as deployed: the hypothesis input is the candidate's own M_γγ (clipped), not m_j
    "p_own_mass": {"parametrised": True, "training_hypothesis": "candidate"},
    "p_own_mass_window_2": {
        "parametrised": True,
        "training_hypothesis": "candidate",
        "train_window_nsigma": 2.0,
    },
    # issue #13 third round: default.yaml's loss is now `relative`, so the p_* variants above
    # inherit it; these name the combination explicitly (the second with another training seed)
    "p_mean": {"parametrised": True, "loss_combination": "mean"},
    "p_mean_seed_1": {"parametrised": True, "loss_combination": "mean", "seed_offset": 1},
    "p_relative_seed_1": {"parametrised": True, "loss_combination": "relative", "seed_offset": 1},
    "p_window_2_relative": {
        "parametrised": True,
        "train_window_nsigma": 2.0,
        "loss_combination": "relative",
    },
}


#: variants of ``--quick`` (the toy has no ``cos_*`` columns, so no ``no_proxy`` feature set)
QUICK = "baseline,combine_log,parametrised"

#: feature sets other than ``training.features``
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "no_proxy": (
        "cos_high",
        "E_low",
        "cos_low",
        "sphericity",
        "fw_r2",
        "cleo_cone0",
        "theta_recoil",
        "chi2",
    ),
}


#: evaluation-statistics factors of the strict-share projection (models.evaluate)
_FACTORS = (1.0, 1 / 0.3, float("inf"))

#: the shipped working-point tolerance (tightest edge on the σ_min plateau, models/working_point.py)
_TOLERANCE = AnalysisConfig().training.working_point_tolerance


def _variant_config(base: Any, change: dict[str, Any]) -> Any:
    change = dict(change)
    factor = change.pop("punzi_epochs_factor", 1)
    change.pop("features", None)
    change.pop("seeds", None)
    change.pop("seed_offset", None)
    change.pop("train_window_nsigma", None)
    update = {"parametrised": False, **change}
    update["punzi_epochs"] = round(base.punzi_epochs * factor)
    return base.model_copy(update=update)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skims", type=Path, help="the processor's skim directory")
    parser.add_argument("--config", type=Path, default=None, help="analysis YAML (demo default)")
    parser.add_argument(
        "--variants", default=None, help="comma-separated names (default: all; --quick: three)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the table here")
    parser.add_argument("--quick", action="store_true", help="toy sample, 2 + 4 epochs")
    parser.add_argument(
        "--epochs",
        type=int,
        nargs=2,
        default=None,
        metavar=("BCE", "PUNZI"),
        help="a shortened schedule for every variant (baseline alike)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        metavar="K",
        help="k-fold cross-validated evaluation with K >= 2 folds (module docstring)",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        skims = args.skims
        if args.quick or skims is None:
            from models.testing import write_toy_skims

            skims = write_toy_skims(Path(tmp), np.round(np.arange(0.3, 3.1, 0.2), 3), 800, 3000)
            config = AnalysisConfig.model_validate(
                {"training": {"bce_epochs": 2, "punzi_epochs": 4, "held_out_masses": 3}}
            )
        if args.epochs:
            config = config.model_copy(
                update={
                    "training": config.training.model_copy(
                        update={"bce_epochs": args.epochs[0], "punzi_epochs": args.epochs[1]}
                    )
                }
            )
        names = args.variants or (QUICK if args.quick else ",".join(VARIANTS))
        chosen = [v for v in names.split(",") if v]
        if args.folds:
            rows = study_folds(skims, config, chosen, args.folds)
        else:
            rows = study(skims, config, chosen)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def study(skims: Path, config: Any, variants: list[str]) -> list[dict[str, Any]]:
    """Train every named variant on the same sample; print and return one row per variant."""
    tc, seed = config.training, int(config.seed)
    sets = {VARIANTS[name].get("features") for name in variants} - {None}
    features = {*tc.features, *(f for fs in sets for f in FEATURE_SETS[fs])}
    sample = load_training_sample(skims, config, features=sorted(features))
    masses, lumi = sample.masses, sample.luminosity_pb
    valid = sample.evaluation_set()
    table = valid.window_table(masses)
    trained_sig = valid.trained_signal(masses)
    edges = config.histograms.score_edges
    mask = masses.trained & search_mask(masses.masses, config)
    ab = (tc.punzi_a, tc.punzi_b)
    print(
        f"# {len(sample.train)} training candidates, {len(masses)} masses "
        f"({int(masses.held_out.sum())} held out), L = {lumi:g} /pb",
        file=sys.stderr,
    )

    xgb: dict[str, Any] = {}
    xgb_scores: dict[str, np.ndarray] = {}
    rows = []
    for name in variants:
        fset = VARIANTS[name].get("features")
        sub = sample.with_features(FEATURE_SETS[fset] if fset else tc.features)
        train, valid = sub.without_held_out(), sub.evaluation_set()
        label = "xgboost" + (f"_{fset}" if fset else "")
        if label not in xgb:
            t0 = time.perf_counter()
            booster = train_xgboost(
                train, masses, rounds=tc.xgboost_rounds, depth=tc.xgboost_depth, seed=seed,
                threads=1,
            )  # fmt: skip
            sx = xgboost_scores(booster, valid.features)
            scan_x = scan_sigma_min(table, sx, lumi, scan_cuts(sx[trained_sig], edges), *ab)
            row = _row(label, scan_x, edges, mask, masses.held_out, None, time.perf_counter() - t0)
            row["core_fraction"] = background_core_fraction(
                valid, sx >= row["cut"], masses, masses.trained
            )
            print(f"{label}_background_core_fraction: {row['core_fraction']:.3g}")
            rows.append(row)
            xgb[label] = selection_at(scan_x, row["best_cut"], label)
            xgb_scores[label] = sx
        cfg = _variant_config(tc, VARIANTS[name])
        members, fits, cpu = [], [], 0.0
        offset = int(VARIANTS[name].get("seed_offset", 0))
        t_train, t_valid, t_masses = train, sub.valid, masses
        if "train_window_nsigma" in VARIANTS[name]:
            k_win = float(VARIANTS[name]["train_window_nsigma"])
            t_masses = narrowed_windows(masses, tc.window_nsigma, k_win)
            t_train = within_own_window(train, t_masses)
            t_valid = within_own_window(sub.valid, t_masses)
        for k in range(int(VARIANTS[name].get("seeds", 1))):
            c0 = time.process_time()
            fits.append(
                train_punzi_net(
                    t_train, t_valid, t_masses, lumi, cfg, seed=seed + offset + k, threads=1
                )
            )
            cpu += time.process_time() - c0
            members.append(deployed_scores(fits[-1], valid))
        fit = fits[0]
        s = np.mean(members, axis=0) if len(members) > 1 else members[0]
        scan = scan_sigma_min(table, s, lumi, scan_cuts(s[trained_sig], edges), *ab)
        seconds = sum(f.seconds for f in fits)
        rows.append(_row(name, scan, edges, mask, masses.held_out, xgb[label], seconds))
        rows[-1]["cpu_seconds"] = cpu
        print(f"{name}_training_cpu_time: {cpu:.4g} s")
        rows[-1]["fair"] = _fair(
            name, valid, masses, s, rows[-1]["cut"], xgb_scores[label], config, mask, lumi
        )
        if len(members) > 1:
            rows[-1]["fair_members"] = []
            for k, sk in enumerate(members):
                scan_k = scan_sigma_min(table, sk, lumi, scan_cuts(sk[trained_sig], edges), *ab)
                cut_k = choose_working_point(scan_k, edges, mask, tolerance=_TOLERANCE).cut
                fk = _fair(
                    f"{name}_seed{k}",
                    valid,
                    masses,
                    sk,
                    cut_k,
                    xgb_scores[label],
                    config,
                    mask,
                    lumi,
                )
                rows[-1]["fair_members"].append(fk)
        rows[-1]["core_fraction"] = background_core_fraction(
            valid, s >= rows[-1]["cut"], masses, masses.trained
        )
        print(f"{name}_background_core_fraction: {rows[-1]['core_fraction']:.3g}")
        if fit.parametrised:
            exact = scan_at_hypothesis(fit, valid, masses, lumi, scan.cuts, *ab)
            at = selection_at(exact, rows[-1]["cut"], name)
            rows[-1]["at_hypothesis_sigma_min_pb"] = at.sigma_min_pb.tolist()
            goal = goal_check(at, xgb[label], masses.held_out)
            print(f"{name}_at_hypothesis_mean_trained: {at.mean(masses.trained):.4g} pb")
            print(f"{name}_at_hypothesis_mean_held_out: {at.mean(masses.held_out):.4g} pb")
            print(f"{name}_at_hypothesis_trained_no_worse: {goal['trained_fraction_no_worse']:.3g}")
        pv = fit.history.punzi_valid
        rows[-1]["epochs"] = [cfg.bce_epochs, cfg.punzi_epochs]
        rows[-1]["punzi_valid_first_mid_last"] = [pv[0], pv[len(pv) // 2], pv[-1]] if pv else []
        rows[-1]["cut_all_trained_masses"] = choose_working_point(scan, edges, masses.trained).cut
        if pv:
            print(
                f"{name}_valid_loss_first_mid_last: {pv[0]:.4g} {pv[len(pv) // 2]:.4g} {pv[-1]:.4g}"
            )
        print(
            f"{name}_cut_if_chosen_on_all_trained_masses: {rows[-1]['cut_all_trained_masses']:.3g}"
        )
        h = fit.history
        for phase, secs, n in (
            ("bce", h.bce_seconds, fit.n_bce_candidates),
            ("punzi", h.punzi_seconds, fit.n_punzi_candidates),
        ):
            if secs:
                rows[-1][f"{phase}_epoch_seconds"] = float(np.median(secs))
                print(f"{name}_{phase}_epoch_time: {np.median(secs):.3g} s ({n} rows)")
    return rows


def pooled(parts: list[Candidates]) -> Candidates:
    """The folds' evaluation sets as one: every weight divided by the number of folds (each fold's
    weights estimate the full sample's efficiency and background on their own)."""
    k = len(parts)
    return Candidates(
        np.concatenate([p.features for p in parts]),
        parts[0].feature_names,
        np.concatenate([p.mgg for p in parts]),
        np.concatenate([p.weight for p in parts]) / k,
        np.concatenate([p.mass_index for p in parts]),
    )


def study_folds(skims: Path, config: Any, variants: list[str], k: int) -> list[dict[str, Any]]:
    """``--folds K``: every variant and XGBoost trained K times, each fold evaluated out of fold."""
    if k < 2:
        raise ValueError(f"--folds needs K >= 2, got {k}")
    tc, seed = config.training, int(config.seed)
    for name in variants:
        if VARIANTS[name].get("features") or "train_window_nsigma" in VARIANTS[name]:
            raise ValueError(f"--folds does not support variant {name!r} (feature set / windows)")
    c0 = time.perf_counter()
    read = read_training_skims(skims, config, features=list(tc.features))
    print(f"# skims read once in {time.perf_counter() - c0:.1f} s", file=sys.stderr)
    samples = [read.sample(tc.validation_fraction, (i, k)) for i in range(k)]
    del read
    masses, lumi = samples[0].masses, samples[0].luminosity_pb
    evals = [s.evaluation_set() for s in samples]
    pool = pooled(evals)
    sig_of = [e.trained_signal(masses) for e in [pool, *evals]]
    table = pool.window_table(masses)
    edges = config.histograms.score_edges
    mask = masses.trained & search_mask(masses.masses, config)
    ab = (tc.punzi_a, tc.punzi_b)
    print(
        f"# {k} folds, {sum(len(e) for e in evals)} evaluation candidates, {len(masses)} masses "
        f"({int(masses.held_out.sum())} held out), L = {lumi:g} /pb",
        file=sys.stderr,
    )
    c0 = time.process_time()
    xgb_parts = []
    for i, smp in enumerate(samples):
        booster = train_xgboost(
            smp.without_held_out(), masses, rounds=tc.xgboost_rounds, depth=tc.xgboost_depth,
            seed=seed, threads=1,
        )  # fmt: skip
        xgb_parts.append(xgboost_scores(booster, evals[i].features))
    sx = np.concatenate(xgb_parts)
    scan_x = scan_sigma_min(table, sx, lumi, scan_cuts(sx[sig_of[0]], edges), *ab)
    rows = [_row("xgboost", scan_x, edges, mask, masses.held_out, None, 0.0)]
    rows[0]["cpu_seconds"] = time.process_time() - c0
    print(f"xgboost_training_cpu_time: {rows[0]['cpu_seconds']:.4g} s ({k} folds)")
    xgb_ref = selection_at(scan_x, rows[0]["best_cut"], "xgboost")
    for name in variants:
        cfg = _variant_config(tc, VARIANTS[name])
        offset = int(VARIANTS[name].get("seed_offset", 0))
        n_seeds = int(VARIANTS[name].get("seeds", 1))
        c0 = time.process_time()
        parts = []
        for i, smp in enumerate(samples):
            members = []
            for m in range(n_seeds):
                fit = train_punzi_net(
                    smp.without_held_out(), smp.valid, masses, lumi, cfg, seed=seed + offset + m,
                    threads=1,
                )  # fmt: skip
                members.append(deployed_scores(fit, evals[i]))
            parts.append(np.mean(members, axis=0) if n_seeds > 1 else members[0])
        cpu = time.process_time() - c0
        s = np.concatenate(parts)
        scan = scan_sigma_min(table, s, lumi, scan_cuts(s[sig_of[0]], edges), *ab)
        row = _row(name, scan, edges, mask, masses.held_out, xgb_ref, cpu)
        row["cpu_seconds"] = cpu
        row["folds"] = k
        print(f"{name}_training_cpu_time: {cpu:.4g} s ({k} folds)")
        row["fair"] = _fair(name, pool, masses, s, row["cut"], sx, config, mask, lumi)
        # the same nets judged on fold 0 alone (the single-split figure), its own working point
        scan0 = scan_sigma_min(
            evals[0].window_table(masses), parts[0], lumi, scan_cuts(parts[0][sig_of[1]], edges),
            *ab,
        )  # fmt: skip
        cut0 = choose_working_point(scan0, edges, mask, tolerance=_TOLERANCE).cut
        row["fold0_fair"] = _fair(
            f"{name}_fold0", evals[0], masses, parts[0], cut0, xgb_parts[0], config, mask, lumi
        )
        rows.append(row)
    return rows


def narrowed_windows(masses: Any, window_nsigma: float, nsigma: float) -> Any:
    """``masses`` with windows m ± nsigma·σ_m instead of m ± window_nsigma·σ_m."""
    from models.sample import MassPoints

    m = np.asarray(masses.masses, dtype=np.float64)
    half = (np.asarray(masses.window_hi) - m) * (nsigma / window_nsigma)
    return MassPoints(
        masses.masses, np.clip(m - half, 0.0, None), m + half, masses.held_out, masses.datasets
    )


def within_own_window(c: Any, masses: Any) -> Any:
    """``c`` with the signal weight zeroed outside its own mass's (narrowed) window (the
    efficiency counts only the signal inside it, ``models.windows.efficiency_weights``)."""
    from models.sample import Candidates

    sig = c.is_signal
    j = np.where(sig, c.mass_index, 0)
    inside = (c.mgg >= masses.window_lo[j]) & (c.mgg <= masses.window_hi[j])
    weight = np.where(sig & ~inside, 0.0, c.weight)
    return Candidates(c.features, c.feature_names, c.mgg, weight, c.mass_index)


def _fair(
    name: str,
    valid: Any,
    masses: Any,
    scores: np.ndarray,
    cut: float,
    xgb_scores: np.ndarray,
    config: Any,
    mask: np.ndarray,
    lumi: float,
) -> dict[str, Any]:
    """The fair comparison (models/pipeline.py: σ_min in m ± fair_window_nsigma·σ_m, XGBoost at its
    best cut there, per-mass bootstrap std of the difference); prints and returns its summary."""
    tc = config.training
    fair, _ = fair_comparison(
        valid,
        masses,
        {name: scores, "xgboost": xgb_scores},
        {name: cut},
        np.ones(len(valid), dtype=bool),
        lumi,
        tc.window_nsigma,
        tc.fair_window_nsigma,
        mask,
        tc.punzi_a,
        tc.punzi_b,
        int(config.seed),
    )
    held = masses.held_out
    net, x = fair.selections[name], fair.selections["xgboost"]
    diff, std = net.sigma_min_pb - x.sigma_min_pb, fair.difference_std[name]
    sig = paired_significance(diff, std, held)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, diff / np.where(std > 0, std, 1.0), 0.0)
    core = core_window_table(valid, masses, tc.window_nsigma, tc.fair_window_nsigma)
    parts = std_decomposition(
        core, scores >= cut, xgb_scores >= x.cut, x.sigma_min_pb, lumi, tc.punzi_a, tc.punzi_b,
        seed=int(config.seed),
    )  # fmt: skip
    trained = ~held & np.isfinite(parts["total"])
    out = {
        "std_parts": {k: v.tolist() for k, v in parts.items()},
        "std_median_trained": {k: float(np.median(v[trained])) for k, v in parts.items()},
        "advantage_median_trained": float(np.median(-diff[~held] / x.sigma_min_pb[~held])),
        "projection_trained": strict_share_projection(
            -diff[trained] / x.sigma_min_pb[trained], parts["total"][trained], _FACTORS
        ),
        "projection_trained_signal_only": strict_share_projection(
            -diff[trained] / x.sigma_min_pb[trained],
            parts["total"][trained],
            _FACTORS,
            signal_std=parts["signal"][trained],
        ),
        "cut": cut,
        "xgboost_cut": x.cut,
        "mean_trained_pb": net.mean(~held),
        "mean_held_out_pb": net.mean(held),
        "xgboost_mean_trained_pb": x.mean(~held),
        "xgboost_mean_held_out_pb": x.mean(held),
        "trained_no_worse": float((diff[~held] <= 0).mean()),
        "trained_within_1std": sig["trained_within_1std"],
        "trained_within_2std": sig["trained"],
        "trained_worse_by_2std": int(sig["trained_worse_by_2std"]),
        "trained_better_by_2std": int(sig["trained_better_by_2std"]),
        "trained_combined_z": sig["trained_combined_z"],
        "held_out_no_worse": f"{int((diff[held] <= 0).sum())}/{int(held.sum())}",
        "z": z.tolist(),
        "sigma_min_pb": net.sigma_min_pb.tolist(),
        "xgboost_sigma_min_pb": x.sigma_min_pb.tolist(),
    }
    k = f"{name}_fair"
    print(f"{k}_mean_trained: {out['mean_trained_pb']:.4g} pb")
    print(f"{k}_mean_held_out: {out['mean_held_out_pb']:.4g} pb")
    print(f"{k}_xgboost_mean_trained: {out['xgboost_mean_trained_pb']:.4g} pb")
    print(f"{k}_xgboost_mean_held_out: {out['xgboost_mean_held_out_pb']:.4g} pb")
    for q in ("trained_no_worse", "trained_within_1std", "trained_within_2std"):
        print(f"{k}_{q}: {out[q]:.3g} fraction")
    print(f"{k}_trained_worse_by_2std: {out['trained_worse_by_2std']} masses")
    print(f"{k}_trained_better_by_2std: {out['trained_better_by_2std']} masses")
    print(f"{k}_trained_combined_z: {out['trained_combined_z']:+.3g} sigma")
    print(f"{k}_held_out_no_worse: {out['held_out_no_worse']} masses")
    for part, v in out["std_median_trained"].items():
        print(f"{k}_std_{part}: {v:.4g} fraction of xgboost sigma_min (median, trained)")
    print(f"{k}_advantage: {out['advantage_median_trained']:.4g} fraction (median, trained)")
    proj = out["projection_trained"]
    print(f"{k}_true_advantage_spread: {proj.get('true_spread', float('nan')):.4g} fraction")
    only = out["projection_trained_signal_only"]
    for f in _FACTORS:
        key = f"share_at_{f:g}x"
        print(f"{k}_projected_strict_share_{f:g}x_events: {proj.get(key, np.nan):.3g} fraction")
        print(f"{k}_projected_strict_share_{f:g}x_signal: {only.get(key, np.nan):.3g} fraction")
    return out


def _row(
    name: str,
    scan: Any,
    edges: Any,
    mask: np.ndarray,
    held_out: np.ndarray,
    reference: Any,
    seconds: float,
) -> dict[str, Any]:
    wp = choose_working_point(scan, edges, mask, tolerance=_TOLERANCE)
    sel = selection_at(scan, wp.cut if reference is not None else wp.best_cut, name)
    row: dict[str, Any] = {
        "variant": name,
        "cut": sel.cut,
        "best_cut": wp.best_cut,
        "mean_trained_pb": sel.mean(~held_out),
        "mean_held_out_pb": sel.mean(held_out),
        "mean_all_pb": sel.mean(),
        "seconds": seconds,
        "sigma_min_pb": sel.sigma_min_pb.tolist(),
    }
    if reference is not None:
        goal = goal_check(sel, reference, held_out)
        row["trained_no_worse"] = goal["trained_fraction_no_worse"]
        row["held_out_no_worse"] = f"{goal['held_out_no_worse']}/{goal['held_out_masses']}"
    for key in ("mean_trained_pb", "mean_held_out_pb", "mean_all_pb"):
        print(f"{name}_{key[:-3]}: {row[key]:.4g} pb")
    if reference is not None:
        print(f"{name}_trained_no_worse_than_xgboost: {row['trained_no_worse']:.3g} fraction")
        print(f"{name}_held_out_no_worse_than_xgboost: {row['held_out_no_worse']} masses")
    print(f"{name}_cut: {sel.cut:.3g} score")
    print(f"{name}_seconds: {seconds:.3g} s")
    return row


if __name__ == "__main__":
    raise SystemExit(main())
