"""Cluster profiles (job scripts built, not submitted) and the command line wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from alps.cli import main
from alps.cluster import job_script, load_profiles

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_profiles_are_valid() -> None:
    profiles = load_profiles(ROOT / "dask_config.yaml")
    assert {"local", "slurm", "htcondor", "existing"} <= set(profiles)
    assert profiles["existing"].address


@pytest.mark.parametrize(("name", "marker"), [("slurm", "#SBATCH"), ("htcondor", "RequestCpus")])
def test_jobqueue_profiles_build_job_scripts(name: str, marker: str) -> None:
    script = job_script(load_profiles(ROOT / "dask_config.yaml")[name])
    assert marker in script or marker.lower() in script.lower()
    assert "dask" in script and "OMP_NUM_THREADS=1" in script
    assert "NUMBA_CACHE_DIR" in script


def test_bad_profile_is_named(tmp_path: Path) -> None:
    path = tmp_path / "dask.yaml"
    path.write_text("profiles:\n  mine:\n    type: kubernetes\n")
    with pytest.raises(ValueError, match="mine"):
        load_profiles(path)


def test_cli_lists_the_stages() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("generate", "process", "run"):
        assert name in result.output


def test_cli_refuses_a_bad_config_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("simulation:\n  events_per_file: 0\n")
    result = CliRunner().invoke(
        main, ["generate", "--config", str(bad), "--workdir", str(tmp_path / "w")]
    )
    assert result.exit_code != 0
    assert "simulation.events_per_file" in result.output


def test_cli_refuses_a_bad_slice(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["generate", "--slice", "exp=999", "--workdir", str(tmp_path / "w"), "--quiet"]
    )
    assert result.exit_code != 0
    assert "selects no runs" in result.output
