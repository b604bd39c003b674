"""The mass hypotheses of the scan: a step that follows the mass resolution.

A narrow peak between two scan masses is seen by neither when the step is large against its
width: with a Gaussian peak of width sigma_m tested at a distance d, the expected local
significance falls as exp(-d^2 / (4 sigma_m^2)) for a fit whose signal template sits at the
wrong place (the template overlap of two Gaussians). A step of sigma_m / 2 keeps the worst loss
(d = sigma_m / 4) below 2% of Z; the issue-18 scan at 0.05 GeV = 2.5-4 sigma_m lost up to 60%.
The look-elsewhere correction (Gross & Vitells, arXiv:1005.1891) needs the same sampling: it
counts the upcrossings of q0(m), whose correlation length is about sigma_m, and a coarse scan
misses them.

:func:`resolution_grid` places the masses at equal steps of u(m) = int dm / sigma_m(m), a step of
at most ``step_sigma`` in u, separately on each stretch of the scan range between the excluded
meson regions (both ends of a stretch are scan masses), so no mass lies inside a veto.
:func:`scan_masses` is what the limits stage runs: ``limits.masses`` when the configuration
gives it, else the resolution grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from alps.config import AnalysisConfig
from limits.mass_model import excluded_regions

__all__ = ["resolution_grid", "scan_masses", "scan_segments"]

FloatArray = npt.NDArray[np.float64]

#: scan masses are rounded to 10 keV (far below any step)
_DECIMALS = 5


def scan_segments(
    scan_range: tuple[float, float], excluded: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The stretches of ``scan_range`` (GeV) outside the ``excluded`` intervals, in order."""
    lo, hi = scan_range
    cuts = sorted((max(a, lo), min(b, hi)) for a, b in excluded if b > lo and a < hi)
    out, start = [], lo
    for a, b in cuts:
        if a > start:
            out.append((start, a))
        start = max(start, b)
    if hi > start:
        out.append((start, hi))
    return out


def resolution_grid(
    sigma_m: Callable[[FloatArray], FloatArray],
    scan_range: tuple[float, float],
    step_sigma: float,
    excluded: Sequence[tuple[float, float]] = (),
) -> FloatArray:
    """Masses (GeV) at equal steps of at most ``step_sigma`` in u(m) = int dm / sigma_m(m) on
    each stretch of ``scan_range`` outside ``excluded`` (module docstring).

    >>> m = resolution_grid(lambda m: 0.01 + 0 * m, (1.0, 1.1), 0.5)
    >>> len(m), round(float(m[1] - m[0]), 5)
    (22, 0.00476)
    """
    if step_sigma <= 0:
        raise ValueError(f"step_sigma must be positive, got {step_sigma}")
    out: list[FloatArray] = []
    for lo, hi in scan_segments(scan_range, excluded):
        fine = np.linspace(lo, hi, 20001)
        inv = 1.0 / np.asarray(sigma_m(fine), dtype=np.float64)
        if not np.all(np.isfinite(inv) & (inv > 0)):
            raise ValueError(f"the mass resolution is not positive on [{lo}, {hi}] GeV")
        u = np.concatenate([[0.0], np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(fine))])
        # 1% margin: the step stays below step_sigma x sigma_m at both of its ends
        n_steps = max(int(np.ceil(u[-1] / (0.99 * step_sigma))), 1)
        pts = np.round(np.interp(np.linspace(0.0, u[-1], n_steps + 1), u, fine), _DECIMALS)
        # the ends are rounded inwards, so that they stay outside the excluded regions
        scale = 10.0**_DECIMALS
        pts[0] = np.ceil(lo * scale - 1e-6) / scale
        pts[-1] = np.floor(hi * scale + 1e-6) / scale
        out.append(pts)
    if not out:
        return np.zeros(0)
    return np.unique(np.concatenate(out))


def scan_masses(config: AnalysisConfig) -> FloatArray:
    """The scan masses of the limits stage (GeV): ``limits.masses`` when set, else the
    resolution grid of ``limits.mass_step_sigma`` over ``limits.scan_range_GeV`` outside the
    excluded meson regions."""
    lcfg = config.limits
    if lcfg.masses is not None:
        return lcfg.masses.masses()
    return resolution_grid(
        config.histograms.resolution.sigma,
        lcfg.scan_range_GeV,
        lcfg.mass_step_sigma,
        excluded_regions(config),
    )
