"""The file check hands coffea the entries and UUID it read, so that processing does not open
every file a second time for coffea's preprocessing (#12): the handed-over metadata equal
coffea's own, and a run works with coffea's fetcher disabled."""

from __future__ import annotations

from pathlib import Path

import pytest
from coffea.processor import executor

from alps.config import (
    AnalysisConfig,
    DataConfig,
    KinfitConfig,
    MassGrid,
    SignalConfig,
    SimulationConfig,
)
from processors.run import (
    _known_metadata,
    build_fileset,
    inspect_files,
    manifest_checksums,
    read_manifest,
    run_processing,
)
from simulation.production import generate_samples


def _config() -> AnalysisConfig:
    return AnalysisConfig(
        seed=11,
        run_slice="2018,lumi=0.001",
        kinfit=KinfitConfig(covariance="clusters"),
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0,)), events_per_mass=200),
            data=DataConfig(enabled=True),
            events_per_file=1000,
            cuts={"calibration_events": 1000},  # type: ignore[arg-type]
        ),
    )


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("metadata")
    generate_samples(_config(), workdir, progress=False)
    return workdir


def test_the_checked_metadata_equal_coffeas_own(production: Path) -> None:
    manifest, expected = read_manifest(production)
    fileset = build_fileset(production, manifest)
    check = inspect_files(
        fileset, expected, False, checksums=manifest_checksums(production, manifest)
    )
    known = _known_metadata(check.fileset, check.opened)
    assert len(known) == sum(len(d["files"]) for d in check.fileset.values()) > 3
    for key, dataset in check.fileset.items():
        for path in dataset["files"]:
            item = executor.FileMeta(key, path, "events", dict(dataset["metadata"]))
            (fetched,) = executor.Runner.metadata_fetcher_root(30, False, {}, item)
            assert known[item] == fetched.metadata


def test_processing_opens_no_file_for_coffeas_preprocessing(
    production: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("coffea's preprocessing opened a file again")

    executor.DEFAULT_METADATA_CACHE.clear()
    monkeypatch.setattr(executor.Runner, "metadata_fetcher_root", staticmethod(refuse))
    result = run_processing(_config(), production, progress=False, write_skims=False)
    assert result.events > 0 and result.histogram_file.exists()
