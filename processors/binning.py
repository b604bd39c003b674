"""Histogram binning of the diphoton mass, following the mass resolution (design.md)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from alps.config import HistogramConfig

__all__ = ["mass_edges"]


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
