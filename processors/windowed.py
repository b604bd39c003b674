"""coffea's Dask executor with a bounded number of tasks on the scheduler (issue 12).

coffea's :class:`~coffea.processor.DaskExecutor` hands the scheduler every chunk task and every
task of its merge tree at once (1.14 tasks per chunk; at Run 1 size tens of thousands), and the
scheduler keeps every merged input's task while the merge result lives
(``benchmarks/merge.py``). :class:`WindowedDaskExecutor` builds the *same* merge tree (outputs
``0..k-1`` merged by one task, then ``k..2k-1``, ...; each merge task adds its inputs as coffea's
``_reduce`` does: the last one, then the others in order; then the merged outputs again by
``k``, up to one) but submits the chunk tasks through a sliding window: at most ``window`` chunk
tasks are unfinished at any time, a merge task is submitted as soon as all its inputs are, and
the client keeps no reference to a merged input; each merged block of ``k**m >= window`` chunks
is fetched to the client, which merges the few levels above it (the scheduler then forgets the
block's lineage). So the scheduler holds O(window) tasks whatever the number of chunks (the
client, up to ``k - 1`` merged blocks per level above: logarithmic), and the result is bit for bit that of coffea's executor (the same
additions in the same order; ``tests/test_windowed_executor.py``).

Order and placement (issue 12, 1 -> 2 workers): the chunk tasks are run biggest first
(longest-processing-time order, through Dask priorities: chunks of equal size keep their order,
and every merge task still outranks every chunk task), so that no large chunk starts last and
leaves the other workers idle at the end; and, given ``placement`` (file -> the worker that
checked it, :func:`processors.run.inspect_files`; off by default, ``processors.run.PLACE_CHUNKS``),
a file's chunks are asked for on the worker that has the file open already (a loose restriction: any worker runs them when that one is gone,
and Dask's work stealing moves them to an idle one). Neither changes a task's position in the
merge tree, so the result is bit for bit the same.

Retries, ``heavy_input`` (the processor sent once), LZ4 compression of the outputs in flight and
the ``KilledWorker`` message are coffea's; the executor is a ``DaskExecutor`` subclass, so the
coffea ``Runner`` treats it as one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from coffea.processor import DaskExecutor
from coffea.processor.accumulator import accumulate
from coffea.processor.executor import _compression_wrapper, _decompress, _reduce

__all__ = ["TREE_REDUCTION", "WindowedDaskExecutor", "chunk_priorities", "window_size"]

#: outputs merged per merge task (the processing, calibration and score passes)
TREE_REDUCTION = 8
#: the smallest window: enough chunk tasks in flight to keep a few workers busy
MIN_WINDOW = 64
#: chunk tasks in flight per worker thread (the window grows with the cluster)
TASKS_PER_THREAD = 8


def window_size(threads: int, minimum: int = MIN_WINDOW) -> int:
    """Chunk tasks kept in flight for a cluster of ``threads`` worker threads.

    >>> window_size(2), window_size(100)
    (64, 800)
    """
    return max(minimum, TASKS_PER_THREAD * threads)


def _entries(item: Any) -> int:
    """Entries of a chunk (a coffea ``WorkItem``, alone or with the heavy input); 0 for an item
    that is not one."""
    if isinstance(item, tuple) and item:
        item = item[0]
    try:
        return int(item.entrystop) - int(item.entrystart)
    except (AttributeError, TypeError, ValueError):
        return 0


def _filename(item: Any) -> str | None:
    if isinstance(item, tuple) and item:
        item = item[0]
    name = getattr(item, "filename", None)
    return name if isinstance(name, str) else None


def chunk_priorities(sizes: list[int], base: int = 0) -> list[int]:
    """Dask priority of each chunk task from the chunks' entries: bigger chunks first (``base``
    for the biggest, one less per smaller size; chunks of one size share a priority, so they run
    in their order).

    >>> chunk_priorities([5, 100, 5, 70])
    [-2, 0, -2, -1]
    """
    rank = {size: r for r, size in enumerate(sorted(set(sizes), reverse=True))}
    return [base - rank[size] for size in sizes]


@dataclass
class WindowedDaskExecutor(DaskExecutor):
    """``DaskExecutor`` whose scheduler holds a bounded number of tasks (see the module)."""

    #: the most unfinished chunk tasks; None: :func:`window_size` of the cluster's threads,
    #: re-read as workers come and go (a batch cluster grows while it runs)
    window: int | None = None
    #: chunk file -> address of the worker asked to run its chunks (loosely: see the module)
    placement: Mapping[str, str] | None = None
    #: run bigger chunks first (see the module)
    biggest_first: bool = True

    def __call__(self, items: Iterable[Any], function: Callable[..., Any], accumulator: Any) -> Any:
        items = list(items)
        if len(items) == 0:
            return accumulator
        if self.use_dataframes:
            raise ValueError("WindowedDaskExecutor does not return dataframes")
        from distributed import Client

        client: Any = self.client  # type: ignore[has-type]
        if client is None:
            client = self.client = Client(threads_per_worker=1)
        if self.compression is not None:
            function = _compression_wrapper(self.compression, function, name=self.function_name)
        if self.heavy_input is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Large object of size")
                heavy = client.submit(lambda x: x, self.heavy_input)
            items = list(zip(items, repeat(heavy)))
        tree = _Tree(self, function, items)
        final = tree.run()
        return accumulate([_decompress(final)], accumulator), 0

    def _window(self) -> int:
        if self.window is not None:
            return max(1, int(self.window))
        assert self.client is not None
        return window_size(sum(self.client.nthreads().values()))


class _Tree:
    """The merge tree of ``len(items)`` outputs by ``treereduction``, submitted as it fills.

    Levels below ``block_level`` merge on the workers. A node of ``block_level`` (the merged
    outputs of ``k**block_level`` consecutive chunks, a whole subtree of coffea's tree) is
    fetched to the client once it is done and its futures are dropped, so the scheduler forgets
    that subtree's tasks (it keeps a finished task's inputs while its result lives, to recompute
    it); the few merges above it (one per ``k**(block_level + 1)`` chunks) run here, with the same
    reducer on the same inputs in the same order."""

    def __init__(self, executor: WindowedDaskExecutor, function: Callable[..., Any], items: list):
        self.executor = executor
        self.client = executor.client
        self.function = function
        self.items = items
        self.k = max(2, int(executor.treereduction))
        self.reducer = _reduce(executor.compression)
        # sizes of the levels: n, ceil(n/k), ... 1 (coffea's loop: merge while more than one)
        self.sizes = [len(items)]
        while self.sizes[-1] > 1:
            self.sizes.append(-(-self.sizes[-1] // self.k))
        # per level: the outputs (futures below block_level, results from it on) not yet handed
        # to a merge (index -> output)
        self.pending: list[dict[int, Any]] = [{} for _ in self.sizes]
        self.key_to_item: dict[Any, Any] = {}
        #: key of a block node's future -> its index at block_level
        self.blocks: dict[Any, int] = {}
        self.block_level = len(self.sizes)  # set by run() from the window
        base = executor.priority
        self.priorities = (
            chunk_priorities([_entries(item) for item in items], base)
            if executor.biggest_first
            else [base] * len(items)
        )
        placement = executor.placement or {}
        self.workers = [placement.get(_filename(item) or "") for item in items]

    def _place(self, level: int, index: int, output: Any, fetched: bool = False) -> None:
        """Record output ``index`` of ``level``; merge its group once the group is complete (a
        group of one is passed up as it is: merging one output adds nothing). A block node's
        future is fetched when done (:meth:`run`) and placed again, ``fetched``."""
        if level == self.block_level and level < len(self.sizes) - 1 and not fetched:
            self.blocks[output.key] = index  # fetched when done (run)
            self.running.add(output)
            return
        pending = self.pending[level]
        pending[index] = output
        if level == len(self.sizes) - 1:
            return
        group = index // self.k
        members = range(group * self.k, min((group + 1) * self.k, self.sizes[level]))
        if not all(i in pending for i in members):
            return
        inputs = [pending.pop(i) for i in members]
        if len(inputs) == 1:
            merged = inputs[0]
        elif self._local(level):
            merged = self.reducer(inputs)
        else:
            merged = self.client.submit(
                self.reducer, inputs, pure=False, retries=self.executor.retries,
                priority=self.executor.priority + 1 + level,
            )  # fmt: skip
        self._place(level + 1, group, merged)

    def _local(self, level: int) -> bool:
        """Outputs of ``level`` are results on the client (not futures)."""
        return level >= self.block_level

    def run(self) -> Any:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        bar = self._bar()
        self.running = as_completed()
        submitted = finished = 0
        window = self.executor._window()
        # the smallest subtree (k**level chunks) that holds a window of chunk tasks
        self.block_level = 1
        while self.k**self.block_level < window:
            self.block_level += 1
        try:
            while True:
                while submitted < len(self.items) and submitted - finished < window:
                    item = self.items[submitted]
                    worker = self.workers[submitted]
                    where = {"workers": [worker], "allow_other_workers": True} if worker else {}
                    future = self.client.submit(
                        self.function, item, pure=False, retries=self.executor.retries,
                        priority=self.priorities[submitted], **where,
                    )  # fmt: skip
                    self.key_to_item[future.key] = item
                    self.running.add(future)
                    self._place(0, submitted, future)
                    submitted += 1
                if self.running.is_empty():
                    break
                done = next(self.running)
                if done.status == "error":
                    done.result()  # raises the chunk's exception here
                if self.key_to_item.pop(done.key, None) is not None:
                    finished += 1
                    if bar is not None:
                        bar.update(1)
                    if finished % 256 == 0 and self.executor.window is None:
                        window = max(window, self.executor._window())
                if done.key in self.blocks:
                    index = self.blocks.pop(done.key)
                    result = done.result()
                    del done
                    self._place(self.block_level, index, result, fetched=True)
            top = self.pending[-1].pop(0)
            return top.result() if hasattr(top, "result") else top
        except KilledWorker as exc:
            item = self.key_to_item.get(exc.task, "(output reducer)")
            if isinstance(item, tuple) and self.executor.heavy_input is not None:
                item = item[0]
            raise RuntimeError(
                f"Work item {item} caused a KilledWorker exception (likely a segfault or "
                "out-of-memory issue)"
            ) from exc
        finally:
            if bar is not None:
                bar.close()
            self.running.clear()
            for level in self.pending:
                level.clear()

    def _bar(self) -> Any:
        if not self.executor.status:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=len(self.items), desc=self.executor.desc, unit=self.executor.unit, leave=False
        )
