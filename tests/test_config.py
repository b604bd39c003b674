"""Configuration and run registry: validation errors name the field; slices; reproducibility."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from alps.config import AnalysisConfig, ConfigError, MassGrid, load_config
from simulation.registry import load_registry
from simulation.registry_table import build_default_registry


def test_default_config_loads_and_pickles() -> None:
    config = load_config()
    assert config.run_slice == "2018"
    again = pickle.loads(pickle.dumps(config))
    assert again == config
    with pytest.raises(Exception, match="frozen"):
        config.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("simulation:\n  signal:\n    events_per_mass: -5\n", "simulation.signal.events_per_mass"),
        ("simulation:\n  sigal: {}\n", "simulation.sigal"),
        ("preselection:\n  photon_e_min_GeV: cheap\n", "preselection.photon_e_min_GeV"),
        ("simulation:\n  backgrounds: [ggg, zzz]\n", "simulation.backgrounds"),
        ("limits:\n  masses: {start: 1.0}\n", "limits.masses"),
        ("histograms:\n  score_edges: [0.5, 0.2]\n", "histograms.score_edges"),
    ],
)
def test_bad_fields_are_named(tmp_path: Path, yaml_text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert field in str(excinfo.value)


def test_unreadable_and_non_mapping_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_mass_grid() -> None:
    grid = MassGrid(start=0.175, stop=9.6, step=0.05)
    masses = grid.masses()
    assert len(masses) == 189 and masses[0] == 0.175 and masses[-1] == 9.575
    assert MassGrid(start=0.175, stop=10.375, step=0.05).masses()[-1] == 10.375
    assert list(MassGrid(values=(1.0, 2.0)).masses()) == [1.0, 2.0]


def test_section_hash_changes_only_with_its_section() -> None:
    config = AnalysisConfig()
    other = config.model_copy(update={"seed": 5})
    assert config.section_hash("limits") == other.section_hash("limits")
    assert config.section_hash("seed") != other.section_hash("seed")


def test_registry_totals_match_belle_ii() -> None:
    registry = load_registry()
    assert registry.select("2018").lumi_pb == pytest.approx(445.0, rel=1e-3)
    assert registry.select("run1").lumi_pb == pytest.approx(426_900.0, rel=1e-3)
    # run-to-run variation exists, within a few MeV at the Upsilon(4S)
    her = np.array([b.e_her for b in registry.select("exp=12")])
    assert 0 < her.std() < 0.01


def test_shipped_registry_is_reproducible(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    build_default_registry().write_csv(path)
    shipped = Path(__file__).resolve().parent.parent / "simulation" / "data" / "run_registry.csv"
    assert path.read_text() == shipped.read_text()


@pytest.mark.parametrize(
    ("spec", "lumi_pb", "n_blocks"),
    [
        ("2018", 445.0, 4),
        ("exp=3", 445.0, 4),
        ("2018,lumi=0.1", 100.0, 2),
        ("period=2019b", None, 2),
    ],
)
def test_registry_slices(spec: str, lumi_pb: float | None, n_blocks: int) -> None:
    selected = load_registry().select(spec)
    assert len(selected) == n_blocks
    if lumi_pb is not None:
        assert selected.lumi_pb == pytest.approx(lumi_pb, abs=0.01)  # the table rounds to 1 nb^-1


def test_registry_run_range_slice_scales_luminosity() -> None:
    registry = load_registry().select("2018")
    block = registry[0]
    half = registry.select(f"runs={block.run_lo}..{block.run_lo + block.n_runs // 2 - 1}")
    assert len(half) == 1
    assert half.lumi_pb == pytest.approx(block.lumi_pb * (block.n_runs // 2) / block.n_runs)


@pytest.mark.parametrize("spec", ["exp=999", "colour=blue", "lumi=-1", "exp=abc", "nonsense"])
def test_bad_registry_slices_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"slice|lumi"):
        load_registry().select(spec)


def test_bad_registry_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("exp,run_lo\n3,0\n")
    with pytest.raises(ValueError, match="missing columns"):
        load_registry(path)


def test_a_slice_asked_for_more_luminosity_than_it_holds_is_refused() -> None:
    registry = load_registry()
    held = registry.select("2018").lumi_pb / 1000.0
    assert registry.select(f"2018,lumi={held:.6f}").lumi_pb == pytest.approx(held * 1000.0)
    with pytest.raises(ValueError, match=r"asks for 0.6 fb\^-1, but the runs it selects hold"):
        registry.select("2018,lumi=0.6")
    assert registry.select("lumi=0.6").lumi_pb == pytest.approx(600.0)  # runs beyond 2018
