"""Production: ntuple contract, reproducibility, independence of the number of workers, resume."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from alps.config import AnalysisConfig, DataConfig, MassGrid, SignalConfig, SimulationConfig
from alps.processes import PROCESS_CODES
from simulation.ntuple import read_meta
from simulation.production import (
    generate_samples,
    plan_production,
    selected_registry,
    signal_mass,
    signal_sample,
)


def tiny_config(**simulation: object) -> AnalysisConfig:
    defaults: dict[str, object] = {
        "backgrounds": ("ggg", "gg", "eeg", "pi0gg", "mumug"),
        "signal": SignalConfig(masses=MassGrid(values=(0.5, 4.0)), events_per_mass=400),
        "events_per_file": 3000,
        "cuts": {"calibration_events": 5000},
    }
    defaults.update(simulation)
    return AnalysisConfig(run_slice="2018,lumi=0.004", simulation=SimulationConfig(**defaults))


def _arrays(path: Path) -> dict[str, ak.Array]:
    with uproot.open(path) as handle:
        tree = handle["events"]
        return {name: tree[name].array() for name in tree.keys()}  # noqa: SIM118 (a TTree iterates branches)


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("prod")
    manifest = generate_samples(tiny_config(), workdir, progress=False)
    return workdir, manifest


def test_ntuple_contract(produced: tuple[Path, dict]) -> None:
    workdir, manifest = produced
    samples = {f["sample"] for f in manifest["files"]}
    assert samples == {"ggg", "gg", "eeg", "pi0gg", "mumug", "alp_m500", "alp_m4000", "data"}
    ggg = next(f for f in manifest["files"] if f["sample"] == "ggg")
    path = workdir / "ntuples" / ggg["path"]
    with uproot.open(path) as handle:
        tree = handle["events"]
        assert tree.classname == "TTree"
        branches = set(tree.keys())
        for name in ("exp", "run", "event", "beam_E", "beam_px", "beam_py", "beam_pz", "weight",
                     "trg_esum", "trg_ncl", "mc_process", "mc_ma", "mc_decay_r"):  # fmt: skip
            assert name in branches
        for prefix, fields in (
            (
                "cluster_",
                (
                    "E",
                    "theta",
                    "phi",
                    "time",
                    "errE",
                    "errTheta",
                    "errPhi",
                    "region",
                    "nHits",
                    "mcIndex",
                ),
            ),
            ("track_", ("px", "py", "pz", "charge", "dr", "dz")),
            ("mc_photon_", ("E", "theta", "phi", "fromALP")),
        ):
            for field in fields:
                assert prefix + field in branches
        assert tree["exp"].array().type.content.primitive == "int32"
        assert tree["event"].array().type.content.primitive == "int64"
        assert tree["beam_E"].array().type.content.primitive == "float64"
    meta = read_meta(path)
    assert meta["sample"] == "ggg" and meta["period"] == "2018"
    assert meta["process_codes"] == PROCESS_CODES
    assert meta["processes"]["ggg"]["cross_section_pb"] == pytest.approx(198.0, rel=0.03)
    assert "data_energy_scale" not in meta["block"]
    arrays = _arrays(path)
    # the weights normalise the sample to the block's luminosity
    lumi = sum(f["luminosity_pb"] for f in manifest["files"] if f["sample"] == "ggg")
    total = sum(float(ak.sum(_arrays(workdir / "ntuples" / f["path"])["weight"]))
                for f in manifest["files"] if f["sample"] == "ggg")  # fmt: skip
    assert total == pytest.approx(meta["processes"]["ggg"]["cross_section_pb"] * lumi, rel=1e-6)
    assert np.all(np.asarray(arrays["mc_process"]) == PROCESS_CODES["ggg"])


def test_pseudo_data_has_no_truth(produced: tuple[Path, dict]) -> None:
    workdir, manifest = produced
    data_files = [f for f in manifest["files"] if f["sample"] == "data"]
    assert data_files
    arrays = _arrays(workdir / "ntuples" / data_files[0]["path"])
    assert not any(name.startswith("mc_") for name in arrays)
    assert ak.all(arrays["cluster_mcIndex"] == -1)
    assert ak.all(arrays["weight"] == 1.0)
    meta = read_meta(workdir / "ntuples" / data_files[0]["path"])
    assert meta["data"] is True and set(meta["processes"]) >= {"ggg", "gg"}


def test_signal_metadata(produced: tuple[Path, dict]) -> None:
    workdir, manifest = produced
    entry = next(f for f in manifest["files"] if f["sample"] == "alp_m4000")
    meta = read_meta(workdir / "ntuples" / entry["path"])
    assert meta["mc_ma"] == 4.0 and meta["coupling_GeV"] == 1e-3
    arrays = _arrays(workdir / "ntuples" / entry["path"])
    assert ak.all(ak.sum(arrays["mc_photon_fromALP"], axis=1) == 2)
    assert signal_sample(signal_mass("alp_m175")) == "alp_m175"


def test_same_seed_same_files_whatever_the_workers(
    produced: tuple[Path, dict], tmp_path: Path
) -> None:
    from distributed import Client, LocalCluster

    workdir, manifest = produced
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, Client(cluster) as client:  # fmt: skip
        again = generate_samples(tiny_config(), tmp_path, client=client, progress=False)
    assert [f["path"] for f in again["files"]] == [f["path"] for f in manifest["files"]]
    for entry in manifest["files"]:
        first = _arrays(workdir / "ntuples" / entry["path"])
        second = _arrays(tmp_path / "ntuples" / entry["path"])
        assert first.keys() == second.keys()
        for name in first:
            assert ak.array_equal(first[name], second[name]), (entry["path"], name)


def test_another_seed_gives_other_events(tmp_path: Path) -> None:
    config = tiny_config(
        backgrounds=("ggg",),
        signal=SignalConfig(masses=MassGrid(values=(1.0,)), events_per_mass=10),
        data=DataConfig(enabled=False),
    )
    a = generate_samples(config, tmp_path / "a", progress=False)
    b = generate_samples(config.model_copy(update={"seed": 1}), tmp_path / "b", progress=False)
    path = a["files"][0]["path"]
    assert path == b["files"][0]["path"]
    e_a = _arrays(tmp_path / "a" / "ntuples" / path)["cluster_E"]
    e_b = _arrays(tmp_path / "b" / "ntuples" / path)["cluster_E"]
    assert not ak.array_equal(e_a, e_b)


def test_production_resumes_without_redoing_files(tmp_path: Path) -> None:
    config = tiny_config(
        backgrounds=("ggg", "pi0gg"),
        signal=SignalConfig(masses=MassGrid(values=(1.0,)), events_per_mass=50),
        data=DataConfig(enabled=False),
    )
    first = generate_samples(config, tmp_path, progress=False)
    victim = tmp_path / "ntuples" / first["files"][0]["path"]
    victim.unlink()
    second = generate_samples(config, tmp_path, progress=False)
    skipped = [f["skipped"] for f in second["files"]]
    assert skipped.count(False) == 1 and all(skipped[1:])
    assert victim.exists()


def test_files_are_split_and_events_scale_with_luminosity() -> None:
    config = tiny_config(events_per_file=500)
    tasks = plan_production(config, samples=["gg"])
    assert len(tasks) > 1 and all(t.n_events <= 500 for t in tasks)
    lumi = selected_registry(config).lumi_pb
    total = sum(t.n_events for t in tasks)
    sigma = tasks[0].shares[0].calibration.sigma_pb
    assert total == pytest.approx(sigma * lumi, rel=0.01)
    doubled = plan_production(
        tiny_config(events_per_file=500, mc_luminosity_factor=2.0), samples=["gg"]
    )
    assert sum(t.n_events for t in doubled) == pytest.approx(2 * total, rel=0.01)


def test_regeneration_hashes_only_files_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the work directory's digest memo (``.alps/digests.json``), re-running the production
    does not read an unchanged ntuple to hash it; a file whose stamp changed is hashed again."""
    import simulation.production as production

    config = tiny_config(
        backgrounds=("ggg", "pi0gg"),
        signal=SignalConfig(masses=MassGrid(values=(1.0,)), events_per_mass=50),
        data=DataConfig(enabled=False),
    )
    (tmp_path / ".alps").mkdir()
    first = generate_samples(config, tmp_path, progress=False)
    assert (tmp_path / ".alps" / "digests.json").exists()
    hashed: list[str] = []
    real = production.file_checksum

    def counting(path: object) -> str:
        hashed.append(Path(str(path)).name)
        return real(path)

    monkeypatch.setattr(production, "file_checksum", counting)
    again = generate_samples(config, tmp_path, progress=False)
    assert hashed == []
    assert all(f["skipped"] for f in again["files"])
    assert [f["sha256"] for f in again["files"]] == [f["sha256"] for f in first["files"]]

    touched = tmp_path / "ntuples" / first["files"][0]["path"]
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = generate_samples(config, tmp_path, progress=False)
    assert hashed == [touched.name]  # re-read, found unchanged in content, kept
    assert (
        third["files"][0]["skipped"] and third["files"][0]["sha256"] == first["files"][0]["sha256"]
    )

    hashed.clear()
    with open(touched, "r+b") as handle:  # the same size and stamp trick cannot hide an edit
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 0xFF]))
    fourth = generate_samples(config, tmp_path, progress=False)
    assert touched.name in hashed
    assert not fourth["files"][0]["skipped"]  # content differs from the manifest: made again
