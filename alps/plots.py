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
    "FEATURE_LABELS",
    "chi2_ndf",
    "experiment_label",
    "plot_chi2_pvalues",
    "plot_data_mc",
    "plot_fit_quality",
    "plot_mass_resolution",
    "plot_resolution_bins",
    "plot_trigger",
    "resolution_widths",
]

#: plot label per process, from the simulation's process registry
BACKGROUND_LABELS = process_labels()

#: axis label (with its unit) of every monitored feature (processors/features.py defines them;
#: energies and u, t in the e+e- rest frame)
FEATURE_LABELS = {
    "E_high": r"$E_{\gamma}^{\mathrm{high}}$ (CMS) [GeV]",
    "E_mid": r"$E_{\gamma}^{\mathrm{mid}}$ (CMS) [GeV]",
    "E_low": r"$E_{\gamma}^{\mathrm{low}}$ (CMS) [GeV]",
    "u_high": r"$u_{\mathrm{high}} = E^2(1+\cos\theta^*)/2$ [GeV$^2$]",
    "t_high": r"$t_{\mathrm{high}} = E^2(1-\cos\theta^*)/2$ [GeV$^2$]",
    "theta_recoil": r"$\theta$ of the recoil photon (lab) [rad]",
    "E_recoil": r"$E$ of the recoil photon (CMS) [GeV]",
    "chi2": r"kinematic-fit $\chi^2$ (4 dof) [dimensionless]",
    "sphericity": "sphericity [dimensionless]",
    "fw_r2": r"Fox-Wolfram $R_2$ [dimensionless]",
    "thrust": "thrust [dimensionless]",
    "cleo_cone0": "CLEO cone 0 (momentum fraction, thrust axis) [dimensionless]",
    "cos_helicity": r"$|\cos\theta_{\mathrm{hel}}|$ [dimensionless]",
    "E_extra": r"extra cluster energy [GeV]",
}

#: the experiment label of every figure (the pseudo-data are simulated: mplhep ``exp_label``)
EXPERIMENT, STATUS = "Belle II", "Simulation (ALP search demo)"


def experiment_label(ax: Any, lumi_fb: float | None = None, *, narrow: bool = False) -> None:
    """Write "Belle II Simulation (ALP search demo)" and the integrated luminosity on ``ax``
    (``narrow``: a panel of a row, where only the luminosity fits on the right)."""
    energy = "" if narrow else r" ($\sqrt{s}$ = 10.58 GeV)"
    rlabel = (
        rf"{lumi_fb:.3g} fb$^{{-1}}$" + energy
        if lumi_fb is not None
        else ("" if narrow else r"$\sqrt{s}$ = 10.58 GeV")
    )
    if narrow:
        mplhep.label.exp_label(
            exp=EXPERIMENT, llabel="Simulation", rlabel=rlabel, ax=ax, fontsize=8
        )
        return
    mplhep.label.exp_label(exp=EXPERIMENT, llabel=STATUS, rlabel=rlabel, ax=ax, fontsize=9)


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
    """Write the figure as PNG (``path``) and as PDF beside it (vector output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    return path


def _mask(edges: np.ndarray, regions: Sequence[tuple[float, float]]) -> np.ndarray:
    """Bins that overlap any of ``regions`` (the blinded signal windows)."""
    hidden = np.zeros(len(edges) - 1, dtype=bool)
    for lo, hi in regions:
        hidden |= (edges[1:] > lo) & (edges[:-1] < hi)
    return hidden


def plot_data_mc(
    data: Histogram,
    backgrounds: Mapping[str, Histogram],
    path: Path,
    *,
    xlabel: str,
    title: str = "",
    rebin: int = 1,
    signal: tuple[str, Histogram] | None = None,
    per: str | None = None,
    logy: bool = True,
    blind: Sequence[tuple[float, float]] = (),
    lumi_fb: float | None = None,
) -> dict[str, float]:
    """Stacked MC backgrounds against data, with a data/MC ratio panel; returns chi2, ndf.

    ``per``: the unit of the x axis; when given, counts are divided by the bin width and the y
    axis reads "Events / <per>" (for variable bins, e.g. M_gg in GeV). ``logy``: a log y axis so
    that small backgrounds stay visible. ``blind``: x ranges whose data are hidden (drawn as a
    grey band) and left out of the chi2 and the sums.
    """
    if rebin > 1:
        data = data[:: hist.rebin(rebin)]
        backgrounds = {k: v[:: hist.rebin(rebin)] for k, v in backgrounds.items()}
        if signal is not None:
            signal = (signal[0], signal[1][:: hist.rebin(rebin)])
    names = sorted(backgrounds, key=lambda k: backgrounds[k].sum().value)
    edges = data.axes[0].edges
    hidden = _mask(edges, blind)
    counts = np.where(hidden, 0.0, data.values())
    mc_all = _stack([backgrounds[k].values() for k in names], counts)
    mc = np.where(hidden, 0.0, mc_all)
    mc_var = np.where(hidden, 0.0, _stack([backgrounds[k].variances() for k in names], counts))
    chi2, ndf = chi2_ndf(counts, mc, mc_var)
    scale = 1.0 / np.diff(edges) if per else np.ones(len(edges) - 1)
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(6.4, 5.6), gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    mplhep.histplot([backgrounds[k].values() * scale for k in names], edges, ax=top, stack=True,
                    histtype="fill", label=[BACKGROUND_LABELS.get(k, k) for k in names])  # fmt: skip
    shown = np.where(hidden, np.nan, counts * scale)
    mplhep.histplot(
        shown,
        edges,
        ax=top,
        histtype="errorbar",
        yerr=np.where(hidden, np.nan, np.sqrt(counts) * scale),
        color="black",
        label="Pseudo-data",
    )
    if signal is not None:
        mplhep.histplot(
            signal[1].values() * scale, edges, ax=top, histtype="step", color="red",
            label=signal[0],
        )  # fmt: skip
    for axis in (top, bottom):
        for lo, hi in blind:
            axis.axvspan(max(lo, edges[0]), min(hi, edges[-1]), color="0.8", alpha=0.6, lw=0)
    if blind:
        top.plot([], [], "s", color="0.8", label="blinded (data hidden)")
    top.set_ylabel(f"Events / {per}" if per else "Events / bin")
    if logy:
        positive = (mc_all * scale)[mc_all > 0]
        top.set_yscale("log")
        if positive.size:
            top.set_ylim(max(positive.min() * 0.3, 1e-3), positive.max() * 50)
    top.set_title(title + (f"  ($\\chi^2$/ndf = {chi2:.1f}/{ndf})" if ndf else ""), fontsize=9,
                  loc="left", pad=18)  # fmt: skip
    experiment_label(top, lumi_fb)
    top.legend(fontsize=7, ncol=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((mc > 0) & ~hidden, counts / mc, np.nan)
        error = np.where((mc > 0) & ~hidden, np.sqrt(counts) / mc, np.nan)
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


def _normalised(values: np.ndarray) -> np.ndarray:
    total = values.sum()
    return values / total if total > 0 else values


def plot_fit_quality(
    pulls: Histogram,
    groups: Mapping[str, Sequence[str]],
    path: Path,
    *,
    lumi_fb: float | None = None,
) -> dict[str, dict[str, float]]:
    """Pull distributions of the fitted (E, theta, phi): each group of datasets summed (e.g. the
    data against the summed MC, signal apart), unit area, against N(0, 1); returns mean, width."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    summary: dict[str, dict[str, float]] = {}
    edges = pulls.axes["pull"].edges
    centers = pulls.axes["pull"].centers
    present = set(pulls.axes["dataset"])
    styles = {"data": {"histtype": "errorbar", "color": "black"}}
    for ax, quantity in zip(axes, ("E", "theta", "phi")):
        for group, datasets in groups.items():
            names = [d for d in datasets if d in present]
            if not names:
                continue
            values = sum(pulls[{"dataset": d, "quantity": quantity}].values() for d in names)
            if values.sum() <= 0:
                continue
            mean = float(np.average(centers, weights=values))
            width = float(np.sqrt(np.average((centers - mean) ** 2, weights=values)))
            summary[f"{group}:{quantity}"] = {"mean": mean, "width": width}
            style = styles.get(group, {"histtype": "step"})
            mplhep.histplot(_normalised(values) / np.diff(edges), edges, ax=ax,
                            label=f"{group} ({mean:+.2f}, {width:.2f})", **style)  # fmt: skip
        ax.plot(centers, stats.norm.pdf(centers), "k--", lw=0.8, label="N(0,1)")
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 1.0)
        ax.set_xlabel(f"pull of {quantity} [dimensionless]")
        ax.set_ylabel("fraction / unit pull")
        ax.legend(fontsize=6, title="(mean, RMS)", title_fontsize=6)
        experiment_label(ax, lumi_fb, narrow=True)
    _save(fig, path)
    return summary


def plot_chi2_pvalues(
    chi2: Histogram,
    groups: Mapping[str, Sequence[str]],
    path: Path,
    *,
    lumi_fb: float | None = None,
) -> None:
    """Distribution of the kinematic-fit p-value (chi2 with 4 dof) per group of datasets, unit
    area: flat for a calibrated covariance; a peak at 0 means underestimated errors or tails."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    edges = chi2.axes["pvalue"].edges
    present = set(chi2.axes["dataset"])
    for group, datasets in groups.items():
        names = [d for d in datasets if d in present]
        if not names:
            continue
        values = sum(chi2[{"dataset": d}].project("pvalue").values() for d in names)
        if values.sum() > 0:
            style = {"histtype": "errorbar", "color": "black"} if group == "data" else {}
            mplhep.histplot(_normalised(values) / np.diff(edges), edges, ax=ax, label=group,
                            **style)  # fmt: skip
    ax.axhline(1.0, color="0.4", ls="--", lw=0.8, label=r"calibrated ($\chi^2_4$)")
    ax.set_yscale("log")
    ax.set_xlabel(r"kinematic-fit $\chi^2$ p-value (4 dof) [dimensionless]")
    ax.set_ylabel("fraction / unit p-value")
    ax.legend(fontsize=7)
    experiment_label(ax, lumi_fb)
    _save(fig, path)


def _central_width(values: np.ndarray, edges: np.ndarray) -> float:
    total = values.sum()
    if total <= 0:
        return math.nan
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total
    lo, hi = np.interp([0.158655, 0.841345], cumulative, edges)
    return float(0.5 * (hi - lo))


def resolution_widths(resolution: Histogram) -> list[dict[str, float]]:
    """Per simulated mass (sorted): half the central 68% of M_gg for truth-matched signal before
    (``sigma_raw_MeV``) and after (``sigma_fit_MeV``) the kinematic fit, from the
    ``mass_resolution`` histogram (residual M_gg / m_a - 1, times m_a)."""
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
    return sorted(rows, key=lambda r: r["mass_GeV"])


def plot_mass_resolution(resolution: Histogram, path: Path) -> list[dict[str, float]]:
    """Central-68% width of M_gg for truth-matched signal, before and after the kinematic fit."""
    rows = resolution_widths(resolution)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    m = [r["mass_GeV"] for r in rows]
    ax.plot(m, [r["sigma_raw_MeV"] for r in rows], "o-", label="before the kinematic fit")
    ax.plot(m, [r["sigma_fit_MeV"] for r in rows], "s-", label="after the kinematic fit")
    ax.set_xlabel(r"$m_a$ [GeV]")
    ax.set_ylabel(r"$\sigma(M_{\gamma\gamma})$ [MeV] (central 68%/2)")
    ax.legend()
    experiment_label(ax)
    _save(fig, path)
    return rows


def plot_resolution_bins(bins: Sequence[Mapping[str, Any]], path: Path) -> dict[str, int]:
    """Measured data and MC resolution per energy bin and region, against the physics.md form.

    Bins whose fit failed (non-finite value or error) are left out; bins the combination did not
    use (``used`` false) are drawn hollow, and the y range follows the used bins and the model so
    that a wild unused point cannot flatten the panel. Returns how many points were left out
    (``failed``) and how many fell outside the drawn range (``clipped``)."""
    quantities = sorted({b["quantity"] for b in bins}, key=["energy", "theta", "phi"].index)
    fig, axes = plt.subplots(len(quantities), 3, figsize=(13, 3.2 * len(quantities)), squeeze=False)
    counts = {"failed": 0, "clipped": 0}
    for row, quantity in enumerate(quantities):
        for col, region in enumerate((1, 2, 3)):
            ax = axes[row][col]
            chosen = [b for b in bins if b["quantity"] == quantity and b["region"] == region]
            x = np.array([0.5 * (b["energy_lo"] + b["energy_hi"]) for b in chosen])
            used = np.array([bool(b.get("used", True)) for b in chosen], dtype=bool)
            model = np.array([b["model"] for b in chosen], dtype=np.float64)
            shown: list[np.ndarray] = [model[np.isfinite(model)]]
            drawn: list[np.ndarray] = []
            for sample, marker, colour in (("data", "o", "black"), ("mc", "s", "tab:orange")):
                y = np.array([b[sample]["resolution"] for b in chosen], dtype=np.float64)
                e = np.array([b[sample]["resolution_err"] for b in chosen], dtype=np.float64)
                ok = np.isfinite(y) & np.isfinite(e) & (e >= 0) & (y > 0)
                counts["failed"] += int((~ok).sum())
                for subset, face, suffix in (
                    (ok & used, None, ""),
                    (ok & ~used, "none", " (not used)"),
                ):
                    if subset.any():
                        ax.errorbar(x[subset], y[subset], yerr=e[subset], fmt=marker, markersize=4,
                                    mfc=face, color=colour, label=sample + suffix)  # fmt: skip
                shown.append(y[ok & used])
                drawn.append(y[ok])
            ax.plot(x, model, "k:", label="physics.md form")
            reference = np.concatenate(shown)
            if reference.size:
                lo, hi = float(reference.min()), float(reference.max())
                ax.set_ylim(
                    max(0.0, lo - 0.3 * (hi - lo) - 0.1 * hi), hi + 0.3 * (hi - lo) + 0.1 * hi
                )
                low, high = ax.get_ylim()
                every = np.concatenate(drawn) if drawn else np.array([])
                counts["clipped"] += int(((every < low) | (every > high)).sum())
            ax.set_title(f"{quantity}, region {region}", fontsize=9, loc="right")
            ax.set_xlabel(r"$E_\gamma$ [GeV]")
            ax.set_ylabel(
                r"$\sigma_E/E$ [fraction]"
                if quantity == "energy"
                else rf"$\sigma_\{quantity}$ [rad]"
            )
            ax.legend(fontsize=7)
    experiment_label(axes[0][0], narrow=True)
    _save(fig, path)
    return counts


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
    ax.set_ylabel("trg_esum efficiency (ref. trg_ncl) [fraction]")
    ax.legend(fontsize=7)
    experiment_label(ax)
    _save(fig, path)
