"""What ``alps run`` would do for a configuration, without running it (``alps plan``, issue 12).

For each stage: the tasks it hands to Dask, the events (or mass points) it works on, the disk
its outputs take and the core-hours it costs, from

* the production plan (:func:`simulation.production.plan_production` with ``estimate=True``:
  every generator calibrated on the slice's first run block; the event counts agree with a real
  generation to about 0.2 %): files, events per sample;
* the coffea chunking of each file by ``processing.chunk_size`` and the tree reduction of the
  chunk outputs (8 per merge task);
* the costs and output sizes measured on this machine by ``benchmarks/scale.py``
  (:data:`MEASURED`, with the date and the run; ``--costs FILE`` reads the ``--json`` output of
  another run instead): CPU core-seconds, a fixed part plus a marginal cost per event;
* the memory of the dense ``mgg_score`` histogram: datasets x periods x variations x truth x mass
  bins x score bins x 16 bytes (weight and variance); on disk the histogram files take the
  measured bytes per (dataset, period) (the zip compresses the empty bins).

The report does not grow with the sample; training learns from at most
``training.max_background_candidates`` background candidates and beyond that only reads more
skims (:func:`_training_events`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alps.config import AnalysisConfig
from alps.contract import MGG_SCORE, is_signal, make_histograms, variation_names

__all__ = ["MEASURED", "Plan", "StagePlan", "format_plan", "plan_run"]

#: merge tasks take this many chunk outputs (processors.run, processors.score_pass)
TREE_REDUCTION = 8

#: Costs measured by ``benchmarks/scale.py --lumi 0.1 0.445 2 --out ...`` on 2026-12-03 on this
#: project's 2-core machine (load average 7-32 from other jobs; a local cluster of two
#: single-threaded workers; the embedded default: 41 signal masses, 1112 scan masses). Costs are
#: CPU time (user + system of the client, the workers and their pools: core-seconds, which the
#: load inflates far less than wall time), split into ``fixed`` core-seconds and a marginal
#: ``per_event`` cost through 0.445 and 2 fb^-1 (3 200 945 and 14 088 134 events; the disk of
#: process through 0.1 and 0.445 fb^-1). Shapes, limits and the report at 0.445 fb^-1: shapes
#: and limits cost ``per_mass`` (signal masses, scan masses), the report a fixed time. Training
#: learns from every background candidate until the skims hold
#: ``training.max_background_candidates`` rows (0.0916 rows per generated event: 1 290 249 at
#: 2 fb^-1), then from a fixed subsample: beyond that point only
#: its read of the skims grows, costed at the score pass's marginal ``read_per_event`` (an upper
#: bound: the score pass reads the same skims and the variation lists, and fills histograms).
#: Disk: marginal bytes per event through the same points (skims and variation lists for
#: process) plus per (dataset, period) for the histograms of process and score, or fixed.
MEASURED: dict[str, Any] = {
    "source": "benchmarks/scale.py --lumi 0.1 0.445 2, 2026-12-03 (2 shared cores; CPU time)",
    "cores": 2,
    "stages": {
        "generate": {"per_event": (275.8 - 76.6) / (14_088_134 - 3_200_945), "fixed": 18.1,
                     "disk_per_event": (3_493_463_355 - 955_696_696) / (14_088_134 - 3_200_945)},
        "calibrate": {"per_event": (29.9 - 10.5) / (14_088_134 - 3_200_945), "fixed": 4.8,
                      "fixed_disk": 1.4e6},
        "process": {"per_event": (154.2 - 57.0) / (14_088_134 - 3_200_945), "fixed": 28.4,
                    "disk_per_event": (201_797_205 - 87_982_678) / (3_200_945 - 781_861),
                    "disk_per_category": 2.16e6 / 51},
        "train": {"per_event": (585.2 - 168.8) / (14_088_134 - 3_200_945), "fixed": 46.4,
                  "background_rows_per_event": 1_290_249 / 14_088_134,
                  "read_per_event": (45.4 - 18.6) / (14_088_134 - 3_200_945), "fixed_disk": 2.9e6},
        "score": {"per_event": (45.4 - 18.6) / (14_088_134 - 3_200_945), "fixed": 10.7,
                  "disk_per_category": 4.56e6 / 51},
        "shapes": {"per_mass": 18.2 / 41, "fixed_disk": 3.8e5},
        "limits": {"per_mass": 44.8 / 1112, "disk_per_mass": 8.34e6 / 1112},
        "report": {"fixed": 23.0, "fixed_disk": 5.9e6},
    },
}  # fmt: skip


@dataclass(frozen=True)
class StagePlan:
    """One stage: Dask tasks, what it works on, disk of its outputs (bytes), core-hours."""

    stage: str
    tasks: int
    work: str
    disk_bytes: float
    core_hours: float


@dataclass(frozen=True)
class Plan:
    run_slice: str
    luminosity_fb: float
    files: int
    events: int
    chunks: int
    masses: int
    #: bytes of the dense mgg_score histogram in memory (mgg.hist.zip is smaller, compressed)
    histogram_bytes: float
    stages: tuple[StagePlan, ...]
    source: str

    @property
    def core_hours(self) -> float:
        return sum(s.core_hours for s in self.stages)

    @property
    def disk_bytes(self) -> float:
        return sum(s.disk_bytes for s in self.stages)


def _chunks(events: int, chunk_size: int) -> int:
    """Chunks of one file as coffea's Runner cuts it (round(n / chunk_size), at least one)."""
    return max(round(events / chunk_size), 1)


def _merge_tasks(n: int) -> int:
    """Reduction tasks of a tree that merges ``TREE_REDUCTION`` outputs per task."""
    total = 0
    while n > 1:
        n = math.ceil(n / TREE_REDUCTION)
        total += n
    return total


def _histogram_bytes(config: AnalysisConfig, datasets: int, periods: int) -> float:
    """The dense mgg_score histogram: one dataset and period filled, times datasets x periods."""
    from processors.binning import mass_edges

    edges = tuple(float(e) for e in mass_edges(config.histograms))
    hist = make_histograms(edges, config.histograms.score_edges)[MGG_SCORE]
    for variation in variation_names():
        hist.fill(dataset="d", period="p", variation=variation, truth="matched", mgg=[1.0],
                  score=[0.5])  # fmt: skip
    return float(hist.view(flow=True).nbytes) * datasets * periods


def _costs(path: str | Path | None) -> dict[str, Any]:
    """:data:`MEASURED`, or the costs of a ``benchmarks/scale.py --json`` file: per stage the CPU
    time (core-seconds; wall x workers in files without it) split into a fixed part and a
    marginal cost per event through its two largest luminosities (per mass point for shapes and
    limits, fixed for the report), and the disk the same way."""
    if path is None:
        return MEASURED
    data = json.loads(Path(path).read_text())
    results = sorted(data["results"], key=lambda r: r["lumi_fb"])
    cores = int(data.get("workers", 2))

    def cpu(r: dict[str, Any], name: str) -> float:
        f = r["stages"][name]
        return float(f["cpu_s"]) if "cpu_s" in f else float(f["wall_s"]) * cores

    last = results[-1]
    prev = results[-2] if len(results) > 1 else None
    stages: dict[str, Any] = {}
    for name, f in last["stages"].items():
        if name in ("shapes", "limits"):
            key = "signal_masses" if name == "shapes" and "signal_masses" in last else "masses"
            masses = max(int(last[key]), 1)
            stages[name] = {"per_mass": cpu(last, name) / masses,
                            "disk_per_mass": f["disk_B"] / masses}  # fmt: skip
        elif name == "report":
            stages[name] = {"fixed": cpu(last, name), "fixed_disk": f["disk_B"]}
        elif prev is not None and name in prev["stages"] and last["events"] > prev["events"]:
            span = last["events"] - prev["events"]
            per = (cpu(last, name) - cpu(prev, name)) / span
            disk = (f["disk_B"] - prev["stages"][name]["disk_B"]) / span
            stages[name] = {"per_event": per, "fixed": cpu(last, name) - per * last["events"],
                            "disk_per_event": disk,
                            "fixed_disk": f["disk_B"] - disk * last["events"]}  # fmt: skip
        else:
            stages[name] = {"per_event": cpu(last, name) / last["events"],
                            "disk_per_event": f["disk_B"] / last["events"]}  # fmt: skip
    return {"source": f"{path} ({data.get('benchmark')}, {data.get('date')})", "cores": cores,
            "stages": stages}  # fmt: skip


def _training_events(events: float, costs: dict[str, Any], cap: int) -> tuple[float, float]:
    """The events whose background candidates the training learns from (all of them until the
    skims hold ``cap`` = ``training.max_background_candidates`` rows, then a fixed subsample), and
    the events beyond that, whose skims it only reads."""
    rows_per_event = float(costs.get("background_rows_per_event", 0.0))
    if rows_per_event <= 0:
        return events, 0.0
    learned = min(events, cap / rows_per_event)
    return learned, events - learned


def plan_run(config: AnalysisConfig, costs: str | Path | None = None) -> Plan:
    """The plan of ``alps run`` for ``config`` (nothing is generated or run)."""
    from limits.grid import scan_masses
    from simulation.production import plan_production, selected_registry

    registry = selected_registry(config)
    tasks = plan_production(config, registry, estimate=True)
    events = sum(t.n_events for t in tasks)
    signal_events = sum(t.n_events for t in tasks if is_signal(t.sample))
    chunk_size = config.processing.chunk_size
    chunks = sum(_chunks(t.n_events, chunk_size) for t in tasks)
    calib_files = [t for t in tasks if not is_signal(t.sample)]
    calib_chunks = sum(_chunks(t.n_events, chunk_size) for t in calib_files)
    samples = Counter(t.sample for t in tasks)
    periods = len(registry.periods)
    masses = len(scan_masses(config))
    signal_masses = len(config.simulation.signal.masses.masses())
    hist_bytes = _histogram_bytes(config, len(samples), periods)
    measured = _costs(costs)
    c = measured["stages"]

    def cost(stage: str, count: float) -> float:
        f = c.get(stage, {})
        seconds = f.get("per_event", 0.0) * count + f.get("per_mass", 0.0) * count
        return (seconds + f.get("fixed", 0.0)) / 3600.0

    learned, read_only = _training_events(
        events, c.get("train", {}), config.training.max_background_candidates
    )
    train_hours = cost("train", learned) + c.get("train", {}).get("read_per_event", 0.0) * (
        read_only / 3600.0
    )
    # k-fold evaluation (training.evaluation_folds) trains the selections k times (issue #13)
    train_hours *= max(1, config.training.evaluation_folds)

    categories = len(samples) * periods

    def disk(stage: str, count: float) -> float:
        f = c.get(stage, {})
        per = f.get("disk_per_event", 0.0) + f.get("disk_per_mass", 0.0)
        grid = f.get("disk_per_category", 0.0) * categories
        return per * count + grid + f.get("fixed_disk", 0.0)

    stages = (
        StagePlan("generate", len(tasks), f"{events:,} events in {len(tasks):,} files",
                  disk("generate", events), cost("generate", events)),
        StagePlan("calibrate", len(calib_files) + calib_chunks + _merge_tasks(calib_chunks),
                  f"{events - signal_events:,} events (no signal)", disk("calibrate", 0),
                  cost("calibrate", events)),
        StagePlan("process", len(tasks) + chunks + _merge_tasks(chunks),
                  f"{events:,} events in {chunks:,} chunks",
                  disk("process", events), cost("process", events)),
        StagePlan("train", 0, "at most training.max_background_candidates = "
                  f"{config.training.max_background_candidates:,} candidates",
                  disk("train", 0), train_hours),
        StagePlan("score", chunks + _merge_tasks(chunks),
                  f"the candidates of {chunks:,} chunks' skims and variation lists",
                  disk("score", events), cost("score", events)),
        StagePlan("shapes", signal_masses, f"{signal_masses} signal masses",
                  disk("shapes", signal_masses), cost("shapes", signal_masses)),
        StagePlan("limits", masses, f"{masses} mass points", disk("limits", masses),
                  cost("limits", masses)),
        StagePlan("report", 0, "one page", disk("report", 0), cost("report", 0)),
    )  # fmt: skip
    lumi_fb = sum(b.lumi_pb for b in registry) / 1000.0
    return Plan(
        config.run_slice,
        lumi_fb,
        len(tasks),
        events,
        chunks,
        masses,
        hist_bytes,
        stages,
        str(measured["source"]),
    )


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g} {unit}"
        n /= 1000.0
    raise AssertionError  # pragma: no cover


def format_plan(plan: Plan) -> str:
    """The plan as a table (one line per stage) with its totals."""
    lines = [
        f"run_slice {plan.run_slice}: {plan.luminosity_fb:.4g} fb^-1, {plan.files:,} files, "
        f"{plan.events:,} events, {plan.chunks:,} chunks, {plan.masses} mass points",
        f"{'stage':10s} {'tasks':>9s} {'disk':>10s} {'core-h':>10s}  work",
    ]
    for s in plan.stages:
        lines.append(
            f"{s.stage:10s} {s.tasks:9,d} {_size(s.disk_bytes):>10s} {s.core_hours:10.3g}  {s.work}"
        )
    lines.append(f"{'total':10s} {'':9s} {_size(plan.disk_bytes):>10s} {plan.core_hours:10.3g}")
    lines.append(
        f"mgg_score histogram in memory (dense): {_size(plan.histogram_bytes)}; "
        f"costs: {plan.source}"
    )
    return "\n".join(lines)
