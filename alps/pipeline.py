"""The analysis chain as cached stages: each stage runs one library function.

A stage is skipped when its record in ``<workdir>/.alps/<stage>.json`` holds the same content
hash: the hash of the configuration sections the stage reads, of its own options and of the
hashes of the stages it reads from. ``--force STAGE`` re-runs that stage and everything after it.
An interrupted run resumes: finished stages have records, the unfinished one has none (and the
generation stage itself skips files that are already complete).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import AnalysisConfig

__all__ = [
    "SCHEDULER_TIMEOUT_S",
    "STAGES",
    "RunContext",
    "Stage",
    "echo_skipped_inputs",
    "run_stages",
    "stage_hash",
]


#: seconds to wait for a scheduler given by address before giving up with a message
SCHEDULER_TIMEOUT_S = 10


@dataclass
class RunContext:
    """What every stage gets: the configuration, the work directory and a lazy Dask client."""

    config: AnalysisConfig
    workdir: Path
    cluster: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    echo: Callable[[str], None] = print
    _session: Any = field(default=None, repr=False)

    def client(self) -> Any:
        """The Dask client, started on first use and kept for the rest of the run (one
        cluster, and for batch profiles one set of jobs, serves every stage)."""
        if self._session is None:
            import dask
            import distributed  # noqa: F401  (its defaults must be in dask.config before the set)

            from .cluster import open_session

            timeout = {"distributed.comm.timeouts.connect": f"{SCHEDULER_TIMEOUT_S}s"}
            try:
                with dask.config.set(timeout if self.scheduler else {}):
                    self._session = open_session(
                        self.cluster, scheduler=self.scheduler, workers=self.workers
                    )
                    client = self._session.client
            except (OSError, TimeoutError) as exc:
                self._session = None
                where = self.scheduler or f"the {self.cluster!r} cluster"
                raise RuntimeError(f"cannot reach the Dask scheduler at {where}: {exc}") from exc
            self.echo(f"dask: {client.dashboard_link or client.scheduler.address}")
        return self._session.client

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


@dataclass(frozen=True)
class Stage:
    """A cached step: the config sections it reads (dotted paths; ``-a.b`` removes a field),
    the stages whose output it reads, the files it must leave behind, and its function."""

    name: str
    sections: tuple[str, ...]
    depends: tuple[str, ...]
    outputs: tuple[str, ...]
    run: Callable[[RunContext], Any]
    description: str = ""
    #: stages whose hashes enter this one's when they have run, without being required
    soft_depends: tuple[str, ...] = ()


def _pick(data: dict[str, Any], sections: Iterable[str]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for section in sections:
        if section.startswith("-"):
            continue
        node: Any = data
        for part in section.split("."):
            node = node[part]
        chosen[section] = node
    for section in sections:
        if not section.startswith("-"):
            continue
        *parents, leaf = section[1:].split(".")
        for key, node in chosen.items():
            if section[1:].startswith(key + "."):
                target = node
                for part in parents[len(key.split(".")) :]:
                    target = target[part]
                target.pop(leaf, None)
    return chosen


def stage_hash(stage: Stage, config: AnalysisConfig, upstream: dict[str, str]) -> str:
    data = json.loads(config.model_dump_json())
    if data.get("run_registry"):
        data["run_registry_sha256"] = hashlib.sha256(
            Path(data["run_registry"]).read_bytes()
        ).hexdigest()
    payload = {
        "stage": stage.name,
        "config": _pick(data, stage.sections),
        "upstream": {
            name: upstream[name] for name in stage.depends + stage.soft_depends if name in upstream
        },
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _record_path(workdir: Path, name: str) -> Path:
    return workdir / ".alps" / f"{name}.json"


def _read_record(workdir: Path, name: str) -> dict[str, Any] | None:
    path = _record_path(workdir, name)
    try:
        record: dict[str, Any] = json.loads(path.read_text())
        return record
    except (OSError, ValueError):
        return None


def run_stages(
    ctx: RunContext,
    stages: Sequence[Stage],
    *,
    force: str | None = None,
) -> dict[str, str]:
    """Run (or skip) the stages in order; returns each stage's outcome ("ran" or "skipped")."""
    names = [s.name for s in stages]
    if force is not None and force not in names:
        raise ValueError(f"--force {force!r}: not a stage of this run ({', '.join(names)})")
    forced = False
    hashes: dict[str, str] = {}
    outcome: dict[str, str] = {}
    for stage in stages:
        forced = forced or stage.name == force
        for dep in stage.depends + stage.soft_depends:
            if dep not in hashes:
                record = _read_record(ctx.workdir, dep)
                if record is not None:
                    hashes[dep] = record["hash"]
                elif dep in stage.depends:
                    raise RuntimeError(f"stage {stage.name!r} needs {dep!r}, which has not run")
        digest = stage_hash(stage, ctx.config, hashes)
        record = _read_record(ctx.workdir, stage.name)
        complete = all((ctx.workdir / out).exists() for out in stage.outputs)
        if not forced and record is not None and record.get("hash") == digest and complete:
            ctx.echo(f"[{stage.name}] up to date, skipped")
            hashes[stage.name] = digest
            outcome[stage.name] = "skipped"
            continue
        ctx.echo(f"[{stage.name}] {stage.description or 'running'}")
        start = time.perf_counter()
        _record_path(ctx.workdir, stage.name).unlink(missing_ok=True)
        stage.run(ctx)
        elapsed = time.perf_counter() - start
        path = _record_path(ctx.workdir, stage.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"hash": digest, "seconds": round(elapsed, 2), "finished": time.time()})
        )
        ctx.echo(f"[{stage.name}] done in {elapsed:.1f} s")
        hashes[stage.name] = digest
        outcome[stage.name] = "ran"
    return outcome


def _generate(ctx: RunContext) -> Any:
    from simulation.production import generate_samples

    client = ctx.client()
    return generate_samples(ctx.config, ctx.workdir, client=client, progress=ctx.progress)


def _calibrate(ctx: RunContext) -> Any:
    from processors.calibrate import run_calibration

    result = run_calibration(ctx.config, ctx.workdir, client=ctx.client(), progress=ctx.progress)
    names = {1: "forward", 2: "barrel", 3: "backward"}
    for period, regions in result.energy_scale.items():
        text = ", ".join(
            f"{names.get(r, r)} {v:.4f}"
            if math.isfinite(v)
            else f"{names.get(r, r)} too few mu mu gamma (barrel value used)"
            for r, v in regions.items()
        )
        ctx.echo(f"[calibrate] {period}: energy scale data/MC: {text}")
    return result


def _process(ctx: RunContext) -> Any:
    from processors.run import run_processing

    result = run_processing(ctx.config, ctx.workdir, client=ctx.client(), progress=ctx.progress)
    ctx.echo(f"[process] {result.events} events -> {result.histogram_file}")
    for item in result.skipped:
        ctx.echo(f"[process] skipped {item['file']}: {item['error']}")
    for path, counts in result.out_of_range.items():
        ctx.echo(f"[process] out-of-range values in {path}: {counts}")
    return result


def echo_skipped_inputs(ctx: RunContext, stage: str, histogram_file: str = "mgg.hist.zip") -> None:
    """Say, in a later stage's log, which inputs the processing skipped and the luminosity that
    remained (the histograms' provenance; processors.bookkeeping)."""
    from .histio import read_provenance

    path = ctx.workdir / "histograms" / histogram_file
    try:
        record = read_provenance(path)
    except (OSError, KeyError, ValueError):
        return
    skipped = record.get("skipped") or []
    if not skipped:
        return
    read = sum((record.get("luminosity_pb") or {}).values())
    planned = sum(
        (record.get("planned_luminosity_pb") or record.get("luminosity_pb") or {}).values()
    )
    ctx.echo(
        f"[{stage}] {len(skipped)} input(s) skipped in processing ({histogram_file}); "
        f"luminosity {read:.6g} of {planned:.6g} pb^-1: "
        + ", ".join(str(item.get("file")) for item in skipped)
    )


def _train(ctx: RunContext) -> Any:
    from models import train_models

    result = train_models(
        ctx.workdir / "skims", ctx.config, ctx.workdir, client=ctx.client(), progress=ctx.progress
    )
    ctx.echo(f"[train] working point: score >= {working_point(ctx)}")
    echo_skipped_inputs(ctx, "train")
    return result


def _score(ctx: RunContext) -> Any:
    from models import load_scorer
    from processors.run import run_processing

    model_dir = ctx.workdir / "models"
    result = run_processing(
        ctx.config,
        ctx.workdir,
        client=ctx.client(),
        scorer=load_scorer(model_dir),
        model_dir=model_dir,
        progress=ctx.progress,
    )
    ctx.echo(f"[score] {result.events} events -> {result.histogram_file}")
    for item in result.skipped:
        ctx.echo(f"[score] skipped {item['file']}: {item['error']}")
    return result


def working_point(ctx: RunContext) -> float:
    """The score cut: ``training.working_point`` when set (snapped to the nearest score-bin edge,
    since the histograms are binned in score), else the one training chose."""
    configured = ctx.config.training.working_point
    if configured is not None:
        edges = [e for e in ctx.config.histograms.score_edges if 0.0 < e < 1.0]
        snapped = min(edges, key=lambda e: abs(e - configured))
        if snapped != configured:
            ctx.echo(f"working point {configured} snapped to the score edge {snapped}")
        return float(snapped)
    path = ctx.workdir / "models" / "working_point.json"
    try:
        return float(json.loads(path.read_text())["cut"])
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(
            f"no working point: set training.working_point or run `alps train` ({exc})"
        ) from exc


def _shapes(ctx: RunContext) -> Any:
    from limits import fit_signal_shapes

    echo_skipped_inputs(ctx, "shapes", "mgg_score.hist.zip")
    return fit_signal_shapes(
        ctx.workdir / "histograms" / "mgg_score.hist.zip", ctx.config, ctx.workdir,
        working_point=working_point(ctx), client=ctx.client(), progress=ctx.progress,
    )  # fmt: skip


def _limits(ctx: RunContext) -> Any:
    from limits import run_limits

    result = run_limits(
        ctx.workdir / "histograms" / "mgg_score.hist.zip", ctx.config, ctx.workdir,
        client=ctx.client(), working_point=working_point(ctx), progress=ctx.progress,
    )  # fmt: skip
    ctx.echo(f"[limits] {ctx.workdir / 'limits' / 'limits.json'}")
    echo_skipped_inputs(ctx, "limits", "mgg_score.hist.zip")
    return result


def _report(ctx: RunContext) -> Any:
    from .report import build_report

    path = build_report(ctx.config, ctx.workdir)
    ctx.echo(f"[report] {path}")
    echo_skipped_inputs(ctx, "report")
    return path


#: configuration that changes what the processor computes (chunking and workers do not; the
#: luminosity uncertainty is a normalisation the limits take from the configuration)
_PROCESS_SECTIONS = (
    "preselection",
    "kinfit",
    "histograms",
    "systematics",
    "-systematics.luminosity",
    "seed",
    "simulation.detector",
)

STAGES: dict[str, Stage] = {
    "generate": Stage(
        "generate",
        ("seed", "run_slice", "run_registry", "simulation"),
        (),
        ("ntuples/manifest.json",),
        _generate,
        "generating run-dependent MC and pseudo-data",
    ),
    "calibrate": Stage(
        "calibrate",
        ("processing.skip_bad_files",),
        ("generate",),
        ("calibration/corrections.json", "calibration/results.json"),
        _calibrate,
        "photon resolution and scale from mu mu gamma, trigger efficiency",
    ),
    "process": Stage(
        "process",
        _PROCESS_SECTIONS,
        ("generate", "calibrate"),
        ("histograms/mgg.hist.zip", "skims/summary.json"),
        _process,
        "pre-selection, kinematic fit, candidates, histograms and skims",
    ),
    "train": Stage(
        "train",
        ("seed", "training", "-training.working_point", "histograms.resolution"),
        ("process",),
        ("models/punzi.pt", "models/working_point.json"),
        _train,
        "feature ranking, XGBoost, Punzi net, working point",
    ),
    "score": Stage(
        "score",
        _PROCESS_SECTIONS,
        ("generate", "calibrate", "train"),
        ("histograms/mgg_score.hist.zip",),
        _score,
        "processing again with the selection score",
    ),
    "shapes": Stage(
        "shapes",
        ("limits", "training.working_point", "histograms.resolution"),
        ("score", "train"),
        ("shapes/shapes.json",),
        _shapes,
        "signal shapes and their interpolation in mass",
    ),
    "limits": Stage(
        "limits",
        ("limits", "training.working_point", "systematics.luminosity"),
        ("score", "train", "shapes"),
        ("limits/limits.json",),
        _limits,
        "pyhf models, CLs limits, significance, coupling exclusion",
    ),
    "report": Stage(
        "report",
        (),
        ("generate",),
        ("report/index.html",),
        _report,
        "HTML report",
        soft_depends=("calibrate", "process", "train", "score", "shapes", "limits"),
    ),
}
