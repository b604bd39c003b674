"""The analysis chain as cached stages: each stage runs one library function.

What each stage reads (configuration sections, code, files of the stages before it) and writes is
declared here; :mod:`alps.cache` decides what is up to date and runs the rest. ``--force STAGE``
re-runs that stage and everything after it. An interrupted run resumes: finished stages have
records, the unfinished one has its previous record (if any), whose outputs no longer match, or
none (and the generation stage itself skips files that are already complete).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import CacheView, Stage, StageError
from .cache import run_stages as _run_stages
from .config import AnalysisConfig
from .histio import file_checksum, signal_digest
from .records import digest_json

__all__ = [
    "SCHEDULER_TIMEOUT_S",
    "STAGES",
    "RunContext",
    "Stage",
    "StageError",
    "echo_skipped_inputs",
    "run_stages",
    "working_point",
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


def run_stages(
    ctx: RunContext, names: Sequence[str], *, force: str | None = None
) -> dict[str, str]:
    """Run the named stages of :data:`STAGES` that are not up to date (see :mod:`alps.cache`)."""
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise StageError(f"unknown stage(s) {unknown}: stages are {', '.join(STAGES)}")
    return _run_stages(ctx, STAGES, [n for n in STAGES if n in names], force=force)


# -- what the stages read ---------------------------------------------------------------------


def _manifest_content(path: Path) -> str:
    """The manifest without its per-run bookkeeping (which files this run found already made)."""
    manifest = json.loads(path.read_text())
    for entry in manifest.get("files", []):
        entry.pop("skipped", None)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _ntuples(view: CacheView, *, signal: bool = True) -> dict[str, str | None]:
    """Digests of the ntuples the generation wrote (optionally without the signal samples) and
    of the manifest's content."""
    files: dict[str, str | None] = {
        p: d
        for p, d in view.outputs_of("generate", "ntuples/").items()
        if p.endswith(".root") and (signal or not p.startswith("ntuples/alp_"))
    }
    files["ntuples/manifest.json"] = view.digests.derived(
        "ntuples/manifest.json", "content", _manifest_content
    )
    return files


def _generate_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    registry = ctx.config.run_registry
    return {"run_registry": file_checksum(registry)} if registry else {}


def _calibrate_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    return _ntuples(view, signal=False)


def _process_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    return {**_ntuples(view), **view.outputs_of("calibrate", CALIBRATION)}


def _skim_summary_mc(path: Path) -> str:
    """What training reads of ``skims/summary.json``: the MC entries and the data luminosity,
    numbers to 12 digits (the luminosity is a sum of per-file shares, whose last bit moves when
    the pseudo-data files hold other event counts)."""
    summary = json.loads(path.read_text())
    data = summary.pop("data", None)
    if isinstance(data, dict) and "luminosity_pb" in data:
        summary["data"] = {"luminosity_pb": data["luminosity_pb"]}
    rounded = {
        dataset: {k: f"{v:.12g}" if isinstance(v, float) else v for k, v in facts.items()}
        for dataset, facts in summary.items()
    }
    return hashlib.sha256(json.dumps(rounded, sort_keys=True).encode()).hexdigest()


def _mc_skims(view: CacheView) -> dict[str, str]:
    return {
        p: d
        for p, d in view.outputs_of("process", "skims/").items()
        if p.endswith(".parquet") and not p.startswith(("skims/data/", f"{VARIATION_LISTS}/"))
    }


def _train_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    """The MC skims the processing record lists; skims on disk that it does not list (left by
    another processing run) are refused, since training would read them."""
    listed = set(view.outputs_of("process", "skims/"))
    present = {str(p.relative_to(ctx.workdir)) for p in (ctx.workdir / "skims").glob("*/*.parquet")}
    stray = sorted(present - listed)
    if stray:
        raise StageError(
            f"{len(stray)} skim file(s) under {ctx.workdir / 'skims'} are not listed by the "
            f"processing record (e.g. {stray[0]}): they come from another processing run; "
            "re-run `alps process` to replace the skims"
        )
    summary = view.digests.derived("skims/summary.json", "mc", _skim_summary_mc)
    return {**_mc_skims(view), "skims/summary.json#mc": summary}


def _score_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    """The processing pass's histograms, skims and variation lists (what the score pass reads),
    its inputs (what a full pass reads when the lists cannot serve the model), the model."""
    return {
        **_process_inputs(ctx, view),
        **view.outputs_of("process", "histograms/mgg.hist.zip"),
        **view.outputs_of("process", "skims/"),
        **view.outputs_of("train", "models/"),
    }


def _shapes_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    return {
        f"{SCORE_HISTOGRAMS}#signal": view.digests.derived(
            SCORE_HISTOGRAMS, "signal", signal_digest
        ),
        "working_point": str(working_point(ctx, quiet=True)),
    }


def _limits_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    return {
        **view.outputs_of("score", SCORE_HISTOGRAMS),
        **view.outputs_of("shapes", "shapes/shapes.json"),
        "working_point": str(working_point(ctx, quiet=True)),
    }


def _report_inputs(ctx: RunContext, view: CacheView) -> dict[str, str | None]:
    """Every record the report reads: the outputs of each stage that has run."""
    return {name: digest_json(record.get("outputs", {})) for name, record in view.records.items()}


def _files(*patterns: str) -> Callable[[Path], list[str]]:
    """Outputs: the files matching the patterns (relative to the work directory)."""

    def outputs(workdir: Path) -> list[str]:
        found = {p for pattern in patterns for p in workdir.glob(pattern) if p.is_file()}
        return sorted(str(p.relative_to(workdir)) for p in found if not p.name.endswith(".tmp"))

    return outputs


def _generated(workdir: Path) -> list[str]:
    manifest = json.loads((workdir / "ntuples" / "manifest.json").read_text())
    return ["ntuples/manifest.json", *(f"ntuples/{e['path']}" for e in manifest["files"])]


# -- the stages -------------------------------------------------------------------------------


def _generate(ctx: RunContext) -> Mapping[str, Any]:
    from simulation.production import generate_samples

    manifest = generate_samples(
        ctx.config, ctx.workdir, client=ctx.client(), progress=ctx.progress, echo=ctx.echo
    )
    reused = sum(bool(f.get("skipped")) for f in manifest["files"])
    return {"files": len(manifest["files"]), "reused": reused}


def _calibrate(ctx: RunContext) -> None:
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


def _process(ctx: RunContext) -> Mapping[str, Any]:
    from processors.run import run_processing

    result = run_processing(ctx.config, ctx.workdir, client=ctx.client(), progress=ctx.progress)
    ctx.echo(f"[process] {result.events} events -> {result.histogram_file}")
    for item in result.skipped:
        ctx.echo(f"[process] skipped {item['file']}: {item['error']}")
    for path, counts in result.out_of_range.items():
        ctx.echo(f"[process] out-of-range values in {path}: {counts}")
    return {"skipped": list(result.skipped)}


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


def _train(ctx: RunContext) -> None:
    from models import train_models

    train_models(
        ctx.workdir / "skims", ctx.config, ctx.workdir, client=ctx.client(), progress=ctx.progress
    )
    ctx.echo(f"[train] working point: score >= {working_point(ctx)}")
    echo_skipped_inputs(ctx, "train")


def _score(ctx: RunContext) -> Mapping[str, Any]:
    """Score the candidates the processing pass listed (processors.score_pass); when its lists
    cannot serve this model (a feature they lack), run the processor again with the scorer."""
    from models import load_scorer
    from processors.run import run_processing
    from processors.score_pass import ScoreListsUnavailable, run_scoring

    model_dir = ctx.workdir / "models"
    scorer = load_scorer(model_dir)
    try:
        scored = run_scoring(
            ctx.config, ctx.workdir, scorer=scorer, model_dir=model_dir,
            client=ctx.client(), progress=ctx.progress,
        )  # fmt: skip
    except ScoreListsUnavailable as exc:
        ctx.echo(f"[score] {exc}: processing the ntuples again with the scorer")
    else:
        ctx.echo(f"[score] {scored.chunks} chunks' candidates -> {scored.histogram_file}")
        for item in scored.skipped:
            ctx.echo(f"[score] skipped in processing {item['file']}: {item['error']}")
        return {"pass": "lists"}
    result = run_processing(
        ctx.config, ctx.workdir, client=ctx.client(), scorer=scorer, model_dir=model_dir,
        progress=ctx.progress,
    )  # fmt: skip
    ctx.echo(f"[score] {result.events} events -> {result.histogram_file}")
    for item in result.skipped:
        ctx.echo(f"[score] skipped {item['file']}: {item['error']}")
    return {"pass": "full"}


def working_point(ctx: RunContext, *, quiet: bool = False) -> float:
    """The score cut: ``training.working_point`` when set (snapped to the nearest score-bin edge,
    since the histograms are binned in score), else the one training chose."""
    configured = ctx.config.training.working_point
    if configured is not None:
        edges = [e for e in ctx.config.histograms.score_edges if 0.0 < e < 1.0]
        snapped = min(edges, key=lambda e: abs(e - configured))
        if snapped != configured and not quiet:
            ctx.echo(f"working point {configured} snapped to the score edge {snapped}")
        return float(snapped)
    path = ctx.workdir / "models" / "working_point.json"
    try:
        return float(json.loads(path.read_text())["cut"])
    except (OSError, KeyError, ValueError) as exc:
        raise StageError(
            f"no working point: set training.working_point or run `alps train` ({exc})"
        ) from exc


def _shapes(ctx: RunContext) -> None:
    from limits import fit_signal_shapes

    echo_skipped_inputs(ctx, "shapes", "mgg_score.hist.zip")
    fit_signal_shapes(
        ctx.workdir / SCORE_HISTOGRAMS, ctx.config, ctx.workdir,
        working_point=working_point(ctx), client=ctx.client(), progress=ctx.progress,
    )  # fmt: skip


def _limits(ctx: RunContext) -> Mapping[str, Any]:
    from limits import run_limits

    wp = working_point(ctx)
    run_limits(
        ctx.workdir / SCORE_HISTOGRAMS, ctx.config, ctx.workdir,
        client=ctx.client(), working_point=wp, progress=ctx.progress,
    )  # fmt: skip
    ctx.echo(f"[limits] {ctx.workdir / 'limits' / 'limits.json'} (working point {wp})")
    echo_skipped_inputs(ctx, "limits", "mgg_score.hist.zip")
    return {"working_point": wp}


def _report(ctx: RunContext) -> None:
    from .report import build_report

    ctx.echo(f"[report] {build_report(ctx.config, ctx.workdir)}")
    echo_skipped_inputs(ctx, "report")


CALIBRATION = "calibration/"
#: the processing pass's variation lists for the score pass (processors.score_lists)
VARIATION_LISTS = "skims/variations"
SCORE_HISTOGRAMS = "histograms/mgg_score.hist.zip"

#: configuration that changes what the processor computes (chunking, retries and workers do not;
#: the luminosity uncertainty is a normalisation the limits take from the configuration)
_PROCESS_SECTIONS = (
    "preselection",
    "kinfit",
    "histograms",
    "systematics",
    "-systematics.luminosity",
    "seed",
    "simulation.detector",
    "processing.skip_bad_files",
)
_PROCESS_CODE = ("processors.run",)

STAGES: dict[str, Stage] = {
    "generate": Stage(
        "generate",
        ("seed", "run_slice", "run_registry", "simulation"),
        ("simulation.production",),
        (),
        ("ntuples/manifest.json",),
        _generated,
        _generate,
        _generate_inputs,
        "generating run-dependent MC and pseudo-data",
    ),
    "calibrate": Stage(
        "calibrate",
        ("processing.skip_bad_files",),
        ("processors.calibrate",),
        ("generate",),
        ("calibration/corrections.json", "calibration/results.json"),
        _files("calibration/*"),
        _calibrate,
        _calibrate_inputs,
        "photon resolution and scale from mu mu gamma, trigger efficiency",
    ),
    "process": Stage(
        "process",
        _PROCESS_SECTIONS,
        _PROCESS_CODE,
        ("generate", "calibrate"),
        ("histograms/mgg.hist.zip", "skims/summary.json"),
        _files(
            "histograms/mgg.hist.zip",
            "skims/summary.json",
            "skims/*/*.parquet",
            f"{VARIATION_LISTS}/*/*.parquet",
            f"{VARIATION_LISTS}/chunks.json",
        ),
        _process,
        _process_inputs,
        "pre-selection, kinematic fit, candidates, histograms and skims",
    ),
    "train": Stage(
        "train",
        ("seed", "training", "-training.working_point", "histograms.resolution"),
        ("models",),
        ("process",),
        ("models/punzi.pt", "models/working_point.json"),
        _files("models/*", "models/*/*"),
        _train,
        _train_inputs,
        "feature ranking, XGBoost, Punzi net, working point",
    ),
    "score": Stage(
        "score",
        _PROCESS_SECTIONS,
        (*_PROCESS_CODE, "processors.score_pass", "models"),
        ("generate", "calibrate", "process", "train"),
        (SCORE_HISTOGRAMS,),
        _files(SCORE_HISTOGRAMS),
        _score,
        _score_inputs,
        "the selection score of the processed candidates",
        command="alps process --with-model",
    ),
    "shapes": Stage(
        "shapes",
        ("histograms.resolution", "limits.window_nsigma", "limits.efficiency_window_nsigma"),
        ("limits",),
        ("score", "train"),
        ("shapes/shapes.json",),
        _files("shapes/*"),
        _shapes,
        _shapes_inputs,
        "signal shapes and their interpolation in mass",
        command="alps limits",
    ),
    "limits": Stage(
        "limits",
        ("limits", "systematics.luminosity", "histograms.resolution", "seed"),
        ("limits",),
        ("score", "train", "shapes"),
        ("limits/limits.json",),
        _files("limits/*", "workspaces/*.json"),
        _limits,
        _limits_inputs,
        "pyhf models, CLs limits, significance, coupling exclusion",
    ),
    "report": Stage(
        "report",
        ("*",),
        ("alps.report",),
        ("generate",),
        ("report/index.html",),
        _files("report/*"),
        _report,
        _report_inputs,
        "HTML report",
        soft_depends=("calibrate", "process", "train", "score", "shapes", "limits"),
    ),
}
