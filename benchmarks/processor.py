"""Processor throughput: end-to-end events per second per core on a generated sample.

Generates (untimed) a background-like sample of the embedded default's composition, then times in
one run:

* ``bare_read``: uproot reading of the branches the processor reads, nothing else (the baseline);
* ``processor_1core``: the full processor (pre-selection, the kinematic fit for the nominal and
  four energy variations, features, histograms) with coffea's iterative executor in this process;
* ``dask_1_worker`` and ``dask_2_workers``: the same on a LocalCluster, with each worker's peak
  resident memory.

Run: ``python -P benchmarks/processor.py [--quick]``; prints ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import uproot

from alps.config import (
    AnalysisConfig,
    DataConfig,
    KinfitConfig,
    MassGrid,
    ProcessingConfig,
    SignalConfig,
    SimulationConfig,
)
from processors.run import REQUIRED_BRANCHES, run_processing
from simulation.production import generate_samples


def _config(lumi_fb: float) -> AnalysisConfig:
    return AnalysisConfig(
        run_slice=f"2018,lumi={lumi_fb}",
        kinfit=KinfitConfig(covariance="clusters"),
        processing=ProcessingConfig(chunk_size=200_000),
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg", "pi0gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0, 5.0)), events_per_mass=5000),
            data=DataConfig(enabled=True),
            events_per_file=200_000,
        ),
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small sample (under a minute)")
    args = parser.parse_args()
    lumi = 0.05 if args.quick else 0.2
    config = _config(lumi)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        manifest = generate_samples(config, workdir, progress=False)
        files = [workdir / "ntuples" / f["path"] for f in manifest["files"]]
        events = sum(f["events"] for f in manifest["files"])
        print(f"events: {events} events")

        # warm-up: compiles the numba kernels in this process
        warm = _config(0.002)
        generate_samples(warm, workdir / "warm", progress=False)
        run_processing(warm, workdir / "warm", progress=False, write_skims=False)

        start = time.perf_counter()
        for path in files:
            with uproot.open(path) as handle:
                handle["events"].arrays(
                    list(REQUIRED_BRANCHES)
                    + ["mc_photon_E", "mc_photon_fromALP"] * ("data" not in path.name),
                    library="ak",
                )
        bare = time.perf_counter() - start
        print(f"bare_read_rate: {events / bare:.0f} events/s")

        start = time.perf_counter()
        run_processing(config, workdir, progress=False, write_skims=False)
        single = time.perf_counter() - start
        print(f"processor_1core_rate: {events / single:.0f} events/s/core")
        print(f"ratio_processor_over_bare_read_time: {single / bare:.2f} x")
        print(f"goal_fraction_of_500k: {events / single / 500_000:.2f} x")
        print(f"peak_memory_main_process: {_peak_rss_mb():.0f} MB")

        from distributed import Client, LocalCluster

        rates = {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:  # fmt: skip
                client.run(lambda: __import__("processors.alp_processor"))
                run_processing(
                    warm, workdir / "warm", client=client, progress=False, write_skims=False
                )
                start = time.perf_counter()
                run_processing(config, workdir, client=client, progress=False, write_skims=False)
                elapsed = time.perf_counter() - start
                peaks = client.run(_peak_rss_mb)
            rates[workers] = events / elapsed
            print(f"dask_{workers}_worker_rate: {rates[workers]:.0f} events/s")
            print(f"dask_{workers}_worker_peak_memory_per_worker: {max(peaks.values()):.0f} MB")
        print(f"dask_speedup_2_over_1: {rates[2] / rates[1]:.2f} x")


if __name__ == "__main__":
    main()
