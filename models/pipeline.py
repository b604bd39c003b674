"""``train_models``: the selection stage, from skims to model files, working point and σ_min table.

Steps (Abudinen et al., EPJC 82 (2022) 121; physics.md "Selection (Punzi net)"):

1. stream the skims into training / validation candidates (``models/data.py``);
2. rank every float feature with XGBoost (gain, permutation importance) and choose the inputs:
   ``training.features`` (the seed's nine), or the ``training.select_top_features`` best;
3. train the XGBoost baseline, the Punzi net to deploy (the mass-parametrised one when
   ``training.parametrised``; or the grid of them), the other net for comparison
   (``training.compare_nets``), and rectangular cuts, all on the training split without the
   held-out masses' signal;
4. on the validation split, scan the score cut for each: σ_min per mass (efficiency and background
   inside the ±N σ_m windows), the working point (best score-bin edge for the mean σ_min, or its
   geometric mean, over the trained masses inside the search range), the held-out masses' σ_min
   against their trained neighbours, where each net is no worse than XGBoost at its best cut,
   and what per-mass cuts would gain over one fixed cut (``models/evaluate.py``);
5. write ``models/punzi.pt`` + ``punzi.json`` (the deployed net; the other one as
   ``punzi_plain.*`` or ``punzi_parametrised.*``), ``xgboost.json``, ``ranking.json``,
   ``working_point.json`` (with the σ_min-versus-cut curve), ``sensitivity.json`` and
   ``sensitivity.md`` (σ_min per mass side by side, with the chosen-net−XGBoost difference and
   its bootstrap error), ``grid.json`` when a grid is given, and the plots ``sensitivity.png``,
   ``ranking.png``, ``working_point.png``, ``training.png`` (``grid.png``).

The working point is a score-bin edge (see ``models/working_point.py``); σ_min is evaluated on
the validation split (held-out masses: on all their events, none of which was trained on), or,
with ``training.evaluation_folds`` k ≥ 2, on every event once: XGBoost, the nets and the cuts
are trained k times, each fold's events scored by the models that left them out
(``models/folds.py``); the deployed models are fold 0's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cuts import RectangularCuts, optimise_cuts
from .data import SkimRead, load_selection_sample, read_selection_skims
from .evaluate import (
    FairComparison,
    SelectionSigma,
    Sensitivity,
    background_core_fraction,
    compare_bootstrap,
    core_window_table,
    deployed_scores,
    goal_check,
    neighbour_ratios,
    paired_significance,
    per_mass_cut_gain,
    per_mass_difference_std,
    ratio_summary,
    selection_at,
)
from .folds import FoldScores, pool_folds, pooled_scan_at_hypothesis
from .grid import GridResult, grid_search
from .io import save_punzi, save_xgboost, write_json
from .plots import plot_grid, plot_history, plot_ranking, plot_scan, plot_sensitivity
from .punzi import sigma_min
from .ranking import Ranking, rank_features
from .sample import Candidates, MassPoints, SelectionSample
from .train import PunziFit, train_punzi_net
from .working_point import CutScan, WorkingPoint, choose_working_point, scan_cuts, scan_sigma_min
from .xgb import train_xgboost, xgboost_scores

__all__ = [
    "TrainingResult",
    "fair_comparison",
    "load_training_sample",
    "read_training_skims",
    "score_distribution",
    "search_mask",
    "train_models",
]

#: file stem of each net kind when it is not the deployed one
_ALT_NAME = {"punzi": "punzi_plain", "parametrised": "punzi_parametrised"}


@dataclass(frozen=True)
class TrainingResult:
    """What ``train_models`` produced; ``files`` maps a short name to the written path.

    ``punzi`` is the deployed net, ``nets`` every trained net by kind (``punzi``: plain,
    ``parametrised``).
    """

    model_dir: Path
    files: dict[str, Path]
    features: tuple[str, ...]
    ranking: Ranking
    working_point: WorkingPoint
    xgboost_working_point: WorkingPoint
    sensitivity: Sensitivity
    cuts: RectangularCuts
    punzi: PunziFit
    nets: dict[str, PunziFit]
    grid: GridResult | None
    sample_info: dict[str, Any]
    seconds: dict[str, float]


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[alps train] {message}", file=sys.stderr, flush=True)


def _without_held_out(c: Candidates, masses: MassPoints) -> Candidates:
    return c.subset(np.flatnonzero(~(c.is_signal & masses.held_out[c.mass_index])))


def search_mask(masses: np.ndarray, config: Any) -> np.ndarray:
    """Signal masses inside the limits' mass range (the working point is chosen on these):
    ``limits.masses`` when set, else ``limits.scan_range_GeV``."""
    if config.limits.masses is not None:
        grid = config.limits.masses.masses()
        lo, hi = float(grid.min()), float(grid.max())
    else:
        lo, hi = config.limits.scan_range_GeV
    return (masses >= lo - 1e-9) & (masses <= hi + 1e-9)


def _write_table(path: Path, sens: Sensitivity, wp: WorkingPoint) -> Path:
    """σ_min per mass side by side as a Markdown table (held-out masses marked)."""
    cols = [s for s in (sens.punzi, sens.parametrised) if s is not None]
    cols += [sens.xgboost, sens.cut_based, sens.no_selection]
    names = {
        "punzi": "Punzi net",
        "parametrised": "param. Punzi",
        "xgboost": "XGBoost",
        "cut_based": "cut-based",
        "no_selection": "no selection",
    }
    chosen = sens.selected
    lines = [
        f"σ_min [pb] per mass, {_evaluated_on(sens.evaluation_folds)}, "
        f"L = {sens.luminosity_pb:g} pb^-1; "
        f"deployed: {names[sens.chosen]} at score >= {wp.cut:g} (binned working point); the other "
        "net at its own working point; XGBoost at its best cut; rectangular cuts. "
        "* = held-out mass, † = outside the search range.",
        "",
        "| m_a [GeV] | " + " | ".join(names[c.name] for c in cols) + " | deployed ε | deployed B |",
        "|---:|" + "---:|" * (len(cols) + 2),
    ]
    for j, m in enumerate(sens.masses):
        mark = ("*" if sens.held_out[j] else "") + ("" if sens.in_search[j] else "†")
        values = " | ".join(f"{c.sigma_min_pb[j]:.4g}" for c in cols)
        lines.append(
            f"| {m:.3f}{mark} | {values} | {chosen.efficiency[j]:.3f} | {chosen.background[j]:.4g} |"
        )
    trained = ~sens.held_out
    for label, mask in (
        ("mean, trained", trained),
        ("mean, held-out", sens.held_out),
        ("mean, search range", sens.in_search),
        ("mean, all", None),
    ):
        values = " | ".join(f"{c.mean(mask):.4g}" for c in cols)
        lines.append(f"| {label} | {values} | | |")
    if sens.fair is not None:
        lines += ["", *_fair_lines(sens, names)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _fair_lines(sens: Sensitivity, names: dict[str, str]) -> list[str]:
    """The core-window table (``models/evaluate.py``, fair comparison) and its goal check."""
    assert sens.fair is not None
    fair = sens.fair
    order: list[str] = [k for k in ("punzi", "parametrised") if k in fair.selections]
    order += ["xgboost", "cut_based", "no_selection"]
    cols = [fair.selections[k] for k in order]
    lines = [
        f"Fair comparison: σ_min [pb] in the core windows m ± {fair.core_nsigma:g} σ_m (only the "
        "background under the peak counts; validation / held-out events); nets at their working "
        "points, XGBoost at its best cut for this estimate.",
        "",
        "| m_a [GeV] | " + " | ".join(names[k] for k in order) + " |",
        "|---:|" + "---:|" * len(cols),
    ]
    for j, m in enumerate(sens.masses):
        mark = ("*" if sens.held_out[j] else "") + ("" if sens.in_search[j] else "†")
        lines.append(
            f"| {m:.3f}{mark} | " + " | ".join(f"{c.sigma_min_pb[j]:.4g}" for c in cols) + " |"
        )
    for label, mask in (("mean, trained", ~sens.held_out), ("mean, held-out", sens.held_out)):
        lines.append(f"| {label} | " + " | ".join(f"{c.mean(mask):.4g}" for c in cols) + " |")
    lines.append("")
    for k, g in fair.goal.items():
        w = fair.within_error.get(k, {})
        lines.append(
            f"- {names[k]} no worse than XGBoost at {g['trained_fraction_no_worse']:.0%} of the "
            f"trained masses and {g['held_out_no_worse']}/{g['held_out_masses']} held-out masses "
            f"(goal ≥ 90% and all: {'met' if g['met'] else 'not met'}); worse by less than two "
            f"bootstrap std at {w.get('trained', float('nan')):.0%} of the trained and "
            f"{w.get('held_out', float('nan')):.0%} of the held-out masses; significantly worse "
            f"(> 2 std) at {w.get('trained_worse_by_2std', float('nan')):.0f} trained and "
            f"{w.get('held_out_worse_by_2std', float('nan')):.0f} held-out masses, significantly "
            f"better at {w.get('trained_better_by_2std', float('nan')):.0f} and "
            f"{w.get('held_out_better_by_2std', float('nan')):.0f}; combined z of the difference "
            f"(Σz/√n, negative: the net is better) {w.get('trained_combined_z', float('nan')):+.1f} "
            f"(trained), {w.get('held_out_combined_z', float('nan')):+.1f} (held-out)."
        )
    return lines


def score_distribution(
    candidates: Candidates, scores: np.ndarray, edges: Sequence[float], signal_rows: np.ndarray
) -> dict[str, list[float]]:
    """Share of the signal (``signal_rows``, efficiency-weighted) and of the background
    (expected events) in each score bin of ``edges`` (the last bin closed at 1)."""
    e = np.asarray(edges, dtype=np.float64)
    k = np.clip(np.searchsorted(e, scores, side="right") - 1, 0, len(e) - 2)
    out: dict[str, list[float]] = {"edges": e.tolist()}
    for name, rows in (("signal", signal_rows), ("background", ~candidates.is_signal)):
        h = np.bincount(k[rows], weights=candidates.weight[rows], minlength=len(e) - 1)
        out[name] = (h / h.sum() if h.sum() > 0 else h).tolist()
    return out


def fair_comparison(
    candidates: Candidates,
    masses: MassPoints,
    scores: dict[str, np.ndarray],
    net_cuts: dict[str, float],
    cut_based: np.ndarray,
    luminosity_pb: float,
    window_nsigma: float,
    core_nsigma: float,
    mask: np.ndarray,
    a: float,
    b: float,
    seed: int = 0,
) -> tuple[FairComparison, dict[str, CutScan]]:
    """σ_min in the core windows (``models/evaluate.py``): the nets at ``net_cuts`` (their
    working points), XGBoost (``scores["xgboost"]``) at its best cut for the core-window mean
    over ``mask``, ``cut_based`` (pass mask) and no selection; with every score's core scan."""
    core = core_window_table(candidates, masses, window_nsigma, core_nsigma)
    sig = candidates.trained_signal(masses)
    fair_scans = {
        k: scan_sigma_min(core, s, luminosity_pb, scan_cuts(s[sig], list(net_cuts.values())), a, b)
        for k, s in scores.items()
    }
    sel = {k: selection_at(fair_scans[k], c, k) for k, c in net_cuts.items()}
    x = fair_scans["xgboost"]
    sel["xgboost"] = selection_at(x, float(x.cuts[np.argmin(x.mean_sigma(mask))]), "xgboost")
    for name, passed in (("cut_based", cut_based), ("no_selection", np.ones(len(candidates)))):
        eff, bkg = core.yields(passed)
        sel[name] = SelectionSigma(name, None, sigma_min(eff, bkg, luminosity_pb, a, b), eff, bkg)
    goal = {k: goal_check(sel[k], sel["xgboost"], masses.held_out) for k in net_cuts}
    x_pass = scores["xgboost"] >= sel["xgboost"].cut
    std, within = {}, {}
    for k, c in net_cuts.items():
        std[k] = per_mass_difference_std(
            core, scores[k] >= c, x_pass, luminosity_pb, a, b, seed=seed
        )
        diff = sel[k].sigma_min_pb - sel["xgboost"].sigma_min_pb
        within[k] = paired_significance(diff, std[k], masses.held_out)
    return FairComparison(core_nsigma, sel, goal, std, within), fair_scans


def _train_nets(
    sample: SelectionSample, train: Candidates, tc: Any, seed: int, client: Any, progress: bool
) -> tuple[dict[str, PunziFit], GridResult | None]:
    """The deployed net (first) and, with ``compare_nets``, the other kind."""
    chosen = "parametrised" if tc.parametrised else "punzi"
    kinds = [chosen] + (
        [k for k in ("punzi", "parametrised") if k != chosen] if tc.compare_nets else []
    )
    fits: dict[str, PunziFit] = {}
    grid = None
    for kind in kinds:
        cfg = tc.model_copy(update={"parametrised": kind == "parametrised"})
        if kind == chosen and tc.grid:
            _log(progress, f"grid search over {dict(tc.grid)}")
            grid = grid_search(sample, cfg, seed=seed, client=client, progress=progress)
            fits[kind] = grid.points[grid.best].fit
            _log(progress, f"best grid point {grid.points[grid.best].overrides}")
            continue
        _log(
            progress,
            f"{'parametrised ' if kind == 'parametrised' else ''}Punzi net: {tc.hidden_layers} x "
            f"{tc.width} {tc.activation}, {tc.bce_epochs} BCE + {tc.punzi_epochs} Punzi epochs",
        )
        fits[kind] = train_punzi_net(
            train,
            sample.valid,
            sample.masses,
            sample.luminosity_pb,
            cfg,
            seed=seed,
            progress=progress,
        )
    return fits, grid


def load_training_sample(
    skim_dir: Path,
    config: Any,
    *,
    features: Sequence[str] | None = None,
    client: Any = None,
    progress: bool = False,
    validation_fold: tuple[int, int] | None = None,
) -> SelectionSample:
    """The skims as training and validation candidates with ``config.training``'s settings.

    ``features`` defaults to every float feature of the skims (the ranking needs them all);
    ``validation_fold`` (i, k): the i-th of k cross-validation folds is the validation split
    (:func:`models.data.load_selection_sample`).
    """
    tc = config.training
    return load_selection_sample(
        Path(skim_dir),
        window_nsigma=tc.window_nsigma,
        resolution=config.histograms.resolution,
        held_out_masses=tc.held_out_masses,
        max_background_candidates=tc.max_background_candidates,
        validation_fraction=tc.validation_fraction,
        seed=int(config.seed),
        features=features,
        client=client,
        progress=progress,
        validation_fold=validation_fold,
    )


def read_training_skims(
    skim_dir: Path,
    config: Any,
    *,
    features: Sequence[str] | None = None,
    client: Any = None,
    progress: bool = False,
) -> SkimRead:
    """The skims read once with ``config.training``'s settings
    (:func:`models.data.read_selection_skims`): ``.sample(validation_fraction, (i, k))`` cuts
    any split or cross-validation fold in memory."""
    tc = config.training
    return read_selection_skims(
        Path(skim_dir),
        window_nsigma=tc.window_nsigma,
        resolution=config.histograms.resolution,
        held_out_masses=tc.held_out_masses,
        max_background_candidates=tc.max_background_candidates,
        seed=int(config.seed),
        features=features,
        client=client,
        progress=progress,
    )


def _evaluated_on(folds: int) -> str:
    """How σ_min was evaluated, for the tables (``training.evaluation_folds``)."""
    if folds:
        return f"{folds}-fold cross-validated (every event once, out of fold)"
    return "validation split"


def _other_folds(
    skims: SkimRead,
    config: Any,
    kinds: tuple[str, ...],
    progress: bool,
) -> list[FoldScores]:
    """Folds 1 … k − 1 of ``training.evaluation_folds`` (``models/folds.py``): each fold's XGBoost,
    nets of ``kinds`` and rectangular cuts trained on the other folds, scoring its own events.
    The folds are cut in memory from ``skims`` (read once, with the chosen features)."""
    tc, seed = config.training, int(config.seed)
    k = int(tc.evaluation_folds)
    out = []
    for i in range(1, k):
        _log(progress, f"cross-validation fold {i + 1} of {k}: XGBoost, {', '.join(kinds)} net")
        smp = skims.sample(tc.validation_fraction, (i, k))
        train = smp.without_held_out()
        booster = train_xgboost(
            train, smp.masses, rounds=tc.xgboost_rounds, depth=tc.xgboost_depth, seed=seed
        )
        fits = {
            kind: train_punzi_net(
                train,
                smp.valid,
                smp.masses,
                smp.luminosity_pb,
                tc.model_copy(update={"parametrised": kind == "parametrised"}),
                seed=seed,
                progress=progress,
            )
            for kind in kinds
        }
        cuts = optimise_cuts(train, smp.masses, smp.luminosity_pb, a=tc.punzi_a, b=tc.punzi_b)
        valid = smp.evaluation_set()
        scores = {kind: deployed_scores(f, valid) for kind, f in fits.items()}
        scores["xgboost"] = xgboost_scores(booster, valid.features)
        out.append(FoldScores(valid, scores, cuts.passes(valid.features), fits))
    return out


def train_models(
    skim_dir: Path,
    config: Any,
    workdir: Path,
    *,
    client: Any = None,
    progress: bool = True,
) -> TrainingResult:
    """Run the selection stage (module docstring) on the skims in ``skim_dir``.

    ``config`` is an ``alps.config.AnalysisConfig``; outputs go to ``workdir/models``. With a Dask
    ``client`` the skims are read and the grid points trained as tasks on the cluster.
    """
    from alps.histio import provenance

    tc = config.training
    seed = int(config.seed)
    model_dir = Path(workdir) / "models"
    model_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    _log(progress, f"reading skims from {skim_dir}")
    k_folds = int(tc.evaluation_folds)
    if k_folds and tc.grid:
        raise ValueError("training.evaluation_folds and training.grid cannot be combined")
    first_fold = (0, k_folds) if k_folds else None
    # read once: with k folds every fold is cut in memory from the same read (issue #13)
    read = read_training_skims(Path(skim_dir), config, client=client, progress=progress)
    full = read.sample(tc.validation_fraction, first_fold)
    masses, lumi = full.masses, full.luminosity_pb
    seconds["read"] = time.perf_counter() - t0
    _log(
        progress,
        f"{len(full.train)} training / {len(full.valid)} validation candidates, "
        f"{len(masses)} masses ({int(masses.held_out.sum())} held out), L = {lumi:g} /pb",
    )

    t0 = time.perf_counter()
    _log(progress, f"ranking {len(full.train.feature_names)} features with XGBoost")
    ranking = rank_features(
        full.without_held_out(),
        _without_held_out(full.valid, masses),
        masses,
        rounds=min(tc.xgboost_rounds, 100),
        depth=tc.xgboost_depth,
        seed=seed,
    )
    features = ranking.top(tc.select_top_features) if tc.select_top_features else tuple(tc.features)
    sample: SelectionSample = full.with_features(features)
    del full
    # the other folds need only the chosen features; without folds the read is done with
    fold_read = read.with_features(features) if k_folds else None
    del read
    train = sample.without_held_out()
    seconds["ranking"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _log(progress, f"XGBoost: {tc.xgboost_rounds} rounds, depth {tc.xgboost_depth}")
    booster = train_xgboost(
        train, masses, rounds=tc.xgboost_rounds, depth=tc.xgboost_depth, seed=seed
    )
    seconds["xgboost"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fits, grid = _train_nets(sample, train, tc, seed, client, progress)
    chosen = next(iter(fits))
    fit = fits[chosen]
    seconds["punzi"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _log(progress, "cut-based selection")
    cuts = optimise_cuts(train, masses, lumi, a=tc.punzi_a, b=tc.punzi_b)
    seconds["cut_based"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    valid = sample.evaluation_set()
    scores: dict[str, np.ndarray] = {k: deployed_scores(f, valid) for k, f in fits.items()}
    scores["xgboost"] = xgboost_scores(booster, valid.features)
    pass_c = cuts.passes(valid.features)
    folds = [FoldScores(valid, scores, pass_c, fits)]
    if k_folds:
        assert fold_read is not None
        folds += _other_folds(fold_read, config, tuple(fits), progress)
        del fold_read
        pooled = pool_folds(folds)
        valid, scores, pass_c = pooled.candidates, pooled.scores, pooled.cut_based
        seconds["other_folds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
    table = valid.window_table(masses)
    trained_sig = valid.trained_signal(masses)
    edges = config.histograms.score_edges
    in_search = search_mask(masses.masses, config)
    wp_mask = masses.trained & in_search
    metric, ab = tc.working_point_metric, (tc.punzi_a, tc.punzi_b)
    scans: dict[str, CutScan] = {
        k: scan_sigma_min(table, s, lumi, scan_cuts(s[trained_sig], edges), *ab)
        for k, s in scores.items()
    }
    wps = {
        k: choose_working_point(
            scans[k],
            edges,
            wp_mask,
            fixed=tc.working_point if k == chosen else None,
            metric=metric,
            tolerance=tc.working_point_tolerance,
        )
        for k in scans
    }
    wp, wp_x = wps[chosen], wps["xgboost"]
    nets = {k: selection_at(scans[k], wps[k].cut, k) for k in fits}
    at_hyp = None
    if "parametrised" in fits:
        scan_h = pooled_scan_at_hypothesis(
            folds, "parametrised", masses, lumi, scans["parametrised"].cuts, *ab
        )
        at_hyp = selection_at(scan_h, wps["parametrised"].cut, "parametrised_at_hypothesis")
    fair, fair_scans = fair_comparison(
        valid,
        masses,
        scores,
        {k: wps[k].cut for k in fits},
        pass_c,
        lumi,
        tc.window_nsigma,
        tc.fair_window_nsigma,
        wp_mask,
        *ab,
        seed,
    )
    eff_c, bkg_c = table.yields(pass_c)
    eff_0, bkg_0 = table.yields(np.ones(len(valid)))
    sens_x = selection_at(scans["xgboost"], wp_x.best_cut, "xgboost")
    selected = nets[chosen]
    held = masses.held_out
    sens = Sensitivity(
        masses=masses.masses,
        held_out=held,
        in_search=in_search,
        luminosity_pb=lumi,
        chosen=chosen,
        punzi=nets.get("punzi"),
        parametrised=nets.get("parametrised"),
        parametrised_at_hypothesis=at_hyp,
        xgboost=sens_x,
        xgboost_binned=selection_at(scans["xgboost"], wp_x.cut, "xgboost_binned"),
        cut_based=SelectionSigma(
            "cut_based", None, sigma_min(eff_c, bkg_c, lumi, *ab), eff_c, bkg_c
        ),
        no_selection=SelectionSigma(
            "no_selection", None, sigma_min(eff_0, bkg_0, lumi, *ab), eff_0, bkg_0
        ),
        generalisation=neighbour_ratios(selected.sigma_min_pb, held, masses.masses, held),
        generalisation_summary={
            "chosen_held_out": ratio_summary(
                neighbour_ratios(selected.sigma_min_pb, held, masses.masses, held)
            ),
            "chosen_trained_control": ratio_summary(
                neighbour_ratios(selected.sigma_min_pb, held, masses.masses, masses.trained)
            ),
            "xgboost_held_out": ratio_summary(
                neighbour_ratios(sens_x.sigma_min_pb, held, masses.masses, held)
            ),
        },
        chosen_minus_xgboost=compare_bootstrap(
            table,
            scores[chosen] >= wp.cut,
            scores["xgboost"] >= wp_x.best_cut,
            masses,
            lumi,
            *ab,
            seed,
        ),
        goal={k: goal_check(n, sens_x, held) for k, n in nets.items()},
        per_mass_cuts={
            k: per_mass_cut_gain(scans[k], wps[k].cut, np.asarray(edges[:-1]), in_search)
            for k in scans
        },
        background_core_fraction={
            **{
                k: background_core_fraction(valid, scores[k] >= wps[k].cut, masses, wp_mask)
                for k in fits
            },
            "xgboost": background_core_fraction(
                valid, scores["xgboost"] >= wp_x.best_cut, masses, wp_mask
            ),
            "no_selection": background_core_fraction(valid, np.ones(len(valid)), masses, wp_mask),
        },
        fair=fair,
        evaluation_folds=k_folds,
    )
    seconds["evaluation"] = time.perf_counter() - t0

    _log(progress, f"writing models and plots to {model_dir}")
    prov = provenance(
        config=config.model_dump(mode="json"),
        inputs=[*sample.info["files"], str(Path(skim_dir) / "summary.json")],
        stage="train",
        sample={k: v for k, v in sample.info.items() if k != "files"},
        features=list(features),
        seed=seed,
    )
    files: dict[str, Path] = {}
    files["punzi.pt"], files["punzi.json"] = save_punzi(fit, model_dir, prov)
    for kind, other in fits.items():
        if kind != chosen:
            name = _ALT_NAME[kind]
            files[f"{name}.pt"], files[f"{name}.json"] = save_punzi(other, model_dir, prov, name)
    files["xgboost.json"] = save_xgboost(booster, model_dir / "xgboost.json", features, prov)
    files["ranking.json"] = write_json(
        model_dir / "ranking.json",
        {
            "method": "XGBoost on all float features of the skims: gain share (training split) and "
            "permutation importance = weighted ROC AUC drop (validation split)",
            "auc": ranking.auc,
            "rounds": ranking.rounds,
            "selected": list(features),
            "selection_rule": f"top {tc.select_top_features}"
            if tc.select_top_features
            else "training.features",
            "features": [f.__dict__ for f in ranking.features],
        },
    )
    files["working_point.json"] = write_json(
        model_dir / "working_point.json",
        {
            "model": chosen,
            "selection": "score >= cut",
            "cut": wp.cut,
            "score_edges": list(edges),
            "first_score_bin_kept": wp.edge_index,
            "metric": metric,
            "mean_sigma_min_pb": wp.mean_sigma_min_pb,
            "best_cut_unbinned": wp.best_cut,
            "best_mean_sigma_min_pb_unbinned": wp.best_mean_sigma_min_pb,
            "fixed_by_config": wp.fixed_by_config,
            "tolerance": tc.working_point_tolerance,
            "plateau": list(wp.plateau),
            "rule": f"best score-bin edge (histograms are binned in score) for the {metric} of "
            f"sigma_min over the trained masses inside the search range, "
            f"{_evaluated_on(k_folds)}; the tightest edge within the tolerance (relative) of the "
            "best",
            "score_distribution": {
                k: score_distribution(valid, s, edges, trained_sig) for k, s in scores.items()
            },
            "masses_used_GeV": masses.masses[wp_mask].tolist(),
            "curves": {
                k: {
                    "cuts": scans[k].cuts.tolist(),
                    "mean_sigma_min_pb": scans[k].mean_sigma(wp_mask).tolist(),
                    "geometric_mean_sigma_min_pb": scans[k].mean_sigma(wp_mask, "log").tolist(),
                    "core_window_cuts": fair_scans[k].cuts.tolist(),
                    "core_window_mean_sigma_min_pb": fair_scans[k].mean_sigma(wp_mask).tolist(),
                }
                for k in scans
            },
            "per_mass_cuts": sens.per_mass_cuts,
            "xgboost": wp_x.__dict__,
            **{f"{k}_working_point": w.__dict__ for k, w in wps.items() if k != chosen},
        },
    )
    files["sensitivity.json"] = write_json(
        model_dir / "sensitivity.json", {**sens.to_dict(), "cut_based_cuts": cuts.to_dict()}
    )
    files["sensitivity.md"] = _write_table(model_dir / "sensitivity.md", sens, wp)
    if grid is not None:
        files["grid.json"] = write_json(model_dir / "grid.json", {"points": grid.table()})
        files["grid.png"] = plot_grid(grid.table(), model_dir / "grid.png")
    files["sensitivity.png"] = plot_sensitivity(
        masses.masses,
        masses.held_out,
        {s.name: s.sigma_min_pb for s in (*nets.values(), sens.xgboost, sens.cut_based)},
        model_dir / "sensitivity.png",
        lumi,
    )
    files["ranking.png"] = plot_ranking(ranking, model_dir / "ranking.png", features)
    files["working_point.png"] = plot_scan(
        {k: (scans[k].cuts, scans[k].mean_sigma(wp_mask, metric)) for k in scans},
        model_dir / "working_point.png",
        edges,
        wp.cut,
        ylabel=("mean" if metric == "mean" else "geometric mean")
        + r" $\sigma_{\min}$ [pb] (trained masses, search range)",
        core={k: (fair_scans[k].cuts, fair_scans[k].mean_sigma(wp_mask, metric)) for k in scans},
        plateau=wp.plateau,
    )
    files["training.png"] = plot_history(fit.history, model_dir / "training.png")
    _log(
        progress,
        f"{chosen} working point score >= {wp.cut:g}: {metric} sigma_min "
        f"{wp.mean_sigma_min_pb:.4g} pb (XGBoost best {wp_x.best_mean_sigma_min_pb:.4g} pb)",
    )
    return TrainingResult(
        model_dir,
        files,
        features,
        ranking,
        wp,
        wp_x,
        sens,
        cuts,
        fit,
        fits,
        grid,
        sample.info,
        seconds,
    )
