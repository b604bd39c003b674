"""``train_models``: the selection stage, from skims to model files, working point and σ_min table.

Steps (Abudinen et al., EPJC 82 (2022) 121; physics.md "Selection (Punzi net)"):

1. stream the skims into training / validation candidates (``models/data.py``);
2. rank every float feature with XGBoost (gain, permutation importance) and choose the inputs:
   ``training.features`` (the seed's nine), or the ``training.select_top_features`` best;
3. train the XGBoost baseline, the Punzi net (or the grid of them), and rectangular cuts, all on
   the training split without the held-out masses' signal;
4. on the validation split, scan the score cut for each: σ_min per mass (efficiency and background
   inside the ±N σ_m windows), the working point (best score-bin edge for the mean σ_min over the
   trained masses), and the held-out masses' σ_min against their trained neighbours;
5. write ``models/punzi.pt`` + ``punzi.json``, ``xgboost.json``, ``ranking.json``,
   ``working_point.json``, ``sensitivity.json`` and ``sensitivity.md`` (σ_min per mass side by
   side, with the Punzi−XGBoost difference and its bootstrap error), ``grid.json`` when a grid is
   given, and the plots ``sensitivity.png``, ``ranking.png``, ``working_point.png``,
   ``training.png`` (``grid.png``).

The working point is a score-bin edge (see ``models/working_point.py``); σ_min is evaluated on
the validation split (held-out masses: on all their events, none of which was trained on).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cuts import RectangularCuts, optimise_cuts
from .data import load_selection_sample
from .grid import GridResult, grid_search
from .io import save_punzi, save_xgboost, write_json
from .net import state_from_numpy
from .plots import plot_grid, plot_history, plot_ranking, plot_scan, plot_sensitivity
from .punzi import sigma_min
from .ranking import Ranking, rank_features
from .sample import Candidates, MassPoints, SelectionSample
from .train import PunziFit, net_scores, train_punzi_net
from .working_point import (
    CutScan,
    WorkingPoint,
    bootstrap_difference,
    choose_working_point,
    scan_cuts,
    scan_sigma_min,
)
from .xgb import train_xgboost, xgboost_scores

__all__ = ["SelectionSigma", "Sensitivity", "TrainingResult", "train_models"]


@dataclass(frozen=True)
class SelectionSigma:
    """σ_min (pb), efficiency and background (events) per mass for one selection at one cut."""

    name: str
    cut: float | None
    sigma_min_pb: np.ndarray
    efficiency: np.ndarray
    background: np.ndarray

    def mean(self, mask: np.ndarray | None = None) -> float:
        values = self.sigma_min_pb if mask is None else self.sigma_min_pb[mask]
        return float(np.mean(values)) if len(values) else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "cut": self.cut,
            "sigma_min_pb": self.sigma_min_pb.tolist(),
            "efficiency": self.efficiency.tolist(),
            "background": self.background.tolist(),
        }


@dataclass(frozen=True)
class Sensitivity:
    """σ_min per mass on the validation split for the three selections, held-out masses marked.

    ``generalisation`` rows: (held-out mass GeV, its Punzi σ_min, mean of its two trained
    neighbours' σ_min, ratio); ``generalisation_summary`` condenses them, beside the same ratio
    for every trained mass (its spread is what statistics and curvature alone give) and for
    XGBoost's held-out masses. ``punzi_minus_xgboost``: difference of the mean σ_min (pb) of the
    Punzi net at its working point and XGBoost at its best cut, over the trained and over all
    masses, with bootstrap standard deviations (:func:`models.working_point.bootstrap_difference`).
    """

    masses: np.ndarray
    held_out: np.ndarray
    luminosity_pb: float
    punzi: SelectionSigma
    punzi_best: SelectionSigma
    xgboost: SelectionSigma
    xgboost_binned: SelectionSigma
    cut_based: SelectionSigma
    no_selection: SelectionSigma
    generalisation: tuple[tuple[float, float, float, float], ...]
    generalisation_summary: dict[str, dict[str, float]]
    punzi_minus_xgboost: dict[str, float]

    def selections(self) -> tuple[SelectionSigma, ...]:
        return (
            self.punzi,
            self.punzi_best,
            self.xgboost,
            self.xgboost_binned,
            self.cut_based,
            self.no_selection,
        )

    def to_dict(self) -> dict[str, Any]:
        trained = ~self.held_out
        return {
            "evaluated_on": "validation split; held-out masses: all their events (none trained on)",
            "luminosity_pb": self.luminosity_pb,
            "masses_GeV": self.masses.tolist(),
            "held_out": self.held_out.tolist(),
            **{s.name: s.to_dict() for s in self.selections()},
            "mean_sigma_min_pb": {
                s.name: {
                    "trained": s.mean(trained),
                    "held_out": s.mean(self.held_out),
                    "all": s.mean(),
                }
                for s in self.selections()
            },
            "punzi_minus_xgboost_pb": self.punzi_minus_xgboost,
            "generalisation_summary": self.generalisation_summary,
            "generalisation": [
                {
                    "mass_GeV": m,
                    "sigma_min_pb": s,
                    "neighbours_mean_pb": n,
                    "ratio": r,
                    "within_10_percent": abs(r - 1) <= 0.1,
                }
                for m, s, n, r in self.generalisation
            ],
        }


@dataclass(frozen=True)
class TrainingResult:
    """What ``train_models`` produced; ``files`` maps a short name to the written path."""

    model_dir: Path
    files: dict[str, Path]
    features: tuple[str, ...]
    ranking: Ranking
    working_point: WorkingPoint
    xgboost_working_point: WorkingPoint
    sensitivity: Sensitivity
    cuts: RectangularCuts
    punzi: PunziFit
    grid: GridResult | None
    sample_info: dict[str, Any]
    seconds: dict[str, float]


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[alps train] {message}", file=sys.stderr, flush=True)


def _without_held_out(c: Candidates, masses: MassPoints) -> Candidates:
    return c.subset(np.flatnonzero(~(c.is_signal & masses.held_out[c.mass_index])))


def _at(scan: CutScan, cut: float, name: str) -> SelectionSigma:
    i = scan.at(cut)
    return SelectionSigma(name, cut, scan.sigma[i], scan.efficiency[i], scan.background[i])


def _neighbour_ratios(
    sigma: np.ndarray, held_out: np.ndarray, masses: np.ndarray, which: np.ndarray
) -> tuple[tuple[float, float, float, float], ...]:
    """(mass, σ_min, mean σ_min of the nearest trained mass below and above, ratio) for ``which``."""
    rows = []
    for j in np.flatnonzero(which):
        below = [i for i in range(j - 1, -1, -1) if not held_out[i]][:1]
        above = [i for i in range(j + 1, len(masses)) if not held_out[i]][:1]
        if not (below and above):
            continue
        ref = float(np.mean(sigma[below + above]))
        rows.append((float(masses[j]), float(sigma[j]), ref, float(sigma[j] / ref)))
    return tuple(rows)


def _ratio_summary(rows: tuple[tuple[float, float, float, float], ...]) -> dict[str, float]:
    r = np.array([row[3] for row in rows])
    if len(r) == 0:
        return {"masses": 0}
    return {
        "masses": len(r),
        "fraction_within_10_percent": float(np.mean(np.abs(r - 1) <= 0.1)),
        "mean_abs_deviation": float(np.mean(np.abs(r - 1))),
        "max_abs_deviation": float(np.max(np.abs(r - 1))),
    }


def _compare(
    table: Any,
    pass_p: np.ndarray,
    pass_x: np.ndarray,
    masses: MassPoints,
    lumi: float,
    tc: Any,
    seed: int,
) -> dict[str, float]:
    out = {}
    for label, mask in (("trained", masses.trained), ("all", None)):
        d, err = bootstrap_difference(
            table, pass_p, pass_x, lumi, mask, seed=seed, a=tc.punzi_a, b=tc.punzi_b
        )
        out[label], out[f"{label}_bootstrap_std"] = d, err
    return out


def _write_table(path: Path, sens: Sensitivity, wp: WorkingPoint) -> Path:
    """σ_min per mass side by side as a Markdown table (held-out masses marked)."""
    lines = [
        f"σ_min [pb] per mass, validation split, L = {sens.luminosity_pb:g} pb^-1; "
        f"Punzi net at score >= {wp.cut:g} (binned working point), XGBoost at its best cut, "
        "rectangular cuts. * = held-out mass.",
        "",
        "| m_a [GeV] | Punzi net | XGBoost | cut-based | no selection | Punzi ε | Punzi B |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for j, m in enumerate(sens.masses):
        star = "*" if sens.held_out[j] else ""
        lines.append(
            f"| {m:.3f}{star} | {sens.punzi.sigma_min_pb[j]:.4g} | {sens.xgboost.sigma_min_pb[j]:.4g}"
            f" | {sens.cut_based.sigma_min_pb[j]:.4g} | {sens.no_selection.sigma_min_pb[j]:.4g}"
            f" | {sens.punzi.efficiency[j]:.3f}"
            f" | {sens.punzi.background[j]:.4g} |"
        )
    trained = ~sens.held_out
    for label, mask in (
        ("mean, trained", trained),
        ("mean, held-out", sens.held_out),
        ("mean, all", None),
    ):
        lines.append(
            f"| {label} | {sens.punzi.mean(mask):.4g} | {sens.xgboost.mean(mask):.4g}"
            f" | {sens.cut_based.mean(mask):.4g} | {sens.no_selection.mean(mask):.4g} | | |"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


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
    full = load_selection_sample(
        Path(skim_dir),
        window_nsigma=tc.window_nsigma,
        resolution=config.histograms.resolution,
        held_out_masses=tc.held_out_masses,
        max_background_candidates=tc.max_background_candidates,
        validation_fraction=tc.validation_fraction,
        seed=seed,
        client=client,
        progress=progress,
    )
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
    train = sample.without_held_out()
    seconds["ranking"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _log(progress, f"XGBoost: {tc.xgboost_rounds} rounds, depth {tc.xgboost_depth}")
    booster = train_xgboost(
        train, masses, rounds=tc.xgboost_rounds, depth=tc.xgboost_depth, seed=seed
    )
    seconds["xgboost"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    grid = None
    if tc.grid:
        _log(progress, f"grid search over {dict(tc.grid)}")
        grid = grid_search(sample, tc, seed=seed, client=client, progress=progress)
        fit = grid.points[grid.best].fit
        _log(progress, f"best grid point {grid.points[grid.best].overrides}")
    else:
        _log(
            progress,
            f"Punzi net: {tc.hidden_layers} x {tc.width} {tc.activation}, "
            f"{tc.bce_epochs} BCE + {tc.punzi_epochs} Punzi epochs",
        )
        fit = train_punzi_net(train, sample.valid, masses, lumi, tc, seed=seed, progress=progress)
    seconds["punzi"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _log(progress, "cut-based selection")
    cuts = optimise_cuts(train, masses, lumi, a=tc.punzi_a, b=tc.punzi_b)
    seconds["cut_based"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    valid = sample.evaluation_set()
    table = valid.window_table(masses)
    trained_sig = valid.is_signal & masses.trained[np.where(valid.is_signal, valid.mass_index, 0)]
    edges = config.histograms.score_edges
    score_p = net_scores(state_from_numpy(fit.spec, fit.state), valid.features)
    score_x = xgboost_scores(booster, valid.features)
    scan_p = scan_sigma_min(
        table, score_p, lumi, scan_cuts(score_p[trained_sig], edges), tc.punzi_a, tc.punzi_b
    )
    scan_x = scan_sigma_min(
        table, score_x, lumi, scan_cuts(score_x[trained_sig], edges), tc.punzi_a, tc.punzi_b
    )
    wp = choose_working_point(scan_p, edges, masses.trained, fixed=tc.working_point)
    wp_x = choose_working_point(scan_x, edges, masses.trained)
    eff_c, bkg_c = table.yields(cuts.passes(valid.features))
    eff_0, bkg_0 = table.yields(np.ones(len(valid)))
    punzi = _at(scan_p, wp.cut, "punzi")
    sens_x = _at(scan_x, wp_x.best_cut, "xgboost")
    sens = Sensitivity(
        masses=masses.masses,
        held_out=masses.held_out,
        luminosity_pb=lumi,
        punzi=punzi,
        punzi_best=_at(scan_p, wp.best_cut, "punzi_best_cut"),
        xgboost=sens_x,
        xgboost_binned=_at(scan_x, wp_x.cut, "xgboost_binned"),
        cut_based=SelectionSigma(
            "cut_based", None, sigma_min(eff_c, bkg_c, lumi, tc.punzi_a, tc.punzi_b), eff_c, bkg_c
        ),
        no_selection=SelectionSigma(
            "no_selection",
            None,
            sigma_min(eff_0, bkg_0, lumi, tc.punzi_a, tc.punzi_b),
            eff_0,
            bkg_0,
        ),
        generalisation=_neighbour_ratios(
            punzi.sigma_min_pb, masses.held_out, masses.masses, masses.held_out
        ),
        generalisation_summary={
            "punzi_held_out": _ratio_summary(
                _neighbour_ratios(
                    punzi.sigma_min_pb, masses.held_out, masses.masses, masses.held_out
                )
            ),
            "punzi_trained_control": _ratio_summary(
                _neighbour_ratios(
                    punzi.sigma_min_pb, masses.held_out, masses.masses, masses.trained
                )
            ),
            "xgboost_held_out": _ratio_summary(
                _neighbour_ratios(
                    sens_x.sigma_min_pb, masses.held_out, masses.masses, masses.held_out
                )
            ),
        },
        punzi_minus_xgboost=_compare(
            table, score_p >= wp.cut, score_x >= wp_x.best_cut, masses, lumi, tc, seed
        ),
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
            "model": "punzi",
            "selection": "score >= cut",
            "cut": wp.cut,
            "score_edges": list(edges),
            "first_score_bin_kept": wp.edge_index,
            "mean_sigma_min_pb": wp.mean_sigma_min_pb,
            "best_cut_unbinned": wp.best_cut,
            "best_mean_sigma_min_pb_unbinned": wp.best_mean_sigma_min_pb,
            "fixed_by_config": wp.fixed_by_config,
            "rule": "best score-bin edge (histograms are binned in score) for the mean sigma_min over "
            "the trained masses on the validation split",
            "xgboost": wp_x.__dict__,
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
        {
            "punzi": sens.punzi.sigma_min_pb,
            "xgboost": sens.xgboost.sigma_min_pb,
            "cut_based": sens.cut_based.sigma_min_pb,
        },
        model_dir / "sensitivity.png",
        lumi,
    )
    files["ranking.png"] = plot_ranking(ranking, model_dir / "ranking.png", features)
    files["working_point.png"] = plot_scan(
        {
            "punzi": (scan_p.cuts, scan_p.mean_sigma(masses.trained)),
            "xgboost": (scan_x.cuts, scan_x.mean_sigma(masses.trained)),
        },
        model_dir / "working_point.png",
        edges,
        wp.cut,
    )
    files["training.png"] = plot_history(fit.history, model_dir / "training.png")
    _log(
        progress,
        f"working point score >= {wp.cut:g}: mean sigma_min {wp.mean_sigma_min_pb:.4g} pb "
        f"(XGBoost best {wp_x.best_mean_sigma_min_pb:.4g} pb)",
    )
    return TrainingResult(
        model_dir, files, features, ranking, wp, wp_x, sens, cuts, fit, grid, sample.info, seconds
    )
