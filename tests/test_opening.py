"""#12: ntuples opened once per worker thread (processors.opening): the same tree while the file
is unchanged, a fresh one after it changed, unmapped files that still read, and the processor
run through ColumnRunner (no NanoEvents) filling exactly what coffea's own Runner fills."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from coffea import processor

import processors.opening as opening
from alps.config import AnalysisConfig, ProcessingConfig, SimulationConfig
from processors.alp_processor import ALPProcessor, ProcessorSettings
from processors.binning import mass_edges
from processors.columns import ChunkColumns, clear_spans, read_chunk
from processors.opening import UPROOT_OPTIONS, ColumnRunner, clear_open_files, open_tree
from processors.run import build_fileset, read_manifest
from processors.schema import BelleIISchema
from simulation.production import generate_samples


def _config() -> AnalysisConfig:
    return AnalysisConfig(
        run_slice="2018,lumi=0.001",
        processing=ProcessingConfig(chunk_size=400),
        simulation=SimulationConfig(backgrounds=("ggg", "gg"), events_per_file=1000),
    )


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("opening")
    generate_samples(_config(), workdir, progress=False, samples=["ggg", "gg"])
    return workdir


def _files(workdir: Path) -> list[Path]:
    return sorted((workdir / "ntuples").rglob("*.root"))


def test_a_file_is_opened_once_while_it_is_unchanged(production: Path, tmp_path: Path) -> None:
    clear_open_files()
    path = tmp_path / "a.root"
    shutil.copyfile(_files(production)[0], path)
    first = open_tree(path)
    assert open_tree(path) is first
    energy = first["cluster_E"].array(library="np")
    # rewritten in place with other content (another file of the production): a new tree
    other = next(p for p in _files(production) if p.stat().st_size != path.stat().st_size)
    shutil.copyfile(other, path)
    second = open_tree(path)
    assert second is not first
    assert second.num_entries == open_tree(other).num_entries
    assert len(second["cluster_E"].array(library="np")) != len(energy) or not np.array_equal(
        np.concatenate(second["cluster_E"].array(library="np")), np.concatenate(energy)
    )
    clear_open_files()


def test_files_beyond_the_mapped_ones_are_unmapped_and_still_read(
    production: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_open_files()
    monkeypatch.setattr(opening, "MAX_MAPPED", 1)  # the default
    paths = []
    for i, source in enumerate(_files(production)[:3]):
        paths.append(tmp_path / f"{i}.root")
        shutil.copyfile(source, paths[-1])
    trees = [open_tree(p) for p in paths]
    sources = [t.file.source for t in trees]
    assert all(isinstance(s, opening.RemappingMemmapSource) for s in sources)
    assert [s.closed for s in sources] == [True, True, False]
    # an unmapped file maps itself again to read, and reads what a fresh open reads
    again = trees[0]["weight"].array(library="np")
    import uproot

    with uproot.open(paths[0], **UPROOT_OPTIONS) as handle:
        assert np.array_equal(again, handle["events"]["weight"].array(library="np"))
    assert open_tree(paths[0]) is trees[0]  # remembered although it was unmapped
    clear_open_files()
    assert all(s.closed for s in sources)


def test_a_removed_file_is_an_error_not_a_stale_tree(production: Path, tmp_path: Path) -> None:
    clear_open_files()
    path = tmp_path / "gone.root"
    shutil.copyfile(_files(production)[0], path)
    open_tree(path)
    os.remove(path)
    with pytest.raises(FileNotFoundError):
        open_tree(path)
    clear_open_files()


def test_column_runner_fills_what_coffea_s_runner_fills(production: Path) -> None:
    """The processor given only the chunk's metadata (ColumnRunner) and given NanoEvents
    (coffea's Runner) fills the same histograms to the last bit, over several chunks a file."""
    config = _config()
    manifest, _ = read_manifest(production)
    fileset = build_fileset(production, manifest)
    settings = ProcessorSettings(config, tuple(mass_edges(config.histograms)), (1.0, 0.5))
    outputs = []
    for runner_class in (processor.Runner, ColumnRunner):
        clear_open_files()
        runner = runner_class(
            executor=processor.IterativeExecutor(status=False),
            schema=BelleIISchema,
            chunksize=400,
            savemetrics=False,
        )
        outputs.append(
            runner(
                fileset,
                processor_instance=ALPProcessor(settings),
                treename="events",
                uproot_options=UPROOT_OPTIONS,
            )
        )
    coffea_out, column_out = outputs
    assert len(coffea_out["chunks"]) == len(column_out["chunks"]) > len(fileset)
    names = [k for k, v in coffea_out.items() if hasattr(v, "view")]
    assert "mgg" in names and set(names) == {k for k, v in column_out.items() if hasattr(v, "view")}
    for name in names:
        a, b = coffea_out[name], column_out[name]
        assert a.axes == b.axes, name
        for field in ("value", "variance"):
            va, vb = getattr(a.view(flow=True), field), getattr(b.view(flow=True), field)
            assert np.array_equal(va, vb, equal_nan=True), name
    assert coffea_out["mgg"].sum(flow=True).value > 0
    clear_open_files()


def _columns_equal(a: ChunkColumns, b: ChunkColumns) -> None:
    assert a.n == b.n
    assert a.event.keys() == b.event.keys() and a.collections.keys() == b.collections.keys()
    for name in a.event:
        assert a.event[name].dtype == b.event[name].dtype
        assert np.array_equal(a.event[name], b.event[name]), name
    for prefix, coll in a.collections.items():
        assert np.array_equal(coll.offsets, b.collections[prefix].offsets), prefix
        assert coll.offsets[0] == 0 and coll.offsets[-1] == len(
            coll.raw["E" if "E" in coll.raw else "px"]
        )
        for name, values in coll.raw.items():
            other = b.collections[prefix].raw[name]
            assert values.dtype == other.dtype and np.array_equal(values, other), (prefix, name)


@pytest.mark.parametrize("order", ["in order", "reversed", "shuffled"])
def test_chunks_of_a_file_read_its_baskets_once_and_equal_a_read_of_each_chunk(
    production: Path, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#12: the chunks of a file that share its baskets are cut from one read of them
    (processors.columns), and each equals uproot's read of that chunk alone, in any order."""
    import uproot

    clear_open_files()
    clear_spans()
    path = max(_files(production), key=lambda p: p.stat().st_size)
    tree = open_tree(path)
    n = tree.num_entries
    assert tree["cluster_E"].num_baskets < 3  # chunks of 400 share baskets
    bounds = [(s, min(s + 300, n)) for s in range(0, n, 300)]
    if order == "reversed":
        bounds = bounds[::-1]
    elif order == "shuffled":
        bounds = [bounds[i] for i in np.random.default_rng(7).permutation(len(bounds))]
    reads = []
    original = tree.arrays

    def counted(*args: object, **kwargs: object) -> object:
        reads.append((kwargs["entry_start"], kwargs["entry_stop"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(tree, "arrays", counted)
    with uproot.open(path, **UPROOT_OPTIONS) as handle:
        alone = handle["events"]
        for start, stop in bounds:
            _columns_equal(read_chunk(tree, start, stop, False), _read_alone(alone, start, stop))
    if order == "in order":  # one basket read for the whole file
        assert len(reads) == tree["cluster_E"].num_baskets
    assert all(stop - start >= 300 for start, stop in reads)
    clear_spans()
    clear_open_files()


def test_a_rewritten_file_is_read_again_not_cut_from_kept_baskets(
    production: Path, tmp_path: Path
) -> None:
    clear_open_files()
    clear_spans()
    path = tmp_path / "r.root"
    files = sorted(_files(production), key=lambda p: p.stat().st_size)
    shutil.copyfile(files[-1], path)
    first = read_chunk(open_tree(path), 0, 100, False)  # the rest of the file is kept
    shutil.copyfile(files[-2], path)
    second = read_chunk(open_tree(path), 100, 200, False)
    import uproot

    with uproot.open(path, **UPROOT_OPTIONS) as handle:
        _columns_equal(second, _read_alone(handle["events"], 100, 200))
    assert first.n == 100
    clear_spans()
    clear_open_files()


def _read_alone(tree: object, start: int, stop: int) -> ChunkColumns:
    """What a read of the chunk alone gives (uproot's arrays of the range)."""
    from processors.columns import _names, _read

    wanted, names = _names(tree, False)
    return _read(tree, wanted, names, start, stop)
