"""Step 4 of the processor: filling the contract's histograms and the skims' rows from a
:class:`~processors.reconstruction.Reconstruction` (no physics is computed here)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from coffea.analysis_tools import PackedSelection

from alps.contract import (
    CUTFLOW,
    FEATURE_BINNING,
    GENERATED,
    MGG,
    MGG_SCORE,
    SKIM_CANDIDATE_FEATURES,
    SKIM_EVENT_FEATURES,
)

from .binning import flow_index
from .columns import ChunkColumns
from .reading import OutputWriteError
from .reconstruction import CUTS, Reconstruction

__all__ = [
    "ChunkInfo",
    "add_to_bin",
    "add_weighted",
    "fill_cutflow",
    "fill_generated",
    "fill_main",
    "fill_monitoring",
    "per_candidate",
    "skim_rows",
    "write_skims",
    "write_table",
]

FloatArray = npt.NDArray[np.float64]
Histograms = dict[str, Any]


@dataclass(frozen=True)
class ChunkInfo:
    """The dataset facts of a chunk (from ``events.metadata``)."""

    sample: str
    period: str
    is_data: bool
    mc_ma: float
    #: factor on the file's MC weights when files were skipped (processors.bookkeeping)
    weight_scale: float = 1.0

    @classmethod
    def from_metadata(cls, meta: Any) -> ChunkInfo:
        return cls(
            str(meta["sample"]),
            str(meta["period"]),
            bool(meta["is_data"]),
            float(meta.get("mc_ma", 0.0)),
            float(meta.get("weight_scale", {}).get(meta.get("filename"), 1.0)),
        )


def add_to_bin(histogram: Any, weight: FloatArray, **categories: str) -> None:
    """Add sum(w) and sum(w^2) of ``weight`` to the bin of a category-only histogram."""
    histogram.fill(**{k: [v] for k, v in categories.items()}, weight=[0.0])  # grows the axes
    index = tuple(axis.index(categories[axis.name]) for axis in histogram.axes)
    view = histogram.view(flow=False)
    view.value[index] += float(np.sum(weight))
    view.variance[index] += float(np.sum(np.square(weight)))


def add_weighted(
    histogram: Any, categories: dict[str, str], values: FloatArray, weight: FloatArray
) -> None:
    """Fill ``values`` with ``weight`` into the slice ``categories`` of a histogram whose last
    axis is a variable-width axis with flow bins and whose other axes are string categories
    (``hist.fill`` with a single category per axis, without its per-entry overhead).

    Each bin receives its entries' weights (and their squares) summed in the order of the
    entries, as ``hist.fill`` sums them: into an empty slice (one fill per slice and chunk, as
    the processor fills) the result is the same to the last bit. Bins as boost-histogram's
    variable axis (:func:`processors.binning.flow_index`)."""
    axes = histogram.axes
    if any(cat not in list(axes[name]) for name, cat in categories.items()):
        histogram.fill(**{k: [v] for k, v in categories.items()}, **{axes[-1].name: [np.nan]},
                       weight=[0.0])  # fmt: skip  # grows the category axes (adds 0 to overflow)
        axes = histogram.axes
    edges = axes[-1].edges
    bins, _ = flow_index(edges, values)  # both flow bins: every entry has one
    n = len(edges) + 1
    view = histogram.view(flow=True)
    where = tuple(axes[name].index(cat) for name, cat in categories.items())
    order = tuple(axes.name)
    index = tuple(where[order.index(name)] for name in order[:-1])
    view.value[index] += np.bincount(bins, weights=weight, minlength=n)
    view.variance[index] += np.bincount(bins, weights=weight * weight, minlength=n)


def per_candidate(values: np.ndarray) -> np.ndarray:
    """One value per candidate: candidate-level ``(m, 3)`` arrays flattened event by event,
    event-level ``(m,)`` arrays repeated for the three pairings."""
    return values.ravel() if values.ndim == 2 else np.repeat(values, 3)


def fill_generated(hists: Histograms, chunk: ChunkInfo, weight: FloatArray) -> None:
    add_to_bin(hists[GENERATED], weight, dataset=chunk.sample, period=chunk.period)


def fill_cutflow(
    hists: Histograms,
    chunk: ChunkInfo,
    selection: PackedSelection,
    generated: FloatArray,
    corrected: FloatArray,
    pool: npt.NDArray[np.int64],
    trigger: npt.NDArray[np.bool_],
) -> None:
    """Weighted events after each successive cut; events outside the pool fail the second.

    The ``all`` row holds the ``generated`` weights; the rows from the trigger on the
    ``corrected`` ones (times the trigger scale factor, which corrects the efficiency of
    triggered events only), so last row / ``all`` is the selection efficiency.
    """
    where = {"dataset": chunk.sample, "period": chunk.period}
    add_to_bin(hists[CUTFLOW], generated, **where, cut="all")
    add_to_bin(hists[CUTFLOW], corrected[trigger], **where, cut=CUTS[0])
    pooled = corrected[pool]
    for i in range(1, len(CUTS)):
        passed = selection.all(*CUTS[1 : i + 1])
        add_to_bin(hists[CUTFLOW], pooled[passed], **where, cut=CUTS[i])


def fill_main(
    hists: Histograms,
    chunk: ChunkInfo,
    variation: str,
    reco: Reconstruction,
    truth: npt.NDArray[np.bool_],
    weight: FloatArray,
    scores: FloatArray | None,
) -> None:
    """M_gg (and M_gg x score) of the three pairings of each selected event.

    Filled once per truth class with a single category (an array of strings costs a lookup per
    entry); every bin receives the same entries in the same order as in one fill."""
    w = np.repeat(weight, 3)
    where = {"dataset": chunk.sample, "period": chunk.period, "variation": variation}
    mgg = reco.mgg.ravel()
    score = np.clip(scores.ravel(), 0.0, 1.0 - 1e-9) if scores is not None else None
    flags = truth.ravel()
    for label, mask in (("matched", flags), ("unmatched", ~flags)):
        if not mask.any():
            continue
        add_weighted(hists[MGG], {**where, "truth": label}, mgg[mask], w[mask])
        if score is not None:
            hists[MGG_SCORE].fill(
                **where, truth=label, mgg=mgg[mask], score=score[mask], weight=w[mask]
            )


def fill_monitoring(
    hists: Histograms,
    chunk: ChunkInfo,
    reco: Reconstruction,
    weight: FloatArray,
    truth: npt.NDArray[np.bool_],
) -> None:
    """Fit pulls and chi2, the signal mass resolution and the feature distributions."""
    w3 = np.repeat(weight, 3)
    for q, quantity in enumerate(("E", "theta", "phi")):
        hists["kinfit_pull"].fill(
            dataset=chunk.sample, quantity=quantity, pull=reco.pulls[:, :, q].ravel(), weight=w3
        )
    hists["kinfit_chi2"].fill(
        dataset=chunk.sample, chi2=reco.fit_chi2, pvalue=reco.fit_pvalue, weight=weight
    )
    if chunk.mc_ma > 0 and truth.any():
        for kind, key in (("raw", "mgg_raw"), ("fit", "mgg")):
            values = reco.candidate[key].ravel()[truth.ravel()]
            hists["mass_resolution"].fill(
                dataset=chunk.sample,
                kind=kind,
                residual=values / chunk.mc_ma - 1.0,
                weight=w3[truth.ravel()],
            )
    table = reco.table()
    for name in FEATURE_BINNING:
        values = table[name]
        where = {"dataset": chunk.sample, "period": chunk.period}
        if values.ndim == 2:  # candidate-level: one entry per candidate
            hists[f"feature_{name}"].fill(**where, value=values.ravel(), weight=w3 / 3.0)
        else:
            hists[f"feature_{name}"].fill(**where, value=values, weight=weight)


def skim_rows(
    events: ChunkColumns,
    chunk: ChunkInfo,
    reco: Reconstruction,
    weight: FloatArray,
    truth: npt.NDArray[np.bool_],
    scores: FloatArray | None,
) -> dict[str, np.ndarray]:
    """The skim columns (``alps.contract.SKIM_COLUMNS``) of the selected events' candidates."""
    rows = reco.rows
    m = len(rows)
    table = reco.table()
    out: dict[str, np.ndarray] = {
        "dataset": np.full(3 * m, chunk.sample),
        "period": np.full(3 * m, chunk.period),
        "exp": np.repeat(events.get("exp", np.int32)[rows], 3),
        "run": np.repeat(events.get("run", np.int32)[rows], 3),
        "event": np.repeat(events.get("event", np.int64)[rows], 3),
        "pair": np.tile(np.arange(3, dtype=np.int8), m),
        "is_signal": np.full(3 * m, chunk.mc_ma > 0),
        "mc_ma": np.full(3 * m, chunk.mc_ma),
        "truth_matched": truth.ravel(),
        "weight": np.repeat(weight, 3),
    }
    for name in SKIM_EVENT_FEATURES + SKIM_CANDIDATE_FEATURES:
        out[name] = per_candidate(table[name])
    if scores is not None:
        out["score"] = scores.ravel()
    return out


def write_skims(rows: list[dict[str, np.ndarray]], meta: Any, skim_dir: str) -> list[str]:
    """Write a chunk's skim rows to ``<skim_dir>/<sample>/<file>_<entrystart>_<entrystop>.parquet``
    (atomically); returns the paths written. An error raises :class:`OutputWriteError`. Named by
    the input file and entry range, not by the path the work directory was reached by: the same
    chunk gives the same name wherever the work directory lies."""
    if not rows or not len(rows[0]["weight"]):
        return []
    import pyarrow as pa

    table = pa.table({k: np.concatenate([r[k] for r in rows]) for k in rows[0]})
    stem = Path(str(meta["filename"])).stem
    name = f"{stem}_{meta['entrystart']:09d}_{meta['entrystop']:09d}.parquet"
    target = Path(skim_dir) / str(meta["sample"]) / name
    return write_table(table, target, "the skim")


def write_table(table: Any, target: Path, what: str) -> list[str]:
    """Write a pyarrow ``table`` to the parquet file ``target`` atomically (a temporary beside it,
    then a rename); returns ``[target]``. A failure removes the temporary and raises
    :class:`OutputWriteError` naming ``what`` and the file."""
    import pyarrow.parquet as pq

    tmp = target.with_suffix(".parquet.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputWriteError(
            f"cannot write {what} {target}: {type(exc).__name__}: {exc}"
        ) from exc
    return [str(target)]
