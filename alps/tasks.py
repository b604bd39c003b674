"""One helper for every "map a function over many tasks, on Dask or here, with a progress bar".

:func:`map_tasks` returns the results in the order of the tasks, whatever order the workers
finish them in, so a stage's output does not depend on the cluster.

>>> map_tasks(pow, [(2, 3), (3, 2)])
[8, 9]
>>> map_tasks(round, [(3.14159,), (2.71828,)], shared={"ndigits": 2})
[3.14, 2.72]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["map_tasks"]

R = TypeVar("R")


def map_tasks(
    function: Callable[..., R],
    tasks: Iterable[Sequence[Any]],
    *,
    client: Any = None,
    shared: Mapping[str, Any] | None = None,
    scatter: bool = False,
    progress: bool | Callable[[int], Any] = False,
    count: Callable[[R], int] | None = None,
    desc: str = "tasks",
    unit: str = "task",
) -> list[R]:
    """``[function(*task, **shared) for task in tasks]``, as Dask tasks when ``client`` is given.

    ``shared``: keyword arguments common to every task (with ``scatter``, sent to every worker
    once instead of with each task: for large objects). ``progress``: True shows a tqdm bar named
    ``desc``; a callable is called after each finished task with ``count(result)`` (1 without
    ``count``), e.g. an outer bar's ``update``. A failed task raises its exception here.
    """
    items = [tuple(t) for t in tasks]
    kwargs = dict(shared or {})
    tick, bar = _progress(progress, len(items), desc, unit)
    try:
        if client is None:
            results = []
            for item in items:
                results.append(function(*item, **kwargs))
                tick(count(results[-1]) if count else 1)
            return results
        from distributed import as_completed

        if scatter:
            # hash=False: a fresh key per call, so a call right after one that scattered the same
            # object does not race the release of its key ("lost dependencies")
            kwargs = {k: client.scatter(v, broadcast=True, hash=False) for k, v in kwargs.items()}
        futures = [client.submit(function, *item, **kwargs, pure=False) for item in items]
        position = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        for future in as_completed(futures):
            out[position[future.key]] = result = future.result()
            tick(count(result) if count else 1)
        return out
    finally:
        if bar is not None:
            bar.close()


def _progress(
    progress: bool | Callable[[int], Any], total: int, desc: str, unit: str
) -> tuple[Callable[[int], Any], Any]:
    if callable(progress):
        return progress, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=not progress, leave=False)
    return bar.update, bar
