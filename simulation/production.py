"""Run-dependent production: plan per run block, generate + simulate + write files as tasks.

MC is produced per run block in proportion to its luminosity with that block's beams and
detector: N = round(sigma * L * mc_luminosity_factor) events of weight sigma * L / N (at least
``MC_MIN_EVENTS`` so rare processes still have a usable sample). Signal: ``events_per_mass`` per
mass, shared among the blocks by luminosity. Pseudo-data: per block, each process's count is drawn
from a Poisson law of mean sigma * L, simulated with the data's own "true" detector (the registry's
``data_*`` columns) and mixed into one stream; an ALP signal is added when ``inject`` is set.

Each output file is one task with its own seed, derived from (seed, sample, block, file), so the
same configuration gives identical files whatever the number of workers or the order of the tasks.
A file whose ``meta`` records the same task hash is not made again (an interrupted production
resumes).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import AnalysisConfig, NatureConfig
from alps.contract import (
    DATA_SAMPLE,
    MANIFEST_FILE,
    Manifest,
    is_signal,
    signal_mass,
    signal_sample,
)
from alps.histio import file_checksum
from alps.processes import PROCESS_CODES, get_process
from alps.records import FileDigests
from alps.tasks import map_tasks

from .detector import DetectorConditions, RecoEvents, simulate
from .events import TruthEvents
from .generators import (
    AlpGenerator,
    BeamConditions,
    Calibration,
    Generator,
    RadiativeGenerator,
    check_four_momentum,
)
from .ntuple import NtupleContent, read_meta, write_ntuple
from .processes import make_background
from .registry import RunBlock, RunRegistry, load_registry

__all__ = [
    "DATA_SAMPLE",
    "FileTask",
    "ProcessShare",
    "generate_samples",
    "make_generator",
    "plan_production",
    "run_task",
    "selected_registry",
    "signal_mass",
    "signal_sample",
]

INJECTED_PROCESS = "alp_inject"
MC_MIN_EVENTS = 200
GENERATOR_VERSION = "alps-simulation 1"


def _seed(*keys: object) -> np.random.SeedSequence:
    return np.random.SeedSequence([zlib.crc32(str(k).encode()) for k in keys])


def selected_registry(config: AnalysisConfig) -> RunRegistry:
    """The run blocks of the configuration's slice."""
    return load_registry(config.run_registry).select(config.run_slice)


def make_generator(process: str, config: AnalysisConfig) -> Generator:
    """The generator of a sample or pseudo-data component (from the process registry)."""
    mass = signal_mass(process)
    if mass is not None:
        return AlpGenerator(mass, config.simulation.signal.coupling_GeV)
    if process == INJECTED_PROCESS:
        inject = config.simulation.data.inject
        if inject is None:
            raise ValueError("no signal injection configured")
        return AlpGenerator(inject.mass_GeV, inject.coupling_GeV)
    return make_background(process, config.simulation.cuts)


def _check_masses(config: AnalysisConfig, registry: RunRegistry, samples: Iterable[str]) -> None:
    """Refuse signal masses at or above any selected run block's sqrt(s), naming the field."""
    masses = [m for m in map(signal_mass, samples) if m is not None]
    checks = [(m, "simulation.signal.masses") for m in masses]
    inject = config.simulation.data.inject
    if inject is not None and config.simulation.data.enabled:
        checks.append((inject.mass_GeV, "simulation.data.inject.mass_GeV"))
    for block in registry:
        beams = BeamConditions.from_block(block)
        for mass, field in checks:
            beams.require_below_threshold(mass, field)


@dataclass(frozen=True)
class ProcessShare:
    """Events of one process in one file: count, calibration, per-event weight."""

    process: str
    n_events: int
    calibration: Calibration
    sigma_effective_pb: float
    weight: float
    force_track_loss: bool = False


@dataclass(frozen=True)
class FileTask:
    sample: str
    block: RunBlock
    block_index: int
    file_index: int
    shares: tuple[ProcessShare, ...]
    data: bool
    luminosity_pb: float
    relpath: str

    @property
    def n_events(self) -> int:
        return sum(s.n_events for s in self.shares)

    def task_hash(self, config: AnalysisConfig) -> str:
        # MC files are keyed on the MC settings only: a change of the pseudo-data (e.g. an
        # injected signal) regenerates the data files and no MC
        settings = config.model_dump(mode="json", include={"seed", "simulation"})
        if not self.data:
            settings["simulation"].pop("data", None)
        payload = {"task": asdict(self), "config": settings, "generator": GENERATOR_VERSION}
        return hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()[:20]


def _calibrate(
    process: str, block: RunBlock, block_index: int, config: AnalysisConfig
) -> Calibration:
    rng = np.random.default_rng(_seed(config.seed, "calibration", process, block_index))
    generator = make_generator(process, config)
    return generator.calibrate(rng, BeamConditions.from_block(block), config.simulation.cuts)


def _effective(
    process: str, calibration: Calibration, block: RunBlock, nature: NatureConfig | None = None
) -> tuple[float, bool]:
    """Effective cross-section and whether tracks are forced lost.

    A process that is background only without its two tracks (the registry's ``tracks_lost``)
    counts with P(both lost) = inefficiency^2 in the MC; nature adds the correlated loss
    ``correlated_track_loss`` * inefficiency (both tracks lost together)."""
    if get_process(process).tracks_lost:
        p_loss = block.trk_ineff**2
        if nature is not None:
            p_loss += nature.correlated_track_loss * block.trk_ineff
        return calibration.sigma_pb * p_loss, True
    return calibration.sigma_pb, False


def _data_processes(config: AnalysisConfig) -> list[str]:
    """Components of the pseudo-data: the MC backgrounds, an injected signal, nature's extras."""
    data = config.simulation.data
    processes = list(config.simulation.backgrounds) + ([INJECTED_PROCESS] if data.inject else [])
    if data.nature.enabled:
        processes += [p for p in data.nature.backgrounds if p not in processes]
    return processes


def _unitarity_scale(
    processes: list[str], block: RunBlock, config: AnalysisConfig
) -> dict[str, float]:
    """Per pseudo-data component, the factor 1 - P(emission) that a LO process gives up to its
    radiative counterpart when both are in the pseudo-data (the radiator is unitary)."""
    scale = dict.fromkeys(processes, 1.0)
    for process in processes:
        partner = None if process == INJECTED_PROCESS else get_process(process).unitary_with
        if partner in scale:
            generator = make_generator(process, config)
            assert isinstance(generator, RadiativeGenerator)
            scale[partner] *= 1.0 - generator.emission_probability(BeamConditions.from_block(block))
    return scale


def _split(total: int, size: int) -> list[int]:
    n_files = max(1, math.ceil(total / size))
    return _array_split_sizes(total, n_files)


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _array_split_sizes(count: int, parts: int) -> list[int]:
    """The part sizes of ``np.array_split(np.arange(count), parts)`` without making the array (a
    Run 1 block holds tens of millions of data events)."""
    base, extra = divmod(count, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def _calibrate_item(item: tuple[str, RunBlock, int], config: AnalysisConfig) -> Calibration:
    return _calibrate(item[0], item[1], item[2], config)


def plan_production(
    config: AnalysisConfig,
    registry: RunRegistry | None = None,
    *,
    client: Any = None,
    progress: bool = False,
    samples: Iterable[str] | None = None,
    estimate: bool = False,
) -> list[FileTask]:
    """All file tasks of the configuration (optionally only some samples).

    ``estimate``: calibrate each generator on the slice's first run block only and use that
    calibration for every block (``alps plan``: the event counts of a large slice in seconds,
    to the run-to-run spread of the effective cross-sections; never for generation)."""
    registry = registry if registry is not None else selected_registry(config)
    sim = config.simulation
    masses = sim.signal.masses.masses()
    wanted = set(samples) if samples is not None else None
    mc_samples = [p for p in sim.backgrounds] + [signal_sample(m) for m in masses]
    if wanted is not None:
        mc_samples = [s for s in mc_samples if s in wanted]
    want_data = sim.data.enabled and (wanted is None or DATA_SAMPLE in wanted)
    data_processes = _data_processes(config)
    nature = sim.data.nature if sim.data.nature.enabled else None
    _check_masses(config, registry, mc_samples)
    processes = sorted(set(mc_samples) | (set(data_processes) if want_data else set()))
    items = [(p, block, i) for p in processes for i, block in enumerate(registry)]
    calibrated = [item for item in items if item[2] == 0] if estimate else items
    calibrations = dict(
        zip(
            [(p, i) for p, _, i in calibrated],
            map_tasks(
                _calibrate_item,
                [(i,) for i in calibrated],
                client=client,
                shared={"config": config},
                progress=progress,
                desc="calibrating generators",
            ),
        )
    )
    if estimate:
        calibrations = {(p, i): calibrations[(p, 0)] for p, _, i in items}
    tasks: list[FileTask] = []
    lumis = np.array([b.lumi_pb for b in registry])
    for sample in mc_samples:
        if is_signal(sample):
            per_block = _largest_remainder(sim.signal.events_per_mass, lumis)
        else:
            per_block = None
        for i, block in enumerate(registry):
            calibration = calibrations[(sample, i)]
            sigma, force = _effective(sample, calibration, block)
            if per_block is not None:
                n_block = int(per_block[i])
            else:
                n_block = max(
                    round(sigma * block.lumi_pb * sim.mc_luminosity_factor), MC_MIN_EVENTS
                )
            if n_block == 0:
                continue
            weight = sigma * block.lumi_pb / n_block
            for j, n in enumerate(_split(n_block, sim.events_per_file)):
                share = ProcessShare(sample, n, calibration, sigma, weight, force)
                tasks.append(
                    FileTask(
                        sample,
                        block,
                        i,
                        j,
                        (share,),
                        False,
                        block.lumi_pb * n / n_block,
                        f"{sample}/{sample}_{block.name}_{j:04d}.root",
                    )
                )
    if want_data:
        for i, block in enumerate(registry):
            rng = np.random.default_rng(_seed(config.seed, "data-counts", i))
            unitarity = _unitarity_scale(data_processes, block, config) if nature else {}
            counts, effective = {}, {}
            for process in data_processes:
                sigma, force = _effective(
                    process, calibrations[(process, i)], block,
                    nature if process != INJECTED_PROCESS else None,
                )  # fmt: skip
                effective[process] = (sigma * unitarity.get(process, 1.0), force)
                counts[process] = int(rng.poisson(effective[process][0] * block.lumi_pb))
            total = sum(counts.values())
            n_files = max(1, math.ceil(total / sim.events_per_file))
            split = {p: _array_split_sizes(c, n_files) for p, c in counts.items()}
            for j in range(n_files):
                shares = tuple(
                    ProcessShare(
                        p, split[p][j], calibrations[(p, i)], effective[p][0], 1.0, effective[p][1]
                    )
                    for p in data_processes
                    if split[p][j] > 0
                )
                n_file = sum(s.n_events for s in shares)
                tasks.append(
                    FileTask(
                        DATA_SAMPLE,
                        block,
                        i,
                        j,
                        shares,
                        True,
                        block.lumi_pb * n_file / max(total, 1),
                        f"{DATA_SAMPLE}/{DATA_SAMPLE}_{block.name}_{j:04d}.root",
                    )
                )
    return tasks


def _event_arrays(
    rng: np.random.Generator,
    truth: TruthEvents,
    share: ProcessShare,
    block: RunBlock,
    runs: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    n = len(truth)
    beams = BeamConditions.from_block(block).nominal
    total = beams[0] + beams[1]
    return {
        "exp": np.full(n, block.exp),
        "run": runs if runs is not None else rng.integers(block.run_lo, block.run_hi + 1, n),
        "beam_E": np.full(n, total[0]),
        "beam_px": np.full(n, total[1]),
        "beam_py": np.full(n, total[2]),
        "beam_pz": np.full(n, total[3]),
        "weight": np.full(n, share.weight),
        "mc_process": np.full(n, get_process(share.process).code),
        "mc_ma": np.full(n, truth.mc_ma),
        "mc_decay_r": truth.decay_r,
    }


def _simulate_share(
    rng: np.random.Generator, task: FileTask, share: ProcessShare, config: AnalysisConfig
) -> tuple[dict[str, np.ndarray], RecoEvents, TruthEvents]:
    generator = make_generator(share.process, config)
    beams = BeamConditions.from_block(task.block)
    truth = generator.generate(
        rng, beams, share.n_events, config.simulation.cuts, share.calibration
    )
    check_four_momentum(truth)
    conditions = DetectorConditions.for_block(task.block, data=task.data)
    nature = config.simulation.data.nature
    runs = None
    if task.data and nature.enabled:
        block = task.block
        runs = rng.integers(block.run_lo, block.run_hi + 1, len(truth))
        level = (block.bkg_clusters * nature.background_level_scale) * _run_background_factor(
            config.seed, block.exp, runs, nature
        )
        conditions = replace(conditions, bkg_clusters=level)
    reco = simulate(
        truth, conditions, config.simulation.detector, rng, data=task.data,
        force_track_loss=share.force_track_loss,
    )  # fmt: skip
    return _event_arrays(rng, truth, share, task.block, runs), reco, truth


def _run_background_factor(
    seed: int, exp: int, runs: np.ndarray, nature: NatureConfig
) -> np.ndarray:
    """Nature's beam-background level of each run relative to its block: log-normal with
    spread ``background_level_spread`` and mean 1, one draw per (experiment, run) from its own
    seed, so every file and process of a run sees the same level."""
    unique, inverse = np.unique(runs, return_inverse=True)
    sigma = nature.background_level_spread
    z = np.array(
        [
            np.random.default_rng(_seed(seed, "nature-background", exp, r)).standard_normal()
            for r in unique
        ]
    )
    return np.asarray(np.exp(sigma * z - 0.5 * sigma**2)[inverse])


def _block_meta(block: RunBlock) -> dict[str, Any]:
    """The registry entry, without the pseudo-data's hidden detector truth."""
    return {k: v for k, v in block.as_dict().items() if not k.startswith("data_")}


def run_task(
    task: FileTask,
    config: AnalysisConfig,
    workdir: str | Path,
    known_sha256: str | None = None,
    memo: tuple[int, int, str] | None = None,
) -> dict[str, Any]:
    """Generate, simulate and write one file; skip it if it exists with the same task hash
    (and, when a previous manifest gave its SHA-256 ``known_sha256``, the same content).
    ``changed`` is True when a file of the previous manifest was made again because its content
    had changed since (or no longer reads).

    ``memo`` is the file's ``(size, mtime_ns, sha256)`` that the work directory's
    :class:`~alps.records.FileDigests` remembers: an existing file whose size and modification
    time are unchanged is not read again to hash it (at Run 1 size that read is the whole sample).
    The result carries the file's ``stamp`` so that the caller can remember a new digest."""
    target = Path(workdir) / "ntuples" / task.relpath
    digest = task.task_hash(config)
    changed = False
    if target.exists():
        try:
            if read_meta(target).get("task_hash") == digest:
                checksum, stamp = _checksum(target, memo)
                if known_sha256 is None or checksum == known_sha256:
                    return {
                        "path": task.relpath,
                        "events": task.n_events,
                        "skipped": True,
                        "sha256": checksum,
                        "stamp": stamp,
                    }
                changed = True
        except Exception:
            changed = known_sha256 is not None
    seed = _seed(config.seed, task.sample, task.block_index, task.file_index)
    rng = np.random.default_rng(seed)
    parts = [_simulate_share(rng, task, share, config) for share in task.shares]
    contents = [
        NtupleContent.build(ev, reco, None if task.data else truth) for ev, reco, truth in parts
    ]
    content = _concatenate(contents)
    order = (
        np.lexsort((rng.random(task.n_events), content["run"]))
        if task.data
        else np.argsort(content["run"], kind="stable")
    )
    content = NtupleContent({k: v[order] for k, v in content.items()})
    content["event"] = task.file_index * 10_000_000 + np.arange(task.n_events, dtype=np.int64)
    meta = {
        "sample": task.sample,
        "data": task.data,
        "period": task.block.period,
        "luminosity_pb": task.luminosity_pb,
        "block": _block_meta(task.block),
        "seed": {
            "base": config.seed,
            "entropy": list(map(int, seed.entropy))
            if isinstance(seed.entropy, list)
            else seed.entropy,
        },
        "generator": GENERATOR_VERSION,
        "task_hash": digest,
        "events": task.n_events,
        "process_codes": PROCESS_CODES,
        "processes": {
            s.process: {
                "events": s.n_events,
                "cross_section_pb": s.calibration.sigma_pb,
                "cross_section_err_pb": s.calibration.sigma_err_pb,
                "effective_cross_section_pb": s.sigma_effective_pb,
                "event_weight": s.weight,
                "tracks_forced_lost": s.force_track_loss,
            }
            for s in task.shares
        },
    }
    if is_signal(task.sample):
        meta["mc_ma"] = signal_mass(task.sample)
        meta["coupling_GeV"] = config.simulation.signal.coupling_GeV
    write_ntuple(target, content, meta)
    checksum, stamp = _checksum(target, None)
    return {
        "path": task.relpath,
        "events": task.n_events,
        "skipped": False,
        "sha256": checksum,
        "stamp": stamp,
        "changed": changed,
    }


def _checksum(path: Path, memo: tuple[int, int, str] | None) -> tuple[str, tuple[int, int]]:
    """The file's SHA-256 (the remembered one while its size and mtime are those of ``memo``)
    and its ``(size, mtime_ns)``."""
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    if memo is not None and (memo[0], memo[1]) == stamp:
        return memo[2], stamp
    return file_checksum(path), stamp


def _concatenate(contents: list[NtupleContent]) -> NtupleContent:
    if len(contents) == 1:
        return contents[0]
    import awkward as ak

    out = NtupleContent()
    for key in contents[0]:
        values = [c[key] for c in contents]
        out[key] = (
            ak.concatenate(values) if isinstance(values[0], ak.Array) else np.concatenate(values)
        )
    return out


def _remove_stale_temporaries(ntuples: Path) -> list[Path]:
    """Delete the ``.<name>.root.<pid>.tmp`` files an earlier, failed production left (a full
    disk, a killed worker); returns them."""
    stale = sorted(ntuples.glob("*/.*.root.*.tmp")) if ntuples.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _manifest_checksums(workdir: Path) -> dict[str, str]:
    """path -> SHA-256 of the files a previous production of ``workdir`` recorded."""
    try:
        manifest = Manifest.read(workdir / MANIFEST_FILE)
    except (OSError, ValueError):  # none yet, or unreadable: nothing is known
        return {}
    return {f.path: f.sha256 for f in manifest.files if f.sha256 is not None}


def generate_samples(
    config: AnalysisConfig,
    workdir: str | Path,
    *,
    client: Any = None,
    progress: bool = True,
    samples: Iterable[str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Produce every ntuple of the configuration under ``workdir/ntuples`` and a manifest.

    Returns the manifest (``alps.contract.Manifest`` reads it): per file its sample, run period,
    block, events and luminosity; per run block its period, luminosity and nominal sqrt(s).
    A file whose content no longer matches the previous manifest's SHA-256 is made again
    (:func:`run_task`), and ``echo`` is told about it.
    """
    workdir = Path(workdir)
    _remove_stale_temporaries(workdir / "ntuples")
    registry = selected_registry(config)
    tasks = plan_production(config, registry, client=client, progress=progress, samples=samples)
    known = _manifest_checksums(workdir)
    digests = FileDigests(workdir)
    memo = {
        t.relpath: entry
        for t in tasks
        if (entry := digests.known(f"ntuples/{t.relpath}")) is not None
    }
    results = map_tasks(
        run_task, [(t, config, str(workdir), known.get(t.relpath), memo.get(t.relpath)) for t in tasks],
        client=client, progress=progress, desc="generating ntuples",
    )  # fmt: skip
    for result in results:
        size, mtime_ns = result["stamp"]
        digests.remember(f"ntuples/{result['path']}", size, mtime_ns, result["sha256"])
    digests.save()
    manifest = {
        "run_slice": config.run_slice,
        "luminosity_pb": {
            p: sum(b.lumi_pb for b in registry if b.period == p) for p in registry.periods
        },
        "blocks": {
            b.name: {
                "period": b.period,
                "luminosity_pb": b.lumi_pb,
                "sqrt_s_GeV": BeamConditions.from_block(b).sqrt_s,
            }
            for b in registry
        },
        "files": [
            {
                "path": task.relpath,
                "sample": task.sample,
                "period": task.block.period,
                "block": task.block.name,
                "events": task.n_events,
                "luminosity_pb": task.luminosity_pb,
                "skipped": result["skipped"],
                "sha256": result["sha256"],
            }
            for task, result in zip(tasks, results)
        ],
    }
    if echo is not None:
        for result in results:
            if result.get("changed"):
                echo(
                    f"[generate] ntuples/{result['path']} changed since it was generated: made again"
                )
    path = workdir / "ntuples" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1))
    return manifest
