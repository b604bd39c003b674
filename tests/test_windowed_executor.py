"""The windowed Dask executor merges exactly as coffea's DaskExecutor (same tree, same order of
additions, bit for bit) while keeping a bounded number of tasks on the scheduler (issue 12)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import hist
import numpy as np
import pytest
from coffea.processor import DaskExecutor
from distributed import Client, LocalCluster

from processors.windowed import WindowedDaskExecutor, window_size


def output(i: int) -> dict[str, Any]:
    """A chunk output whose sums depend on the order of the additions (weights spanning many
    orders of magnitude), with growing category axes and a list."""
    rng = np.random.default_rng(i)
    h = hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.Regular(7, 0.0, 1.0, name="x"),
        storage=hist.storage.Weight(),
    )
    n = 50
    h.fill(dataset=f"d{i % 3}", x=rng.uniform(0, 1, n), weight=10.0 ** rng.uniform(-8, 8, n))
    return {"h": h, "chunks": [i], "n": n}


def failing(i: int) -> dict[str, Any]:
    if i == 13:
        raise ValueError("chunk 13 is broken")
    return output(i)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        yield c


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["chunks"] == b["chunks"] and a["n"] == b["n"]
    assert list(a["h"].axes["dataset"]) == list(b["h"].axes["dataset"])
    assert np.array_equal(a["h"].values(flow=True), b["h"].values(flow=True))
    assert np.array_equal(a["h"].variances(flow=True), b["h"].variances(flow=True))


@pytest.mark.parametrize(("n", "window"), [(1, 4), (9, 2), (77, 5), (130, 300)])
def test_same_result_as_coffea_bit_for_bit(client: Client, n: int, window: int) -> None:
    items = list(range(n))
    ref, _ = DaskExecutor(client=client, treereduction=8, status=False)(items, output, None)
    new, code = WindowedDaskExecutor(client=client, treereduction=8, status=False, window=window)(
        items, output, None
    )
    assert code == 0
    _assert_same(ref, new)
    assert sorted(new["chunks"]) == items  # every output once, in coffea's order (_assert_same)
    if n > 8:
        # the order of additions matters for these weights: another order gives other bits
        shuffled, _ = DaskExecutor(client=client, treereduction=8, status=False)(
            items[::-1], output, None
        )
        assert not np.array_equal(shuffled["h"].values(), new["h"].values())


def test_scheduler_holds_a_bounded_number_of_tasks(client: Client) -> None:
    import threading

    seen: list[int] = []

    def probe() -> int:
        return len(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.tasks))

    # the module's client is shared: let the scheduler forget the earlier tests' tasks first
    # (on a loaded machine their release can lag; seen in CI: 151 tasks at the first sample)
    deadline = time.monotonic() + 30.0
    while probe() and time.monotonic() < deadline:
        time.sleep(0.05)
    baseline = probe()
    items = list(range(200))
    executor = WindowedDaskExecutor(client=client, treereduction=8, status=False, window=6)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(probe())
            stop.wait(0.005)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        merged, _ = executor(items, output, None)
    finally:
        stop.set()
        thread.join()
    assert sorted(merged["chunks"]) == items
    # window 6 + the merge tasks waiting for them (a few per level) + the processor, not 200+
    assert seen and max(seen) - baseline < 40, (max(seen), baseline)


def test_a_failing_chunk_raises_its_error(client: Client) -> None:
    executor = WindowedDaskExecutor(client=client, treereduction=8, status=False, window=4)
    with pytest.raises(ValueError, match="chunk 13 is broken"):
        executor(list(range(40)), failing, None)


def test_window_grows_with_the_cluster() -> None:
    assert window_size(1) == window_size(2) == 64
    assert window_size(64) == 512
