"""Fault suite, configuration: values valid by type but physically impossible or inconsistent are
refused with the dotted name of the field (issue #14), empty slices are refused (#19.5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alps.config import AnalysisConfig, ConfigError, load_config
from alps.consistency import ConfigWarning, load_checked_config
from simulation.registry import RunRegistry, load_registry


def _load(tmp_path: Path, text: str) -> AnalysisConfig:
    path = tmp_path / "analysis.yaml"
    path.write_text(text)
    return load_checked_config(path)


@pytest.mark.parametrize(
    ("yaml_text", "field", "message"),
    [
        # issue #14's headline case: a mass above sqrt(s) ~ 10.58 GeV
        (
            "simulation:\n  signal:\n    masses: {values: [1.0, 11.5]}\nlimits:\n  masses: {values: [1.0]}\n",
            "simulation.signal.masses",
            r"\[11\.5\] GeV at or above the kinematic limit m_a < sqrt\(s\) = 10\.5796 GeV of run block e0003",
        ),
        (
            "simulation:\n  data:\n    inject: {mass_GeV: 10.6, coupling_GeV: 1.0e-3}\n",
            "simulation.data.inject.mass_GeV",
            "kinematic limit",
        ),
        (
            "limits:\n  masses: {values: [0.1, 2.0]}\n",
            "limits.masses",
            r"\[0\.1\] GeV outside the simulated signal grid \[0\.175, 10\.375\]",
        ),
        (
            "simulation:\n  signal:\n    masses: {values: [2.0, 3.0]}\nlimits:\n  masses: {values: [2.5, 3.5]}\n",
            "limits.masses",
            "no simulated neighbour",
        ),
        (
            "simulation:\n  signal:\n    masses: {values: [0.5, 9.0]}\n",
            "limits.scan_range_GeV",
            r"scan masses \[0\.2, 9\.7\] GeV outside the simulated signal grid",
        ),
        ("limits:\n  window_nsigma: 300\n", "limits.window_nsigma", "wider than the M_gamma_gamma spectrum"),
        ("training:\n  window_nsigma: 300\n", "training.window_nsigma", "wider than"),
        ("limits:\n  efficiency_window_nsigma: 300\n", "limits.efficiency_window_nsigma", "wider than"),
        ("limits:\n  scan_range_GeV: [9.7, 0.2]\n", "limits.scan_range_GeV", "increasing"),
        ("limits:\n  scan_range_GeV: [0.2, 12.0]\n", "limits.scan_range_GeV", "inside the M_gamma_gamma spectrum"),
        ("histograms:\n  resolution: {p0: 0.01, p1: 0.0, p2: -0.001}\n", "histograms.resolution", "not positive"),
        ('run_slice: "exp=999"\n', "run_slice", "selects no runs"),
        ('run_slice: ""\n', "run_slice", "selects nothing"),
        ('run_slice: " "\n', "run_slice", "selects nothing"),
        ('run_slice: ","\n', "run_slice", "selects nothing"),
        ("simulation:\n  mc_luminosity_factor: 0\n", "simulation.mc_luminosity_factor", "greater than 0"),
        ('run_slice: "2018,lumi=0"\n', "run_slice", "must be positive"),
        ("training:\n  working_point: 0.55\n", "training.working_point", "not a score-bin edge"),
        ("histograms:\n  score_edges: [0.0, 0.5, 1.5]\n", "histograms.score_edges", r"in \[0, 1\]"),
        ("histograms:\n  score_edges: [-0.5, 0.5, 1.0]\n", "histograms.score_edges", r"in \[0, 1\]"),
    ],
)  # fmt: skip
def test_impossible_values_are_refused_naming_the_field(
    tmp_path: Path, yaml_text: str, field: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"(?s)\n  {field}: .*{message}"):
        _load(tmp_path, yaml_text)


def test_a_mass_above_any_run_blocks_sqrt_s_is_refused(tmp_path: Path) -> None:
    """The limit is the lowest sqrt(s) of the slice: a registry whose second block runs below the
    Upsilon(4S) refuses a mass that the first block could make, naming that block."""
    blocks = list(load_registry().select("2018"))
    last = blocks[-1]
    # 6.5 + 3.7 GeV beams: sqrt(s) = 2 sqrt(6.5 x 3.7) cos(41.5 mrad) = 9.7997 GeV
    blocks.append(
        dataclasses.replace(
            last, run_lo=last.run_hi + 1, run_hi=last.run_hi + 10, e_her=6.5, e_ler=3.7
        )
    )
    RunRegistry(blocks).write_csv(tmp_path / "registry.csv")
    text = (
        "run_registry: registry.csv\nsimulation:\n  signal:\n    masses: {values: [1.0, 10.0]}\n"
        "limits:\n  masses: {values: [1.0]}\n"
    )
    expected = (
        rf"simulation\.signal\.masses: \[10\] GeV .* = 9\.7997 GeV of run block {blocks[-1].name}"
    )
    with pytest.raises(ConfigError, match=expected):
        _load(tmp_path, text)
    accepted = _load(tmp_path, text.replace("10.0]", "9.7]"))
    assert accepted.simulation.signal.masses.masses().max() == 9.7


def test_run_slice_as_a_yaml_integer_is_the_string(tmp_path: Path) -> None:
    config = _load(tmp_path, "run_slice: 2018\n")
    assert config.run_slice == "2018"
    assert config.section_hash("run_slice") == load_config().section_hash("run_slice")


@pytest.mark.parametrize("spec", ["", " ", ",", " , "])
def test_the_registry_refuses_an_empty_slice(spec: str) -> None:
    with pytest.raises(ValueError, match="selects nothing"):
        load_registry().select(spec)
    assert load_registry().select("all").lumi_pb > load_registry().select("2018").lumi_pb


def test_a_background_list_without_ggg_is_allowed_but_said(tmp_path: Path) -> None:
    with pytest.warns(ConfigWarning, match=r"simulation\.backgrounds leaves out ggg"):
        config = _load(tmp_path, "simulation:\n  backgrounds: [gg, eeg]\n")
    assert config.simulation.backgrounds == ("gg", "eeg")


def test_the_shipped_default_passes_every_check() -> None:
    config = load_checked_config()
    assert config.limits.masses is None  # the resolution grid over the scan range
    assert config.limits.scan_range_GeV[1] <= config.simulation.signal.masses.masses().max()


def test_cli_refuses_the_impossible_mass_before_any_stage(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from alps.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("simulation:\n  signal:\n    masses: {values: [11.5]}\n")
    workdir = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", "--config", str(bad), "--workdir", str(workdir)])
    assert result.exit_code == 2
    assert "simulation.signal.masses" in result.output and "kinematic limit" in result.output
    assert not (workdir / "ntuples").exists()
