"""Step 4 of the processor: filling the contract's histograms and the skims' rows from a
:class:`~processors.reconstruction.Reconstruction` (no physics is computed here)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hist
import numpy as np
import numpy.typing as npt

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
    "HistogramSums",
    "fill_cutflow",
    "fill_generated",
    "fill_main",
    "fill_monitoring",
    "layouts",
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


@dataclass(frozen=True)
class _Layout:
    """How a histogram is filled directly: its category axes' names, its value axes as
    :class:`_Binning` and the shape of one slice (value axes with flow bins)."""

    categories: tuple[str, ...]
    binning: tuple[_Binning, ...]
    shape: tuple[int, ...]

    @classmethod
    def of(cls, histogram: Any) -> _Layout | None:
        """The layout of ``histogram``; None where it cannot be filled directly (a value axis
        without both flow bins, or a category axis after a value axis)."""
        axes = histogram.axes
        is_category = [isinstance(a, hist.axis.StrCategory) for a in axes]
        n = sum(is_category)
        if is_category != [True] * n + [False] * (len(axes) - n):
            return None
        try:
            binning = tuple(_Binning.of(a) for a in axes[n:])
        except ValueError:
            return None
        return cls(tuple(a.name for a in axes[:n]), binning, tuple(b.extent for b in binning))


class HistogramSums:
    """The bin sums of a chunk's histograms (issue 12: what the processor returns instead of
    ``hist.Hist`` objects, whose making, filling and merging cost some 200 ns per event in
    Python around the sums): per histogram name, per slice (its categories, in the order of the
    histogram's category axes) the ``value`` and ``variance`` arrays of the slice's value axes,
    flow bins included (a 0-d array without value axes); ``direct``: ``hist.Hist`` objects of
    histograms that are filled with ``hist.fill`` (:meth:`ChunkFills.direct`).

    ``a + b`` and ``a += b`` add as ``hist.Hist`` objects do (coffea's ``accumulate`` merges
    the chunks' outputs with them): the bins of a slice in both are added, a slice only in
    ``b`` is appended, so each category axis of :meth:`histograms` lists its values in the
    order in which filling and then merging the chunks' ``hist.Hist`` objects would grow it,
    and every bin holds the same sum, added in the same order, to the last bit
    (``tests/test_processor_kernels.py``)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        #: the histograms made (in the order of ``make_histograms``); a chunk that could not be
        #: read makes the cutflow only
        self.names: dict[str, None] = dict.fromkeys(names)
        self.slices: dict[str, dict[tuple[str, ...], list[np.ndarray]]] = {}
        self.direct: dict[str, Any] = {}

    def __iadd__(self, other: HistogramSums) -> HistogramSums:
        self.names.update(other.names)
        for name, slices in other.slices.items():
            mine = self.slices.setdefault(name, {})
            for key, (value, variance) in slices.items():
                sums = mine.get(key)
                if sums is None:
                    mine[key] = [value.copy(), variance.copy()]
                else:
                    sums[0] += value
                    sums[1] += variance
        for name, histogram in other.direct.items():
            if name in self.direct:
                self.direct[name] += histogram
            else:
                self.direct[name] = copy.deepcopy(histogram)
        return self

    def __add__(self, other: HistogramSums) -> HistogramSums:
        out = HistogramSums()
        out += self
        out += other
        return out

    def histograms(self, empty: Histograms) -> Histograms:
        """The ``hist.Hist`` objects: ``empty`` (the histograms as ``make_histograms`` makes
        them, taken over) filled with the sums, those of :attr:`names` in their order."""
        out: Histograms = {}
        for name in self.names:
            histogram = self.direct.get(name)
            if histogram is None:
                histogram = empty[name]
                slices = self.slices.get(name)
                if slices:
                    _set_slices(histogram, slices)
            out[name] = histogram
        return out


def _set_slices(histogram: Any, slices: dict[tuple[str, ...], list[np.ndarray]]) -> None:
    """Write the sums of ``slices`` into the empty ``histogram``, growing its category axes by
    the slices' values in their order (as filling them would)."""
    axes = histogram.axes
    n = len(next(iter(slices)))
    categories = [list(a) for a in axes[:n]]
    known = [set(c) for c in categories]
    missing = [k for k in slices if any(v not in s for v, s in zip(k, known, strict=True))]
    if missing:  # grows the category axes (adds 0 to the overflow bins)
        nan = np.full(len(missing), np.nan)
        histogram.fill(
            *([key[i] for key in missing] for i in range(n)),
            *([nan] * (len(axes) - n)),
            weight=np.zeros(len(missing)),
        )
        for key in missing:  # a growing axis appends its new values in the order filled
            for value, seen, listed in zip(key, known, categories, strict=True):
                if value not in seen:
                    seen.add(value)
                    listed.append(value)
    position = [{v: i for i, v in enumerate(c)} for c in categories]
    view = histogram.view(flow=True)
    value, variance = view.value, view.variance
    for key, (v, var) in slices.items():
        where = tuple(p[c] for p, c in zip(position, key, strict=True))
        value[where] += v
        variance[where] += var


class ChunkFills:
    """The fills of one chunk's histograms, gathered (:meth:`add`) and summed at once
    (:meth:`flush`) into a :class:`HistogramSums`, without ``hist.fill``'s per-call cost (about
    45 us, and as much again for each axis property read, over the 60 or so fills of a chunk,
    issue 12): each fill adds to its slice the ``np.bincount`` of its entries' bins (weights and
    squared weights, summed in the entries' order from 0.0 as boost-histogram's fill sums them:
    the same to the last bit, for a slice filled once per chunk as the processor fills them; a
    second fill of a slice adds its sum as a whole). Histograms of category axes only get the
    sums ``np.sum(w)``,
    ``np.sum(w**2)``. ``layouts``: per histogram name its :class:`_Layout` (None: filled with
    ``hist.fill`` into a copy of ``empty[name]``, :meth:`direct`)."""

    def __init__(self, layouts: dict[str, _Layout | None], empty: Histograms | None = None):
        self.layouts = layouts
        self.empty = empty
        self.sums = HistogramSums(layouts)
        self._pending: dict[str, list[tuple[tuple[str, ...], tuple[FloatArray, ...], Any]]] = {}

    def add(
        self, name: str, categories: dict[str, str], weight: FloatArray, *values: FloatArray
    ) -> None:
        """One fill of histogram ``name``: the slice ``categories`` (every category axis by
        name), ``values`` for its other axes in their order, and the ``weight`` per entry."""
        layout = self.layouts[name]
        if layout is None:
            raise ValueError(f"histogram {name!r} is filled with hist.fill (ChunkFills.direct)")
        key = tuple(categories[c] for c in layout.categories)
        self._pending.setdefault(name, []).append((key, values, np.asarray(weight)))

    def direct(self, name: str) -> Any:
        """The chunk's ``hist.Hist`` of a histogram filled with ``hist.fill``."""
        histogram = self.sums.direct.get(name)
        if histogram is None:
            assert self.empty is not None, "ChunkFills needs the empty histograms for hist.fill"
            histogram = self.sums.direct[name] = copy.deepcopy(self.empty[name])
        return histogram

    def flush(self) -> HistogramSums:
        """Sum the gathered fills; returns the chunk's sums."""
        for name, fills in self._pending.items():
            layout = self.layouts[name]
            assert layout is not None
            slices = self.sums.slices.setdefault(name, {})
            for key, values, weight in fills:
                sums = slices.get(key)
                if sums is None:
                    sums = slices[key] = [np.zeros(layout.shape), np.zeros(layout.shape)]
                if not layout.binning:
                    sums[0] += float(np.sum(weight))
                    sums[1] += float(np.sum(np.square(weight)))
                    continue
                flat = layout.binning[0].index(values[0])
                for axis, x in zip(layout.binning[1:], values[1:], strict=True):
                    flat = flat * axis.extent + axis.index(x)
                size = int(np.prod(layout.shape))
                w = np.broadcast_to(weight, flat.shape)
                sums[0] += np.bincount(flat, weights=w, minlength=size).reshape(layout.shape)
                sums[1] += np.bincount(flat, weights=w * w, minlength=size).reshape(layout.shape)
        self._pending.clear()
        return self.sums


def layouts(empty: Histograms) -> dict[str, _Layout | None]:
    """Per histogram of ``empty`` (as ``make_histograms`` makes them) its direct-fill layout."""
    return {name: _Layout.of(h) for name, h in empty.items()}


def per_candidate(values: np.ndarray) -> np.ndarray:
    """One value per candidate: candidate-level ``(m, 3)`` arrays flattened event by event,
    event-level ``(m,)`` arrays repeated for the three pairings."""
    return values.ravel() if values.ndim == 2 else np.repeat(values, 3)


def fill_generated(fills: ChunkFills, chunk: ChunkInfo, weight: FloatArray) -> None:
    fills.add(GENERATED, {"dataset": chunk.sample, "period": chunk.period}, weight)


def fill_cutflow(
    fills: ChunkFills,
    chunk: ChunkInfo,
    cuts: dict[str, npt.NDArray[np.bool_]],
    generated: FloatArray,
    corrected: FloatArray,
    pool: npt.NDArray[np.int64],
    trigger: npt.NDArray[np.bool_],
) -> None:
    """Weighted events after each successive cut (``cuts``: each cut's mask over the pool, by
    name); events outside the pool fail the second.

    The ``all`` row holds the ``generated`` weights; the rows from the trigger on the
    ``corrected`` ones (times the trigger scale factor, which corrects the efficiency of
    triggered events only), so last row / ``all`` is the selection efficiency.
    """
    where = {"dataset": chunk.sample, "period": chunk.period}
    fills.add(CUTFLOW, {**where, "cut": "all"}, generated)
    fills.add(CUTFLOW, {**where, "cut": CUTS[0]}, corrected[trigger])
    pooled = corrected[pool]
    passed = np.ones(len(pool), dtype=bool)
    for name in CUTS[1:]:  # the events that pass this cut and every one before it
        passed &= cuts[name]
        fills.add(CUTFLOW, {**where, "cut": name}, pooled[passed])


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
            fills.direct(MGG_SCORE).fill(
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
