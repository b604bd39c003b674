"""processors.memory: a worker's reference-cycle garbage is collected once its memory has grown."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from processors import memory
from processors.memory import collect_if_grown

MB = 1024**2


class _Cycle:
    """An object that refers to itself (as NanoEvents' uproot and awkward objects do)."""

    def __init__(self, nbytes: int) -> None:
        self.me = self
        self.buffer = np.ones(nbytes // 8)  # written, so resident


def test_cycle_garbage_is_collected_once_memory_grew_past_the_limit() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        memory._after_last.clear()
        assert not collect_if_grown(limit_bytes=32 * MB)  # the first call sets the baseline
        held = _Cycle(96 * MB)
        buffer = weakref.ref(held.buffer)
        del held
        assert buffer() is not None  # only a full collection frees a cycle
        assert collect_if_grown(limit_bytes=32 * MB)
        assert buffer() is None
        assert not collect_if_grown(limit_bytes=32 * MB)  # back below the limit: no collection
    finally:
        if enabled:
            gc.enable()


def test_no_collection_below_the_limit() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        memory._after_last.clear()
        collect_if_grown(limit_bytes=512 * MB)
        held = _Cycle(8 * MB)
        buffer = weakref.ref(held.buffer)
        del held
        assert not collect_if_grown(limit_bytes=512 * MB)
        assert buffer() is not None
        gc.collect()
        assert buffer() is None
    finally:
        if enabled:
            gc.enable()
