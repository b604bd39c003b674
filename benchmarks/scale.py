"""How the whole chain's cost grows with the luminosity (issue 12).

Runs the embedded default configuration at growing luminosity (``run_slice: "lumi=L"``: the 2018
sample first, then 2019 runs) through every stage of ``alps run`` on the local Dask cluster, one
stage at a time, and prints per stage and luminosity:

* ``wall``: the stage's wall time, and ``per_event`` (per generated event; per mass point for
  ``shapes`` and ``limits``);
* ``cpu``: the CPU time (user + system) of this process, the Dask workers and every other process
  started under this one (generation pools), and ``cpu_per_event`` (per mass point): unlike the
  wall time it does not depend on what else runs on a shared machine;
* ``client_peak`` and ``worker_peak``: the peak resident memory of this process and of the largest
  worker (sampled every 0.25 s with psutil, on the workers through ``client.run``), and
  ``workers``: every worker's peak;
* ``client_start`` and ``client_rise``: this process's memory when the stage starts and how far
  its peak rose above that: the stages run one after the other in one process, so a stage's
  peak includes what the stages before it left, and its rise is its own;
* ``disk``: the size of the stage's outputs (the files its record lists);

then, per stage, the growth exponents of wall time, CPU time and memory in the luminosity (the
slope of a straight-line fit in log-log: 1 is linear, 0 flat) with the slope's standard error
(three points or more), the exponent between the two largest points (where fixed costs weigh
least), and the score/process time ratio. ``--out DIR`` gets ``scale.json`` and ``scale.md``
(the table and exponents), rewritten after every stage, so a run that is stopped still leaves
its figures. Each luminosity runs in a fresh process (the client's peak memory is its own), and
``--table FILE`` prints the table of an earlier run's ``scale.json``.

``--quick`` runs 0.04, 0.08 and 0.16 fb^-1 (below about 0.03 the calibration finds too few mu mu
gamma events) with a short training, a coarse signal grid and five
limit masses (a few minutes); the full mode 0.1, 0.445, 2 and 5 fb^-1 with the default
configuration (5 fb^-1 is 35 M events: hours on two cores; ``--lumi 0.1 0.445`` chooses).
``--json FILE`` also writes every figure (``alps plan`` reads the per-event costs from such a
file).

Run: ``python -P benchmarks/scale.py [--quick] [--lumi 0.1 0.445] [--out DIR] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psutil

from alps.config import AnalysisConfig, load_config
from alps.pipeline import STAGES, RunContext, run_stages
from alps.records import read_record

#: stages whose cost is counted per mass point rather than per event (signal masses for shapes,
#: scan masses for limits)
PER_MASS = ("shapes", "limits")
FULL_LUMIS = (0.1, 0.445, 2.0, 5.0)
QUICK_LUMIS = (0.04, 0.08, 0.16)


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def tree_cpu_s() -> float:
    """CPU seconds (user + system) of this process, every live process under it (the local
    cluster's workers, pools) and the children it and they have reaped."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:  # ended between the listing and the read
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class Sampler:
    """Calls ``sample()`` every ``interval_s`` from a thread while its ``with`` block runs (the
    benchmarks' memory and task samplers)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> Any:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()


class MemorySampler(Sampler):
    """Peak RSS of this process and of each Dask worker while a stage runs, and each worker's
    RSS when it ends."""

    def __init__(self, client: Any, interval_s: float = 0.25) -> None:
        super().__init__(interval_s)
        self.client = client
        self.client_peak = 0
        self.client_start = 0
        self.worker_peak: dict[str, int] = {}
        self.worker_end: dict[str, int] = {}

    def __enter__(self) -> Any:
        self.client_start = self.client_peak = _rss()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.worker_end = self.sample()

    def sample(self) -> dict[str, int]:
        self.client_peak = max(self.client_peak, _rss())
        try:
            now = self.client.run(_rss)
        except Exception:  # a worker restarting: the next sample sees it
            return {}
        for worker, rss in now.items():
            self.worker_peak[worker] = max(self.worker_peak.get(worker, 0), int(rss))
        return {w: int(r) for w, r in now.items()}


def configuration(lumi_fb: float, quick: bool) -> AnalysisConfig:
    """The embedded default at ``lumi_fb`` (quick: a short training, a coarse signal grid and five
    limit masses, so the chain runs in about a minute per luminosity)."""
    base = load_config(None).model_dump(mode="json", exclude_unset=False)
    base["run_slice"] = f"lumi={lumi_fb:g}"
    if quick:
        base["simulation"]["signal"]["masses"] = {"values": [0.5, 2.0, 5.0, 8.0]}
        base["simulation"]["signal"]["events_per_mass"] = 1000
        base["training"].update(bce_epochs=2, punzi_epochs=3, held_out_masses=0, compare_nets=False)
        base["training"].update(xgboost_rounds=20)
        base["limits"]["masses"] = {"values": [0.5, 1.0, 2.0, 5.0, 8.0]}
        base["limits"]["lee_toys"] = 0
    return AnalysisConfig.model_validate(base)


def _events(workdir: Path) -> int:
    manifest = json.loads((workdir / "ntuples" / "manifest.json").read_text())
    return int(sum(f["events"] for f in manifest["files"]))


def _disk(workdir: Path, stage: str) -> int:
    record = read_record(workdir, stage) or {}
    return int(sum((workdir / p).stat().st_size for p in record.get("outputs", {})))


def run_luminosity(
    lumi_fb: float,
    quick: bool,
    workers: int,
    root: Path,
    on_stage: Callable[[dict[str, Any]], None] = lambda figures: None,
) -> dict[str, Any]:
    """Every stage at one luminosity; the figures per stage (``on_stage`` gets them after each
    stage, so a stopped run keeps what it measured)."""
    from limits.grid import scan_masses
    from simulation.production import selected_registry

    workdir = root / f"lumi{lumi_fb:g}"
    shutil.rmtree(workdir, ignore_errors=True)
    config = configuration(lumi_fb, quick)
    ctx = RunContext(
        config, workdir, workers=workers, progress=False,
        echo=lambda line: print(f"  {line}", file=sys.stderr),
    )  # fmt: skip
    figures: dict[str, Any] = {
        "lumi_fb": lumi_fb,
        "events": 0,
        "signal_masses": len(config.simulation.signal.masses.masses()),
        "masses": len(scan_masses(config)),
        # the histograms hold every run period: their size grows with it (not with the events)
        "periods": len(selected_registry(config).periods),
        "load_start": list(os.getloadavg()),
        "stages": {},
    }
    try:
        client = ctx.client()
        for stage in STAGES:
            cpu0 = tree_cpu_s()
            with MemorySampler(client) as memory:
                start = time.perf_counter()
                run_stages(ctx, [stage], force=stage)
                wall = time.perf_counter() - start
            cpu = tree_cpu_s() - cpu0
            if stage == "generate":
                figures["events"] = _events(workdir)
            count = {"shapes": figures["signal_masses"], "limits": figures["masses"]}.get(
                stage, figures["events"]
            )
            figures["stages"][stage] = {
                "wall_s": wall,
                "cpu_s": cpu,
                "per_unit_s": wall / count if count else math.nan,
                "cpu_per_unit_s": cpu / count if count else math.nan,
                "client_peak_B": memory.client_peak,
                "client_start_B": memory.client_start,
                "client_rise_B": memory.client_peak - memory.client_start,
                "worker_peak_B": max(memory.worker_peak.values(), default=0),
                "workers_B": sorted(memory.worker_peak.values()),
                "workers_end_B": sorted(memory.worker_end.values()),
                "disk_B": _disk(workdir, stage),
                "load_end": list(os.getloadavg()),
            }
            on_stage(figures)
    finally:
        ctx.close()
    shutil.rmtree(workdir / "ntuples", ignore_errors=True)  # the disk of the next luminosity
    return figures


def exponent(lumis: list[float], values: list[float]) -> tuple[float, float]:
    """Slope of log(value) against log(luminosity) and its standard error (nan with fewer than
    two points; the error needs three)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(lumis, values) if x > 0 and y > 0]
    if len(pairs) < 2:
        return math.nan, math.nan
    x, y = np.array(pairs).T
    slope, intercept = np.polyfit(x, y, 1)
    if len(pairs) < 3:
        return float(slope), math.nan
    residual = y - (slope * x + intercept)
    error = math.sqrt(
        float(residual @ residual) / (len(x) - 2) / float(((x - x.mean()) ** 2).sum())
    )
    return float(slope), error


def last_pair_exponent(lumis: list[float], values: list[float]) -> float:
    """The exponent between the two largest luminosities (fixed costs weigh least there)."""
    pairs = sorted((x, y) for x, y in zip(lumis, values) if x > 0 and y > 0)
    if len(pairs) < 2:
        return math.nan
    (x0, y0), (x1, y1) = pairs[-2:]
    return math.log(y1 / y0) / math.log(x1 / x0)


SERIES = {
    "time": "wall_s",
    "cpu": "cpu_s",
    "client_memory": "client_peak_B",
    "client_rise": "client_rise_B",
    "worker_memory": "worker_peak_B",
    "disk": "disk_B",
}


def exponents(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage and quantity: the fitted exponent, its error and the last pair's exponent (over
    the luminosities where the stage ran)."""
    out: dict[str, Any] = {}
    for stage in STAGES:
        done = [r for r in results if stage in r["stages"]]
        lumis = [r["lumi_fb"] for r in done]
        out[stage] = {}
        for name, key in SERIES.items():
            values = [float(r["stages"][stage].get(key, math.nan)) for r in done]
            slope, error = exponent(lumis, values)
            out[stage][name] = {"exponent": slope, "error": error,
                                "last_pair": last_pair_exponent(lumis, values)}  # fmt: skip
        out[stage]["cpu_split"] = cpu_split(stage, done)
    return out


def cpu_split(stage: str, done: list[dict[str, Any]]) -> dict[str, float]:
    """CPU = fixed + marginal x units (events; mass points for shapes and limits) through the two
    largest luminosities: the marginal cost is what a larger sample adds (``alps plan`` uses it),
    the fixed part is start-up (imports, numba, cluster) and work that does not grow."""

    def units(r: dict[str, Any]) -> float:
        if stage in PER_MASS:
            return float(r["masses"] if stage == "limits" else r["signal_masses"])
        return float(r["events"])

    ordered = sorted(done, key=lambda r: r["lumi_fb"])
    points = [(units(r), float(r["stages"][stage]["cpu_s"])) for r in ordered]
    if len(points) < 2 or points[-1][0] == points[-2][0]:
        units, cpu = points[-1] if points else (math.nan, math.nan)
        return {"marginal_s": cpu / units if units else math.nan, "fixed_s": 0.0}
    (n0, c0), (n1, c1) = points[-2:]
    marginal = (c1 - c0) / (n1 - n0)
    return {"marginal_s": marginal, "fixed_s": c1 - marginal * n1}


def _per(stage: str, seconds: float) -> str:
    return f"{seconds:.3g} s/mass" if stage in PER_MASS else f"{seconds * 1e6:.3g} us/event"


def _mb(figures: dict[str, Any], key: str) -> str:
    """A memory figure in MB, "–" where an earlier run did not record it."""
    return f"{figures[key] / 1024.0**2:.0f}" if key in figures else "–"


def _exp(e: dict[str, float]) -> str:
    if math.isnan(e["exponent"]):
        return "–"
    error = "" if math.isnan(e["error"]) else f" ± {e['error']:.2f}"
    return f"{e['exponent']:.2f}{error} ({e['last_pair']:.2f})"


def markdown(results: list[dict[str, Any]], header: str) -> str:
    """The stage x luminosity table and the exponents as markdown."""
    mb = 1024.0**2
    lines = [header, "",
             "| stage | fb^-1 (periods) | events | wall s | CPU s | wall per event | CPU per event "
             "| worker peak MB | worker end MB | client start MB | client peak MB | client rise MB "
             "| disk MB | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for stage in STAGES:
        for r in results:
            f = r["stages"].get(stage)
            if f is None:
                continue
            workers = "/".join(f"{w / mb:.0f}" for w in f["workers_B"])
            ends = "/".join(f"{w / mb:.0f}" for w in f["workers_end_B"])
            lines.append(
                f"| {stage} | {r['lumi_fb']:g} ({r.get('periods', '?')}) | {r['events']:,} "
                f"| {f['wall_s']:.1f} "
                f"| {f['cpu_s']:.1f} | {_per(stage, f['per_unit_s'])} "
                f"| {_per(stage, f['cpu_per_unit_s'])} | {workers} | {ends} "
                f"| {_mb(f, 'client_start_B')} | {f['client_peak_B'] / mb:.0f} "
                f"| {_mb(f, 'client_rise_B')} | {f['disk_B'] / mb:.2f} | {f['load_end'][0]:.1f} |"
            )
    lines += ["", "Exponents in the luminosity: fit ± standard error (last pair); CPU = fixed + "
              "marginal x events (mass points) through the two largest points.", "",
              "| stage | wall | CPU | worker peak | client peak | client rise | disk | CPU fixed "
              "| CPU marginal |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for stage, e in exponents(results).items():
        split = e["cpu_split"]
        lines.append(
            f"| {stage} | {_exp(e['time'])} | {_exp(e['cpu'])} | {_exp(e['worker_memory'])} "
            f"| {_exp(e['client_memory'])} | {_exp(e['client_rise'])} | {_exp(e['disk'])} "
            f"| {split['fixed_s']:.1f} s "
            f"| {_per(stage, split['marginal_s'])} |"
        )
    return "\n".join(lines) + "\n"


def wide_table(results: list[dict[str, Any]]) -> str:
    """One line per stage: CPU per event (per mass point), the largest worker, the client and the
    disk at each luminosity ("a / b / c"), the CPU and worker-memory exponents and the marginal
    CPU (the README's table)."""
    mb = 1024.0**2
    lumis = " / ".join(f"{r['lumi_fb']:g}" for r in results)
    lines = [f"| stage | CPU per event ({lumis} fb^-1) | largest worker MB | client MB, peak (rise) | disk MB "
             "| exponent CPU | exponent worker | marginal CPU |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    exps = exponents(results)
    for stage in STAGES:
        done = [r["stages"][stage] for r in results if stage in r["stages"]]

        def cells(key: str, scale: float, fmt: str, rows: list[dict[str, Any]] = done) -> str:
            return " / ".join(format(f[key] / scale, fmt) for f in rows)

        unit = 1.0 if stage in PER_MASS else 1e-6
        e = exps[stage]
        lines.append(
            f"| {stage} | {cells('cpu_per_unit_s', unit, '.3g')} {'s/mass' if unit == 1 else 'µs'} "
            f"| {cells('worker_peak_B', mb, '.0f')} | {_client_cells(done)} "
            f"| {cells('disk_B', mb, '.3g')} | {_exp(e['cpu'])} | {_exp(e['worker_memory'])} "
            f"| {_per(stage, e['cpu_split']['marginal_s'])} |"
        )
    return "\n".join(lines) + "\n"


def _client_cells(rows: list[dict[str, Any]]) -> str:
    """The client's peak and, where recorded, its rise over the stage ("1900 (+300)")."""
    mb = 1024.0**2
    return " / ".join(
        f"{f['client_peak_B'] / mb:.0f}"
        + (f" (+{f['client_rise_B'] / mb:.0f})" if "client_rise_B" in f else "")
        for f in rows
    )


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Print every figure as ``name: value unit`` lines; returns the exponents."""
    mb = 1024.0**2
    for res in results:
        lumi = f"{res['lumi_fb']:g}fb"
        print(f"scale.{lumi}.events: {res['events']} events")
        for stage, f in res["stages"].items():
            name = f"scale.{lumi}.{stage}"
            kind = "mass" if stage in PER_MASS else "event"
            print(f"{name}.wall: {f['wall_s']:.2f} s")
            print(f"{name}.cpu: {f['cpu_s']:.2f} s")
            print(f"{name}.per_{kind}: {_per(stage, f['per_unit_s'])}")
            print(f"{name}.cpu_per_{kind}: {_per(stage, f['cpu_per_unit_s'])}")
            print(f"{name}.client_peak: {f['client_peak_B'] / mb:.0f} MB")
            if "client_rise_B" in f:
                print(f"{name}.client_start: {f['client_start_B'] / mb:.0f} MB")
                print(f"{name}.client_rise: {f['client_rise_B'] / mb:.0f} MB")
            print(f"{name}.worker_peak: {f['worker_peak_B'] / mb:.0f} MB")
            workers = ",".join(f"{w / mb:.0f}" for w in f["workers_B"])
            print(f"{name}.workers: {workers} MB")
            print(f"{name}.disk: {f['disk_B'] / mb:.2f} MB")
        stages = res["stages"]
        if "score" in stages:
            for key in ("wall_s", "cpu_s"):
                ratio = stages["score"][key] / stages["process"][key]
                print(f"scale.{lumi}.score_over_process_{key[:-2]}: {ratio:.3f}")
    result = exponents(results)
    for stage, quantities in result.items():
        split = quantities.pop("cpu_split")
        print(f"scale.cpu.{stage}.fixed: {split['fixed_s']:.2f} s")
        print(f"scale.cpu.{stage}.marginal: {_per(stage, split['marginal_s'])}")
        for name, e in quantities.items():
            if math.isnan(e["exponent"]):
                continue
            print(f"scale.exponent.{stage}.{name}: {e['exponent']:.2f}")
            print(f"scale.exponent.{stage}.{name}_error: {e['error']:.2f}")
            print(f"scale.exponent.{stage}.{name}_last_pair: {e['last_pair']:.2f}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.04, 0.08, 0.16 fb^-1, light chain")
    parser.add_argument("--lumi", type=float, nargs="+", default=None,
                        help="luminosities in fb^-1, run in increasing order")  # fmt: skip
    parser.add_argument("--lumis", default=None, help="the same, comma-separated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--out", type=Path, default=None,
                        help="write scale.json and scale.md here after every stage")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None, help="keep the work directories")
    parser.add_argument("--table", type=Path, default=None,
                        help="print the table of an earlier run's scale.json and stop")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        earlier = json.loads(args.table.read_text())
        report(earlier["results"])
        print(markdown(earlier["results"], f"{earlier['benchmark']}, {earlier['date']}"))
        print(wide_table(earlier["results"]))
        return
    if args.lumi:
        lumis = sorted(args.lumi)
    elif args.lumis:
        lumis = sorted(float(x) for x in args.lumis.split(","))
    else:
        lumis = list(QUICK_LUMIS if args.quick else FULL_LUMIS)
    benchmark = "benchmarks/scale.py" + (" --quick" if args.quick else "")
    header = (f"{benchmark}, {time.strftime('%Y-%m-%d %H:%M')}, {args.workers} workers, "
              f"{os.cpu_count()} cores, luminosities {lumis} fb^-1")  # fmt: skip
    root = args.workdir or Path(tempfile.mkdtemp(prefix="alps-scale-"))
    saver = Saver(benchmark, header, args.workers, args.json, args.out)
    results: list[dict[str, Any]] = []
    spawn = multiprocessing.get_context("spawn")
    try:
        for lumi in lumis:
            print(f"[scale] {lumi:g} fb^-1", file=sys.stderr)
            done = root / f"lumi{lumi:g}.json"
            child = spawn.Process(
                target=_one_luminosity,
                args=(lumi, args.quick, args.workers, root, results, saver, done),
            )  # a fresh process per luminosity: the client's peak is its own
            child.start()
            child.join()
            if child.exitcode != 0 or not done.exists():
                raise SystemExit(f"[scale] {lumi:g} fb^-1 failed (exit code {child.exitcode})")
            results.append(json.loads(done.read_text()))
            saver.save(results)
        report(results)
        print(markdown(results, header))
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Saver:
    """Writes the figures so far (``--json`` and ``--out``); pickled into each luminosity's
    process."""

    benchmark: str
    header: str
    workers: int
    json_path: Path | None
    out: Path | None

    def save(self, current: list[dict[str, Any]]) -> None:
        data = json.dumps(
            {"benchmark": self.benchmark, "date": time.strftime("%Y-%m-%d"),
             "workers": self.workers, "cpu_count": os.cpu_count(), "results": current,
             "exponents": exponents(current)}, indent=1,
        )  # fmt: skip
        if self.json_path:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(data)
        if self.out:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "scale.json").write_text(data)
            (self.out / "scale.md").write_text(
                markdown(current, self.header) + "\n" + wide_table(current)
            )


def _one_luminosity(
    lumi: float,
    quick: bool,
    workers: int,
    root: Path,
    earlier: list[dict[str, Any]],
    saver: Saver,
    done: Path,
) -> None:
    figures = run_luminosity(
        lumi, quick, workers, root, on_stage=lambda partial: saver.save([*earlier, partial])
    )
    done.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
