"""Step 0 of the processor: the branches of one chunk, read in one pass as numpy arrays.

The processor reads the branches it needs straight from the chunk's TTree with one
``TTree.arrays(..., how=dict)`` call (under :class:`processors.opening.ColumnRunner`, the tree
this worker thread keeps open since the file check; given NanoEvents, the tree coffea opened),
instead of column by column through NanoEvents' virtual arrays, and keeps the jagged branches
as offsets and flat numpy values: the candidates, the track veto and the MC truth are built by
numba kernels over them (:mod:`processors.kernels`).
A damaged basket raises while reading, inside the processor's guard, so it is a named error or a
recorded skip exactly as before (:mod:`processors.reading`).

A chunk's read covers whole baskets (issue 12): uproot decompresses and interprets every basket
that holds an entry of the range and then cuts the range out, so the chunks of a file that share
a basket (the ntuples are written with one basket per branch and file, and a file of more events
than ``processing.chunk_size`` is cut into several chunks) each paid for the whole basket again:
a file in two chunks was decompressed twice, where the bare read of the file does it once.
:func:`read_chunk` reads the entries of the baskets that hold the chunk (the same cost as the
chunk's own read) and keeps them for the thread's next chunk of the same file (:class:`_Span`:
one file's baskets per thread, dropped once every entry of them was handed out, when another
file is read, or when the file changed); the chunk's columns are views into them. Values are
those of a read of the chunk alone.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from .opening import open_tree

__all__ = [
    "EVENT_BRANCHES",
    "ChunkColumns",
    "Collection",
    "basket_span",
    "chunk_tree",
    "clear_spans",
    "read_chunk",
]

#: flat per-event branches the processor reads
EVENT_BRANCHES = (
    "exp",
    "run",
    "event",
    "beam_E",
    "beam_px",
    "beam_py",
    "beam_pz",
    "weight",
    "trg_esum",
)
#: jagged collections the processor reads: prefix -> fields
COLLECTION_FIELDS = {
    "cluster": ("E", "theta", "phi", "time", "errE", "errTheta", "errPhi", "region", "mcIndex"),
    "track": ("px", "py", "pz", "dr", "dz"),
    "mc_photon": ("E", "fromALP"),
}  # fmt: skip


@dataclass(frozen=True)
class Collection:
    """A jagged collection: ``offsets`` (n + 1, int64, from 0) and each field's flat values in
    the dtype the file holds (``raw``, as :mod:`processors.integrity` checks them)."""

    offsets: npt.NDArray[np.int64]
    raw: dict[str, np.ndarray]

    def values(self, name: str, dtype: type = np.float64) -> np.ndarray:
        """Flat values of a field as ``dtype``."""
        return np.asarray(self.raw[name], dtype=dtype)

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)


@dataclass(frozen=True)
class ChunkColumns:
    """The branches of one chunk: ``event`` flat per-event arrays (as the file holds them) and
    the jagged ``collections`` (``mc_photon`` only for MC with truth)."""

    n: int
    event: dict[str, np.ndarray]
    collections: dict[str, Collection]

    def __len__(self) -> int:
        return self.n

    def get(self, name: str, dtype: type = np.float64) -> np.ndarray:
        return np.asarray(self.event[name], dtype=dtype)


def _flat(array: Any) -> tuple[npt.NDArray[np.int64] | None, np.ndarray]:
    """Offsets (None for a flat branch) and flat numpy values of an array uproot read."""
    layout = ak.to_layout(array)
    if isinstance(layout, ak.contents.NumpyArray):
        return None, np.asarray(layout.data)
    offsets = np.asarray(layout.offsets, dtype=np.int64)
    content = np.asarray(layout.content.data)
    if len(offsets) and (offsets[0] != 0 or len(content) != offsets[-1]):
        content = content[offsets[0] : offsets[-1]]
        offsets = offsets - offsets[0]
    return offsets, content


@contextlib.contextmanager
def chunk_tree(events: Any) -> Iterator[Any]:
    """The chunk's TTree: the one coffea opened for the NanoEvents when it can be reached, else
    the file's tree as this thread keeps it open (:func:`processors.opening.open_tree`: the
    file check and every chunk of the file share one open)."""
    factory = events.attrs.get("@events_factory") if hasattr(events, "attrs") else None
    cache = getattr(getattr(factory, "_mapping", None), "_cache", None)
    import uproot

    if isinstance(cache, dict):
        for value in cache.values():
            if isinstance(value, uproot.behaviors.TTree.TTree):
                yield value
                return
    meta = events.metadata
    yield open_tree(meta["filename"], meta.get("treename", "events"))


def _names(tree: Any, is_data: bool) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    with_truth = not is_data and "mc_photon_E" in tree
    wanted = {p: f for p, f in COLLECTION_FIELDS.items() if p != "mc_photon" or with_truth}
    names = list(EVENT_BRANCHES) + [f"{p}_{f}" for p, fields in wanted.items() for f in fields]
    return wanted, names


def _read(
    tree: Any, wanted: dict[str, tuple[str, ...]], names: list[str], start: int, stop: int
) -> ChunkColumns:
    arrays = tree.arrays(names, entry_start=start, entry_stop=stop, library="ak", how=dict)
    event = {name: _flat(arrays[name])[1] for name in EVENT_BRANCHES}
    collections = {}
    for prefix, fields in wanted.items():
        raw, offsets = {}, None
        for f in fields:
            offsets_f, raw[f] = _flat(arrays[f"{prefix}_{f}"])
            offsets = offsets_f if offsets is None else offsets
        assert offsets is not None
        collections[prefix] = Collection(offsets, raw)
    return ChunkColumns(stop - start, event, collections)


def basket_span(tree: Any, names: list[str], start: int, stop: int) -> tuple[int, int]:
    """The entries ``[lo, hi)`` of the baskets of branches ``names`` that hold an entry of
    ``[start, stop)`` (what uproot decompresses to read that range)."""
    lo, hi = start, stop
    for name in names:
        edges = np.asarray(tree[name].entry_offsets, dtype=np.int64)
        if len(edges) < 2:
            continue
        first = int(np.searchsorted(edges, start, side="right")) - 1
        last = int(np.searchsorted(edges, stop, side="left"))
        lo = min(lo, int(edges[max(first, 0)]))
        hi = max(hi, int(edges[min(last, len(edges) - 1)]))
    return lo, hi


def _slice(columns: ChunkColumns, start: int, stop: int) -> ChunkColumns:
    """Entries ``[start, stop)`` of ``columns`` (views; offsets from 0)."""
    event = {k: v[start:stop] for k, v in columns.event.items()}
    collections = {}
    for prefix, coll in columns.collections.items():
        offsets = coll.offsets[start : stop + 1]
        first, last = int(offsets[0]), int(offsets[-1])
        raw = {k: v[first:last] for k, v in coll.raw.items()}
        collections[prefix] = Collection(offsets - first, raw)
    return ChunkColumns(stop - start, event, collections)


@dataclass
class _Span:
    """The columns of entries ``[start, stop)`` of ``tree`` (whole baskets), kept for the
    thread's next chunk of the file; ``served``: the entries handed out so far."""

    tree: Any
    names: tuple[str, ...]
    start: int
    stop: int
    columns: ChunkColumns
    served: int = 0


_local = threading.local()


def clear_spans() -> None:
    """Drop the baskets this thread keeps."""
    _local.span = None


def read_chunk(tree: Any, start: int, stop: int, is_data: bool) -> ChunkColumns:
    """Read the processor's branches of entries ``[start, stop)`` of ``tree`` in one pass (the
    baskets that hold them, once per thread and file: see the module's docstring)."""
    wanted, names = _names(tree, is_data)
    key = tuple(names)
    span: _Span | None = getattr(_local, "span", None)
    if not (
        span is not None
        and span.tree is tree
        and span.names == key
        and span.start <= start
        and stop <= span.stop
    ):
        _local.span = span = None  # another file (or a changed one): its baskets go
        lo, hi = basket_span(tree, names, start, stop)
        columns = _read(tree, wanted, names, lo, hi)
        if (lo, hi) == (start, stop):
            return columns
        span = _Span(tree, key, lo, hi, columns)
        _local.span = span
    chunk = _slice(span.columns, start - span.start, stop - span.start)
    span.served += stop - start
    if span.served >= span.stop - span.start:  # every entry handed out: the baskets go
        _local.span = None
    return chunk
