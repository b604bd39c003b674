"""Run the processor over the ntuples: fileset, file checks, coffea Runner, outputs.

The fileset has one dataset per (sample, run period), with the sample's facts as metadata. Before
any processing every file is opened and checked (the ``events`` tree, the branches the processor
reads, the entry count its ``meta`` promises): a corrupt, truncated or incomplete file is a clear
error naming it, or, with ``processing.skip_bad_files``, is left out and listed in the output's
provenance (as is any chunk that fails to read later). The Dask executor retries tasks lost with
their workers. The skims of a run are written to a new folder that replaces ``skims/`` as a whole
when the run has finished.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import AnalysisConfig
from alps.contract import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    ScorerLike,
    is_data,
    signal_mass,
)
from alps.histio import file_checksum, provenance, write_histograms
from alps.records import FileDigests

from .alp_processor import ALPProcessor, ChunkReadError, ProcessorSettings
from .binning import mass_edges
from .bookkeeping import ProcessedLuminosity, processed_luminosity
from .corrections import Corrections
from .integrity import RANGE_CHECKS, branch_kind_problems
from .opening import (
    UPROOT_OPTIONS,
    ColumnRunner,
    forget,
    open_file,
    open_tree,
    unmap_all,
)
from .placement import share_out
from .reading import OutputWriteError
from .schema import BelleIISchema
from .score_lists import in_work_order, list_features, write_chunks
from .windowed import TREE_REDUCTION, WindowedDaskExecutor

__all__ = [
    "REQUIRED_BRANCHES",
    "UPROOT_OPTIONS",
    "FileCheck",
    "ProcessingError",
    "ProcessingResult",
    "build_fileset",
    "check_files",
    "inspect_files",
    "manifest_checksums",
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
#: ask for a file's chunks on the worker that checked it (FileCheck.placement). Off: it saves the
#: second opens of a file (17-19 instead of 23-27 opens of the benchmark's 17 files, two workers)
#: but the split by entries balances the workers worse than Dask's own queue, since a file's cost
#: per event depends on its sample (busiest worker's share 0.58-0.74 against 0.54-0.58 on the
#: --quick samples of benchmarks/workers.py --compare, 2026-12-03, load 1; README "1 -> 2 workers")
PLACE_CHUNKS = False
CALIBRATION_FILE = "calibration/corrections.json"


class ProcessingError(RuntimeError):
    """An input that cannot be processed; the message names the file."""


@dataclass(frozen=True)
class ProcessingResult:
    histogram_file: Path
    skim_dir: Path | None
    events: int
    skipped: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    #: run period -> data luminosity of the files processed (pb^-1)
    luminosity_pb: dict[str, float] = field(default_factory=dict)
    #: file -> counts of physically impossible values (processors.integrity)
    out_of_range: dict[str, dict[str, int]] = field(default_factory=dict)
    #: "<sample> in <block>" whose every file was skipped
    lost: tuple[str, ...] = ()


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


def manifest_checksums(workdir: Path, manifest: Manifest) -> dict[str, str]:
    """File path (as the fileset names it) -> the SHA-256 the generation recorded."""
    root = workdir / "ntuples"
    return {str(root / f.path): f.sha256 for f in manifest.files if f.sha256 is not None}


@dataclass(frozen=True)
class FileCheck:
    """The usable fileset and the files left out (with why)."""

    fileset: dict[str, dict[str, Any]]
    skipped: list[dict[str, Any]]
    #: per usable file: the entries and the file UUID read by the check (coffea's preprocessing
    #: needs nothing else, so it need not open every file again: :func:`_known_metadata`)
    opened: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per file hashed by the check (not trusted on its remembered digest): its ``(size,
    #: mtime_ns, sha256)`` when it was hashed, for :class:`~alps.records.FileDigests`
    hashed: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    #: per usable file checked on a Dask worker: that worker's address (it keeps the file open:
    #: its chunks are asked for there, :mod:`processors.placement`)
    placement: dict[str, str] = field(default_factory=dict)


def _check_file(
    path: str,
    is_data: bool,
    expected: int | None,
    sha256: str | None = None,
    memo: tuple[int, int, str] | None = None,
) -> tuple[str | None, dict[str, Any], tuple[int, int, str] | None]:
    """Why a file cannot be processed (or None if it can); when it can, its entries and UUID
    (``numentries``, ``uuid``); and, when it was hashed here, its ``(size, mtime_ns, sha256)``.

    ``memo`` is the file's ``(size, mtime_ns, sha256)`` that the work directory's
    :class:`~alps.records.FileDigests` remembers (the generation hashed every file it wrote): a
    file whose size and modification time are unchanged since and whose remembered digest is the
    manifest's is not read again to hash it; any other is hashed. The physical ranges are not
    checked here: the processor counts them in the arrays it reads anyway
    (:func:`processors.integrity.count_out_of_range`)."""
    hashed = None
    try:
        if sha256 is not None:
            stat = os.stat(path)  # before the read: a change while hashing changes the stamp
            stamp = (stat.st_size, stat.st_mtime_ns)
            if memo is None or tuple(memo[:2]) != stamp or memo[2] != sha256:
                actual = file_checksum(path)
                if actual != sha256:
                    return (
                        f"sha256 {actual[:16]}... differs from the manifest's {sha256[:16]}...: "
                        "the file changed after it was generated (corrupted, or from another "
                        "production)",
                        {},
                        None,
                    )
                hashed = (*stamp, actual)
        reason, opened = _tree_problem(path, is_data, expected)
    except Exception as exc:
        reason, opened = f"{type(exc).__name__}: {exc}", {}
    finally:
        unmap_all()  # the TTree records stay for the chunks; the pages are read again then
    if reason is not None:
        forget(path)  # nothing will read it
    return reason, opened, hashed


def _tree_problem(
    path: str, is_data: bool, expected: int | None
) -> tuple[str | None, dict[str, Any]]:
    """The checks of :func:`_check_file` behind the checksum, on the file as this thread keeps
    it open (:mod:`processors.opening`: the processing of its chunks reads through this open)."""
    handle = open_file(path)
    if "events" not in handle:
        return "no 'events' tree", {}
    tree = open_tree(path, "events")
    names = set(tree.keys())
    required = REQUIRED_BRANCHES + (() if is_data else MC_BRANCHES)
    missing = [b for b in required if b not in names]
    if missing:
        return f"missing branches {missing}", {}
    mistyped = branch_kind_problems(tree, required)
    if mistyped:
        return "; ".join(mistyped), {}
    if expected is not None and tree.num_entries != expected:
        return f"{tree.num_entries} entries, its metadata promises {expected}", {}
    # every basket must lie inside the file: a truncated file fails here
    size = handle.file.source.num_bytes
    for name in REQUIRED_BRANCHES:
        branch = tree[name]
        ends = (
            branch.member("fBasketSeek")[: branch.num_baskets]
            + branch.member("fBasketBytes")[: branch.num_baskets]
        )
        if len(ends) and int(np.max(ends)) > size:
            return (
                f"branch {name!r} has baskets beyond the end of the file ({size} bytes): truncated",
                {},
            )
    return None, {"numentries": tree.num_entries, "uuid": handle.file.fUUID}


def inspect_files(
    fileset: dict[str, dict[str, Any]],
    expected: Mapping[str, int],
    skip_bad_files: bool,
    *,
    checksums: Mapping[str, str] | None = None,
    memo: Mapping[str, tuple[int, int, str]] | None = None,
    client: Any = None,
) -> FileCheck:
    """Check every file (on the Dask ``client`` when given); raise on the first unusable one
    unless skipping, naming the file. ``memo``: file -> its remembered ``(size, mtime_ns,
    sha256)`` (see :func:`_check_file`)."""
    checksums = checksums or {}
    memo = memo or {}
    items = [
        (path, bool(dataset["metadata"]["is_data"]))
        for dataset in fileset.values()
        for path in dataset["files"]
    ]
    args = [
        [p for p, _ in items],
        [d for _, d in items],
        [expected.get(p) for p, _ in items],
        [checksums.get(p) for p, _ in items],
        [memo.get(p) for p, _ in items],
    ]
    checked_on: dict[str, str] = {}
    if client is not None:
        results, checked_on = _check_on_workers(client, args)
    else:
        results = list(map(_check_file, *args))
    verdict = dict(zip(args[0], results))
    good: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    opened: dict[str, dict[str, Any]] = {}
    hashed = {p: tuple(h) for p, (_, _, h) in verdict.items() if h is not None}
    for key, dataset in fileset.items():
        files = []
        for path in dataset["files"]:
            reason, facts, _ = verdict[path]
            if reason is None:
                files.append(path)
                opened[path] = facts
                continue
            if not skip_bad_files:
                raise ProcessingError(
                    f"cannot process {path}: {reason} (set processing.skip_bad_files to skip it)"
                )
            skipped.append({"file": path, "error": reason})
        if files:
            good[key] = dict(dataset, files=files)
    placement = {p: w for p, w in checked_on.items() if p in opened}
    return FileCheck(good, skipped, opened, hashed, placement)


def _check_on_workers(client: Any, args: list[list[Any]]) -> tuple[list[Any], dict[str, str]]:
    """:func:`_check_file` of every file on the Dask workers, the files shared out between them
    by entries (:func:`processors.placement.share_out`; a loose restriction: another worker
    checks a file whose worker is gone); the results, and file -> the worker that checked it."""
    paths = args[0]
    workers = sorted(client.nthreads())
    plan = share_out(paths, [max(e or 0, 1) for e in args[2]], workers)
    futures: list[Any] = [None] * len(paths)
    for worker in workers:
        mine = [i for i, p in enumerate(paths) if plan[p] == worker]
        if not mine:
            continue
        batch = client.map(
            _check_file, *([column[i] for i in mine] for column in args),
            pure=False, workers=[worker], allow_other_workers=True,
        )  # fmt: skip
        for i, future in zip(mine, batch):
            futures[i] = future
    if not workers:  # no worker yet (a batch cluster starting): wherever one comes
        futures = client.map(_check_file, *args, pure=False)
    results = client.gather(futures)
    holders = client.who_has(futures)
    checked_on = {
        path: str(holders[future.key][0])
        for path, future in zip(paths, futures)
        if holders.get(future.key)
    }
    return results, checked_on


def check_files(
    fileset: dict[str, dict[str, Any]],
    expected: dict[str, int],
    skip_bad_files: bool,
    *,
    checksums: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The fileset without unusable files, and the list of those (raises unless skipping)."""
    check = inspect_files(fileset, expected, skip_bad_files, checksums=checksums)
    return check.fileset, check.skipped


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
    fileset, check, book = _prepare_inputs(config, workdir, manifest, expected, client)
    skipped = list(check.skipped)

    calibration = workdir / CALIBRATION_FILE
    corrections = Corrections.from_file(calibration) if calibration.exists() else None
    if config.kinfit.covariance == "calibration" and corrections is None:
        warnings.warn(f"{calibration} not found: the fit uses the cluster errors", stacklevel=2)
    skim_dir = workdir / "skims" if (write_skims and scorer is None) else None
    detector = config.simulation.detector
    staging = _staging_folder(skim_dir) if skim_dir is not None else None
    settings = ProcessorSettings(
        config,
        tuple(mass_edges(config.histograms)),
        (detector.time_constant_ns, detector.time_floor_ns),
        corrections,
        scorer,
        str(staging) if staging else None,
    )

    if client is not None:
        # coffea's merge tree, with a bounded number of tasks on the scheduler (issue 12)
        executor = WindowedDaskExecutor(
            client=client, retries=config.processing.retries, status=progress,
            treereduction=TREE_REDUCTION,
            placement=check.placement if PLACE_CHUNKS else None,
        )  # fmt: skip
    else:
        executor = processor.IterativeExecutor(status=progress)
    # the processor reads its columns itself: no NanoEvents per chunk (processors.opening)
    runner = ColumnRunner(
        executor=executor,
        schema=BelleIISchema,
        chunksize=config.processing.chunk_size,
        savemetrics=False,
        metadata_cache=_known_metadata(fileset, check.opened),
    )
    try:
        output = runner(
            fileset,
            processor_instance=ALPProcessor(settings),
            treename="events",
            uproot_options=UPROOT_OPTIONS,
        )
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        chain: BaseException | None = exc
        while chain is not None:
            if isinstance(chain, ChunkReadError | OutputWriteError):
                raise ProcessingError(str(chain)) from exc
            chain = chain.__cause__ or chain.__context__
        raise
    chunks = output.pop("chunks", [])
    chunk_skips = output.pop("skipped", [])
    # physically impossible values, counted by the processor in what it read (per file)
    counted = output.pop("out_of_range", {})
    out_of_range = {
        path: {label: counted[path][label] for label in RANGE_CHECKS if label in counted[path]}
        for dataset in fileset.values()
        for path in dataset["files"]
        if counted.get(path)
    }
    skipped += chunk_skips
    luminosity = _without_lost_chunks(book.luminosity_pb, chunk_skips, manifest, workdir)
    output.pop("skims", None)
    histograms = {k: v for k, v in output.items() if not isinstance(v, list)}
    name = "mgg"
    if scorer is not None:
        histograms["mgg"] = histograms.pop("mgg_score")
        name = "mgg_score"
    inputs = [p for d in fileset.values() for p in d["files"]]
    record = provenance(
        config=config.model_dump(mode="json"),
        inputs=inputs,
        checksums=False,  # verified against the manifest's on the workers (_check_file)
        stage="process",
        model=str(model_dir) if model_dir else None,
        calibration=str(calibration) if corrections is not None else None,
        skipped=skipped,
        luminosity_pb=luminosity,
        planned_luminosity_pb=book.planned_luminosity_pb,
        mc_weight_scale=book.weight_scale,
        mc_lost=list(book.lost),
        out_of_range=out_of_range,
        sqrt_s_GeV=manifest.sqrt_s_GeV(),
        signal_coupling_GeV=config.simulation.signal.coupling_GeV,
    )
    record["inputs"] = _with_checksums(inputs, manifest_checksums(workdir, manifest))
    path = write_histograms(workdir / "histograms" / f"{name}.hist.zip", histograms, record)
    if skim_dir is not None and staging is not None:
        _write_skim_summary(staging, histograms["generated"], manifest, fileset, luminosity)
        write_chunks(staging, in_work_order(chunks, fileset), list_features(config.training))
        _swap_in(staging, skim_dir)
    return ProcessingResult(
        path, skim_dir, book.events, tuple(skipped), luminosity, out_of_range, book.lost
    )


def _known_metadata(
    fileset: dict[str, dict[str, Any]], opened: Mapping[str, dict[str, Any]]
) -> dict[Any, dict[str, Any]]:
    """coffea's preprocessing result for every checked file (its ``FileMeta`` -> the dataset's
    metadata plus ``numentries`` and ``uuid``, as coffea's own fetcher makes it), from what the
    file check read: the files are not opened a second time before processing."""
    from coffea.processor.executor import FileMeta

    known: dict[Any, dict[str, Any]] = {}
    for key, dataset in fileset.items():
        for path in dataset["files"]:
            facts = opened.get(path)
            if facts:
                meta = dict(dataset.get("metadata") or {}, **facts)
                known[FileMeta(key, path, dataset.get("treename", "events"))] = meta
    return known


def _with_checksums(inputs: list[str], checksums: Mapping[str, str]) -> list[dict[str, str]]:
    """The provenance's input list: each file with the SHA-256 the manifest holds for it (which
    :func:`inspect_files` verified on the workers), hashed here only when the manifest has none:
    the client does not read the whole sample again."""
    return [
        {"path": p, "sha256": checksums[p] if p in checksums else file_checksum(p)} for p in inputs
    ]


def _staging_folder(skim_dir: Path) -> Path:
    """A new, empty folder beside ``skim_dir`` for this run's skims (the folders that runs killed
    before their swap left behind are removed first)."""
    for stale in skim_dir.parent.glob(f".{skim_dir.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = skim_dir.with_name(f".{skim_dir.name}-new-{uuid.uuid4().hex[:12]}")
    staging.mkdir(parents=True)
    return staging


def _swap_in(staging: Path, skim_dir: Path) -> None:
    """Replace ``skim_dir`` by ``staging`` as a whole: the skims of one processing run are never
    mixed with those of another (a moved work directory, another chunk size)."""
    old = skim_dir.with_name(f".{skim_dir.name}-old-{uuid.uuid4().hex[:12]}")
    if skim_dir.exists():
        skim_dir.rename(old)
    staging.rename(skim_dir)
    shutil.rmtree(old, ignore_errors=True)


def _prepare_inputs(
    config: AnalysisConfig,
    workdir: Path,
    manifest: Manifest,
    expected: Mapping[str, int],
    client: Any,
) -> tuple[dict[str, dict[str, Any]], FileCheck, ProcessedLuminosity]:
    """The fileset of the files that pass :func:`inspect_files` (checksums from the manifest),
    each dataset's metadata carrying the weight factors of :func:`processed_luminosity`."""
    digests = FileDigests(workdir)
    root = workdir / "ntuples"
    memo = {
        str(root / f.path): entry
        for f in manifest.files
        if (entry := digests.known(f"ntuples/{f.path}")) is not None
    }
    check = inspect_files(
        build_fileset(workdir, manifest),
        expected,
        config.processing.skip_bad_files,
        checksums=manifest_checksums(workdir, manifest),
        memo=memo,
        client=client,
    )
    if check.hashed:  # verified now: the next check (and the pipeline's cache) need not re-hash
        digests.refresh()
        for path, (size, mtime_ns, sha256) in check.hashed.items():
            digests.remember(Path(path).relative_to(workdir).as_posix(), size, mtime_ns, sha256)
        digests.save()
    book = processed_luminosity(manifest, workdir, [s["file"] for s in check.skipped])
    if config.simulation.data.enabled and sum(book.luminosity_pb.values()) <= 0:
        first = check.skipped[0]["file"] if check.skipped else "-"
        raise ProcessingError(
            "no data luminosity left to process: every data file was skipped "
            f"({len(check.skipped)} files skipped, the first: {first})"
        )
    fileset = {}
    for key, dataset in check.fileset.items():
        scale = {p: book.weight_scale[p] for p in dataset["files"] if p in book.weight_scale}
        metadata = dict(dataset["metadata"], **({"weight_scale": scale} if scale else {}))
        fileset[key] = dict(dataset, metadata=metadata)
    return fileset, check, book


def _without_lost_chunks(
    luminosity: dict[str, float],
    chunk_skips: list[dict[str, Any]],
    manifest: Manifest,
    workdir: Path,
) -> dict[str, float]:
    """The data luminosity less the share of data chunks that failed to read while processing
    (entries lost / entries of the file times the file's luminosity share)."""
    files = {str(workdir / "ntuples" / f.path): f for f in manifest.files}
    result = dict(luminosity)
    for item in chunk_skips:
        entry = files.get(str(item.get("file")))
        if entry is None or not is_data(entry.sample) or not entry.events:
            continue
        lost = int(item["entrystop"]) - int(item["entrystart"])
        result[entry.period] -= entry.luminosity_pb * lost / entry.events
    return result


def _write_skim_summary(
    skim_dir: Path,
    generated: Any,
    manifest: Manifest,
    fileset: dict[str, dict[str, Any]],
    luminosity: dict[str, float],
) -> None:
    """``skims/summary.json``: dataset -> generated weight and events (of the files processed),
    ALP mass, and the processed data luminosity that every dataset is normalised to."""
    processed = {p for dataset in fileset.values() for p in dataset["files"]}
    events: dict[str, int] = defaultdict(int)
    for entry in manifest.files:
        if str(skim_dir.parent / "ntuples" / entry.path) in processed:
            events[entry.sample] += entry.events
    total = float(sum(luminosity.values()))
    summary = {}
    for dataset in generated.axes["dataset"]:
        summary[dataset] = {
            "generated_weight": float(np.sum(generated[{"dataset": dataset}].values())),
            "generated_events": events[dataset],
            "mc_ma": signal_mass(dataset) or 0.0,
            "luminosity_pb": total,
        }
    skim_dir.mkdir(parents=True, exist_ok=True)
    (skim_dir / "summary.json").write_text(json.dumps(summary, indent=1))
