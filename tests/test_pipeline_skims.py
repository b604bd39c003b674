"""Skims are never stale (#18): a processing run replaces the previous run's skims as a whole,
names them by content (input file and entry range, not the path the work directory was reached
by), and training refuses skim files that the processing record does not list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from alps.cache import CacheView, StageError
from alps.config import (
    AnalysisConfig,
    DataConfig,
    KinfitConfig,
    MassGrid,
    ProcessingConfig,
    SignalConfig,
    SimulationConfig,
)
from alps.pipeline import RunContext, _train_inputs
from alps.records import FileDigests
from processors.run import run_processing
from simulation.production import generate_samples


def _config(chunk_size: int) -> AnalysisConfig:
    return AnalysisConfig(
        run_slice="2018,lumi=0.002",
        kinfit=KinfitConfig(covariance="clusters"),
        processing=ProcessingConfig(chunk_size=chunk_size),
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0,)), events_per_mass=400),
            data=DataConfig(enabled=True),
            events_per_file=2000,
            cuts={"calibration_events": 3000},  # type: ignore[arg-type]
        ),
    )


def _skims(workdir: Path) -> dict[str, int]:
    """Skim files (relative to skims/) and their row counts."""
    root = workdir / "skims"
    return {
        str(p.relative_to(root)): pq.read_metadata(p).num_rows for p in root.glob("*/*.parquet")
    }


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("skims") / "work"
    generate_samples(_config(1500), workdir, progress=False)
    run_processing(_config(1500), workdir, progress=False)
    return workdir


def test_another_chunk_size_and_a_moved_workdir_replace_the_skims(
    processed: Path, tmp_path: Path
) -> None:
    first = _skims(processed)
    assert first and all(name.count("_") >= 3 for name in first)
    moved = tmp_path / "moved"
    shutil.copytree(processed, moved)
    (moved / ".skims-new-killedrun").mkdir()  # left by a run killed before its swap

    run_processing(_config(700), moved, progress=False)
    second = _skims(moved)
    assert sum(second.values()) == sum(first.values()), "the background must not double"
    spans = [int(stop) - int(start) for start, stop in (n[:-8].split("_")[-2:] for n in second)]
    assert set(second) != set(first) and max(spans) < 1000, "only skims of chunks of 700 remain"
    assert not list(moved.glob(".skims-*"))

    run_processing(_config(1500), moved, progress=False)
    assert _skims(moved) == first, "the same chunks give the same names wherever the workdir is"


def test_training_refuses_skims_the_processing_record_does_not_list(
    processed: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(processed, work)
    digests = FileDigests(work)
    listed = {f"skims/{name}": digests.digest(f"skims/{name}") for name in _skims(work)}
    listed["skims/summary.json"] = digests.digest("skims/summary.json")
    view = CacheView(work, digests, {"process": {"outputs": listed}})
    ctx = RunContext(_config(1500), work)
    inputs = _train_inputs(ctx, view)
    assert "skims/summary.json#mc" in inputs
    assert not any(name.startswith("skims/data/") for name in inputs)

    stray = next(iter((work / "skims").glob("alp_m1000/*.parquet")))
    shutil.copy(stray, stray.with_name("from_another_run_000000000_000000100.parquet"))
    with pytest.raises(StageError, match="not listed by the processing record"):
        _train_inputs(ctx, view)
