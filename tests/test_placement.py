"""Files shared out between the workers for their check, a file's chunks asked for on the worker
that checked it, bigger chunks first (#12, 1 -> 2 workers): balanced plans, the placement and
order honoured, and the merged result bit for bit that of coffea's executor."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from coffea.processor import DaskExecutor
from distributed import Client, LocalCluster, get_worker

from processors.placement import share_out
from processors.windowed import WindowedDaskExecutor, chunk_priorities


def test_share_out_is_within_four_thirds_of_the_best_split() -> None:
    rng = np.random.default_rng(12)
    for _ in range(200):
        n, m = int(rng.integers(1, 8)), int(rng.integers(1, 4))
        weights = [float(w) for w in rng.integers(1, 100, n)]
        workers = [f"w{k}" for k in range(m)]
        plan = share_out([f"f{i}" for i in range(n)], weights, workers)
        assert sorted(plan) == sorted(f"f{i}" for i in range(n))
        loads = [sum(w for i, w in enumerate(weights) if plan[f"f{i}"] == x) for x in workers]
        best = min(
            max(sum(w for w, g in zip(weights, groups) if g == k) for k in range(m))
            for groups in itertools.product(range(m), repeat=n)
        )
        assert max(loads) <= 4 / 3 * best + 1e-9


def test_share_out_is_deterministic_and_needs_workers() -> None:
    names, weights = ["a", "b", "c"], [2.0, 2.0, 2.0]
    assert share_out(names, weights, ["x", "y"]) == {"a": "x", "b": "y", "c": "x"}
    assert share_out(names, weights, []) == {}
    with pytest.raises(ValueError, match="3 names but 2 weights"):
        share_out(names, weights[:2], ["x"])


def test_bigger_chunks_get_higher_priorities() -> None:
    assert chunk_priorities([10, 30, 20, 30], base=5) == [3, 5, 4, 5]
    assert chunk_priorities([]) == []


@dataclass(frozen=True)
class Chunk:
    """The fields of a coffea WorkItem the executor reads."""

    filename: str
    entrystart: int
    entrystop: int
    index: int


def output(chunk: Chunk) -> dict[str, Any]:
    """Output whose sums depend on the order of the additions; where and in which order it ran."""
    import hist

    rng = np.random.default_rng(chunk.index)
    h = hist.Hist(hist.axis.Regular(7, 0.0, 1.0, name="x"), storage=hist.storage.Weight())
    h.fill(x=rng.uniform(0, 1, 50), weight=10.0 ** rng.uniform(-8, 8, 50))
    return {"h": h, "ran": [(chunk.index, get_worker().address)]}


@pytest.fixture(scope="module")
def no_stealing() -> Iterator[Client]:
    """Two workers whose tasks stay where the scheduler put them (no work stealing)."""
    with (
        dask.config.set({"distributed.scheduler.work-stealing": False}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        yield c


def test_chunks_run_where_placed_and_merge_bit_for_bit(no_stealing: Client) -> None:
    workers = sorted(no_stealing.nthreads())
    sizes = [100, 5, 100, 60, 5, 100, 60, 100, 5, 60, 100] * 3
    chunks = [Chunk(f"file{i % 7}", 0, n, i) for i, n in enumerate(sizes)]
    placement = {f"file{k}": workers[k % 2] for k in range(7)}
    reference, _ = DaskExecutor(client=no_stealing, treereduction=8, status=False)(
        chunks, output, None
    )
    merged, _ = WindowedDaskExecutor(
        client=no_stealing, treereduction=8, status=False, window=64, placement=placement
    )(chunks, output, None)
    assert np.array_equal(merged["h"].values(), reference["h"].values())
    assert np.array_equal(merged["h"].variances(), reference["h"].variances())
    ran = dict(merged["ran"])
    assert sorted(ran) == list(range(len(chunks)))
    assert all(ran[c.index] == placement[c.filename] for c in chunks)


def test_a_placement_on_a_gone_worker_runs_elsewhere(no_stealing: Client) -> None:
    chunks = [Chunk("file0", 0, 10, i) for i in range(5)]
    merged, _ = WindowedDaskExecutor(
        client=no_stealing, treereduction=8, status=False,
        placement={"file0": "tcp://127.0.0.1:1"},
    )(chunks, output, None)  # fmt: skip
    assert sorted(i for i, _ in merged["ran"]) == list(range(5))


def slow_output(chunk: Chunk) -> dict[str, Any]:
    """:func:`output`, 50 ms long, with the time it started."""
    import time

    start = time.perf_counter()
    time.sleep(0.05)
    return dict(output(chunk), started=[(start, chunk.index)])


def test_each_worker_runs_its_bigger_chunks_first(no_stealing: Client) -> None:
    workers = sorted(no_stealing.nthreads())
    sizes = [5, 20, 100, 5, 60, 100, 20, 5, 60]
    chunks = [Chunk("file0", 0, n, i) for i, n in enumerate(sizes)]
    merged, _ = WindowedDaskExecutor(
        client=no_stealing, treereduction=8, status=False, placement={"file0": workers[0]}
    )(chunks, slow_output, None)
    order = [i for _, i in sorted(merged["started"])]
    assert sorted(order) == list(range(len(sizes)))
    # the first starts as soon as it is submitted; the others, queued behind it, by size (Dask
    # orders tasks of one priority submitted within 100 ms as it likes)
    rest = [sizes[i] for i in order[1:]]
    assert rest == sorted(rest, reverse=True)
    assert {address for _, address in merged["ran"]} == {workers[0]}


def test_the_file_check_records_where_each_file_was_checked(
    no_stealing: Client, tmp_path: Path
) -> None:
    from alps.config import AnalysisConfig, MassGrid, SignalConfig, SimulationConfig
    from processors.run import build_fileset, inspect_files, manifest_checksums, read_manifest
    from simulation.production import generate_samples

    config = AnalysisConfig(
        seed=3,
        run_slice="2018,lumi=0.001",
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0, 2.0)), events_per_mass=200),
            events_per_file=1000,
        ),
    )
    generate_samples(config, tmp_path, progress=False)
    manifest, expected = read_manifest(tmp_path)
    fileset = build_fileset(tmp_path, manifest)
    check = inspect_files(
        fileset, expected, False, checksums=manifest_checksums(tmp_path, manifest),
        client=no_stealing,
    )  # fmt: skip
    files = [p for d in fileset.values() for p in d["files"]]
    workers = sorted(no_stealing.nthreads())
    assert sorted(check.placement) == sorted(files) and len(files) >= 4
    assert check.placement == share_out(files, [expected[p] for p in files], workers)
    # in-process checks without a client record no placement
    assert inspect_files(fileset, expected, False).placement == {}
