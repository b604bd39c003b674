"""How the whole chain's cost grows with the luminosity (issue 12).

Runs the embedded default configuration at growing luminosity (``run_slice: "lumi=L"``: the 2018
sample first, then 2019 runs) through every stage of ``alps run`` on the local Dask cluster, one
stage at a time, and prints per stage and luminosity:

* ``wall``: the stage's wall time, and ``per_event`` (per generated event; per mass point for
  ``shapes`` and ``limits``);
* ``client_peak`` and ``worker_peak``: the peak resident memory of this process and of the largest
  worker (sampled every 0.25 s with psutil, on the workers through ``client.run``), and
  ``workers``: every worker's peak;
* ``disk``: the size of the stage's outputs (the files its record lists);

then, per stage, the growth exponents of time and memory in the luminosity (the slope of a
straight-line fit in log-log: 1 is linear, 0 flat) and the score/process time ratio.

``--quick`` runs 0.04, 0.08 and 0.16 fb^-1 (below about 0.03 the calibration finds too few mu mu
gamma events) with a short training, a coarse signal grid and five
limit masses (a few minutes); the full mode 0.1, 0.445, 2 and 5 fb^-1 with the default
configuration (5 fb^-1 is 35 M events: hours on two cores; ``--lumis`` chooses). ``--json FILE``
also writes every figure (``alps plan`` reads the per-event costs from such a file).

Run: ``python -P benchmarks/scale.py [--quick] [--lumis 0.1,0.445] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import psutil

from alps.config import AnalysisConfig, load_config
from alps.pipeline import STAGES, RunContext, run_stages
from alps.records import read_record

#: stages whose cost is counted per mass point rather than per event
PER_MASS = ("shapes", "limits")
FULL_LUMIS = (0.1, 0.445, 2.0, 5.0)
QUICK_LUMIS = (0.04, 0.08, 0.16)


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


class MemorySampler:
    """Peak RSS of this process and of each Dask worker while a stage runs."""

    def __init__(self, client: Any, interval_s: float = 0.25) -> None:
        self.client = client
        self.interval_s = interval_s
        self.client_peak = 0
        self.worker_peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.client_peak = max(self.client_peak, _rss())
        try:
            now = self.client.run(_rss)
        except Exception:  # a worker restarting: the next sample sees it
            return
        for worker, rss in now.items():
            self.worker_peak[worker] = max(self.worker_peak.get(worker, 0), int(rss))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()


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


def _masses(workdir: Path) -> int:
    path = workdir / "limits" / "limits.json"
    return len(json.loads(path.read_text())["masses_GeV"]) if path.exists() else 0


def _disk(workdir: Path, stage: str) -> int:
    record = read_record(workdir, stage) or {}
    return int(sum((workdir / p).stat().st_size for p in record.get("outputs", {})))


def run_luminosity(lumi_fb: float, quick: bool, workers: int, root: Path) -> dict[str, Any]:
    """Every stage at one luminosity; the figures per stage."""
    workdir = root / f"lumi{lumi_fb:g}"
    shutil.rmtree(workdir, ignore_errors=True)
    ctx = RunContext(
        configuration(lumi_fb, quick), workdir, workers=workers, progress=False,
        echo=lambda line: print(f"  {line}", file=sys.stderr),
    )  # fmt: skip
    figures: dict[str, Any] = {"lumi_fb": lumi_fb, "stages": {}}
    try:
        client = ctx.client()
        for stage in STAGES:
            with MemorySampler(client) as memory:
                start = time.perf_counter()
                run_stages(ctx, [stage], force=stage)
                wall = time.perf_counter() - start
            figures["stages"][stage] = {
                "wall_s": wall,
                "client_peak_B": memory.client_peak,
                "worker_peak_B": max(memory.worker_peak.values(), default=0),
                "workers_B": sorted(memory.worker_peak.values()),
                "disk_B": _disk(workdir, stage),
            }
    finally:
        ctx.close()
    figures["events"] = _events(workdir)
    figures["masses"] = _masses(workdir)
    for stage, f in figures["stages"].items():
        count = figures["masses"] if stage in PER_MASS else figures["events"]
        f["per_unit_s"] = f["wall_s"] / count if count else math.nan
    shutil.rmtree(workdir / "ntuples", ignore_errors=True)  # the disk of the next luminosity
    return figures


def exponent(lumis: list[float], values: list[float]) -> float:
    """Slope of log(value) against log(luminosity) (nan with fewer than two points)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(lumis, values) if x > 0 and y > 0]
    if len(pairs) < 2:
        return math.nan
    x, y = np.array(pairs).T
    return float(np.polyfit(x, y, 1)[0])


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Print the table and the exponents; returns the exponents."""
    mb = 1024.0**2
    for res in results:
        lumi = f"{res['lumi_fb']:g}fb"
        print(f"scale.{lumi}.events: {res['events']} events")
        for stage, f in res["stages"].items():
            unit = "s/mass" if stage in PER_MASS else "us/event"
            per = f["per_unit_s"] if stage in PER_MASS else f["per_unit_s"] * 1e6
            name = f"scale.{lumi}.{stage}"
            print(f"{name}.wall: {f['wall_s']:.2f} s")
            print(f"{name}.per_{'mass' if stage in PER_MASS else 'event'}: {per:.4g} {unit}")
            print(f"{name}.client_peak: {f['client_peak_B'] / mb:.0f} MB")
            print(f"{name}.worker_peak: {f['worker_peak_B'] / mb:.0f} MB")
            workers = ",".join(f"{w / mb:.0f}" for w in f["workers_B"])
            print(f"{name}.workers: {workers} MB")
            print(f"{name}.disk: {f['disk_B'] / mb:.2f} MB")
        process = res["stages"]["process"]["wall_s"]
        print(f"scale.{lumi}.score_over_process: {res['stages']['score']['wall_s'] / process:.3f}")
    lumis = [r["lumi_fb"] for r in results]
    exponents: dict[str, Any] = {}
    for stage in STAGES:
        series = {
            "time": [r["stages"][stage]["wall_s"] for r in results],
            "client_memory": [r["stages"][stage]["client_peak_B"] for r in results],
            "worker_memory": [r["stages"][stage]["worker_peak_B"] for r in results],
            "disk": [r["stages"][stage]["disk_B"] for r in results],
        }
        exponents[stage] = {k: exponent(lumis, v) for k, v in series.items()}
        for key, value in exponents[stage].items():
            print(f"scale.exponent.{stage}.{key}: {value:.2f}")
    print("\nstage      " + "".join(f"{r['lumi_fb']:>22g}" for r in results) + "   exp(t)  exp(w)")
    for stage in STAGES:
        cells = []
        for r in results:
            f = r["stages"][stage]
            per = f["per_unit_s"] if stage in PER_MASS else f["per_unit_s"] * 1e6
            cells.append(
                f"{per:9.3g}{'s/m' if stage in PER_MASS else 'us'} {f['worker_peak_B'] / mb:6.0f}MB"
            )
        e = exponents[stage]
        print(
            f"{stage:10s} "
            + "".join(f"{c:>22s}" for c in cells)
            + f"   {e['time']:6.2f}  {e['worker_memory']:6.2f}"
        )
    return exponents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.04, 0.08, 0.16 fb^-1, light chain")
    parser.add_argument("--lumis", default=None, help="comma-separated luminosities in fb^-1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the work directories")
    args = parser.parse_args()
    lumis = (
        [float(x) for x in args.lumis.split(",")]
        if args.lumis
        else list(QUICK_LUMIS if args.quick else FULL_LUMIS)
    )
    root = args.workdir or Path(tempfile.mkdtemp(prefix="alps-scale-"))
    results = []
    try:
        for lumi in lumis:
            print(f"[scale] {lumi:g} fb^-1", file=sys.stderr)
            results.append(run_luminosity(lumi, args.quick, args.workers, root))
            if args.json:  # each luminosity as it finishes
                args.json.write_text(json.dumps({"results": results}, indent=1))
        exponents = report(results)
        if args.json:
            payload = {
                "benchmark": "benchmarks/scale.py" + (" --quick" if args.quick else ""),
                "date": time.strftime("%Y-%m-%d"),
                "workers": args.workers,
                "cpu_count": os.cpu_count(),
                "results": results,
                "exponents": exponents,
            }
            args.json.write_text(json.dumps(payload, indent=1))
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
