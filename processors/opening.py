"""Opening the ntuples once per process (issue 12: the per-file fixed cost).

Opening a ROOT file and reading its ``events`` TTree (the branch and basket records of some 40
branches) costs about 7-10 ms of CPU; the file check opened every file for its branch checks,
and coffea opened it again for every chunk and built the NanoEvents form of every branch, which
the processor (reading its branches in one ``arrays`` call, :mod:`processors.columns`) does not
use. On the benchmark sample's signal files (5000 events, one chunk each) that was some
350 ns/event.

:func:`open_file` keeps the files the calling thread opened (the last :data:`MAX_FILES`), each
with its trees, keyed by path and checked against the file's identity (inode, size, modification
and change times): a file replaced or rewritten since is opened again, never read through a stale
handle. The file check and the chunks of a file on the same worker share one open. Files are
memory-mapped (uproot's default source for a path runs an asyncio loop in a thread and wakes it
for every read request); the file check and each chunk's read unmap the files when done
(:func:`unmap_all`), the TTree records (some 0.4 MB a file) stay, and a read maps the file again
(:class:`RemappingMemmapSource`): mapped pages would count in the worker's resident memory.

:class:`ColumnRunner` is coffea's ``Runner`` whose per-chunk work function hands the processor a
:class:`ChunkSource` (the chunk's metadata, as coffea makes it) instead of NanoEvents: the
processor opens the tree itself through :func:`open_file`, inside its read-error guard.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import uproot
from coffea import processor

__all__ = [
    "MAX_FILES",
    "MAX_MAPPED",
    "UPROOT_OPTIONS",
    "ChunkSource",
    "ColumnRunner",
    "RemappingMemmapSource",
    "clear_open_files",
    "forget",
    "open_file",
    "open_tree",
    "unmap_all",
]


class RemappingMemmapSource(uproot.source.file.MemmapSource):
    """uproot's memory-mapped file source that can be unmapped (:meth:`release`) and maps the
    file again on its next read."""

    def release(self) -> None:
        """Unmap the file (kept mapped if arrays still view it)."""
        if self._fallback is None and not self._file._mmap.closed:
            with contextlib.suppress(BufferError):
                self._file._mmap.close()

    def _mapped(self) -> None:
        if self._fallback is None and self._file._mmap.closed:
            self._open()

    def chunk(self, start: int, stop: int) -> Any:
        self._mapped()
        return super().chunk(start, stop)

    def chunks(self, ranges: list[tuple[int, int]], notifications: Any) -> Any:
        self._mapped()
        return super().chunks(ranges, notifications)

    @property
    def num_bytes(self) -> int:
        self._mapped()
        return int(super().num_bytes)


#: how the ntuples are opened: memory-mapped local files, without uproot's array cache (100 MB
#: per open file by default: the processor reads every branch once, and a file kept open would
#: hold its last chunk's arrays)
UPROOT_OPTIONS: dict[str, Any] = {"handler": RemappingMemmapSource, "array_cache": None}
#: files whose TTree records a thread keeps (about 0.4 MB each)
MAX_FILES = 64
#: of those, the last used that stay memory-mapped (the readers unmap theirs when done:
#: :func:`unmap_all`; a mapped page read counts in the resident memory, which the workers'
#: memory limit and :func:`processors.memory.collect_if_grown` watch)
MAX_MAPPED = 1


@dataclass
class _Open:
    stamp: tuple[int, int, int, int]
    handle: Any
    trees: dict[str, Any] = field(default_factory=dict)


_local = threading.local()


def _cache() -> OrderedDict[str, _Open]:
    cache = getattr(_local, "files", None)
    if cache is None:
        cache = _local.files = OrderedDict()
    return cache


def _stamp(path: str) -> tuple[int, int, int, int]:
    stat = os.stat(path)
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _close(entry: _Open) -> None:
    with contextlib.suppress(Exception):  # a handle that cannot close holds nothing to keep
        entry.handle.close()


def _entry(path: str) -> _Open:
    path = str(path)
    cache = _cache()
    stamp = _stamp(path)
    entry = cache.get(path)
    if entry is not None and entry.stamp != stamp:
        del cache[path]
        _close(entry)
        entry = None
    if entry is None:
        entry = cache[path] = _Open(stamp, uproot.open(path, **UPROOT_OPTIONS))
        while len(cache) > MAX_FILES:
            _close(cache.popitem(last=False)[1])
    else:
        cache.move_to_end(path)
    for old in list(cache.values())[: max(len(cache) - MAX_MAPPED, 0)]:
        source = old.handle.file.source
        if isinstance(source, RemappingMemmapSource):
            source.release()
    return entry


def open_file(path: str | os.PathLike[str]) -> Any:
    """The file's uproot directory, opened once per thread while the file is unchanged (do not
    close it: the cache does)."""
    return _entry(str(path)).handle


def open_tree(path: str | os.PathLike[str], treename: str = "events") -> Any:
    """The file's TTree ``treename`` (read once per open file); ``KeyError`` if absent."""
    entry = _entry(str(path))
    tree = entry.trees.get(treename)
    if tree is None:
        tree = entry.trees[treename] = entry.handle[treename]
    return tree


def unmap_all() -> None:
    """Unmap every file this thread keeps (their TTree records stay; a read maps again)."""
    for entry in _cache().values():
        source = entry.handle.file.source
        if isinstance(source, RemappingMemmapSource):
            source.release()


def forget(path: str | os.PathLike[str]) -> None:
    """Close and forget a file (one that failed its check: nothing will read it)."""
    entry = _cache().pop(str(path), None)
    if entry is not None:
        _close(entry)


def clear_open_files() -> None:
    """Close every file this thread keeps open."""
    cache = _cache()
    while cache:
        _close(cache.popitem()[1])


@dataclass(frozen=True)
class ChunkSource:
    """What the processor gets per chunk from :class:`ColumnRunner`: coffea's chunk metadata
    (``filename``, ``treename``, ``entrystart``, ``entrystop``, the dataset's metadata)."""

    metadata: dict[str, Any]

    def __len__(self) -> int:
        return int(self.metadata["entrystop"]) - int(self.metadata["entrystart"])


class ColumnRunner(processor.Runner):
    """coffea's ``Runner`` (chunking, executors, retries, merging as before) whose work function
    passes the processor a :class:`ChunkSource` instead of opening the file and building
    NanoEvents for every chunk. For processors that read their columns themselves
    (:class:`processors.alp_processor.ALPProcessor`)."""

    @staticmethod
    def _work_function(
        format: str,
        xrootdtimeout: int,
        schema: Any,
        use_dataframes: bool,
        savemetrics: bool,
        item: Any,
        processor_instance: Any,
        uproot_options: dict[str, Any],
        iteritems_options: dict[str, Any],
        checkpointer: Any,
        cache_function: Any,
    ) -> dict[str, Any]:
        import cloudpickle
        import lz4.frame

        if format != "root" or use_dataframes or savemetrics or checkpointer is not None:
            raise ValueError("ColumnRunner runs ROOT chunks without metrics or checkpoints")
        if processor_instance == "heavy":
            item, processor_instance = item
        if not isinstance(processor_instance, processor.ProcessorABC):
            processor_instance = cloudpickle.loads(lz4.frame.decompress(processor_instance))
        metadata = {
            "dataset": item.dataset,
            "filename": item.filename,
            "treename": item.treename,
            "entrystart": item.entrystart,
            "entrystop": item.entrystop,
            "fileuuid": str(uuid.UUID(bytes=item.fileuuid)) if len(item.fileuuid) > 0 else "",
        }
        if item.usermeta is not None:
            metadata.update(item.usermeta)
        try:
            out = processor_instance.process(ChunkSource(metadata))
        except Exception as exc:  # as coffea's work function names the chunk
            raise Exception(f"Failed processing file: {item!r}. The error was: {exc!r}.") from exc
        if out is None:
            raise ValueError("Output of process() should not be None.")
        return {"out": out, "processed": {item}}
