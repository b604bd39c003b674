"""Calibration of the kinematic fit's chi2, from the ``kinfit_chi2`` histogram the processor fills.

The fit of three photons to the beam four-momentum has four constraints and no unknowns, so a
calibrated photon covariance gives chi2 distributed as chi2 with 4 degrees of freedom (physics.md,
"Kinematic fit"): median 3.357, and 1% of the events with p < 0.01 (chi2 > 13.28). The median and
the tail fraction are read from the chi2 axis (0.5-wide bins up to 30, overflow counted): the
median by linear interpolation of the cumulative distribution, the tail by counting the bins above
13.28 and the bin that contains it in proportion to the part of it above (so both are exact to
within a fraction of one bin's content).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["CHI2_DOF", "chi2_calibration"]

#: degrees of freedom of the 4C fit (four constraints, no unmeasured quantity)
CHI2_DOF = 4


def _quantities(values: np.ndarray, flow: float, edges: np.ndarray) -> dict[str, float]:
    total = float(values.sum() + flow)
    if total <= 0:
        return {"events": 0.0, "median_chi2": float("nan"), "fraction_p_below_0.01": float("nan")}
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total
    median = float(np.interp(0.5, cumulative, edges)) if cumulative[-1] >= 0.5 else float("inf")
    cut = float(stats.chi2.isf(0.01, CHI2_DOF))
    above = flow + float(values[edges[:-1] >= cut].sum())
    inside = (edges[:-1] < cut) & (edges[1:] > cut)
    if inside.any():
        i = int(np.flatnonzero(inside)[0])
        above += float(values[i]) * (edges[i + 1] - cut) / (edges[i + 1] - edges[i])
    return {"events": total, "median_chi2": median, "fraction_p_below_0.01": above / total}


def chi2_calibration(chi2: Any, groups: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Per group of datasets (summed, weighted): the median chi2 and the fraction with p < 0.01,
    with what chi2(4) expects (3.357 and 0.01). ``chi2``: the ``kinfit_chi2`` histogram (axes
    dataset, chi2, pvalue)."""
    axis = chi2.axes["chi2"]
    edges = np.asarray(axis.edges, dtype=np.float64)
    present = set(chi2.axes["dataset"])
    expected_median = float(stats.chi2.median(CHI2_DOF))
    rows = []
    for group, datasets in groups.items():
        names = [d for d in datasets if d in present]
        if not names:
            continue
        values = np.zeros(len(edges) - 1)
        flow = 0.0
        for name in names:
            projected = chi2[{"dataset": name}].project("chi2")
            values += projected.values()
            flow += float(projected.values(flow=True)[-1])
        row: dict[str, Any] = {"group": group, **_quantities(values, flow, edges)}
        row["expected_median_chi2"] = expected_median
        row["expected_fraction"] = 0.01
        rows.append(row)
    return rows
