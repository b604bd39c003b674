"""Plots of the limits stage: Brazil bands, local significance, shape parameters and fits.

Figures are made with matplotlib's object-oriented API on the Agg canvas (``Figure`` +
``FigureCanvasAgg``): no pyplot, no global backend or style state is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mplhep
import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from limits.inputs import Spectra
from limits.interpolation import INTERPOLATED, ShapeModel
from limits.shapes import ShapeParameters, signal_bin_fractions

__all__ = [
    "COUPLING_LABEL",
    "XSEC_LABEL",
    "plot_brazil",
    "plot_excess",
    "plot_shape_fits",
    "plot_shape_parameters",
    "plot_significance",
]

FloatArray = npt.NDArray[np.float64]
_LABELS = {
    "offset": "peak offset [GeV]",
    "sigma": r"$\sigma_\mathrm{DSCB}$ [GeV]",
    "beta_left": r"$\beta_\mathrm{left}$ [units of $\sigma$]",
    "beta_right": r"$\beta_\mathrm{right}$ [units of $\sigma$]",
    "frac": "peaking fraction f [fraction]",
    "c1": "Chebyshev $c_1$ [dimensionless]",
    "efficiency": "efficiency [fraction]",
}


#: experiment label of every figure (pseudo-data: a simulation study), mplhep ``exp_label``
EXPERIMENT, STATUS = "Belle II", "Simulation (ALP search demo)"
#: what the cross-section limit constrains (limits/coupling.py): the visible cross-section
XSEC_LABEL = r"$\sigma(e^+e^-\to\gamma a)\times P_\mathrm{decay}$ [pb]"
#: the coupling limit's axis
COUPLING_LABEL = r"$g_{a\gamma\gamma}$ [GeV$^{-1}$]"


def _label(ax: object, lumi_fb: float | None) -> None:
    """Experiment, status and luminosity above the axes (no pyplot state is touched)."""
    rlabel = (
        rf"$\int L\,dt$ = {lumi_fb:.3g} fb$^{{-1}}$"
        if lumi_fb is not None
        else r"$\sqrt{s}$ = 10.58 GeV"
    )
    mplhep.label.exp_label(exp=EXPERIMENT, llabel=STATUS, rlabel=rlabel, ax=ax, fontsize=9)


def _save(fig: Figure, path: str | Path) -> Path:
    """Write the figure as PNG (``path``) and as PDF beside it (vector output)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(target, dpi=110)
    fig.savefig(target.with_suffix(".pdf"))
    return target


def _shade(ax: object, regions: Sequence[tuple[float, float]]) -> None:
    for lo, hi in regions:
        ax.axvspan(lo, hi, color="0.85", lw=0)  # type: ignore[attr-defined]


def plot_brazil(
    masses: Sequence[float],
    observed: Sequence[float | None] | None,
    expected: Sequence[Sequence[float] | None],
    path: str | Path,
    *,
    ylabel: str,
    excluded: Sequence[tuple[float, float]] = (),
    title: str = "",
    overlays: Sequence[tuple[str, Sequence[float], Sequence[float]]] = (),
    lumi_fb: float | None = None,
) -> Path:
    """Observed limit and expected median with +-1 and +-2 sigma bands versus m_a (log y).

    ``observed`` None draws no observed curve (a blinded report); ``overlays`` are
    ``(label, masses, values)`` curves drawn on top (e.g. a published limit); ``excluded``: the
    meson vetoes, shaded."""
    m = np.asarray(masses, dtype=np.float64)
    exp = np.array([[np.nan] * 5 if v is None else v for v in expected], dtype=np.float64)
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    _shade(ax, excluded)
    if excluded:
        ax.fill_between([], [], color="0.85", lw=0, label="meson vetoes")
    ax.fill_between(m, exp[:, 0], exp[:, 4], color="#FFDF33", lw=0, label=r"expected $\pm 2\sigma$")
    ax.fill_between(m, exp[:, 1], exp[:, 3], color="#33CC33", lw=0, label=r"expected $\pm 1\sigma$")
    ax.plot(m, exp[:, 2], "k--", lw=1, label="expected median")
    if observed is not None:
        obs = np.array([np.nan if v is None else v for v in observed], dtype=np.float64)
        ax.plot(m, obs, "k-", lw=1.3, label="observed")
    for (label, x, y), colour in zip(overlays, ("tab:red", "tab:blue", "tab:purple")):
        ax.plot(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), "-", lw=1.5,
                color=colour, label=label)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel(r"$m_a$ [GeV]")
    ax.set_ylabel(ylabel)
    ax.set_title(
        (title or "95% CL upper limits (asymptotic CLs)") + ("" if observed is not None else ", blinded"),
        fontsize=9, loc="left", pad=18,
    )  # fmt: skip
    _label(ax, lumi_fb)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def plot_significance(
    masses: Sequence[float],
    z_local: Sequence[float | None],
    path: str | Path,
    *,
    excluded: Sequence[tuple[float, float]] = (),
    global_z: float | None = None,
) -> Path:
    """Signed local significance versus m_a."""
    m = np.asarray(masses, dtype=np.float64)
    z = np.array([np.nan if v is None else v for v in z_local], dtype=np.float64)
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    _shade(ax, excluded)
    ax.plot(m, z, "k-", lw=1)
    for level in (-2, -1, 1, 2, 3):
        ax.axhline(level, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel(r"$m_a$ [GeV]")
    ax.set_ylabel(r"local significance $Z$ [$\sigma$]")
    if global_z is not None and np.isfinite(z).any():
        i = int(np.nanargmax(z))
        ax.set_title(
            f"largest local {z[i]:.2f}σ at {m[i]:.3f} GeV; global {global_z:.2f}σ",
            fontsize=9, loc="left", pad=18,
        )  # fmt: skip
    _label(ax, None)
    return _save(fig, path)


def plot_shape_parameters(model: ShapeModel, path: str | Path) -> Path:
    """Every interpolated quantity: fitted values with errors, interpolation, held-out masses."""
    fits = [f for f in model.fits if f.ok]
    fig = Figure(figsize=(12, 8))
    axes = fig.subplots(3, 3).ravel()
    grid = np.linspace(min(f.mass for f in model.fits), max(f.mass for f in model.fits), 400)
    for ax, name in zip(axes, INTERPOLATED):
        if name == "efficiency":
            x = [f.mass for f in model.fits]
            y = [f.efficiency for f in model.fits]
            e = [f.efficiency_error for f in model.fits]
        else:
            x = [f.mass for f in fits]
            y = [f.values[name] for f in fits]
            e = [f.errors[name] for f in fits]
        ax.errorbar(x, y, e, fmt=".", ms=3, color="k", lw=0.7, label="fit per mass")
        ax.plot(grid, model.curves[name](grid), "r-", lw=1, label="interpolation")
        held = model.validation.get("held_out", {}).get(name, {}).get("masses_GeV", [])
        if held:
            hy = [y[x.index(h)] for h in held if h in x]
            ax.plot(
                [h for h in held if h in x], hy, "o", mfc="none", color="b", ms=5, label="held out"
            )
        ax.set_xlabel(r"$m_a$ [GeV]")
        ax.set_ylabel(_LABELS[name])
    axes[0].legend(frameon=False, fontsize=7)
    for ax in axes[len(INTERPOLATED) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def plot_shape_fits(
    spectra: Spectra, model: ShapeModel, path: str | Path, n_examples: int = 6
) -> Path:
    """Signal MC after the working point and the fitted N (f DSCB + (1 - f) Cheb) at a few
    masses spread over the range."""
    fits = [f for f in model.fits if f.ok]
    pick = [
        fits[i]
        for i in np.unique(np.linspace(0, len(fits) - 1, min(n_examples, len(fits))).astype(int))
    ]
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3).ravel()
    names = spectra.signal_masses()
    for ax, f in zip(axes, pick):
        values, variances = spectra.get(names[f.mass])
        half = model.window_nsigma * model.sigma_m(f.mass)
        e = spectra.edges
        c = 0.5 * (e[1:] + e[:-1])
        sel = np.abs(c - f.mass) < half
        lo, hi = e[:-1][sel], e[1:][sel]
        p = ShapeParameters(**f.values, n_left=model.tail_n[0], n_right=model.tail_n[1])
        eff_half = model.efficiency_nsigma * p.sigma
        peak, comb = signal_bin_fractions(
            lo,
            hi,
            f.mass,
            p,
            (f.mass - half, f.mass + half),
            (f.mass - eff_half, f.mass + eff_half),
        )
        generated = spectra.generated.get(names[f.mass], 0.0)
        norm = f.efficiency * generated
        ax.errorbar(
            c[sel],
            values[sel],
            np.sqrt(variances[sel]),
            fmt=".",
            color="k",
            ms=3,
            lw=0.7,
            label="signal MC",
        )
        ax.step(c[sel], norm * (peak + comb), where="mid", color="r", lw=1, label="fit")
        ax.step(c[sel], norm * comb, where="mid", color="b", lw=0.8, ls="--", label="combinatorial")
        ax.set_title(f"$m_a$ = {f.mass:.3f} GeV", fontsize=9)
        ax.set_xlabel(r"$M_{\gamma\gamma}$ [GeV]")
        ax.set_ylabel("weighted signal candidates / bin")
    axes[0].legend(frameon=False, fontsize=7)
    for ax in axes[len(pick) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def plot_excess(
    edges: FloatArray,
    data: FloatArray,
    window_bins: Sequence[int],
    fits: tuple[FloatArray, FloatArray],
    mass: float,
    z_local: float,
    path: str | Path,
    *,
    scan_range: tuple[float, float],
    excluded: Sequence[tuple[float, float]] = (),
) -> Path:
    """The post-selection M_gamma_gamma spectrum of the data over the scan range (left) and, in
    the window of the largest local excess, the data with the signal + background and the
    background-only fits (right); ``fits`` are their expected counts per window bin."""
    e = np.asarray(edges, dtype=np.float64)
    width = np.diff(e)
    centre = 0.5 * (e[1:] + e[:-1])
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    inside = (centre > scan_range[0]) & (centre < scan_range[1])
    left.step(centre[inside], (data / width)[inside], where="mid", color="k", lw=0.7)
    _shade(left, excluded)
    left.axvline(mass, color="r", lw=0.8, ls="--", label=f"largest excess, {mass:.3f} GeV")
    left.set_yscale("log")
    left.set_xlabel(r"$M_{\gamma\gamma}$ [GeV]")
    left.set_ylabel("data candidates / GeV")
    left.legend(frameon=False, fontsize=8)
    idx = np.asarray(window_bins, dtype=np.int64)
    c, w = centre[idx], width[idx]
    right.errorbar(
        c, data[idx] / w, np.sqrt(np.maximum(data[idx], 1.0)) / w, fmt=".", color="k", ms=3,
        lw=0.7, label="data",
    )  # fmt: skip
    right.step(c, fits[0] / w, where="mid", color="r", lw=1.2, label="signal + background fit")
    right.step(c, fits[1] / w, where="mid", color="b", lw=1, ls="--", label="background-only fit")
    right.set_xlabel(r"$M_{\gamma\gamma}$ [GeV]")
    right.set_ylabel("candidates / GeV")
    right.set_title(f"$m_a$ = {mass:.3f} GeV: local Z = {z_local:.2f}", fontsize=10)
    right.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
