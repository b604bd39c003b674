"""Cluster profiles (job scripts built, not submitted) and the command line wiring."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from dask.utils import parse_bytes

from alps.cli import main
from alps.cluster import CLUSTER_TYPES, job_script, load_profiles, walltime_seconds

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Job scripts create the profile's (relative) log directory: keep it out of the project."""
    monkeypatch.chdir(tmp_path)


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


def test_every_cluster_type_is_one_row_of_the_table(tmp_path: Path) -> None:
    assert set(CLUSTER_TYPES) == {"local", "slurm", "htcondor", "pbs", "scheduler"}
    path = tmp_path / "dask.yaml"
    path.write_text("profiles:\n  mine:\n    type: scheduler\n")
    with pytest.raises(ValueError, match=r"mine.*needs 'address'"):
        load_profiles(path)


def test_shipped_slurm_profile_is_portable_and_retires_workers_before_the_walltime() -> None:
    profile = load_profiles(ROOT / "dask_config.yaml")["slurm"]
    script = job_script(profile)
    assert "--constraint" not in script, "site-specific directives belong in the README"
    lifetime = int(re.search(r"--lifetime (\d+)s", script).group(1))
    stagger = int(re.search(r"--lifetime-stagger (\d+)s", script).group(1))
    walltime = walltime_seconds(profile.options["walltime"])
    assert lifetime - stagger > 0 and lifetime + stagger < walltime
    assert "8787" not in script and profile.adapt["wait_count"] * 5 >= 300


def test_slurm_job_memory_covers_the_dask_memory_limit() -> None:
    """SLURM's --mem counts MiB; Dask's limit is per worker process in bytes: the job must ask
    for more than all its workers may use, so Dask's limit acts before SLURM's OOM kill."""
    profile = load_profiles(ROOT / "dask_config.yaml")["slurm"]
    script = job_script(profile)
    job_mib = int(re.search(r"#SBATCH --mem=(\d+)M", script).group(1))
    limit = parse_bytes(re.search(r"--memory-limit (\S+)", script).group(1))
    processes = int(re.search(r"--nworkers (\d+)", script).group(1))
    requested = parse_bytes(profile.options["memory"])  # 64GB, decimal
    assert job_mib * 2**20 >= requested > processes * limit
    assert processes * limit == pytest.approx((1 - profile.memory_headroom) * requested, rel=1e-3)


def test_walltime_is_validated_naming_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "dask.yaml"
    path.write_text("profiles:\n  site:\n    type: slurm\n    walltime: four hours\n")
    with pytest.raises(ValueError, match=r"site.*'walltime'"):
        load_profiles(path)


def test_show_script_prints_the_job_script() -> None:
    result = CliRunner().invoke(
        main, ["cluster", "show-script", "--cluster", "slurm", "--dask-config",
               str(ROOT / "dask_config.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "#SBATCH --mem=" in result.output and "distributed.cli.dask_worker" in result.output
    result = CliRunner().invoke(main, ["cluster", "show-script", "--cluster", "local"])
    assert result.exit_code != 0 and "submits no batch jobs" in result.output


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


GENERATE = """\
seed: 3
run_slice: "lumi=0.002"
simulation:
  backgrounds: [gg]
  signal: {masses: {values: [0.2, 9.7]}, events_per_mass: 100}
  data: {enabled: false}
"""


def test_a_wheel_install_finds_the_shipped_profiles(tmp_path: Path) -> None:
    """A non-editable install (the wheel, without dependencies, into a target folder in front of
    this environment's packages) runs `alps --help` and a tiny `alps generate` on the `local`
    profile from the packaged alps/data/dask_config.yaml, far from the project."""
    import shutil
    import subprocess
    import sys

    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".*")
    for name in ("alps", "simulation", "kinfit", "processors", "models", "limits"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "dask_config.yaml"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)], check=True)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("alps-*.whl")
    target = tmp_path / "installed"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    assert (target / "alps" / "data" / "dask_config.yaml").is_file()

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ALPS_DASK_CONFIG")}
    env["PYTHONPATH"] = str(target)
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "tiny.yaml").write_text(GENERATE)

    def alps(*args: str) -> str:
        proc = subprocess.run([str(target / "bin" / "alps"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert "generate" in alps("--help")
    alps("generate", "--config", "tiny.yaml", "--workdir", "out", "--workers", "1", "--quiet")
    assert list((work / "out" / "ntuples").glob("*/*.root"))
    where = subprocess.run([sys.executable, "-c", "import alps; print(alps.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.startswith(str(target)), "the wheel, not the project, must be imported"


def test_profile_file_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$ALPS_DASK_CONFIG, then ./dask_config.yaml, then the packaged copy."""
    from alps.cluster import find_dask_config

    monkeypatch.delenv("ALPS_DASK_CONFIG", raising=False)
    packaged = find_dask_config()  # tmp_path (the cwd) has none yet
    assert (
        packaged.parent.name == "data"
        and packaged.read_text() == (ROOT / "dask_config.yaml").read_text()
    )
    (tmp_path / "dask_config.yaml").write_text("profiles: {}\n")
    assert find_dask_config() == tmp_path / "dask_config.yaml"
    monkeypatch.setenv("ALPS_DASK_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="ALPS_DASK_CONFIG"):
        find_dask_config()
