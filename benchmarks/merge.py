"""Merging many chunk outputs: time and memory against the number of chunks (issue 12).

At Run 1 size the processing pass has tens of thousands of chunks. Each synthetic chunk output
here has the real contract's shape (``alps.contract.make_histograms`` with the default mass
binning, one dataset and run period per chunk, every variation filled, the skim and chunk lists
the processor returns), and they are merged through the real code path: coffea's
``DaskExecutor`` with the tree reduction ``processors.run`` uses (8 outputs per merge task, on
the workers; the client receives the one merged result). Printed per number of chunks N:

* ``wall`` and ``per_chunk``: the map and merge time; ``tasks_per_s``: chunk tasks finished per
  second by the scheduler (two workers);
* ``baseline_wall``: the same N tasks returning nothing, gathered (the scheduler's own cost);
* ``client_peak``, ``worker_peak``, ``scheduler_rss``: resident memory (peak of this process and
  of the largest worker, sampled; the scheduler's after the run);
* ``naive_client_peak`` (N up to ``--naive-max``): the outputs gathered to the client and merged
  there, what the tree avoids;

and the growth exponents (log-log slope) of time and client memory in N. The merged output's
size is set by the number of datasets x periods (``--datasets``, ``--periods``), not by N.

Run: ``python -P benchmarks/merge.py [--quick] [--chunks 1000,10000,30000]``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import MemorySampler, exponent

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


def _rss_of_scheduler(client: Any) -> float:
    import psutil

    return float(client.run_on_scheduler(lambda: psutil.Process().memory_info().rss)) / MB


def merge_tree(client: Any, n: int, datasets: int, periods: int) -> dict[str, float]:
    """The real path: coffea's DaskExecutor, tree reduction 8 (as processors.run)."""
    from coffea import processor

    def work(i: int) -> dict[str, Any]:
        return chunk_output(i, datasets, periods)

    executor = processor.DaskExecutor(client=client, treereduction=8, status=False, retries=0)
    with MemorySampler(client) as memory:
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
        "scheduler_MB": _rss_of_scheduler(client),
        "merged_combos": combos,
    }


def baseline(client: Any, n: int) -> float:
    """N empty tasks: the scheduler's cost alone."""
    start = time.perf_counter()
    client.gather(client.map(_nothing, range(n), pure=False))
    return time.perf_counter() - start


def merge_naive(client: Any, n: int, datasets: int, periods: int) -> float:
    """Every output gathered to the client and merged there; the client's peak (MB)."""
    from coffea.processor import accumulate

    def work(i: int) -> dict[str, Any]:
        return chunk_output(i, datasets, periods)

    with MemorySampler(client) as memory:
        outputs = client.gather(client.map(work, range(n), pure=False))
        accumulate(outputs)
        del outputs
    return memory.client_peak / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 200, 800, 3200")
    parser.add_argument("--chunks", default=None, help="comma-separated numbers of chunks")
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--periods", type=int, default=2)
    parser.add_argument("--naive-max", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    counts = (
        [int(x) for x in args.chunks.split(",")]
        if args.chunks
        else ([200, 800, 3200] if args.quick else [1000, 4000, 16000, 32000])
    )
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        merge_tree(client, 16, args.datasets, args.periods)  # warm up imports on the workers
        rows = []
        for n in counts:
            row = merge_tree(client, n, args.datasets, args.periods)
            row["baseline_s"] = baseline(client, n)
            if n <= args.naive_max:
                row["naive_client_peak_MB"] = merge_naive(client, n, args.datasets, args.periods)
            rows.append((n, row))
            name = f"merge.N{n}"
            print(f"{name}.wall: {row['wall_s']:.2f} s")
            print(f"{name}.per_chunk: {row['wall_s'] / n * 1e3:.2f} ms")
            print(f"{name}.tasks_per_s: {n / row['wall_s']:.0f} 1/s")
            print(f"{name}.baseline_wall: {row['baseline_s']:.2f} s")
            print(f"{name}.merge_over_baseline: {row['wall_s'] / row['baseline_s']:.2f}")
            print(f"{name}.client_peak: {row['client_peak_MB']:.0f} MB")
            print(f"{name}.worker_peak: {row['worker_peak_MB']:.0f} MB")
            print(f"{name}.scheduler_rss: {row['scheduler_MB']:.0f} MB")
            print(f"{name}.merged_dataset_periods: {row['merged_combos']}")
            if "naive_client_peak_MB" in row:
                print(f"{name}.naive_client_peak: {row['naive_client_peak_MB']:.0f} MB")
            sys.stdout.flush()
    ns = [float(n) for n, _ in rows]
    print(f"merge.exponent.time: {exponent(ns, [r['wall_s'] for _, r in rows]):.2f}")
    print(
        f"merge.exponent.client_memory: {exponent(ns, [r['client_peak_MB'] for _, r in rows]):.2f}"
    )
    print(
        f"merge.exponent.worker_memory: {exponent(ns, [r['worker_peak_MB'] for _, r in rows]):.2f}"
    )


if __name__ == "__main__":
    main()
