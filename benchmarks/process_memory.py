"""What sets the processing pass's worker memory: the sample or the chunk (issue 12).

``benchmarks/scale.py --quick`` saw the largest worker of ``alps process`` grow from 610 to
956 MB over a factor 4 in luminosity (exponent 0.32). Two things grow together there: the
number of chunks (the sample) and the events per chunk (at small luminosity a run block's file
holds fewer events than ``processing.chunk_size``). This benchmark separates them on one set of
ntuples, with ``processors.run.run_processing`` on a local cluster of two single-threaded
workers (each worker's RSS sampled every 0.2 s with psutil through ``client.run``):

* ``files``: more and more of the large files (data and gg, 100-250 k events each, one chunk
  each at the default ``chunk_size``): the sample grows, the chunk does not;
* ``chunk``: every large file at ``chunk_size`` 25 k ... 200 k: the sample is fixed, the chunk
  grows.

Per run it prints the events, chunks and largest chunk, the wall time, each worker's peak RSS,
its RSS when the run ends and after ``gc.collect()``, and fits the exponent of the worker peak
in the events (``files``) and in the largest chunk (``chunk``).

``--source DIR`` is a work directory with ``ntuples/`` (and ``calibration/``), e.g. one of
``alps run`` on the default; without it the default configuration's ntuples are generated first
at ``--lumi`` fb^-1 (0.445: the 2018 sample). ``--quick`` uses fewer points (under a minute on
a quiet 2-core machine once the ntuples exist).

Run: ``python -P benchmarks/process_memory.py --source WORKDIR [--quick] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import gc
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
from alps.contract import MANIFEST_FILE

#: samples whose files are large (100-250 k events at 0.445 fb^-1)
LARGE = ("data", "gg")
MB = 1024.0**2


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _rss_after_gc() -> int:
    gc.collect()
    return _rss()


class Timeline:
    """Each worker's RSS every ``interval_s`` while a run lasts."""

    def __init__(self, client: Any, interval_s: float = 0.2) -> None:
        self.client = client
        self.interval_s = interval_s
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                now = self.client.run(_rss)
            except Exception:  # a worker restarting
                continue
            self.samples.append((time.perf_counter() - self._t0, dict(now)))

    def peaks(self) -> dict[str, int]:
        peak: dict[str, int] = {}
        for _, now in self.samples:
            for worker, rss in now.items():
                peak[worker] = max(peak.get(worker, 0), rss)
        return peak


def subset_workdir(source: Path, target: Path, files: list[dict[str, Any]]) -> Path:
    """A work directory whose manifest lists ``files`` of ``source`` (linked, not copied)."""
    shutil.rmtree(target, ignore_errors=True)
    manifest = json.loads((source / MANIFEST_FILE).read_text())
    ntuples = target / "ntuples"
    ntuples.mkdir(parents=True)
    for sample in sorted({f["path"].split("/")[0] for f in files}):
        (ntuples / sample).symlink_to((source / "ntuples" / sample).resolve())
    (target / MANIFEST_FILE).write_text(json.dumps(dict(manifest, files=files)))
    if (source / "calibration").is_dir():
        shutil.copytree(source / "calibration", target / "calibration")
    return target


def chunk_events(files: list[dict[str, Any]], chunk_size: int) -> list[int]:
    """Events per chunk as coffea's Runner cuts each file (round(n / chunk_size) chunks)."""
    out: list[int] = []
    for f in files:
        n = int(f["events"])
        parts = max(round(n / chunk_size), 1)
        size = math.ceil(n / parts)
        out += [min(size, n - i * size) for i in range(parts)]
    return out


def run_once(
    client: Any, config: AnalysisConfig, workdir: Path, files: list[dict[str, Any]], chunk: int
) -> dict[str, Any]:
    from processors.run import run_processing

    base = config.model_dump(mode="json")
    base["processing"]["chunk_size"] = chunk
    cfg = AnalysisConfig.model_validate(base)
    client.run(gc.collect)
    before = client.run(_rss)
    with Timeline(client) as timeline:
        start = time.perf_counter()
        cpu0 = sum(client.run(lambda: sum(psutil.Process().cpu_times()[:2])).values())
        run_processing(cfg, workdir, client=client, progress=False)
        cpu = sum(client.run(lambda: sum(psutil.Process().cpu_times()[:2])).values()) - cpu0
        wall = time.perf_counter() - start
    end = client.run(_rss)
    after_gc = client.run(_rss_after_gc)
    chunks = chunk_events(files, chunk)
    peaks = timeline.peaks()
    return {
        "files": len(files),
        "events": int(sum(f["events"] for f in files)),
        "chunk_size": chunk,
        "chunks": len(chunks),
        "largest_chunk": max(chunks),
        "wall_s": wall,
        "worker_cpu_s": cpu,
        "worker_before_B": max(before.values()),
        "worker_peak_B": max(peaks.values(), default=0),
        "worker_peaks_B": sorted(peaks.values()),
        "worker_end_B": max(end.values()),
        "worker_after_gc_B": max(after_gc.values()),
        "timeline": [(round(t, 2), sorted(v.values())) for t, v in timeline.samples],
    }


def slope(x: list[float], y: list[float]) -> float:
    """Exponent of y in x (log-log straight line)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0]) if len(x) > 1 else math.nan


def _print(series: str, res: dict[str, Any]) -> None:
    name = f"process_memory.{series}.{res['files']}files.{res['chunk_size'] // 1000}k"
    print(f"{name}.events: {res['events']} events")
    print(f"{name}.chunks: {res['chunks']} chunks")
    print(f"{name}.largest_chunk: {res['largest_chunk']} events")
    print(f"{name}.wall: {res['wall_s']:.1f} s")
    print(f"{name}.worker_cpu_per_event: {res['worker_cpu_s'] / res['events'] * 1e9:.0f} ns")
    print(f"{name}.worker_before: {res['worker_before_B'] / MB:.0f} MB")
    print(f"{name}.worker_peak: {res['worker_peak_B'] / MB:.0f} MB")
    print(f"{name}.worker_end: {res['worker_end_B'] / MB:.0f} MB")
    print(f"{name}.worker_after_gc: {res['worker_after_gc_B'] / MB:.0f} MB")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="work directory with ntuples/")
    parser.add_argument("--lumi", type=float, default=0.445, help="fb^-1 to generate (no source)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--all", action="store_true",
                        help="only one run: every file of the source at the default chunk size")  # fmt: skip
    args = parser.parse_args()
    from alps.cluster import open_session

    root = Path(tempfile.mkdtemp(prefix="alps-procmem-"))
    base = load_config(None).model_dump(mode="json")
    base["run_slice"] = f"lumi={args.lumi:g}"
    config = AnalysisConfig.model_validate(base)
    session = open_session("local", workers=args.workers)
    client = session.client
    results: dict[str, list[dict[str, Any]]] = {"files": [], "chunk": []}
    try:
        source = args.source
        if source is None:
            from alps.pipeline import RunContext, run_stages

            source = root / "source"
            ctx = RunContext(config, source, progress=False, echo=lambda s: None)
            ctx._session = session  # one cluster for the generation and the runs
            run_stages(ctx, ["generate", "calibrate"])
        manifest = json.loads((source / MANIFEST_FILE).read_text())
        if args.all:
            files = manifest["files"]
            workdir = subset_workdir(source, root / "all", files)
            res = run_once(client, config, workdir, files, config.processing.chunk_size)
            _print("all", res)
            if args.json:
                args.json.write_text(json.dumps({"all": [res]}, indent=1))
            return
        large = [f for f in manifest["files"] if f["sample"] in LARGE]
        # interleave the samples so every subset holds data and MC
        large.sort(key=lambda f: (f["path"].rsplit("_", 1)[-1], f["block"], f["sample"]))
        counts = [2, len(large)] if args.quick else [2, 4, 8, len(large)]
        counts = sorted({min(c, len(large)) for c in counts})
        chunks = [50_000, 200_000] if args.quick else [25_000, 50_000, 100_000, 200_000]
        default_chunk = config.processing.chunk_size
        for count in counts:
            files = large[:count]
            workdir = subset_workdir(source, root / f"files{count}", files)
            res = run_once(client, config, workdir, files, default_chunk)
            results["files"].append(res)
            _print("files", res)
        files = large
        workdir = subset_workdir(source, root / "chunks", files)
        for chunk in chunks:
            res = run_once(client, config, workdir, files, chunk)
            results["chunk"].append(res)
            _print("chunk", res)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
        f, c = results["files"], results["chunk"]
        e_files = slope([r["events"] for r in f], [r["worker_peak_B"] for r in f])
        e_chunk = slope([r["largest_chunk"] for r in c], [r["worker_peak_B"] for r in c])
        print(f"process_memory.exponent.worker_peak_in_events: {e_files:.3f}")
        print(f"process_memory.exponent.worker_peak_in_chunk_events: {e_chunk:.3f}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    finally:
        session.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
