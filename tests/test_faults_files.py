"""Fault suite, input files (issues #14 and #19.2-3): every damaged or foreign ntuple is refused
naming the file, or, with ``processing.skip_bad_files``, left out and listed; the luminosity and
the MC normalisation follow the files actually processed; checksums catch changed contents;
physically impossible values are counted per file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from alps.config import (
    AnalysisConfig,
    DataConfig,
    KinfitConfig,
    MassGrid,
    ProcessingConfig,
    SignalConfig,
    SimulationConfig,
)
from alps.contract import Manifest
from alps.histio import file_checksum, read_histograms, read_provenance
from processors.run import ProcessingError, build_fileset, inspect_files, run_processing
from simulation.ntuple import NtupleContent, read_meta, write_ntuple
from simulation.production import generate_samples


def tiny_config(seed: int = 20260101, **processing: object) -> AnalysisConfig:
    """2 pb^-1 of one run block: five data files, four gg files, one ggg, one signal file."""
    return AnalysisConfig(
        seed=seed,
        run_slice="2018,lumi=0.002",
        kinfit=KinfitConfig(covariance="clusters"),
        processing=ProcessingConfig(**processing),  # type: ignore[arg-type]
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0,)), events_per_mass=300),
            data=DataConfig(enabled=True),
            events_per_file=1500,
            cuts={"calibration_events": 2000},  # type: ignore[arg-type]
        ),
    )


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("faults")
    generate_samples(tiny_config(), workdir, progress=False)
    return workdir


@pytest.fixture(scope="module")
def baseline(production: Path) -> Path:
    run_processing(tiny_config(), production, progress=False, write_skims=False)
    return production / "histograms" / "mgg.hist.zip"


def _copy(production: Path, where: Path) -> Path:
    shutil.copytree(production / "ntuples", where / "ntuples")
    return where


def _rewrite(path: Path, change: Callable[[dict[str, ak.Array]], dict[str, ak.Array]]) -> None:
    """Write ``path`` again with its branches changed (contract layout: jagged fields zipped)."""
    with uproot.open(path) as handle:
        arrays = handle["events"].arrays(library="ak")
    meta = read_meta(path)
    flat = {name: arrays[name] for name in arrays.fields}
    content = NtupleContent()
    for prefix in ("cluster", "track", "mc_photon"):
        fields = {
            n[len(prefix) + 1 :]: flat.pop(n) for n in list(flat) if n.startswith(prefix + "_")
        }
        flat.pop(f"n{prefix}", None)
        if fields:
            content[prefix] = ak.zip(fields)
    content.update({k: ak.to_numpy(v) for k, v in flat.items()})
    write_ntuple(path, NtupleContent(change(dict(content))), meta)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(3).bytes(path.stat().st_size))


def _garbage_in_baskets(path: Path) -> None:
    """64 kB of garbage in the middle of an intact file, where the baskets are."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - 32_768
    data[start : start + 65_536] = np.random.default_rng(5).bytes(65_536)
    path.write_bytes(bytes(data))


def _missing_branch(path: Path) -> None:
    _rewrite(path, lambda c: {k: v for k, v in c.items() if k != "beam_E"})


def _wrong_dtype(path: Path) -> None:
    _rewrite(path, lambda c: dict(c, beam_E=np.asarray(c["beam_E"], dtype=np.int32)))


def _zero_entries(path: Path) -> None:
    _rewrite(path, lambda c: {k: v[:0] for k, v in c.items()})


def _other_configuration(path: Path) -> None:
    """The same file name from a production with another seed."""
    other = path.parents[2] / "other"
    if not other.exists():
        generate_samples(tiny_config(seed=99), other, progress=False, samples=["gg"])
    shutil.copyfile(other / "ntuples" / path.relative_to(path.parents[1]), path)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "random bytes": _random_bytes,
    "garbage in baskets": _garbage_in_baskets,
    "missing branch": _missing_branch,
    "wrong dtype": _wrong_dtype,
    "zero entries": _zero_entries,
    "other configuration": _other_configuration,
}

#: what the checks behind the checksum say when the manifest vouches for the damaged file (the
#: garbage and the foreign file read as valid ROOT files: only the checksum tells)
CONTENT_REASONS = {
    "truncated": "truncated",
    "random bytes": "ValueError: not a ROOT file",
    "missing branch": r"missing branches \['beam_E'\]",
    "wrong dtype": "branch 'beam_E' holds int32_t, the ntuple contract says floating point",
    "zero entries": "0 entries, its metadata promises 1498",
}


def _reseal(workdir: Path, victim: Path) -> None:
    """Record the victim's new checksum in the manifest (a damaged file that the manifest
    vouches for), so that the checks behind the checksum are tested too."""
    manifest_path = workdir / "ntuples" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if workdir / "ntuples" / entry["path"] == victim:
            entry["sha256"] = file_checksum(victim)
    manifest_path.write_text(json.dumps(manifest))


def _check_victim(work: Path, victim: Path, reason: str) -> None:
    """Refused naming the file without skipping; left out and listed with skipping."""
    manifest = json.loads((work / "ntuples" / "manifest.json").read_text())
    fileset = {"gg/2018": build_fileset(work, Manifest.from_dict(manifest))["gg/2018"]}
    root = work / "ntuples"
    expected = {str(root / f["path"]): f["events"] for f in manifest["files"]}
    checksums = {str(root / f["path"]): f["sha256"] for f in manifest["files"]}
    with pytest.raises(ProcessingError, match=rf"cannot process {victim}: .*{reason}"):
        inspect_files(fileset, expected, False, checksums=checksums)
    check = inspect_files(fileset, expected, True, checksums=checksums)
    assert [s["file"] for s in check.skipped] == [str(victim)]
    assert str(victim) not in check.fileset["gg/2018"]["files"]
    assert len(check.fileset["gg/2018"]["files"]) == 3


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_changed_file_fails_its_checksum(production: Path, tmp_path: Path, case: str) -> None:
    work = _copy(production, tmp_path)
    victim = work / "ntuples" / "gg" / "gg_e0003_r00000-00003_0000.root"
    DAMAGE[case](victim)
    _check_victim(work, victim, "sha256 [0-9a-f]{16}... differs from the manifest's")


@pytest.mark.parametrize("case", list(CONTENT_REASONS))
def test_a_damaged_file_is_named_even_when_its_checksum_matches(
    production: Path, tmp_path: Path, case: str
) -> None:
    work = _copy(production, tmp_path)
    victim = work / "ntuples" / "gg" / "gg_e0003_r00000-00003_0000.root"
    DAMAGE[case](victim)
    _reseal(work, victim)
    _check_victim(work, victim, CONTENT_REASONS[case])


def test_skipping_is_refused_by_default_naming_the_file(production: Path, tmp_path: Path) -> None:
    work = _copy(production, tmp_path)
    victim = work / "ntuples" / "data" / "data_e0003_r00000-00003_0002.root"
    _garbage_in_baskets(victim)
    with pytest.raises(ProcessingError, match=rf"{victim}.*skip_bad_files"):
        run_processing(tiny_config(), work, progress=False, write_skims=False)
    assert not (work / "histograms").exists()


def test_the_calibration_verifies_the_checksums_too(production: Path, tmp_path: Path) -> None:
    from processors.calibrate import run_calibration

    work = _copy(production, tmp_path)
    victim = work / "ntuples" / "data" / "data_e0003_r00000-00003_0001.root"
    _garbage_in_baskets(victim)
    with pytest.raises(ProcessingError, match=rf"cannot process {victim}: sha256"):
        run_calibration(tiny_config(), work, progress=False)


def test_a_skipped_data_file_lowers_the_luminosity(
    production: Path, baseline: Path, tmp_path: Path
) -> None:
    """#19.2: skip one of five data files: the luminosity drops by its share, the data histograms
    equal a run without that file, the MC follows the processed luminosity, and the skipped file
    and the out-of-range counts of another file are in the provenance."""
    work = _copy(production, tmp_path / "skip")
    manifest = json.loads((work / "ntuples" / "manifest.json").read_text())
    victim_entry = next(f for f in manifest["files"] if f["path"].endswith("data_e0003_r00000-00003_0002.root"))  # fmt: skip
    victim = work / "ntuples" / victim_entry["path"]
    _garbage_in_baskets(victim)
    odd = work / "ntuples" / "ggg" / "ggg_e0003_r00000-00003_0000.root"

    def _unphysical(c: dict[str, ak.Array]) -> dict[str, ak.Array]:
        cluster = c["cluster"]
        energy = ak.to_numpy(ak.flatten(cluster.E)).copy()
        time = ak.to_numpy(ak.flatten(cluster.time)).copy()
        energy[:5] = -1.0
        time[5:8] = np.nan
        counts = ak.num(cluster)
        cluster = ak.with_field(cluster, ak.unflatten(energy, counts), "E")
        return dict(c, cluster=ak.with_field(cluster, ak.unflatten(time, counts), "time"))

    _rewrite(odd, _unphysical)
    _reseal(work, odd)
    result = run_processing(
        tiny_config(skip_bad_files=True), work, progress=False, write_skims=False
    )
    planned = sum(manifest["luminosity_pb"].values())
    assert result.luminosity_pb["2018"] == pytest.approx(planned - victim_entry["luminosity_pb"], rel=1e-12)  # fmt: skip
    assert result.luminosity_pb["2018"] / planned == pytest.approx(0.8, abs=0.01)
    provenance = read_provenance(result.histogram_file)
    assert provenance["luminosity_pb"] == result.luminosity_pb
    assert provenance["planned_luminosity_pb"]["2018"] == planned
    assert [s["file"] for s in provenance["skipped"]] == [str(victim)]
    assert provenance["out_of_range"] == {
        str(odd): {"cluster_E negative or non-finite": 5, "cluster_time non-finite": 3}
    }
    assert result.events == sum(f["events"] for f in manifest["files"]) - victim_entry["events"]

    # the same production without that file, processed from the start
    without = _copy(production, tmp_path / "without")
    manifest["files"] = [f for f in manifest["files"] if f is not victim_entry]
    (without / "ntuples" / "manifest.json").write_text(json.dumps(manifest))
    reference = read_histograms(
        run_processing(tiny_config(), without, progress=False, write_skims=False).histogram_file
    )
    full = read_histograms(baseline)
    skipped = read_histograms(result.histogram_file)
    share = 1.0 - victim_entry["luminosity_pb"] / planned
    for name in ("mgg", "cutflow", "generated"):
        data = {"dataset": "data"}
        np.testing.assert_array_equal(skipped[name][data].values(), reference[name][data].values())
        for sample in ("gg", "alp_m1000"):
            mc = {"dataset": sample}
            # ggg is left out: one of its files is the odd one (same events, altered energies)
            np.testing.assert_allclose(
                skipped[name][mc].values(), share * full[name][mc].values(), rtol=1e-12, atol=0
            )


def test_a_skipped_mc_file_keeps_the_mc_normalisation(
    production: Path, baseline: Path, tmp_path: Path
) -> None:
    """One of four gg files skipped: the other three carry the block's whole luminosity, every
    other dataset is bit-identical to the undisturbed run."""
    work = _copy(production, tmp_path)
    victim = work / "ntuples" / "gg" / "gg_e0003_r00000-00003_0001.root"
    _truncate(victim)
    result = run_processing(
        tiny_config(skip_bad_files=True), work, progress=False, write_skims=False
    )
    full, skipped = read_histograms(baseline), read_histograms(result.histogram_file)
    assert result.luminosity_pb == read_provenance(baseline)["luminosity_pb"]
    for dataset in ("data", "ggg", "alp_m1000"):
        for name in ("mgg", "cutflow", "generated", "kinfit_chi2"):
            where = {"dataset": dataset}
            np.testing.assert_array_equal(skipped[name][where].values(), full[name][where].values())
            np.testing.assert_array_equal(
                skipped[name][where].variances(), full[name][where].variances()
            )
    gg = {"dataset": "gg"}
    assert skipped["generated"][gg].sum().value == pytest.approx(
        full["generated"][gg].sum().value, rel=1e-12
    )
    scale = read_provenance(result.histogram_file)["mc_weight_scale"]
    assert len(scale) == 3 and all(v == pytest.approx(5990 / 4492) for v in scale.values())


def test_a_stray_file_in_the_work_directory_is_not_read(
    production: Path, baseline: Path, tmp_path: Path
) -> None:
    """Only the manifest's files are processed: a file of another configuration dropped beside
    them changes nothing and is not among the inputs."""
    work = _copy(production, tmp_path)
    stray = work / "ntuples" / "gg" / "gg_e0003_r00000-00003_0009.root"
    shutil.copyfile(work / "ntuples" / "gg" / "gg_e0003_r00000-00003_0000.root", stray)
    result = run_processing(tiny_config(), work, progress=False, write_skims=False)
    assert str(stray) not in [i["path"] for i in read_provenance(result.histogram_file)["inputs"]]
    full, again = read_histograms(baseline), read_histograms(result.histogram_file)
    np.testing.assert_array_equal(again["mgg"].values(), full["mgg"].values())


def test_regeneration_replaces_a_file_whose_content_changed(
    production: Path, tmp_path: Path
) -> None:
    """A damaged file whose meta still reads is made again, not trusted on its task hash, and
    the generation says so (this check alone covers `alps generate` and `alps run`)."""
    work = _copy(production, tmp_path)
    victim = work / "ntuples" / "ggg" / "ggg_e0003_r00000-00003_0000.root"
    with uproot.open(victim) as handle:
        original = handle["events"]["weight"].array(library="np")
    _rewrite(victim, lambda c: dict(c, weight=np.asarray(c["weight"]) * 2))
    messages: list[str] = []
    manifest = generate_samples(
        tiny_config(), work, progress=False, samples=["ggg"], echo=messages.append
    )
    assert [f["skipped"] for f in manifest["files"]] == [False]
    assert messages == [
        "[generate] ntuples/ggg/ggg_e0003_r00000-00003_0000.root changed since it was "
        "generated: made again"
    ]
    assert manifest["files"][0]["sha256"] == file_checksum(victim)
    with uproot.open(victim) as handle:
        np.testing.assert_array_equal(handle["events"]["weight"].array(library="np"), original)
    # and an intact file is kept
    again = generate_samples(
        tiny_config(), work, progress=False, samples=["ggg"], echo=messages.append
    )
    assert [f["skipped"] for f in again["files"]] == [True]
    assert len(messages) == 1
    # a file made again for another configuration is not called damaged
    other = generate_samples(
        tiny_config(seed=5), work, progress=False, samples=["ggg"], echo=messages.append
    )
    assert [f["skipped"] for f in other["files"]] == [False]
    assert len(messages) == 1


def test_a_slice_with_zero_data_events_is_processed_without_a_traceback(
    production: Path, tmp_path: Path
) -> None:
    """Every data file empty (a tiny slice where the Poisson count is zero): the processing
    reads the zero-entry files, fills the MC, and says 0 data events; the limits then refuse
    with a message naming the missing data (tests/test_limits.py::test_missing_data_is_a_clear_error)."""
    work = _copy(production, tmp_path)
    manifest_path = work / "ntuples" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["sample"] == "data":
            _rewrite(work / "ntuples" / entry["path"], lambda c: {k: v[:0] for k, v in c.items()})
            entry["events"] = 0
            entry["sha256"] = file_checksum(work / "ntuples" / entry["path"])
    manifest_path.write_text(json.dumps(manifest))
    result = run_processing(tiny_config(), work, progress=False, write_skims=False)
    assert result.events == sum(f["events"] for f in manifest["files"] if f["sample"] != "data")
    hists = read_histograms(result.histogram_file)
    assert "data" not in list(hists["mgg"].axes["dataset"])
    assert hists["generated"][{"dataset": "gg"}].sum().value > 0


def test_a_remembered_digest_spares_the_hash_only_while_the_file_is_unchanged(
    production: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#12: a file whose size and mtime match the digest the work directory remembers (the
    generation hashed it) is not hashed again before processing; a file changed since is
    hashed, and fails its checksum, though the memo still holds its old digest."""
    import processors.run as run_module
    from alps.records import RECORD_DIR, FileDigests

    work = _copy(production, tmp_path)
    (work / RECORD_DIR).mkdir()
    manifest = json.loads((work / "ntuples" / "manifest.json").read_text())
    digests = FileDigests(work)
    for entry in manifest["files"]:
        digests.digest(f"ntuples/{entry['path']}")
    digests.save()
    hashed: list[str] = []

    def counting(path: str | Path) -> str:
        hashed.append(str(path))
        return file_checksum(path)

    monkeypatch.setattr(run_module, "file_checksum", counting)
    result = run_processing(tiny_config(), work, progress=False, write_skims=False)
    assert hashed == [] and result.events == sum(f["events"] for f in manifest["files"])

    victim = work / "ntuples" / "gg" / "gg_e0003_r00000-00003_0000.root"
    _garbage_in_baskets(victim)  # same size, new mtime
    with pytest.raises(ProcessingError, match=rf"cannot process {victim}: sha256"):
        run_processing(tiny_config(), work, progress=False, write_skims=False)
    assert hashed == [str(victim)]


def test_out_of_range_counts_add_up_over_the_chunks_of_a_file(
    production: Path, tmp_path: Path
) -> None:
    """#12: the processor counts the impossible values in the arrays it reads, chunk by chunk;
    the sums per file equal a count over the whole file (processors.integrity)."""
    from processors.integrity import out_of_range_counts

    work = _copy(production, tmp_path)
    odd = work / "ntuples" / "ggg" / "ggg_e0003_r00000-00003_0000.root"

    def _unphysical(c: dict[str, ak.Array]) -> dict[str, ak.Array]:
        cluster = c["cluster"]
        energy = ak.to_numpy(ak.flatten(cluster.E)).copy()
        theta = ak.to_numpy(ak.flatten(cluster.theta)).copy()
        energy[::97] = -1.0
        theta[::131] = 4.0
        counts = ak.num(cluster)
        cluster = ak.with_field(cluster, ak.unflatten(energy, counts), "E")
        weight = np.asarray(c["weight"]).copy()
        weight[::50] = np.inf
        return dict(
            c, cluster=ak.with_field(cluster, ak.unflatten(theta, counts), "theta"), weight=weight
        )

    _rewrite(odd, _unphysical)
    _reseal(work, odd)
    with uproot.open(odd) as handle:
        whole = out_of_range_counts(handle["events"])
    assert len(whole) == 3 and min(whole.values()) >= 5
    result = run_processing(tiny_config(chunk_size=97), work, progress=False, write_skims=False)
    assert result.out_of_range == {str(odd): whole}
    assert read_provenance(result.histogram_file)["out_of_range"] == {str(odd): whole}
