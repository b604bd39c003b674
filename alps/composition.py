"""Background composition and data/MC agreement per diphoton-mass range, from the histograms.

The report shows it (and writes it as ``report/composition.json``): for each M_gg range, the
weighted yield of every MC background and its share, the pseudo-data count, and the Pearson
chi2/ndf of data against the summed MC in that range. Pure functions over ``hist.Hist``; the
pseudo-data's extra "nature" components (docs/background_model.md) show up here as a data/MC
difference where they sit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import hist
import numpy as np

from .plots import chi2_ndf

__all__ = ["MASS_RANGES_GEV", "composition"]

#: the ranges of the composition table (GeV): low mass, middle, high mass up to the scan's end
MASS_RANGES_GEV: tuple[tuple[float, float], ...] = ((0.2, 1.0), (1.0, 4.0), (4.0, 9.7))


def _collapse(h: Any) -> Any:
    """The nominal M_gg histogram, summed over run periods and truth categories."""
    select: dict[str, Any] = {}
    for name, value in (("period", sum), ("variation", "nominal"), ("truth", sum)):
        if name in h.axes.name:
            select[name] = value
    return h[select] if select else h


def composition(
    mgg: hist.Hist,
    ranges: Sequence[tuple[float, float]] = MASS_RANGES_GEV,
    rebin: int = 10,
    scale: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Per mass range: MC yield per background (``yields``), its ``share``, ``mc``, ``data``,
    ``data_over_mc`` and ``chi2``/``ndf`` of data against MC over the range's bins (rebinned by
    ``rebin`` as the report's M_gg plot, bins with at least five expected or observed events).

    ``mgg`` has a ``dataset`` axis (``data``, backgrounds, signals ``alp_m*``) and a mass axis;
    ``scale`` multiplies the named backgrounds (e.g. a LO sample's no-emission probability when
    its radiative counterpart is also in the MC).
    """
    scale = scale or {}
    h: Any = _collapse(mgg)
    datasets = list(h.axes["dataset"])
    backgrounds = [d for d in datasets if d != "data" and not d.startswith("alp_m")]
    if rebin > 1:
        h = h[{h.axes[-1].name: hist.rebin(rebin)}]
    centers = h.axes[-1].centers
    out = []
    for lo, hi in ranges:
        inside = (centers >= lo) & (centers < hi)
        mc = np.zeros(int(inside.sum()))
        mc_var = np.zeros_like(mc)
        yields = {}
        for name in backgrounds:
            part: Any = h[{"dataset": name}]
            factor = scale.get(name, 1.0)
            values = factor * part.values()[inside]
            mc += values
            mc_var += factor**2 * part.variances()[inside]
            yields[name] = float(values.sum())
        total = float(mc.sum())
        row: dict[str, Any] = {
            "range_GeV": [lo, hi],
            "yields": yields,
            "share": {k: (v / total if total > 0 else float("nan")) for k, v in yields.items()},
            "mc": total,
        }
        if "data" in datasets:
            data = h[{"dataset": "data"}].values()[inside]
            chi2, ndf = chi2_ndf(data, mc, mc_var)
            row.update(
                data=float(data.sum()),
                data_over_mc=float(data.sum() / total) if total > 0 else float("nan"),
                chi2=chi2,
                ndf=ndf,
            )
        out.append(row)
    return out
