"""Fault suite, the run around the physics (#19.5): a full disk, a read-only or impossible work
directory, an unreachable scheduler give messages, not tracebacks; temporaries of a failed
production are cleaned; provenance never writes into the source checkout."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from alps import cli, pipeline
from alps.histio import git_revision
from simulation import ntuple
from simulation.production import _remove_stale_temporaries


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/w/histograms/mgg.hist.zip.tmp"),
            "no space left on the device while writing /w/histograms/mgg.hist.zip.tmp",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/w/skims/data"),
            "cannot write /w/skims/data: Read-only file system",
        ),
    ],
)
def test_a_write_error_is_said_as_such_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, message: str
) -> None:
    """A full disk is not "cannot read <input>": the message names the output and the cause,
    and no record is written for the failed stage."""

    def fail(ctx: pipeline.RunContext) -> None:
        raise error

    stage = pipeline.STAGES["generate"]
    monkeypatch.setitem(
        pipeline.STAGES, "generate", pipeline.Stage(**{**stage.__dict__, "run": fail})
    )
    code, output = _invoke("generate", "--workdir", str(tmp_path), "--quiet")
    assert code == 1
    assert f"Error: {message}" in output
    assert "Traceback" not in output
    assert not (tmp_path / ".alps" / "generate.json").exists()


def test_a_work_directory_that_cannot_be_made_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, output = _invoke("report", "--workdir", str(blocker / "out"))
    assert code == 2
    assert f"--workdir {blocker / 'out'}: cannot write there" in output


def test_an_unreachable_scheduler_is_a_message_within_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "SCHEDULER_TIMEOUT_S", 2)
    ctx = pipeline.RunContext(
        config=None,  # type: ignore[arg-type]
        workdir=tmp_path,
        scheduler="tcp://127.0.0.1:9",  # the discard port: nothing listens
        echo=lambda _: None,
    )
    start = time.perf_counter()
    with pytest.raises(
        RuntimeError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        ctx.client()
    assert time.perf_counter() - start < 30


def test_a_failed_write_leaves_no_partial_ntuple(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ntuple is written to a temporary name; a failure (here: the disk fills while the
    tree is written) removes it, and the next production removes any a killed worker left."""
    content = ntuple.NtupleContent({"exp": np.zeros(3, np.int32)})

    def full_disk(self: object, data: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    import uproot.writing.writable

    monkeypatch.setattr(uproot.writing.writable.WritableTree, "extend", full_disk)
    target = tmp_path / "ntuples" / "ggg" / "ggg_e0003_r00000-00001_0000.root"
    with pytest.raises(OSError, match="No space left"):
        ntuple.write_ntuple(target, content, {})
    assert list(target.parent.iterdir()) == []

    stale = target.with_name(f".{target.name}.4242.tmp")
    stale.write_bytes(b"half a file")
    assert _remove_stale_temporaries(tmp_path / "ntuples") == [stale]
    assert not stale.exists()


def test_provenance_does_not_write_into_the_source_checkout(tmp_path: Path) -> None:
    """`git status` would refresh the index (writing index.lock, then a new index) when a
    tracked file's timestamp changed; the read-only query leaves .git untouched."""

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    os.utime(tmp_path / "a.txt", (1e9, 1e9))  # same content, another timestamp
    index = tmp_path / ".git" / "index"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    revision = git_revision(tmp_path)
    assert revision is not None and not revision.endswith("+dirty")
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
    (tmp_path / "a.txt").write_text("b\n")
    assert git_revision(tmp_path).endswith("+dirty")  # type: ignore[union-attr]


TINY_YAML = """\
run_slice: "2018,lumi=0.002"
simulation:
  backgrounds: [ggg, gg]
  events_per_file: 1500
  signal:
    masses: {values: [1.0, 2.0]}
    events_per_mass: 300
  cuts: {calibration_events: 2000}
limits:
  masses: {values: [1.0, 2.0]}
"""


def _ntuple_contents(workdir: Path) -> dict[str, list[object]]:
    """file -> event numbers, weights and cluster energies, for every file of the manifest."""
    import uproot

    manifest = json.loads((workdir / "ntuples" / "manifest.json").read_text())
    out = {}
    for entry in manifest["files"]:
        with uproot.open(workdir / "ntuples" / entry["path"]) as handle:
            arrays = handle["events"].arrays(["event", "weight", "cluster_E"])
        out[entry["path"]] = arrays.to_list()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_generation_resumes_to_the_same_files(tmp_path: Path, sig: int) -> None:
    """`alps generate` interrupted once its first ntuple exists, then run again: it redoes only
    the unfinished files, leaves no temporary behind, and the ntuples equal an undisturbed
    production's."""
    import sys

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML)
    exe = str(Path(sys.executable).with_name("alps"))
    command = [exe, "generate", "--config", str(config), "--quiet", "--workers", "1"]
    subprocess.run([*command, "--workdir", str(tmp_path / "clean")], check=True, timeout=600)

    work = tmp_path / "interrupted"
    proc = subprocess.Popen([*command, "--workdir", str(work)])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(work.glob("ntuples/*/*.root")):
        time.sleep(0.05)
    os.kill(proc.pid, sig)
    proc.wait(timeout=120)
    assert proc.returncode != 0, "the generation finished before it could be interrupted"
    assert not (work / "ntuples" / "manifest.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in work.glob("ntuples/*/*.root")}
    subprocess.run([*command, "--workdir", str(work)], check=True, timeout=600)
    assert not list(work.glob("ntuples/*/.*.tmp"))
    assert {p: p.stat().st_mtime_ns for p in kept} == kept, "finished files were made again"
    assert _ntuple_contents(tmp_path / "clean") == _ntuple_contents(work)
