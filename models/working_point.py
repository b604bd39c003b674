"""Working point: scan the score cut, σ_min per mass, and the cut snapped to the score binning.

For every cut t of a scan the selection is ``score >= t``; the efficiency and background inside
each mass window give σ_min(t) per mass (:func:`models.punzi.sigma_min`), and the working point is
the cut with the smallest mean σ_min over the trained masses (held-out masses are the test of
generalisation and do not choose the cut).

Snapping: the analysis histograms are binned in score (``HistogramConfig.score_edges``) and the
limits stage can only select whole bins, i.e. ``score >= edge`` for an edge of that binning. The
chosen cut is therefore the best *edge* (the top edge, which would keep nothing, excluded); the
unconstrained optimum of the fine scan is reported beside it, so the cost of the binning is
visible. A working point fixed in the configuration is snapped to the nearest edge.

Plateau: a Punzi-trained net pushes almost every score to 0 or 1 (the soft cut inside its loss
rewards saturated outputs), so the curve is flat over the middle edges and the bare argmin is
decided by differences far below the statistical error (on the 2018 default sample the edges
0.3-0.9 lie within 0.05% of each other). Edges within ``tolerance`` (relative) of the best form
the plateau, and the *tightest* of them is chosen: it selects the same signal, and the purest
background, and the choice no longer flips between samples on noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .punzi import sigma_min
from .windows import WindowTable

__all__ = [
    "CutScan",
    "WorkingPoint",
    "bootstrap_difference",
    "choose_working_point",
    "scan_cuts",
    "scan_sigma_min",
]


@dataclass(frozen=True)
class CutScan:
    """σ_min (pb), efficiency and background (events) per cut (rows) and mass (columns)."""

    cuts: np.ndarray
    efficiency: np.ndarray
    background: np.ndarray
    sigma: np.ndarray

    def mean_sigma(self, mask: np.ndarray | None = None, metric: str = "mean") -> np.ndarray:
        """Mean σ_min over the masses in ``mask`` (all when None), one value per cut.

        ``metric="log"`` gives the geometric mean instead (every mass's relative change counts
        the same); an infinite σ_min (no signal left) makes either infinite.
        """
        sel = self.sigma if mask is None else self.sigma[:, np.asarray(mask, dtype=bool)]
        if metric == "mean":
            return np.asarray(sel.mean(axis=1))
        if metric == "log":
            with np.errstate(divide="ignore"):
                return np.asarray(np.exp(np.log(sel).mean(axis=1)))
        raise ValueError(f"metric {metric!r}; use 'mean' or 'log'")

    def at(self, cut: float) -> int:
        """Index of ``cut`` in the scan (it must be one of the scanned cuts)."""
        i = int(np.argmin(np.abs(self.cuts - cut)))
        if not np.isclose(self.cuts[i], cut, rtol=0, atol=1e-12):
            raise ValueError(f"cut {cut} was not scanned")
        return i


@dataclass(frozen=True)
class WorkingPoint:
    """The chosen cut ``score >= cut`` (a score-bin edge) and the unconstrained optimum."""

    cut: float
    edge_index: int
    mean_sigma_min_pb: float
    best_cut: float
    best_mean_sigma_min_pb: float
    fixed_by_config: bool
    plateau: tuple[float, ...] = ()


def scan_cuts(
    signal_scores: np.ndarray, extra: Sequence[float] = (), n_uniform: int = 200
) -> np.ndarray:
    """Cuts to scan: a uniform grid on [0, 1), quantiles of the signal scores, and ``extra``."""
    grid = [np.linspace(0.0, 1.0, n_uniform + 1)[:-1], np.asarray(extra, dtype=np.float64)]
    if len(signal_scores):
        grid.append(np.quantile(signal_scores, np.linspace(0.005, 0.995, 199)))
    return np.unique(np.concatenate(grid))


def scan_sigma_min(
    table: WindowTable,
    scores: np.ndarray,
    luminosity_pb: float,
    cuts: np.ndarray,
    a: float = 5.0,
    b: float = 1.28,
) -> CutScan:
    """σ_min per cut and mass for ``score >= cut`` (``scores`` one per candidate of ``table``)."""
    cuts = np.unique(np.asarray(cuts, dtype=np.float64))
    eff, bkg = table.scan(scores, cuts)
    return CutScan(cuts, eff, bkg, sigma_min(eff, bkg, luminosity_pb, a, b))


def choose_working_point(
    scan: CutScan,
    score_edges: Sequence[float],
    mask: np.ndarray | None = None,
    fixed: float | None = None,
    metric: str = "mean",
    tolerance: float = 0.0,
) -> WorkingPoint:
    """Best score-bin edge for the mean σ_min over ``mask`` (or the edge nearest ``fixed``).

    ``metric``: the arithmetic (``"mean"``) or geometric (``"log"``) mean over the masses. Every
    edge except the last must be among the scanned cuts (:func:`scan_cuts` ``extra``).
    ``tolerance``: edges whose mean σ_min is within this relative distance of the best edge's
    form the plateau, and the tightest of them is chosen (module docstring); 0 gives the argmin.

    >>> scan = CutScan(np.array([0.0, 0.5, 0.9]), np.ones((3, 1)), np.ones((3, 1)),
    ...                np.array([[2.0], [1.000], [1.002]]))
    >>> choose_working_point(scan, [0.0, 0.5, 0.9, 1.0]).cut
    0.5
    >>> wp = choose_working_point(scan, [0.0, 0.5, 0.9, 1.0], tolerance=0.005)
    >>> wp.cut, wp.plateau
    (0.9, (0.5, 0.9))
    """
    if tolerance < 0:
        raise ValueError(f"tolerance {tolerance} must be >= 0")
    edges = np.asarray(score_edges, dtype=np.float64)[:-1]
    mean = scan.mean_sigma(mask, metric)
    rows = np.array([scan.at(e) for e in edges])
    at_edges = mean[rows]
    k_best = int(np.argmin(at_edges))
    on_plateau = np.flatnonzero(at_edges <= at_edges[k_best] * (1 + tolerance))
    if fixed is not None:
        k = int(np.argmin(np.abs(edges - fixed)))
    elif tolerance == 0:
        k = k_best  # the bare argmin: the loosest of exactly tied edges, as before the plateau rule
    else:
        k = int(on_plateau.max())
    best = int(np.argmin(mean))
    return WorkingPoint(
        cut=float(edges[k]),
        edge_index=k,
        mean_sigma_min_pb=float(mean[rows[k]]),
        best_cut=float(scan.cuts[best]),
        best_mean_sigma_min_pb=float(mean[best]),
        fixed_by_config=fixed is not None,
        plateau=tuple(float(e) for e in edges[on_plateau]),
    )


def bootstrap_difference(
    table: WindowTable,
    passed_a: np.ndarray,
    passed_b: np.ndarray,
    luminosity_pb: float,
    mask: np.ndarray | None = None,
    *,
    replicas: int = 200,
    seed: int = 0,
    a: float = 5.0,
    b: float = 1.28,
) -> tuple[float, float]:
    """Mean-σ_min difference of two fixed selections (A − B, pb) and its bootstrap std.

    Both selections are evaluated on the same Poisson(1)-resampled candidates in each replica
    (Efron's bootstrap with Poisson weights), so the spread is the statistical uncertainty of the
    *difference* given the finite validation sample. Replicas in which a mass loses all its
    signal (infinite σ_min) are left out of the spread.
    """
    rng = np.random.default_rng(seed)
    pa = np.asarray(passed_a, dtype=np.float64)
    pb = np.asarray(passed_b, dtype=np.float64)
    sel = slice(None) if mask is None else np.asarray(mask, dtype=bool)

    def diff(w: np.ndarray | float) -> float:
        ea, ba = table.yields(pa * w)
        eb, bb = table.yields(pb * w)
        sa = np.mean(sigma_min(ea, ba, luminosity_pb, a, b)[sel])
        sb = np.mean(sigma_min(eb, bb, luminosity_pb, a, b)[sel])
        return float(sa - sb) if np.isfinite(sa) and np.isfinite(sb) else float("nan")

    central = diff(1.0)
    draws = np.array([diff(rng.poisson(1.0, len(pa))) for _ in range(replicas)])
    finite = draws[np.isfinite(draws)]
    return central, float(np.std(finite)) if len(finite) > 1 else float("nan")
