"""Keeping a worker's memory flat over many chunks (issue 12).

Reading a chunk with coffea's NanoEvents leaves reference cycles behind (uproot cursors and
models, awkward arrays: a few thousand objects per chunk) that hold the chunk's column buffers.
Python frees cycles only in a full (generation-2) collection, which it starts when the objects
that survived earlier collections have grown by a quarter; a Dask worker holds some 10^5-10^6
long-lived objects, so that takes tens of chunks, and the worker's memory climbed by the buffers
of every chunk in between (``benchmarks/process_memory.py``: +540 MB over 58 chunks of 50 k
events, back to the start after ``gc.collect()``).

:func:`collect_if_grown` bounds that: called once per chunk, it runs a full collection when the
process's resident memory has grown by more than ``limit_bytes`` since the last one. A full
collection costs 0.1-0.7 s in a worker (mostly walking the long-lived objects), so it is run only
when it can give memory back, about once per ``limit_bytes`` of garbage, not on every chunk.
"""

from __future__ import annotations

import gc

import psutil

__all__ = ["GROWTH_LIMIT_BYTES", "collect_if_grown"]

#: resident-memory growth (bytes) after which a chunk starts with a full collection
GROWTH_LIMIT_BYTES = 256 * 1024**2

#: this process's resident memory after its last full collection (one value per process: each
#: Dask worker process keeps its own)
_after_last: dict[str, int] = {}


def collect_if_grown(limit_bytes: int = GROWTH_LIMIT_BYTES) -> bool:
    """Run a full garbage collection if this process's RSS grew by more than ``limit_bytes``
    since the last one (or since the first call); returns whether it ran."""
    rss = int(psutil.Process().memory_info().rss)
    base = _after_last.setdefault("rss", rss)
    if rss - base <= limit_bytes:
        return False
    gc.collect()
    _after_last["rss"] = int(psutil.Process().memory_info().rss)
    return True
