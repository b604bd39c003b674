"""Run the processor over the ntuples: fileset, file checks, coffea Runner, outputs.

The fileset has one dataset per (sample, run period), with the sample's facts as metadata. Before
any processing every file is opened and checked (the ``events`` tree, the branches the processor
reads, the entry count its ``meta`` promises): a corrupt, truncated or incomplete file is a clear
error naming it, or, with ``processing.skip_bad_files``, is left out and listed in the output's
provenance (as is any chunk that fails to read later). The Dask executor retries tasks lost with
their workers.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from alps.config import AnalysisConfig
from alps.contract import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    ScorerLike,
    is_data,
    signal_mass,
)
from alps.histio import provenance, write_histograms

from .alp_processor import ALPProcessor, ChunkReadError, ProcessorSettings
from .binning import mass_edges
from .corrections import Corrections
from .reading import OutputWriteError
from .schema import BelleIISchema

__all__ = [
    "REQUIRED_BRANCHES",
    "ProcessingError",
    "ProcessingResult",
    "build_fileset",
    "check_files",
    "read_manifest",
    "run_processing",
]

REQUIRED_BRANCHES = (
    "exp", "run", "event", "beam_E", "beam_px", "beam_py", "beam_pz", "weight", "trg_esum", "trg_ncl",
    "ncluster", "cluster_E", "cluster_theta", "cluster_phi", "cluster_time", "cluster_errE",
    "cluster_errTheta", "cluster_errPhi", "cluster_region", "cluster_mcIndex",
    "ntrack", "track_px", "track_py", "track_pz", "track_dr", "track_dz",
)  # fmt: skip
MC_BRANCHES = ("nmc_photon", "mc_photon_E", "mc_photon_fromALP")
CALIBRATION_FILE = "calibration/corrections.json"


class ProcessingError(RuntimeError):
    """An input that cannot be processed; the message names the file."""


@dataclass(frozen=True)
class ProcessingResult:
    histogram_file: Path
    skim_dir: Path | None
    events: int
    skipped: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def build_fileset(workdir: Path, manifest: Manifest) -> dict[str, dict[str, Any]]:
    """``{"<sample>/<period>": {"treename", "files", "metadata"}}`` from a production manifest."""
    fileset: dict[str, dict[str, Any]] = {}
    for entry in manifest.files:
        dataset = fileset.setdefault(
            f"{entry.sample}/{entry.period}",
            {
                "treename": "events",
                "files": [],
                "metadata": {
                    "sample": entry.sample,
                    "period": entry.period,
                    "is_data": is_data(entry.sample),
                    "mc_ma": signal_mass(entry.sample) or 0.0,
                },
            },
        )
        dataset["files"].append(str(workdir / "ntuples" / entry.path))
    return fileset


def read_manifest(workdir: Path) -> tuple[Manifest, dict[str, int]]:
    """The production manifest and the entry count each file's metadata promises."""
    try:
        manifest = Manifest.read(workdir / MANIFEST_FILE)
    except ManifestError as exc:
        raise ProcessingError(str(exc)) from exc
    expected = {str(workdir / "ntuples" / f.path): f.events for f in manifest.files}
    return manifest, expected


def _check_file(path: str, is_data: bool, expected: int | None) -> str | None:
    """Why a file cannot be processed, or None if it can."""
    try:
        with uproot.open(path) as handle:
            if "events" not in handle:
                return "no 'events' tree"
            tree = handle["events"]
            names = set(tree.keys())
            missing = [
                b for b in REQUIRED_BRANCHES + (() if is_data else MC_BRANCHES) if b not in names
            ]
            if missing:
                return f"missing branches {missing}"
            if expected is not None and tree.num_entries != expected:
                return f"{tree.num_entries} entries, its metadata promises {expected}"
            # every basket must lie inside the file: a truncated file fails here
            size = handle.file.source.num_bytes
            for name in REQUIRED_BRANCHES:
                branch = tree[name]
                ends = (
                    branch.member("fBasketSeek")[: branch.num_baskets]
                    + branch.member("fBasketBytes")[: branch.num_baskets]
                )
                if len(ends) and int(np.max(ends)) > size:
                    return f"branch {name!r} has baskets beyond the end of the file ({size} bytes): truncated"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_files(
    fileset: dict[str, dict[str, Any]], expected: dict[str, int], skip_bad_files: bool
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The fileset without unusable files, and the list of those (raises unless skipping)."""
    good: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    for key, dataset in fileset.items():
        files = []
        for path in dataset["files"]:
            reason = _check_file(path, dataset["metadata"]["is_data"], expected.get(path))
            if reason is None:
                files.append(path)
                continue
            if not skip_bad_files:
                raise ProcessingError(
                    f"cannot process {path}: {reason} (set processing.skip_bad_files to skip it)"
                )
            skipped.append({"file": path, "error": reason})
        if files:
            good[key] = dict(dataset, files=files)
    return good, skipped


def _merge(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    from coffea.processor import accumulate

    return accumulate(outputs)


def run_processing(
    config: AnalysisConfig,
    workdir: str | Path,
    *,
    client: Any = None,
    scorer: ScorerLike | None = None,
    model_dir: str | Path | None = None,
    progress: bool = True,
    write_skims: bool = True,
) -> ProcessingResult:
    """Process every ntuple of ``workdir`` into ``workdir/histograms`` (and skims).

    Without a scorer: ``histograms/mgg.hist.zip`` and skims under ``skims/``. With a scorer (the
    caller loads it, e.g. with ``models.load_scorer``; ``model_dir`` names its source in the
    provenance): ``histograms/mgg_score.hist.zip``, whose ``mgg`` histogram has the score axis.
    """
    from coffea import processor

    workdir = Path(workdir)
    manifest, expected = read_manifest(workdir)
    fileset = build_fileset(workdir, manifest)
    fileset, skipped = check_files(fileset, expected, config.processing.skip_bad_files)

    calibration = workdir / CALIBRATION_FILE
    corrections = Corrections.from_file(calibration) if calibration.exists() else None
    if config.kinfit.covariance == "calibration" and corrections is None:
        warnings.warn(f"{calibration} not found: the fit uses the cluster errors", stacklevel=2)
    skim_dir = workdir / "skims" if (write_skims and scorer is None) else None
    detector = config.simulation.detector
    settings = ProcessorSettings(
        config,
        tuple(mass_edges(config.histograms)),
        (detector.time_constant_ns, detector.time_floor_ns),
        corrections,
        scorer,
        str(skim_dir) if skim_dir else None,
    )

    if client is not None:
        executor = processor.DaskExecutor(
            client=client, retries=config.processing.retries, status=progress, treereduction=8
        )
    else:
        executor = processor.IterativeExecutor(status=progress)
    runner = processor.Runner(
        executor=executor,
        schema=BelleIISchema,
        chunksize=config.processing.chunk_size,
        savemetrics=False,
    )
    try:
        output = runner(fileset, processor_instance=ALPProcessor(settings), treename="events")
    except Exception as exc:
        chain: BaseException | None = exc
        while chain is not None:
            if isinstance(chain, ChunkReadError | OutputWriteError):
                raise ProcessingError(str(chain)) from exc
            chain = chain.__cause__ or chain.__context__
        raise
    skipped += output.pop("skipped", [])
    output.pop("skims", None)
    histograms = {k: v for k, v in output.items() if not isinstance(v, list)}
    name = "mgg"
    if scorer is not None:
        histograms["mgg"] = histograms.pop("mgg_score")
        name = "mgg_score"
    record = provenance(
        config=config.model_dump(mode="json"),
        inputs=[p for d in fileset.values() for p in d["files"]],
        stage="process",
        model=str(model_dir) if model_dir else None,
        calibration=str(calibration) if corrections is not None else None,
        skipped=skipped,
        luminosity_pb=dict(manifest.luminosity_pb),
        sqrt_s_GeV=manifest.sqrt_s_GeV(),
        signal_coupling_GeV=config.simulation.signal.coupling_GeV,
    )
    path = write_histograms(workdir / "histograms" / f"{name}.hist.zip", histograms, record)
    if skim_dir is not None:
        _write_skim_summary(skim_dir, histograms["generated"], manifest)
    return ProcessingResult(path, skim_dir, manifest.events, tuple(skipped))


def _write_skim_summary(skim_dir: Path, generated: Any, manifest: Manifest) -> None:
    """``skims/summary.json``: dataset -> generated weight and events, ALP mass, luminosity."""
    events: dict[str, int] = defaultdict(int)
    lumi: dict[str, float] = defaultdict(float)
    for entry in manifest.files:
        events[entry.sample] += entry.events
        lumi[entry.sample] += entry.luminosity_pb
    summary = {}
    for dataset in generated.axes["dataset"]:
        summary[dataset] = {
            "generated_weight": float(np.sum(generated[{"dataset": dataset}].values())),
            "generated_events": events[dataset],
            "mc_ma": signal_mass(dataset) or 0.0,
            "luminosity_pb": lumi[dataset],
        }
    skim_dir.mkdir(parents=True, exist_ok=True)
    (skim_dir / "summary.json").write_text(json.dumps(summary, indent=1))
