"""Which worker checks a file, and so runs its chunks (issue 12, 1 -> 2 workers).

Before processing every file is checked on a worker (:func:`processors.run.inspect_files`): it is
opened and its ``events`` TTree read (6-7 ms of CPU a file), and the worker keeps it open for the
chunks (:mod:`processors.opening`). A chunk that runs on another worker opens the file again: with
Dask free to place both, two workers opened 27 times the 17 files of ``benchmarks/processor.py``'s
sample. So the files are shared out between the workers before the check, balanced by their
entries (longest first, each to the worker with the fewest entries so far: Graham's LPT rule,
within 4/3 of the best split). Each file's chunks can be asked for on the worker that checked it
(:class:`processors.windowed.WindowedDaskExecutor`'s ``placement``; loosely, so that Dask's work
stealing may still even out the workers' queues); the processing does not, by default
(``processors.run.PLACE_CHUNKS``): equal entries are not equal work, and Dask's own queue
balanced the workers better than the saved opens were worth (README, "1 -> 2 workers").
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

__all__ = ["share_out"]


def share_out(
    names: Sequence[str], weights: Sequence[float], workers: Sequence[str]
) -> dict[str, str]:
    """Name -> worker, balancing the workers' summed weights: heaviest first, each to the worker
    with the least weight so far (ties: the first worker in ``workers`` order, so the plan is the
    same for the same inputs). Empty when there are no workers.

    >>> share_out(["a", "b", "c", "d"], [5, 3, 3, 1], ["w1", "w2"])
    {'a': 'w1', 'b': 'w2', 'c': 'w2', 'd': 'w1'}
    """
    if len(names) != len(weights):
        raise ValueError(f"{len(names)} names but {len(weights)} weights")
    if not workers:
        return {}
    heap = [(0.0, rank, worker) for rank, worker in enumerate(workers)]
    plan: dict[str, str] = {}
    for index in sorted(range(len(names)), key=lambda i: -float(weights[i])):
        load, rank, worker = heapq.heappop(heap)
        plan[names[index]] = worker
        heapq.heappush(heap, (load + float(weights[index]), rank, worker))
    return plan
