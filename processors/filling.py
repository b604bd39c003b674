"""Step 4 of the processor: filling the contract's histograms and the skims' rows from a
:class:`~processors.reconstruction.Reconstruction` (no physics is computed here)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hist
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

from .columns import ChunkColumns
from .kernels import regular_bins, variable_bins
from .reading import OutputWriteError
from .reconstruction import CUTS, Reconstruction

__all__ = [
    "ChunkFills",
    "ChunkInfo",
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


#: cells of the lookup table of a variable axis (:func:`processors.kernels.variable_bins`)
_CELLS = 4096


@dataclass(frozen=True)
class _Binning:
    """A value axis as the direct fill bins it (read once per histogram: an axis property of
    a ``hist.Hist`` costs several microseconds)."""

    extent: int
    regular: tuple[int, float, float] | None
    edges: FloatArray
    start: npt.NDArray[np.intp]

    @classmethod
    def of(cls, axis: Any) -> _Binning:
        if not (axis.traits.underflow and axis.traits.overflow):
            raise ValueError(f"axis {axis.name!r} needs both flow bins for a direct fill")
        edges = np.asarray(axis.edges, dtype=np.float64)
        if isinstance(axis, hist.axis.Regular) and not axis.transform:
            regular = (int(axis.size), float(edges[0]), float(edges[-1]))
            return cls(len(edges) + 1, regular, edges, np.zeros(0, np.intp))
        cells = edges[0] + (edges[-1] - edges[0]) / _CELLS * np.arange(_CELLS)
        start = np.clip(np.searchsorted(edges, cells, side="right") - 1, 0, len(edges) - 2)
        return cls(len(edges) + 1, None, edges, start.astype(np.intp))

    def index(self, x: FloatArray) -> npt.NDArray[np.intp]:
        """Each value's bin in the flow view (as :func:`processors.binning.flow_index`)."""
        values = np.ascontiguousarray(x, dtype=np.float64)
        if self.regular is not None:
            return regular_bins(*self.regular, values)
        return variable_bins(self.edges, self.start, values)


class ChunkFills:
    """The fills of one chunk's histograms, gathered (:meth:`add`) and done at once
    (:meth:`flush`), without ``hist.fill``'s per-call cost (about 45 us, and as much again for
    each axis property read, over the 60 or so fills of a chunk, issue 12): per histogram one
    fill grows its category axes by every new slice (in the order the slices were added, as
    separate fills would grow them), its axes and view are read once, and each fill adds to its
    slice the ``np.bincount`` of its entries' bins (weights and squared weights, summed in the
    entries' order from 0.0 as boost-histogram's fill sums them: into the slices of a chunk's
    fresh histograms the same to the last bit). Histograms of category axes only get the sums
    ``np.sum(w)``, ``np.sum(w**2)``."""

    def __init__(self, hists: Histograms):
        self.hists = hists
        self._pending: dict[str, list[tuple[dict[str, str], tuple[FloatArray, ...], Any]]] = {}

    def add(
        self, name: str, categories: dict[str, str], weight: FloatArray, *values: FloatArray
    ) -> None:
        """One fill of histogram ``name``: the slice ``categories`` (every category axis by
        name), ``values`` for its other axes in their order, and the ``weight`` per entry."""
        self._pending.setdefault(name, []).append((categories, values, np.asarray(weight)))

    def flush(self) -> None:
        """Do the gathered fills."""
        for name, fills in self._pending.items():
            _fill_slices(self.hists[name], fills)
        self._pending.clear()


def _fill_slices(
    histogram: Any, fills: list[tuple[dict[str, str], tuple[FloatArray, ...], Any]]
) -> None:
    axes = histogram.axes
    is_category = [isinstance(a, hist.axis.StrCategory) for a in axes]
    names = [a.name for a, c in zip(axes, is_category, strict=True) if c]
    if is_category != [True] * len(names) + [False] * (len(axes) - len(names)):
        raise ValueError("category axes must come before the others for a direct fill")
    categories = [list(a) for a in axes[: len(names)]]
    binning = [_Binning.of(a) for a in axes[len(names) :]]
    keys = [tuple(cats[n] for n in names) for cats, _, _ in fills]
    known = [set(c) for c in categories]
    missing = list(
        dict.fromkeys(k for k in keys if any(v not in s for v, s in zip(k, known, strict=True)))
    )
    if missing:  # grows the category axes (adds 0 to the overflow bins)
        nan = np.full(len(missing), np.nan)
        histogram.fill(
            *([key[i] for key in missing] for i in range(len(names))),
            *([nan] * len(binning)),
            weight=np.zeros(len(missing)),
        )
        for key in missing:  # a growing axis appends its new values in the order filled
            for value, seen, listed in zip(key, known, categories, strict=True):
                if value not in seen:
                    seen.add(value)
                    listed.append(value)
    position = [{v: i for i, v in enumerate(c)} for c in categories]
    view = histogram.view(flow=True)
    value, variance = view.value, view.variance  # plain arrays: one field view each
    shape = tuple(b.extent for b in binning)
    size = int(np.prod(shape))
    for key, (_, values, weight) in zip(keys, fills, strict=True):
        where = tuple(p[v] for p, v in zip(position, key, strict=True))
        if not binning:
            value[where] += float(np.sum(weight))
            variance[where] += float(np.sum(np.square(weight)))
            continue
        flat = binning[0].index(values[0])
        for axis, x in zip(binning[1:], values[1:], strict=True):
            flat = flat * axis.extent + axis.index(x)
        w = np.broadcast_to(weight, flat.shape)
        value[where] += np.bincount(flat, weights=w, minlength=size).reshape(shape)
        variance[where] += np.bincount(flat, weights=w * w, minlength=size).reshape(shape)


def per_candidate(values: np.ndarray) -> np.ndarray:
    """One value per candidate: candidate-level ``(m, 3)`` arrays flattened event by event,
    event-level ``(m,)`` arrays repeated for the three pairings."""
    return values.ravel() if values.ndim == 2 else np.repeat(values, 3)


def fill_generated(fills: ChunkFills, chunk: ChunkInfo, weight: FloatArray) -> None:
    fills.add(GENERATED, {"dataset": chunk.sample, "period": chunk.period}, weight)


def fill_cutflow(
    fills: ChunkFills,
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
    fills.add(CUTFLOW, {**where, "cut": "all"}, generated)
    fills.add(CUTFLOW, {**where, "cut": CUTS[0]}, corrected[trigger])
    pooled = corrected[pool]
    for i in range(1, len(CUTS)):
        passed = selection.all(*CUTS[1 : i + 1])
        fills.add(CUTFLOW, {**where, "cut": CUTS[i]}, pooled[passed])


def fill_main(
    fills: ChunkFills,
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
        fills.add(MGG, {**where, "truth": label}, w[mask], mgg[mask])
        if score is not None:
            fills.hists[MGG_SCORE].fill(
                **where, truth=label, mgg=mgg[mask], score=score[mask], weight=w[mask]
            )


def fill_monitoring(
    fills: ChunkFills,
    chunk: ChunkInfo,
    reco: Reconstruction,
    weight: FloatArray,
    truth: npt.NDArray[np.bool_],
) -> None:
    """Fit pulls and chi2, the signal mass resolution and the feature distributions."""
    w3 = np.repeat(weight, 3)
    for q, quantity in enumerate(("E", "theta", "phi")):
        fills.add(
            "kinfit_pull", {"dataset": chunk.sample, "quantity": quantity}, w3,
            reco.pulls[:, :, q].ravel(),
        )  # fmt: skip
    fills.add("kinfit_chi2", {"dataset": chunk.sample}, weight, reco.fit_chi2, reco.fit_pvalue)
    if chunk.mc_ma > 0 and truth.any():
        for kind, key in (("raw", "mgg_raw"), ("fit", "mgg")):
            values = reco.candidate[key].ravel()[truth.ravel()]
            fills.add(
                "mass_resolution", {"dataset": chunk.sample, "kind": kind}, w3[truth.ravel()],
                values / chunk.mc_ma - 1.0,
            )  # fmt: skip
    table = reco.table()
    where = {"dataset": chunk.sample, "period": chunk.period}
    for name in FEATURE_BINNING:
        values = table[name]
        if values.ndim == 2:  # candidate-level: one entry per candidate
            fills.add(f"feature_{name}", where, w3 / 3.0, values.ravel())
        else:
            fills.add(f"feature_{name}", where, weight, values)


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
