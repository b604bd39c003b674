"""1 -> 2 Dask workers: the processing's scaling as a fixed cost plus a cost per event.

One point (the speedup of one sample) mixes what grows with the sample with what does not: the
file checks, each worker's start of processing (heap growth, first opens), the tail of unequal
chunks, the client's merge and writing. This benchmark times the processing of the same
configuration (``benchmarks/processor.py``'s) at several sample sizes (generation untimed), on a
LocalCluster of 1 and of 2 workers (alps's malloc settings, every worker warmed up on a small
sample), and fits per worker count

    T(N) = fixed + per_event x N

by least squares over the sizes. It prints, per worker count and size, the wall time, the rate,
the workers' and the client's CPU per event, the busiest worker's share of the workers' CPU and
the files opened by the workers (opens of the same file by two workers are paid twice); then the
fit's fixed cost and cost per event, the steady-state speedup ``per_event_1 / per_event_2`` and
the end-to-end speedup at each size.

Every figure is given by the wall clock and as a CPU-bound estimate (the busiest worker's CPU
seconds plus the client's, the client counted as serial), which the other processes of a shared
machine distort less; the load average before each run is printed beside it. ``cpu_total`` is the
CPU of all processes (workers and client): its cost per event with two workers over one's is what
Dask adds when it spreads the work.

A control without Dask, timed in the same rounds: the same processing in one forked process and in
two at once (``independent_*``). Its CPU per event two over one is the machine's own share of any
excess (two processes on a loaded machine slow each other down); ``dask_excess_over_independent``
is Dask's part. ``--compare`` also times, alternated with alps's settings, the same with each file's
chunks placed on the worker that checked it (``placed_*``, ``processors.run.PLACE_CHUNKS``) and
with Dask's defaults as before (``dask_defaults_*``: the workers' profiler and 20 ms tick on,
files checked where Dask puts them, chunks in their order). Each round makes a fresh cluster per variant and worker count; its first run also
pays each worker's heap growth (as a fresh ``alps process`` does), so the smallest sample is
processed once more at the end and the best runs are fitted; ``first_run_extra`` is that
growth's cost (CPU-bound, first run minus the repeat, median over the rounds).

Run: ``python -P benchmarks/workers.py [--quick] [--compare] [--repeat N] [--workdir DIR]``
(``--workdir`` keeps the generated samples for the next run); prints ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

from alps.contract import MANIFEST_FILE, Manifest
from alps.records import RECORD_DIR
from processors.run import run_processing
from simulation.production import generate_samples


def _load_processor_benchmark() -> Any:
    """benchmarks/processor.py as a module (its configuration, warm-up and malloc settings); by
    path: the benchmarks folder on ``sys.path`` would shadow the ``kinfit`` package."""
    path = Path(__file__).resolve().with_name("processor.py")
    spec = importlib.util.spec_from_file_location("alps_processor_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its functions are pickled by reference for client.run
    spec.loader.exec_module(module)
    return module


bench = _load_processor_benchmark()

#: luminosities (fb^-1) of the sample sizes: full mode (1.38, 4.1 and 10.3 M events: a lever arm
#: long enough for the per-round fit of the cost per event to hold within a few per cent on a
#: quiet machine), --quick
SIZES = (0.2, 0.6, 1.5)
QUICK_SIZES = (0.03, 0.09)


def _sample(base: Path, lumi: float) -> tuple[Path, int, int]:
    """The work directory of the benchmark's configuration at ``lumi`` (generated unless
    present): its path, events and files."""
    workdir = base / f"lumi{lumi:g}"
    if not (workdir / MANIFEST_FILE).exists():
        (workdir / RECORD_DIR).mkdir(parents=True, exist_ok=True)
        generate_samples(bench._config(lumi), workdir, progress=False)
    manifest = Manifest.read(workdir / MANIFEST_FILE)
    return workdir, sum(f.events for f in manifest.files), len(manifest.files)


def _count_opens() -> None:
    """Count, in this worker, the files it opens (processors.opening), from now on."""
    import processors.opening as opening

    if not hasattr(opening, "_bench_opens"):
        real = opening._Open

        def counting(stamp: Any, handle: Any) -> Any:
            opening._bench_opens.append(handle.file_path)  # type: ignore[attr-defined]
            return real(stamp, handle)

        opening._Open = counting  # type: ignore[misc]
    opening._bench_opens = []  # type: ignore[attr-defined]


def _opens() -> list[str]:
    import processors.opening as opening

    return list(getattr(opening, "_bench_opens", []))


def _usage() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _fresh_workers(client: Any) -> None:
    """``_fresh`` in every worker's task thread: the files a thread keeps open are that
    thread's (processors.opening), and ``client.run`` runs in another thread of the worker."""
    for address in client.nthreads():
        client.submit(bench._fresh, workers=[address], pure=False).result()


def _time_run(client: Any, lumi: float, workdir: Path) -> dict[str, Any]:
    """One timed processing of ``workdir`` on ``client``'s cluster."""
    load = os.getloadavg()[0]
    bench._fresh()
    _fresh_workers(client)
    client.run(_count_opens)
    before = client.run(_usage)
    start, cpu = time.perf_counter(), time.process_time()
    run_processing(bench._config(lumi), workdir, client=client, progress=False, write_skims=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = client.run(_usage)
    busy = {w: after[w] - before[w] for w in after}
    opens = client.run(_opens)
    every = [p for files in opens.values() for p in files]
    return {
        "wall": wall,
        "client": cpu,
        "workers": sum(busy.values()),
        "busiest": max(busy.values()),
        "bound": max(busy.values()) + cpu,
        "opens": len(every),
        "files_opened": len(set(every)),
        "load": load,
    }


def _copies(workdir: Path, n: int) -> list[Path]:
    """``n`` copies of a work directory whose ntuples are hard links (each process writes its
    own histograms)."""
    import shutil

    copies = []
    for k in range(n):
        copy = workdir.with_name(f"{workdir.name}-copy{k}")
        if not copy.exists():
            shutil.copytree(workdir, copy, copy_function=os.link,
                            ignore=shutil.ignore_patterns("histograms"))  # fmt: skip
        copies.append(copy)
    return copies


def _control(lumi: float, workdir: Path) -> dict[str, float]:
    """The machine's own scaling at this moment, without Dask: the same processing in one
    forked process, then in two at once (each on its own copy); CPU and wall seconds."""
    config = bench._config(lumi)
    copies = _copies(workdir, 2)
    alone = bench._independent(config, copies[:1])[0]
    together = bench._independent(config, copies)
    return {
        "alone_cpu": alone[0],
        "alone_wall": alone[1],
        "together_cpu": sum(cpu for cpu, _ in together) / 2,
        "together_wall": max(wall for _, wall in together),
    }


def _fit(sizes: list[int], times: list[float]) -> tuple[float, float]:
    """Least-squares ``fixed, per_event`` of ``T = fixed + per_event x N``."""
    per_event, fixed = np.polyfit(np.asarray(sizes, float), np.asarray(times, float), 1)
    return float(fixed), float(per_event)


#: what is timed: alps's settings, and (``--compare``) the same with a file's chunks placed on the
#: worker that checked it (``processors.run.PLACE_CHUNKS``), and Dask's defaults as before issue
#: 12's scaling work (the workers' profiler and 20 ms tick on, files checked wherever Dask puts
#: them, chunks in their order); each: (quiet Dask settings, files shared out for their check,
#: chunks placed, biggest chunks first)
VARIANTS: dict[str, tuple[bool, bool, bool, bool]] = {
    "alps": (True, True, False, True),
    "placed": (True, True, True, True),
    "dask_defaults": (False, False, False, False),
}


def _variant(name: str) -> Any:
    """A context that makes the clusters and the processing of a variant."""
    import contextlib

    from alps import cluster
    from processors import run as run_module

    quiet, shared, placed, biggest = VARIANTS[name]

    @contextlib.contextmanager
    def variant() -> Any:
        executor = run_module.WindowedDaskExecutor
        checks = run_module._check_on_workers

        def configured(*args: Any, **kwargs: Any) -> Any:
            return executor(*args, **dict(kwargs, biggest_first=biggest))

        def anywhere(client: Any, args: list[list[Any]]) -> Any:
            return client.gather(client.map(run_module._check_file, *args, pure=False)), {}

        place = run_module.PLACE_CHUNKS
        run_module.PLACE_CHUNKS = placed
        run_module.WindowedDaskExecutor = configured  # type: ignore[misc]
        if not shared:
            run_module._check_on_workers = anywhere  # type: ignore[assignment]
        try:
            with bench._worker_malloc() if quiet else cluster.worker_malloc():
                yield
        finally:
            run_module.PLACE_CHUNKS = place
            run_module.WindowedDaskExecutor = executor  # type: ignore[misc]
            run_module._check_on_workers = checks  # type: ignore[assignment]

    return variant()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples (about a minute)")
    parser.add_argument(
        "--repeat", type=int, help="rounds of timed runs (best kept; default 2, --quick 1)"
    )
    parser.add_argument("--workdir", help="keep the generated samples here (re-used next time)")
    parser.add_argument(
        "--sizes", type=float, nargs="+", help="luminosities in fb^-1 (default: 0.2 0.6 1.5)"
    )
    parser.add_argument(
        "--compare", action="store_true", help="time the variants too, alternated with alps's"
    )
    args = parser.parse_args()
    sizes = tuple(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    if len(set(sizes)) < 2:
        parser.error("the fit needs at least two sample sizes")
    variants = list(VARIANTS) if args.compare else ["alps"]
    repeat = args.repeat or (1 if args.quick else 2)
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.workdir) if args.workdir else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        samples = {lumi: _sample(base, lumi) for lumi in sizes}
        warm = base / "warm"
        if not (warm / MANIFEST_FILE).exists():
            (warm / RECORD_DIR).mkdir(parents=True, exist_ok=True)
            generate_samples(bench._config(0.002), warm, progress=False)
        for lumi, (_, events, files) in samples.items():
            print(f"sample_{lumi:g}_fb_events: {events} events")
            print(f"sample_{lumi:g}_fb_files: {files} files")

        # every variant and worker count once per round, on a fresh cluster: the machine's load
        # changes alike for all of them; the best of the rounds is kept, figure by figure
        runs: dict[tuple[str, int, float], list[dict[str, Any]]] = {}
        control: dict[float, list[dict[str, float]]] = {}
        # the forked processes of the control need this process warm (numba loaded)
        run_processing(bench._config(0.002), warm, progress=False, write_skims=False)
        for round_ in range(repeat):
            for lumi, (workdir, _, _) in samples.items():
                control.setdefault(lumi, []).append(_control(lumi, workdir))
            for variant in variants:
                for workers in (1, 2):
                    with _variant(variant), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:  # fmt: skip
                        client.run(bench._warm_worker, bench._config(0.002), str(warm))
                        for lumi, (workdir, _, _) in samples.items():
                            result = dict(_time_run(client, lumi, workdir), round=round_)
                            runs.setdefault((variant, workers, lumi), []).append(result)
                        # the smallest again, its workers' heaps grown: the first run's extra
                        # CPU is that growth (a fixed cost of a fresh cluster), not the sample's
                        lumi, (workdir, _, _) = next(iter(samples.items()))
                        again = dict(_time_run(client, lumi, workdir), round=round_)
                        first = runs[(variant, workers, lumi)][-1]
                        again["first_run_extra"] = first["bound"] - again["bound"]
                        runs[(variant, workers, lumi)].append(again)
        ratio = _report_control(control, samples)
        for variant in variants:
            _report(variant, {k[1:]: v for k, v in runs.items() if k[0] == variant}, samples, ratio)
        print(f"machine_cores: {os.cpu_count()} cores")


def _report_control(
    control: dict[float, list[dict[str, float]]], samples: dict[float, tuple[Path, int, int]]
) -> float:
    """Print the control's figures; return its CPU per event together over alone (fit)."""
    best = {lumi: {k: min(r[k] for r in runs) for k in runs[0]} for lumi, runs in control.items()}
    for lumi, r in best.items():
        events = samples[lumi][1]
        tag = f"independent_{lumi:g}fb"
        print(f"{tag}_1_process_cpu_per_event: {1e9 * r['alone_cpu'] / events:.0f} ns")
        print(f"{tag}_2_processes_cpu_per_event: {1e9 * r['together_cpu'] / events:.0f} ns")
        print(f"{tag}_speedup_2_over_1: {2 * r['alone_wall'] / r['together_wall']:.2f} x")
    events_at = [samples[lumi][1] for lumi in best]
    slopes = {}
    for key in ("alone_cpu", "together_cpu"):
        fixed, slopes[key] = _fit(events_at, [best[lumi][key] for lumi in best])
        print(f"independent_fit_{key}_fixed: {fixed:.3f} s")
        print(f"independent_fit_{key}_per_event: {1e9 * slopes[key]:.0f} ns")
    ratio = slopes["together_cpu"] / slopes["alone_cpu"]
    print(f"independent_cpu_per_event_2_over_1: {ratio:.3f} x")
    return ratio


def _report(
    variant: str,
    runs: dict[tuple[int, float], list[dict[str, Any]]],
    samples: dict[float, tuple[Path, int, int]],
    control: float,
) -> None:
    """Print a variant's figures: per point the best of its runs, then the fits; ``control``:
    the independent processes' CPU per event two over one (the machine's own share)."""
    prefix = "" if variant == "alps" else f"{variant}_"
    sizes = list(samples)
    best: dict[tuple[int, float], dict[str, float]] = {}
    for (workers, lumi), results in runs.items():
        r = dict(min(results, key=lambda x: x["wall"]))
        for key in ("wall", "bound", "workers", "client", "busiest"):
            r[key] = min(x[key] for x in results)
        r["total"] = min(x["workers"] + x["client"] for x in results)
        best[(workers, lumi)] = r
    for workers in (1, 2):
        for lumi in sizes:
            events = samples[lumi][1]
            r = best[(workers, lumi)]
            tag = f"{prefix}dask_{workers}w_{lumi:g}fb"
            print(f"{tag}_wall: {r['wall']:.3f} s")
            print(f"{tag}_rate: {events / r['wall']:.0f} events/s")
            print(f"{tag}_cpu_bound_time: {r['bound']:.3f} s")
            print(f"{tag}_worker_cpu_per_event: {1e9 * r['workers'] / events:.0f} ns")
            print(f"{tag}_client_cpu_per_event: {1e9 * r['client'] / events:.0f} ns")
            print(f"{tag}_busiest_share: {r['busiest'] / r['workers']:.3f} fraction")
            print(f"{tag}_file_opens: {r['opens']} opens")
            print(f"{tag}_files_opened: {r['files_opened']} files")
            print(f"{tag}_load_average_before: {r['load']:.2f} processes")
        extra = [x["first_run_extra"] for x in runs[(workers, sizes[0])] if "first_run_extra" in x]
        print(f"{prefix}dask_{workers}w_first_run_extra_cpu_bound: {float(np.median(extra)):.3f} s")
    events_at = [samples[lumi][1] for lumi in sizes]
    for name, key in (("wall", "wall"), ("cpu_bound", "bound"), ("cpu_total", "total")):
        fits = {}
        for workers in (1, 2):
            fixed, per_event = _fit(events_at, [best[(workers, s)][key] for s in sizes])
            fits[workers] = per_event
            print(f"{prefix}fit_{name}_{workers}w_fixed: {fixed:.3f} s")
            print(f"{prefix}fit_{name}_{workers}w_per_event: {1e9 * per_event:.0f} ns")
        if name == "cpu_total":  # the CPU all processes spend: its growth, not a speedup
            print(f"{prefix}cpu_total_per_event_2_over_1: {fits[2] / fits[1]:.3f} x")
            # what two Dask workers spend more than two independent processes would
            print(f"{prefix}dask_excess_over_independent: {fits[2] / fits[1] / control:.3f} x")
            continue
        print(f"{prefix}speedup_{name}_steady_state_2_over_1: {fits[1] / fits[2]:.2f} x")
        for lumi in sizes:
            ratio = best[(1, lumi)][key] / best[(2, lumi)][key]
            print(f"{prefix}speedup_{name}_end_to_end_{lumi:g}fb_2_over_1: {ratio:.2f} x")
        # the same fit within each round (its 1- and 2-worker clusters ran back to back, under
        # much the same load): the spread of the rounds shows what the load does to the figure
        rounds = sorted({x["round"] for v in runs.values() for x in v})
        if len(rounds) > 1:
            per_round = []
            for k in rounds:
                slope = {}
                for workers in (1, 2):
                    times = [
                        min(x[key] for x in runs[(workers, s)] if x["round"] == k) for s in sizes
                    ]
                    slope[workers] = _fit(events_at, times)[1]
                per_round.append(slope[1] / slope[2])
            print(
                f"{prefix}speedup_{name}_steady_state_2_over_1_rounds: "
                f"{' '.join(f'{x:.2f}' for x in per_round)} x"
            )


if __name__ == "__main__":
    main()
