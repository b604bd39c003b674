"""Plots of the selection study (matplotlib ``Figure`` objects; no pyplot global state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .ranking import Ranking
from .train import TrainingHistory

__all__ = ["plot_grid", "plot_history", "plot_ranking", "plot_scan", "plot_sensitivity"]

_STYLE = {
    "punzi": ("C0", "o"),
    "parametrised": ("C4", "D"),
    "xgboost": ("C1", "s"),
    "cut_based": ("C2", "^"),
    "no_selection": ("0.5", "."),
}
_LABEL = {
    "punzi": "Punzi net",
    "parametrised": "parametrised Punzi net",
    "xgboost": "XGBoost",
    "cut_based": "cut-based",
    "no_selection": "no selection",
}


def plot_sensitivity(
    masses: np.ndarray,
    held_out: np.ndarray,
    sigma: Mapping[str, np.ndarray],
    path: Path,
    luminosity_pb: float,
) -> Path:
    """σ_min per mass for each selection; held-out masses drawn as open markers."""
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for name, values in sigma.items():
        color, marker = _STYLE.get(name, ("k", "."))
        ax.plot(masses, values, color=color, lw=1, alpha=0.6)
        ax.plot(
            masses[~held_out],
            values[~held_out],
            marker,
            color=color,
            ms=4,
            ls="",
            label=_LABEL.get(name, name),
        )
        ax.plot(masses[held_out], values[held_out], marker, mfc="none", color=color, ms=7, ls="")
    ax.plot([], [], "o", mfc="none", color="gray", label="held-out mass (open)")
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_a$ [GeV]")
    ax.set_ylabel(r"$\sigma_{\min}$ [pb]" + f"  (L = {luminosity_pb:.4g} pb$^{{-1}}$)")
    ax.legend()
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_ranking(ranking: Ranking, path: Path, selected: Sequence[str] = ()) -> Path:
    """Permutation importance (AUC drop) and gain share per feature, best first."""
    feats = ranking.features
    fig = Figure(figsize=(8, 0.3 * len(feats) + 1.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(feats))[::-1]
    colors = ["C0" if f.name in selected else "C7" for f in feats]
    ax1.barh(
        y, [f.permutation for f in feats], xerr=[f.permutation_std for f in feats], color=colors
    )
    ax2.barh(y, [f.gain for f in feats], color=colors)
    ax1.set_yticks(y, [f.name for f in feats])
    ax1.set_xlabel("permutation importance (AUC drop)")
    ax2.set_xlabel("gain share")
    fig.suptitle(f"XGBoost ranking (validation AUC {ranking.auc:.3f}); blue: inputs used")
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_scan(
    scans: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    score_edges: Sequence[float] = (),
    working_point: float | None = None,
    ylabel: str = r"mean $\sigma_{\min}$ [pb] (trained masses)",
    core: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    plateau: Sequence[float] = (),
) -> Path:
    """Mean σ_min over the trained masses against the score cut.

    ``core``: the same curves in the core windows (fair comparison), drawn dashed; ``plateau``:
    the score edges within the working-point tolerance of the best, shaded.
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, (cuts, mean) in scans.items():
        ok = np.isfinite(mean)
        ax.plot(
            cuts[ok], mean[ok], color=_STYLE.get(name, ("k", "."))[0], label=_LABEL.get(name, name)
        )
    for name, (cuts, mean) in (core or {}).items():
        ok = np.isfinite(mean)
        ax.plot(
            cuts[ok],
            mean[ok],
            color=_STYLE.get(name, ("k", "."))[0],
            ls=":",
            label=f"{_LABEL.get(name, name)}, core window",
        )
    if len(plateau) > 1:
        ax.axvspan(min(plateau), max(plateau), color="C3", alpha=0.08, label="plateau")
    for e in score_edges:
        ax.axvline(e, color="0.85", lw=0.8, zorder=0)
    if working_point is not None:
        ax.axvline(working_point, color="C3", ls="--", label=f"working point {working_point:g}")
    ax.set_yscale("log")
    ax.set_xlabel("score cut")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_history(history: TrainingHistory, path: Path) -> Path:
    """BCE and Punzi losses per epoch, training and validation."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for ax, tr, va, label in (
        (ax1, history.bce_train, history.bce_valid, "weighted BCE"),
        (ax2, history.punzi_train, history.punzi_valid, r"mean $\sigma_{\min}$ [pb]"),
    ):
        ax.plot(np.arange(1, len(tr) + 1), tr, label="training")
        ax.plot(np.arange(1, len(va) + 1), va, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    ax1.set_title("pre-training")
    ax2.set_title("Punzi loss")
    fig.savefig(path, dpi=110)
    return Path(path)


def plot_grid(rows: Sequence[Mapping[str, object]], path: Path) -> Path:
    """Mean σ_min per grid configuration, best marked."""
    fig = Figure(figsize=(8, 0.35 * len(rows) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    labels = [
        ", ".join(
            f"{k}={v}"
            for k, v in r.items()
            if k not in ("mean_sigma_min_pb", "best_cut", "seconds", "best")
        )
        for r in rows
    ]
    values = [float(r["mean_sigma_min_pb"]) for r in rows]  # type: ignore[arg-type]
    y = np.arange(len(rows))[::-1]
    ax.barh(y, values, color=["C3" if r["best"] else "C0" for r in rows])
    ax.set_yticks(y, labels)
    ax.set_xlabel(r"mean $\sigma_{\min}$ [pb] at best cut (validation, trained masses)")
    fig.savefig(path, dpi=110)
    return Path(path)
