"""Merging many chunk outputs: time and memory against the number of chunks (issue 12).

At Run 1 size the processing pass has tens of thousands of chunks. Each synthetic chunk output
here has the real contract's shape (``alps.contract.make_histograms`` with the default mass
binning, one dataset and run period per chunk, every variation filled, the skim and chunk lists
the processor returns), and they are merged through the real code paths, both with the same
merge tree (8 outputs per merge task, on the workers):

* ``coffea``: coffea's ``DaskExecutor`` (what ``processors.run`` used before): every chunk task
  and every merge task handed to the scheduler at once;
* ``windowed``: ``processors.windowed.WindowedDaskExecutor`` (what it uses now): at most a
  window of chunk tasks in flight, merges submitted as their inputs are, and every merged
  subtree of 64 chunks fetched so that the scheduler forgets its tasks.

Each (executor, N) runs in a fresh process with its own two-worker local cluster (a process's
RSS does not shrink, so runs in one process would hide each other's memory). Printed per
executor and number of chunks N:

* ``wall`` and ``per_chunk``: the map and merge time; ``tasks_per_s``: chunk tasks per second;
* ``baseline_wall``: the same N tasks returning nothing, gathered (the scheduler's own cost);
* ``client_peak``: peak resident memory of the client process, which hosts the local
  scheduler; ``worker_peak``: of the largest worker (sampled);
* ``scheduler_tasks``: the most tasks the scheduler held at once (sampled);

and per executor the growth exponents (log-log slope) of time and memory in N. The merged
output's size is set by the number of datasets x periods (``--datasets``, ``--periods``), not N.

Run: ``python -P benchmarks/merge.py [--quick] [--chunks 1000,10000,30000] [--coffea-max N]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

sys.path.append(
    str(Path(__file__).resolve().parent)
)  # after the packages: benchmarks/kinfit.py must not shadow kinfit
from scale import MemorySampler, Sampler, exponent

from alps.config import load_config
from alps.contract import CUTFLOW, GENERATED, MGG, make_histograms, variation_names
from processors.binning import mass_edges

MB = 1024.0**2


@functools.cache
def _edges() -> tuple[float, ...]:
    return tuple(float(e) for e in mass_edges(load_config(None).histograms))


def chunk_output(index: int, datasets: int, periods: int) -> dict[str, Any]:
    """One chunk's output in the contract's shape (seeded by the chunk index)."""
    hists: dict[str, Any] = make_histograms(_edges(), None)
    rng = np.random.default_rng(index)
    dataset, period = f"sample{index % datasets}", f"period{(index // datasets) % periods}"
    n = 300
    for variation in variation_names():
        hists[MGG].fill(
            dataset=dataset, period=period, variation=variation,
            truth=rng.choice(["matched", "unmatched"], n), mgg=rng.uniform(0.0, 10.0, n),
            weight=rng.uniform(0.5, 1.5, n),
        )  # fmt: skip
    hists[CUTFLOW].fill(dataset=dataset, period=period, cut="all", weight=[float(n)])
    hists[GENERATED].fill(dataset=dataset, period=period, weight=[float(n)])
    for name in ("feature_E_high", "feature_chi2"):
        hists[name].fill(dataset=dataset, period=period, value=rng.uniform(0, 6, n))
    hists["skims"] = [f"skims/{dataset}/f{index}_000000000_000200000.parquet"]
    hists["chunks"] = [{"sample": dataset, "period": period, "name": f"f{index}.parquet"}]
    hists["skipped"] = []
    return hists


def _nothing(index: int) -> None:
    return None


class TaskSampler(Sampler):
    """The most tasks the scheduler holds at once, sampled from a thread."""

    def __init__(self, client: Any, interval_s: float = 0.2) -> None:
        super().__init__(interval_s)
        self.client = client
        self.peak = 0

    def sample(self) -> None:
        count = self.client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        self.peak = max(self.peak, int(count))


def merge(client: Any, method: str, n: int, datasets: int, periods: int) -> dict[str, float]:
    """The real paths: coffea's DaskExecutor or the windowed one, tree reduction 8."""
    from coffea import processor

    from processors.windowed import TREE_REDUCTION, WindowedDaskExecutor

    def work(i: int) -> dict[str, Any]:
        return chunk_output(i, datasets, periods)

    kind = processor.DaskExecutor if method == "coffea" else WindowedDaskExecutor
    executor = kind(client=client, treereduction=TREE_REDUCTION, status=False, retries=0)
    with MemorySampler(client) as memory, TaskSampler(client) as tasks:
        start = time.perf_counter()
        merged, _ = executor(list(range(n)), work, None)
        wall = time.perf_counter() - start
    combos = len(merged[MGG].axes["dataset"]) * len(merged[MGG].axes["period"])
    assert len(merged["chunks"]) == n, "every chunk's output merged"
    expected_weight = float(n * 300)
    assert math.isclose(float(merged[GENERATED].sum().value), expected_weight), "weights add up"
    return {
        "wall_s": wall,
        "client_peak_MB": memory.client_peak / MB,
        "worker_peak_MB": max(memory.worker_peak.values(), default=0) / MB,
        "scheduler_tasks": tasks.peak,
        "merged_combos": combos,
    }


def baseline(client: Any, n: int) -> float:
    """N empty tasks: the scheduler's cost alone."""
    start = time.perf_counter()
    client.gather(client.map(_nothing, range(n), pure=False))
    return time.perf_counter() - start


def measure(method: str, n: int, datasets: int, periods: int, workers: int) -> dict[str, float]:
    """One (executor, N) on a fresh two-worker local cluster (warmed up first)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        merge(client, method, 16, datasets, periods)  # imports on the workers
        row = merge(client, method, n, datasets, periods)
        row["baseline_s"] = baseline(client, min(n, 4000))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 200, 800, 3200")
    parser.add_argument("--chunks", default=None, help="comma-separated numbers of chunks")
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--periods", type=int, default=2)
    parser.add_argument("--coffea-max", type=int, default=3200, help="largest N for coffea's")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default="coffea,windowed", help="executors to time")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        row = measure(args.one[0], int(args.one[1]), args.datasets, args.periods, args.workers)
        print("ROW " + json.dumps(row))
        return
    counts = (
        [int(x) for x in args.chunks.split(",")]
        if args.chunks
        else ([200, 800, 3200] if args.quick else [1000, 3200, 10000, 30000])
    )
    for method in args.methods.split(","):
        rows = []
        for n in counts:
            if method == "coffea" and n > args.coffea_max:
                continue
            command = [sys.executable, "-P", __file__, "--one", method, str(n)]
            command += ["--datasets", str(args.datasets), "--periods", str(args.periods)]
            command += ["--workers", str(args.workers)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [x for x in done.stdout.splitlines() if x.startswith("ROW ")]
            if done.returncode != 0 or not lines:
                print(f"merge.{method}.N{n}: failed ({done.stderr.strip()[-400:]})")
                continue
            row = json.loads(lines[-1][4:])
            rows.append((n, row))
            name = f"merge.{method}.N{n}"
            print(f"{name}.wall: {row['wall_s']:.2f} s")
            print(f"{name}.per_chunk: {row['wall_s'] / n * 1e3:.2f} ms")
            print(f"{name}.tasks_per_s: {n / row['wall_s']:.0f} 1/s")
            print(f"{name}.baseline_wall_4k_max: {row['baseline_s']:.2f} s")
            print(f"{name}.client_peak: {row['client_peak_MB']:.0f} MB")
            print(f"{name}.worker_peak: {row['worker_peak_MB']:.0f} MB")
            print(f"{name}.scheduler_tasks: {row['scheduler_tasks']:.0f}")
            print(f"{name}.merged_dataset_periods: {row['merged_combos']}")
            sys.stdout.flush()
        if len(rows) < 2:
            continue
        ns = [float(n) for n, _ in rows]
        for key, label in (
            ("wall_s", "time"),
            ("client_peak_MB", "client_memory"),
            ("worker_peak_MB", "worker_memory"),
            ("scheduler_tasks", "scheduler_tasks"),
        ):
            value, error = exponent(ns, [float(r[key]) for _, r in rows])
            print(f"merge.{method}.exponent.{label}: {value:.2f} +- {error:.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
