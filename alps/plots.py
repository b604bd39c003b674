"""Figures of the report, drawn from the stored histograms and results (never from events).

Each function writes one PNG and returns the numbers it shows, so the report can quote them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import hist
import matplotlib.pyplot as plt
import mplhep
import numpy as np
from scipy import stats

from .contract import signal_mass
from .processes import process_labels

__all__ = [
    "BACKGROUND_LABELS",
    "chi2_ndf",
    "plot_data_mc",
    "plot_fit_quality",
    "plot_mass_resolution",
    "plot_resolution_bins",
    "plot_trigger",
]

#: plot label per process, from the simulation's process registry
BACKGROUND_LABELS = process_labels()


def chi2_ndf(
    data: np.ndarray, mc: np.ndarray, mc_var: np.ndarray, min_expected: float = 5.0
) -> tuple[float, int]:
    """Pearson chi2 of data counts against an MC prediction with its statistical variance, over
    bins with at least ``min_expected`` expected or observed events; ndf = number of such bins."""
    use = (mc >= min_expected) | (data >= min_expected)
    variance = np.where(use, np.maximum(mc, 1e-9) + mc_var, 1.0)
    chi2 = float(np.sum(((data - mc) ** 2 / variance)[use]))
    return chi2, int(use.sum())


#: a ``hist.Hist`` (hist types ``h[...]`` as ``Hist | float``: these functions only select
#: sub-histograms, never single bins)
Histogram = Any


def _stack(arrays: Sequence[np.ndarray], like: np.ndarray) -> np.ndarray:
    """Element-wise sum of equally shaped arrays (zeros like ``like`` when there are none)."""
    total = np.zeros_like(like, dtype=np.float64)
    for array in arrays:
        total = total + array
    return total


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_data_mc(
    data: Histogram,
    backgrounds: Mapping[str, Histogram],
    path: Path,
    *,
    xlabel: str,
    title: str = "",
    rebin: int = 1,
    signal: tuple[str, Histogram] | None = None,
) -> dict[str, float]:
    """Stacked MC backgrounds against data, with a data/MC ratio panel; returns chi2, ndf."""
    if rebin > 1:
        data = data[:: hist.rebin(rebin)]
        backgrounds = {k: v[:: hist.rebin(rebin)] for k, v in backgrounds.items()}
        if signal is not None:
            signal = (signal[0], signal[1][:: hist.rebin(rebin)])
    names = sorted(backgrounds, key=lambda k: backgrounds[k].sum().value)
    counts = data.values()
    mc = _stack([backgrounds[k].values() for k in names], counts)
    mc_var = _stack([backgrounds[k].variances() for k in names], counts)
    chi2, ndf = chi2_ndf(counts, mc, mc_var)
    edges = data.axes[0].edges
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(6.4, 5.6), gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    mplhep.histplot([backgrounds[k].values() for k in names], edges, ax=top, stack=True, histtype="fill",
                    label=[BACKGROUND_LABELS.get(k, k) for k in names])  # fmt: skip
    mplhep.histplot(
        counts,
        edges,
        ax=top,
        histtype="errorbar",
        yerr=np.sqrt(counts),
        color="black",
        label="Pseudo-data",
    )
    if signal is not None:
        mplhep.histplot(
            signal[1].values(), edges, ax=top, histtype="step", color="red", label=signal[0]
        )
    top.set_ylabel("Events / bin")
    top.set_title(title + (f"  ($\\chi^2$/ndf = {chi2:.1f}/{ndf})" if ndf else ""), fontsize=10)
    top.legend(fontsize=7, ncol=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mc > 0, counts / mc, np.nan)
        error = np.where(mc > 0, np.sqrt(counts) / mc, np.nan)
        band = np.where(mc > 0, np.sqrt(mc_var) / mc, np.nan)
    centers = 0.5 * (edges[1:] + edges[:-1])
    bottom.fill_between(
        edges,
        np.append(1 - band, np.nan),
        np.append(1 + band, np.nan),
        step="post",
        color="grey",
        alpha=0.4,
        label="MC stat.",
    )
    bottom.errorbar(centers, ratio, yerr=error, fmt="o", color="black", markersize=3)
    bottom.axhline(1.0, color="black", lw=0.8)
    bottom.set_ylim(0.5, 1.5)
    bottom.set_ylabel("Data / MC")
    bottom.set_xlabel(xlabel)
    _save(fig, path)
    p_value = float(stats.chi2.sf(chi2, ndf)) if ndf else math.nan
    return {
        "chi2": chi2,
        "ndf": ndf,
        "p_value": p_value,
        "data": float(counts.sum()),
        "mc": float(mc.sum()),
    }


def plot_fit_quality(
    pulls: Histogram, chi2: Histogram, datasets: Sequence[str], path: Path
) -> dict[str, dict[str, float]]:
    """Pull distributions of the fitted (E, theta, phi) and the chi2 p-value distribution."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    summary: dict[str, dict[str, float]] = {}
    centers = pulls.axes["pull"].centers
    for ax, quantity in zip(axes[:3], ("E", "theta", "phi")):
        for dataset in datasets:
            values = pulls[{"dataset": dataset, "quantity": quantity}].values()
            if values.sum() <= 0:
                continue
            mean = float(np.average(centers, weights=values))
            width = float(np.sqrt(np.average((centers - mean) ** 2, weights=values)))
            summary[f"{dataset}:{quantity}"] = {"mean": mean, "width": width}
            mplhep.histplot(
                values / values.sum(),
                pulls.axes["pull"].edges,
                ax=ax,
                label=f"{dataset} ({mean:+.2f}, {width:.2f})",
            )
        ax.plot(
            centers,
            stats.norm.pdf(centers) * np.diff(pulls.axes["pull"].edges),
            "k--",
            lw=0.8,
            label="N(0,1)",
        )
        ax.set_xlabel(f"pull {quantity}")
        ax.legend(fontsize=6)
    for dataset in datasets:
        values = chi2[{"dataset": dataset}].project("pvalue").values()
        if values.sum() > 0:
            mplhep.histplot(
                values / values.sum(), chi2.axes["pvalue"].edges, ax=axes[3], label=dataset
            )
    axes[3].set_xlabel(r"$\chi^2$ p-value")
    axes[3].legend(fontsize=6)
    _save(fig, path)
    return summary


def _central_width(values: np.ndarray, edges: np.ndarray) -> float:
    total = values.sum()
    if total <= 0:
        return math.nan
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total
    lo, hi = np.interp([0.158655, 0.841345], cumulative, edges)
    return float(0.5 * (hi - lo))


def plot_mass_resolution(resolution: Histogram, path: Path) -> list[dict[str, float]]:
    """Central-68% width of M_gg for truth-matched signal, before and after the kinematic fit."""
    edges = resolution.axes["residual"].edges
    rows = []
    for dataset in resolution.axes["dataset"]:
        mass = signal_mass(dataset)
        if mass is None:
            continue
        raw = _central_width(resolution[{"dataset": dataset, "kind": "raw"}].values(), edges) * mass
        fit = _central_width(resolution[{"dataset": dataset, "kind": "fit"}].values(), edges) * mass
        rows.append(
            {"mass_GeV": mass, "sigma_raw_MeV": raw * 1000.0, "sigma_fit_MeV": fit * 1000.0}
        )
    rows.sort(key=lambda r: r["mass_GeV"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    m = [r["mass_GeV"] for r in rows]
    ax.plot(m, [r["sigma_raw_MeV"] for r in rows], "o-", label="before the kinematic fit")
    ax.plot(m, [r["sigma_fit_MeV"] for r in rows], "s-", label="after the kinematic fit")
    ax.set_xlabel(r"$m_a$ [GeV]")
    ax.set_ylabel(r"$\sigma(M_{\gamma\gamma})$ [MeV] (central 68%/2)")
    ax.legend()
    _save(fig, path)
    return rows


def plot_resolution_bins(bins: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Measured data and MC resolution per energy bin and region, against the physics.md form."""
    quantities = sorted({b["quantity"] for b in bins}, key=["energy", "theta", "phi"].index)
    fig, axes = plt.subplots(len(quantities), 3, figsize=(13, 3.2 * len(quantities)), squeeze=False)
    for row, quantity in enumerate(quantities):
        for col, region in enumerate((1, 2, 3)):
            ax = axes[row][col]
            chosen = [b for b in bins if b["quantity"] == quantity and b["region"] == region]
            x = np.array([0.5 * (b["energy_lo"] + b["energy_hi"]) for b in chosen])
            for sample, marker in (("data", "o"), ("mc", "s")):
                y = np.array([b[sample]["resolution"] for b in chosen])
                e = np.array([b[sample]["resolution_err"] for b in chosen])
                ax.errorbar(x, y, yerr=e, fmt=marker, label=sample, markersize=4)
            ax.plot(x, [b["model"] for b in chosen], "k:", label="physics.md form")
            ax.set_title(f"{quantity}, region {region}", fontsize=9)
            ax.set_xlabel(r"$E_\gamma$ [GeV]")
            ax.set_ylabel(
                r"$\sigma_E/E$" if quantity == "energy" else rf"$\sigma_\{quantity}$ [rad]"
            )
            ax.legend(fontsize=7)
    _save(fig, path)


def plot_trigger(turnon: Histogram, fits: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Measured trg_esum efficiency (reference trg_ncl) with the fitted turn-on, data and MC."""
    from scipy.special import ndtr

    edges = turnon.axes["esum"].edges
    centers = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for entry in fits:
        names = (
            ["data"]
            if entry["sample"] == "data"
            else [d for d in turnon.axes["dataset"] if d != "data"]
        )
        sub = turnon[{"period": entry["period"]}]
        fired = sum(sub[{"dataset": d, "fired": True}].values() for d in names)
        total = fired + sum(sub[{"dataset": d, "fired": False}].values() for d in names)
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(total > 0, fired / total, np.nan)
        use = centers < 3.0
        ax.plot(
            centers[use], eff[use], "o", markersize=3, label=f"{entry['sample']} {entry['period']}"
        )
        x = np.linspace(0, 3, 300)
        ax.plot(x, entry["eps_max"] * ndtr((x - entry["mu"]) / entry["width"]), "-",
                label=rf"fit: $\mu$={entry['mu']:.3f}, w={entry['width']:.3f} GeV")  # fmt: skip
    ax.set_xlabel(r"$\sum E_{cluster}$ [GeV]")
    ax.set_ylabel("trg_esum efficiency (ref. trg_ncl)")
    ax.legend(fontsize=7)
    _save(fig, path)
