"""Step 0 of the processor: the branches of one chunk, read in one pass as numpy arrays.

The processor reads the branches it needs straight from the chunk's TTree with one
``TTree.arrays(..., how=dict)`` call (under :class:`processors.opening.ColumnRunner`, the tree
this worker thread keeps open since the file check; given NanoEvents, the tree coffea opened),
instead of column by column through NanoEvents' virtual arrays, and keeps the jagged branches
as offsets and flat numpy values: the candidates, the track veto and the MC truth are built by
numba kernels over them (:mod:`processors.kernels`).
A damaged basket raises while reading, inside the processor's guard, so it is a named error or a
recorded skip exactly as before (:mod:`processors.reading`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from .opening import open_tree

__all__ = ["EVENT_BRANCHES", "ChunkColumns", "Collection", "chunk_tree", "read_chunk"]

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


def read_chunk(tree: Any, start: int, stop: int, is_data: bool) -> ChunkColumns:
    """Read the processor's branches of entries ``[start, stop)`` of ``tree`` in one pass."""
    with_truth = not is_data and "mc_photon_E" in tree
    wanted = {p: f for p, f in COLLECTION_FIELDS.items() if p != "mc_photon" or with_truth}
    names = list(EVENT_BRANCHES) + [f"{p}_{f}" for p, fields in wanted.items() for f in fields]
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
