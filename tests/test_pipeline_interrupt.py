"""Interrupted runs resume (#14, #19): `alps` killed (SIGKILL) or interrupted (SIGINT) in the
middle of a stage leaves no record for the unfinished stage; the next run redoes only the
unfinished work and ends with the same outputs as an undisturbed run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

from alps.config import load_config
from alps.records import read_record
from simulation.production import generate_samples

TINY = """\
name: tiny
seed: 11
run_slice: "2018,lumi=0.002"
simulation:
  backgrounds: [ggg, gg]
  signal:
    masses: {values: [1.0]}
    events_per_mass: 300
  events_per_file: 200
  cuts: {calibration_events: 3000}
limits:
  masses: {values: [1.0]}
"""


def _start(*args: str | Path) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("alps")
    return subprocess.Popen(
        [str(exe), *map(str, args), "--quiet", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the signal reaches alps and its Dask workers
    )


def _alps(*args: str | Path) -> str:
    proc = _start(*args)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    return output


def _interrupt_when(proc: subprocess.Popen[str], ready: Path, pattern: str, sig: int) -> None:
    """Send ``sig`` once files matching ``pattern`` appear under ``ready`` (at least 3)."""
    deadline = time.monotonic() + 600
    while len(list(ready.glob(pattern))) < 3:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, sig)
    proc.communicate(timeout=120)
    if sig != signal.SIGKILL:
        time.sleep(1.0)
    with contextlib.suppress(ProcessLookupError):  # no worker may outlive the command
        os.killpg(proc.pid, signal.SIGKILL)


def _arrays(workdir: Path) -> dict[str, dict[str, np.ndarray]]:
    manifest = json.loads((workdir / "ntuples" / "manifest.json").read_text())
    out = {}
    for entry in manifest["files"]:
        with uproot.open(workdir / "ntuples" / entry["path"]) as handle:
            arrays = handle["events"].arrays(library="np")
        out[entry["path"]] = {k: v for k, v in arrays.items() if v.dtype != object}
    return out


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
)
def test_interrupted_generation_resumes_with_identical_files(tmp_path: Path, sig: int) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    work = tmp_path / "work"
    proc = _start("generate", "--config", config, "--workdir", work)
    _interrupt_when(proc, work / "ntuples", "*/*.root", sig)
    assert read_record(work, "generate") is None, "an interrupted stage has no record"
    assert not (work / "ntuples" / "manifest.json").exists()
    made = len(list((work / "ntuples").glob("*/*.root")))

    _alps("generate", "--config", config, "--workdir", work)
    record = read_record(work, "generate")
    assert record is not None
    assert made <= record["facts"]["reused"] < record["facts"]["files"], record["facts"]

    reference = tmp_path / "reference"
    generate_samples(load_config(config), reference, progress=False)
    resumed, expected = _arrays(work), _arrays(reference)
    assert resumed.keys() == expected.keys()
    for path, arrays in expected.items():
        for name, values in arrays.items():
            np.testing.assert_array_equal(resumed[path][name], values, err_msg=f"{path}:{name}")


CHAIN = """\
name: chain
seed: 5
run_slice: "lumi=0.02"
simulation:
  signal:
    masses: {values: [0.5, 1.5, 3.0, 5.0, 7.0, 9.0]}
    events_per_mass: 400
training:
  bce_epochs: 2
  punzi_epochs: 3
  held_out_masses: 1
  xgboost_rounds: 10
limits:
  masses: {start: 0.6, stop: 8.6, step: 0.4}
"""


def _numbers(workdir: Path) -> dict[str, object]:
    limits = json.loads((workdir / "limits" / "limits.json").read_text())
    return {k: limits[k] for k in ("masses_GeV", "observed", "expected", "local_significance")}


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("chain")
    config = root / "chain.yaml"
    config.write_text(CHAIN)
    _alps("run", "--config", config, "--workdir", root / "work")
    return config, _numbers(root / "work")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "where", "pattern"),
    [
        (signal.SIGKILL, "ntuples", "*/*.root"),
        (signal.SIGINT, "ntuples", "*/*.root"),
        (signal.SIGKILL, ".", ".skims-new-*/*/*.parquet"),
        (signal.SIGINT, ".", ".skims-new-*/*/*.parquet"),
    ],
    ids=["kill-generate", "int-generate", "kill-process", "int-process"],
)
def test_interrupted_run_resumes_with_identical_limits(
    undisturbed: tuple[Path, dict[str, object]], tmp_path: Path, sig: int, where: str, pattern: str
) -> None:
    config, expected = undisturbed
    work = tmp_path / "work"
    proc = _start("run", "--config", config, "--workdir", work)
    _interrupt_when(proc, work / where, pattern, sig)
    assert read_record(work, "limits") is None
    output = _alps("run", "--config", config, "--workdir", work)
    if where == ".":  # interrupted in the processing: generation and calibration are kept
        assert "[generate] up to date, skipped" in output
        assert "[calibrate] up to date, skipped" in output
    assert _numbers(work) == expected
    assert not list(work.glob(".skims-*"))
