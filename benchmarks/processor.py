"""Processor throughput: end-to-end events per second per core on a generated sample, the split
of its cost, and its floor.

Generates (untimed) a background-like sample of the embedded default's composition, then times in
one run:

* ``bare_read``: uproot reading of the branches the processor reads (one ``arrays(...,
  how=dict)`` per file, memory-mapped as the processor opens them), nothing else;
* ``processor_1core``: the full processor (file checks, pre-selection, the kinematic fit for the
  nominal and four energy variations, features, histograms) with coffea's iterative executor in
  this process, in a work directory as ``alps run`` makes it (the generation's remembered
  digests spare the file check a second hash of each unchanged file); and
  ``processor_1core_rate_rehashing_every_file``: the same with every file hashed again (files
  copied in from elsewhere);
* the split of that cost, from a second in-process pass whose steps are timed by wrappers:
  ``file_checks`` (checksums and branch checks before processing), ``inputs`` (the chunk's
  reading through NanoEvents and the photon candidates), ``cuts`` (the cuts of every variation),
  ``fits`` (number of fits per event times the cost of one), ``features`` and ``fills``
  (histograms); ``other`` is the rest of that pass (coffea, merging, writing the histograms);
* the floor: the bare read plus the fits the processor must do, at the fit kernel's cost per fit
  measured in this process on the same inputs; the end-to-end time over the floor;
* ``independent_*``: the machine's own ceiling for two workers: the same processing in two
  independent forked processes at once (no Dask), CPU per event against one alone, their ratio
  (parallel efficiency) and the CPU-bound speedup it allows (2 x efficiency);
* ``dask_1_worker`` and ``dask_2_workers``: the same on a LocalCluster (with alps's cluster
  settings, ``alps.cluster.worker_settings``: malloc, quiet workers), with the workers' system CPU time and page
  faults, each worker's peak and final resident memory and the load average of the machine (it is shared: the 2-worker figure is
  noisy when the load is above the number of cores); beside the wall-clock speedup, a CPU-bound
  estimate (the 1-worker run's worker and client CPU time over the 2-worker run's busiest
  worker plus its client CPU time), which the other processes of a loaded machine do not
  distort, and the busiest worker's share of the workers' CPU time (0.50: even chunks).

The in-process figures are CPU seconds of this process (``time.process_time``: per core, and not
inflated by the other processes of a shared machine); the Dask figures are wall-clock seconds.

Run: ``python -P benchmarks/processor.py [--quick] [--no-dask]``; prints ``name: value unit``
lines.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import types
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
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
from alps.records import RECORD_DIR
from processors import run as _run_module
from processors.run import REQUIRED_BRANCHES, run_processing
from simulation.production import generate_samples

#: how the processor opens the ntuples (an older version without the option: uproot's default)
UPROOT_OPTIONS = getattr(_run_module, "UPROOT_OPTIONS", {})


def _config(lumi_fb: float) -> AnalysisConfig:
    return AnalysisConfig(
        run_slice=f"lumi={lumi_fb}",  # the 2018 runs first (registry order), then beyond
        kinfit=KinfitConfig(covariance="clusters"),
        # files of up to 200 k events in chunks of at most 100 k: the sample's two large files
        # (data 180 k, gg 151 k events) split into two even chunks each, so that no chunk holds
        # half the sample and two workers can share it
        processing=ProcessingConfig(chunk_size=100_000),
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg", "pi0gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0, 5.0)), events_per_mass=5000),
            data=DataConfig(enabled=True),
            events_per_file=200_000,
        ),
    )


def _clock() -> float:
    """CPU seconds of this process (all its threads): a per-core figure that the other
    processes of a shared machine do not inflate (the Dask figures use the wall clock)."""
    return time.process_time()


def _fresh() -> None:
    """Forget coffea's cached file metadata and the files this process keeps open
    (processors.opening), so that every timed run pays its preprocessing and opens every file
    once, as a run of ``alps process`` does."""
    from coffea.processor.executor import DEFAULT_METADATA_CACHE

    DEFAULT_METADATA_CACHE.clear()
    try:
        from processors.opening import clear_open_files
    except ImportError:  # an older version of the processor opens the files for each chunk
        return
    clear_open_files()


def _warm_worker(config: AnalysisConfig, source: str) -> None:
    """Process the small warm-up sample in this worker process, in a copy of its own (workers
    must not write one work directory at once): every worker loads or compiles the numba kernels
    before the timed run, whichever chunks the scheduler gives it (the warm-up sample's chunks
    through the cluster could all land on one worker)."""
    import shutil

    target = Path(source).with_name(f"warm-{os.getpid()}")
    if not target.exists():
        shutil.copytree(source, target)
    run_processing(config, target, progress=False, write_skims=False)


def _child(config: AnalysisConfig, workdir: str, queue: Any) -> None:
    """One independent processing of a work directory in a forked process (no Dask): its CPU
    and wall seconds."""
    _fresh()
    start, wall = _clock(), time.perf_counter()
    run_processing(config, Path(workdir), progress=False, write_skims=False)
    queue.put((_clock() - start, time.perf_counter() - wall))


def _independent(config: AnalysisConfig, copies: list[Path]) -> list[tuple[float, float]]:
    """Process each copy in its own forked process, all at once: (CPU, wall) seconds per
    process. Forked from this warm process, so nothing compiles in them."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_child, args=(config, str(c), queue)) for c in copies]
    for child in children:
        child.start()
    results = [queue.get() for _ in children]
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"an independent processing failed (exit code {child.exitcode})")
    return results


def _usage() -> tuple[float, float, int]:
    """CPU seconds (user + system), system seconds and minor page faults of the calling process
    (a Dask worker when run with ``client.run``)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime, usage.ru_minflt


def _rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _worker_malloc() -> Any:
    """The settings alps gives its Dask clusters (alps.cluster.worker_settings: malloc, quiet
    workers); with an older version its malloc settings, or Dask's defaults."""
    import contextlib

    from alps import cluster

    settings = getattr(cluster, "worker_settings", None)
    if settings is None:
        settings = getattr(cluster, "worker_malloc", contextlib.nullcontext)
    return settings()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _Timers:
    """Wall time and calls of wrapped functions, by step (the breakdown pass only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.fits = 0
        self.fit_inputs: list[tuple] = []

    def wrap(self, module: Any, name: str, step: str) -> None:
        original = getattr(module, name, None)
        if original is None:  # a step an older version of the processor does not have
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = _clock()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[step] = self.seconds.get(step, 0.0) + _clock() - start

        setattr(module, name, timed)

    def wrap_fit(self, module: Any) -> None:
        """Replace ``module.kinfit`` by a copy whose fit counts and times its calls."""
        original = module.kinfit.fit_three_photons

        def fit_three_photons(*args: Any, **kwargs: Any) -> Any:
            self.fits += len(args[0])
            self.fit_inputs.append((args, kwargs))
            start = _clock()
            result = original(*args, **kwargs)
            self.seconds["fits"] = self.seconds.get("fits", 0.0) + _clock() - start
            return result

        proxy = types.SimpleNamespace(**vars(module.kinfit))
        proxy.fit_three_photons = fit_three_photons
        module.kinfit = proxy


def _breakdown(config: AnalysisConfig, workdir: Path) -> tuple[_Timers, float]:
    """A pass of the processor with its steps timed; restores the modules afterwards."""
    import processors.alp_processor as ap
    import processors.filling as fl
    import processors.reconstruction as rc
    import processors.run as run

    saved = {(m, k): getattr(m, k) for m in (ap, rc, run) for k in dir(m) if not k.startswith("__")}
    classes = [
        (c, k, c.__dict__[k]) for c, k in ((ap.ALPProcessor, "_read"), (ap.ALPProcessor, "_inputs"))
    ]
    if hasattr(fl, "ChunkFills"):  # the fills are done at the end of each chunk
        classes.append((fl.ChunkFills, "flush", fl.ChunkFills.flush))
    timers = _Timers()
    try:
        timers.wrap(run, "_prepare_inputs", "file_checks")
        timers.wrap(ap.ALPProcessor, "_read", "inputs")
        timers.wrap(ap.ALPProcessor, "_inputs", "inputs")
        timers.wrap(ap, "reconstruct", "reconstruct")
        for name in (
            "event_features",
            "candidate_features",
            "three_photon_features",
            "pair_masses",
        ):
            timers.wrap(rc, name, "features")
        for name in ("fill_main", "fill_monitoring", "fill_cutflow", "fill_generated"):
            timers.wrap(ap, name, "fills")
        if hasattr(fl, "ChunkFills"):
            timers.wrap(fl.ChunkFills, "flush", "fills")
        timers.wrap_fit(rc)
        _fresh()
        start = _clock()
        run.run_processing(config, workdir, progress=False, write_skims=False)
        total = _clock() - start
    finally:
        for (module, key), value in saved.items():
            setattr(module, key, value)
        for cls, key, value in classes:
            setattr(cls, key, value)
    return timers, total


def _fit_cost(timers: _Timers) -> float:
    """Seconds per fit of the compiled kernel on the processor's own fit inputs (best of 3)."""
    import kinfit

    best = np.inf
    for _ in range(3):
        start = _clock()
        for args, kwargs in timers.fit_inputs:
            kinfit.fit_three_photons(*args, **kwargs)
        best = min(best, _clock() - start)
    return best / max(timers.fits, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small sample (under a minute)")
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster figures")
    args = parser.parse_args()
    lumi = 0.05 if args.quick else 0.2
    config = _config(lumi)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # a work directory as `alps run` makes it: the generation remembers each file's digest
        # (.alps/digests.json), which the file check trusts while the file is unchanged
        (workdir / RECORD_DIR).mkdir()
        manifest = generate_samples(config, workdir, progress=False)
        files = [workdir / "ntuples" / f["path"] for f in manifest["files"]]
        events = sum(f["events"] for f in manifest["files"])
        print(f"events: {events} events")

        # warm-up: compiles the numba kernels in this process
        warm = _config(0.002)
        (workdir / "warm" / RECORD_DIR).mkdir(parents=True)
        generate_samples(warm, workdir / "warm", progress=False)
        run_processing(warm, workdir / "warm", progress=False, write_skims=False)

        bare = np.inf
        for _ in range(2):
            start = _clock()
            for path in files:
                with uproot.open(path, **UPROOT_OPTIONS) as handle:
                    handle["events"].arrays(
                        list(REQUIRED_BRANCHES)
                        + ["mc_photon_E", "mc_photon_fromALP"] * ("data" not in path.name),
                        library="ak",
                        how=dict,
                    )
            bare = min(bare, _clock() - start)
        print(f"bare_read_rate: {events / bare:.0f} events/s")

        single = np.inf
        for _ in range(2):
            _fresh()
            start = _clock()
            run_processing(config, workdir, progress=False, write_skims=False)
            single = min(single, _clock() - start)
        print(f"processor_1core_rate: {events / single:.0f} events/s/core")
        # files the work directory has no digest of (copied in): every file hashed again
        digests = workdir / RECORD_DIR / "digests.json"
        remembered = digests.read_bytes()
        rehash = np.inf
        for _ in range(2):
            digests.write_text("{}")
            _fresh()
            start = _clock()
            run_processing(config, workdir, progress=False, write_skims=False)
            rehash = min(rehash, _clock() - start)
        digests.write_bytes(remembered)
        print(f"processor_1core_rate_rehashing_every_file: {events / rehash:.0f} events/s/core")
        print(f"cost_rehashing_per_event: {1e9 * (rehash - single) / events:.0f} ns")
        print(f"processor_1core_time_per_event: {1e9 * single / events:.0f} ns")
        print(f"ratio_processor_over_bare_read_time: {single / bare:.2f} x")
        print(f"goal_fraction_of_400k: {events / single / 400_000:.2f} x")

        timers, traced = _breakdown(config, workdir)
        sec = timers.seconds
        per_fit = _fit_cost(timers)
        cuts = sec.get("reconstruct", 0.0) - sec.get("fits", 0.0) - sec.get("features", 0.0)
        split = {
            "file_checks": sec.get("file_checks", 0.0),
            "inputs": sec.get("inputs", 0.0),
            "cuts": cuts,
            "fits": sec.get("fits", 0.0),
            "features": sec.get("features", 0.0),
            "fills": sec.get("fills", 0.0),
        }
        # the rest of the same timed pass (not of the untimed ones above: the residual of two
        # runs carried their difference in noise)
        split["other"] = max(traced - sum(split.values()), 0.0)
        for step, seconds in split.items():
            print(f"cost_{step}_per_event: {1e9 * seconds / events:.0f} ns")
        print(f"breakdown_pass_time_per_event: {1e9 * traced / events:.0f} ns")
        print(f"fits_per_event: {timers.fits / events:.3f} fits")
        print(f"fit_cost: {1e9 * per_fit:.0f} ns")
        floor = bare + timers.fits * per_fit
        print(f"floor_per_event: {1e9 * floor / events:.0f} ns")
        print(f"floor_rate: {events / floor:.0f} events/s")
        print(f"ratio_processor_over_floor: {single / floor:.2f} x")
        print(f"peak_memory_main_process: {_peak_rss_mb():.0f} MB")

        # the machine's own ceiling for two workers: the same processing in two independent
        # processes at once (no Dask, no client), each on a copy of the work directory whose
        # ntuples are hard links; CPU per event against one such process alone
        import shutil

        copies = []
        for k in range(2):
            copy = workdir / f"copy{k}"
            shutil.copytree(workdir, copy, copy_function=os.link,
                            ignore=shutil.ignore_patterns("warm*", "histograms", "copy*"))  # fmt: skip
            copies.append(copy)
        alone = _independent(config, copies[:1])[0]
        together = _independent(config, copies)
        cpu_alone = alone[0] / events
        cpu_together = sum(cpu for cpu, _ in together) / len(together) / events
        print(f"independent_1_process_cpu_per_event: {1e9 * cpu_alone:.0f} ns")
        print(f"independent_2_processes_cpu_per_event: {1e9 * cpu_together:.0f} ns")
        print(f"independent_parallel_efficiency: {cpu_alone / cpu_together:.2f} fraction")
        print(f"independent_speedup_2_over_1: {2 * alone[1] / max(w for _, w in together):.2f} x")
        print(f"independent_speedup_ceiling_cpu_bound: {2 * cpu_alone / cpu_together:.2f} x")
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)

        if args.no_dask:
            return
        from distributed import Client, LocalCluster

        rates, bound = {}, {}
        for workers in (1, 2):
            with _worker_malloc(), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:  # fmt: skip
                client.run(_warm_worker, warm, str(workdir / "warm"))
                load = os.getloadavg()[0]
                _fresh()
                client.run(_fresh)
                before = client.run(_usage)
                start, cpu = time.perf_counter(), _clock()
                run_processing(config, workdir, client=client, progress=False, write_skims=False)
                elapsed, cpu = time.perf_counter() - start, _clock() - cpu
                after = client.run(_usage)
                busy = {w: after[w][0] - before[w][0] for w in after}
                system = sum(after[w][1] - before[w][1] for w in after)
                faults = sum(after[w][2] - before[w][2] for w in after)
                peaks = client.run(_peak_rss_mb)
                resident = client.run(_rss_mb)
            rates[workers] = events / elapsed
            # CPU-bound estimate of the wall time, for a loaded machine where the wall clock
            # mostly measures the other processes: the busiest worker's CPU time plus this
            # process's (client and scheduler, which does not shrink with more workers)
            bound[workers] = max(busy.values()) + cpu
            print(f"dask_{workers}_worker_rate: {rates[workers]:.0f} events/s")
            print(f"dask_{workers}_worker_client_cpu_per_event: {1e9 * cpu / events:.0f} ns")
            print(
                f"dask_{workers}_worker_cpu_per_event: {1e9 * sum(busy.values()) / events:.0f} ns"
            )
            print(
                f"dask_{workers}_worker_busiest_share: {max(busy.values()) / sum(busy.values()):.2f} fraction"
            )
            print(f"dask_{workers}_worker_system_cpu_per_event: {1e9 * system / events:.0f} ns")
            print(f"dask_{workers}_worker_page_faults: {faults} faults")
            print(f"dask_{workers}_worker_peak_memory_per_worker: {max(peaks.values()):.0f} MB")
            print(f"dask_{workers}_worker_memory_after_run: {max(resident.values()):.0f} MB")
            print(f"dask_{workers}_worker_load_average_before: {load:.2f} processes")
        print(f"dask_speedup_2_over_1: {rates[2] / rates[1]:.2f} x")
        print(f"dask_speedup_2_over_1_cpu_bound_estimate: {bound[1] / bound[2]:.2f} x")
        print(f"machine_cores: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
