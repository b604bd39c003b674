"""Histogram binning of the diphoton mass, following the mass resolution (design.md)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from alps.config import HistogramConfig

__all__ = ["flow_index", "mass_edges"]


def mass_edges(config: HistogramConfig) -> npt.NDArray[np.float64]:
    """Bin edges in GeV from ``mass_min`` to ``mass_max``, each bin ``bin_width_sigma`` times
    sigma_m at its lower edge wide, so every bin spans the same fraction of the resolution.

    >>> edges = mass_edges(HistogramConfig())
    >>> bool(np.all(np.diff(edges) > 0) and edges[0] == 0.0)
    True
    """
    edges = [config.mass_min_GeV]
    while edges[-1] < config.mass_max_GeV:
        width = config.bin_width_sigma * float(config.resolution.sigma(edges[-1]))
        edges.append(edges[-1] + max(width, 1e-4))
    edges[-1] = max(edges[-1], config.mass_max_GeV)
    return np.round(np.asarray(edges), 6)


def flow_index(
    edges: npt.ArrayLike, x: npt.ArrayLike, flow: tuple[bool, bool] = (True, True)
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """The bin of each ``x`` in the flow view of a variable axis with ``edges`` and ``flow`` =
    (underflow, overflow), as boost-histogram bins it, and which entries have a bin.

    ``x`` in ``[e_i, e_i+1)`` goes to bin ``i`` (after the underflow); below the first edge to the
    underflow, at or above the last edge and NaN to the overflow; an entry whose flow bin the
    axis lacks has none (``keep`` False, its index is then meaningless).

    >>> index, keep = flow_index([0.0, 1.0, 2.0], [-1.0, 0.0, 1.5, 2.0, np.nan])
    >>> index.tolist(), keep.tolist()
    ([0, 1, 2, 3, 3], [True, True, True, True, True])
    >>> flow_index([0.0, 1.0, 2.0], [-1.0, 0.5, 2.0], (False, False))[1].tolist()
    [False, True, False]
    """
    edges = np.asarray(edges, dtype=np.float64)
    i = np.searchsorted(edges, x, side="right") - 1  # -1: underflow, n: overflow (and NaN)
    n = len(edges) - 1
    keep = np.ones(len(i), dtype=bool)
    if not flow[0]:
        keep &= i >= 0
    if not flow[1]:
        keep &= i < n
    return i + int(flow[0]), keep
