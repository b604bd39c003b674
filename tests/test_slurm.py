"""The batch path on a real SLURM (tests/slurm/start.sh sets up a single-node one): requests no
node can satisfy, a job that never starts, a job cancelled under load, a job reaching its
walltime, and `alps run --cluster` on SLURM against the local cluster.

Skipped, with the reason, where no ``sbatch`` is found or no SLURM controller answers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from alps.batch import BatchError
from alps.cli import main
from alps.cluster import DaskSession, dask_client, open_session
from alps.histio import read_histograms


def _controller_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    return "UP" in ping.stdout


pytestmark = [
    pytest.mark.skipif(
        shutil.which("sbatch") is None,
        reason="no sbatch on PATH: run tests/slurm/start.sh (root; installs SLURM with apt-get)",
    ),
    pytest.mark.skipif(
        not _controller_answers(),
        reason="sbatch found but no SLURM controller answers: run tests/slurm/start.sh",
    ),
]


def _dask_config(tmp_path: Path, **profiles: dict[str, object]) -> Path:
    """A profile file with ``alps-test`` (one core, 2 GB, fixed two jobs) and variants of it."""
    base: dict[str, object] = {
        "type": "slurm",
        "cores": 1,
        "processes": 1,
        "memory": "2GB",
        "walltime": "00:10:00",
        "job_name": f"alps-{tmp_path.name}",
        "log_directory": str(tmp_path / "logs"),
        "local_directory": str(tmp_path / "scratch"),
        "worker_timeout": 120,
        "scale": {"jobs": 2},
    }
    spec = {"alps-test": base} | {name: base | change for name, change in profiles.items()}
    path = tmp_path / "dask_config.yaml"
    path.write_text(yaml.safe_dump({"profiles": spec}))
    return path


def _jobs(name: str) -> dict[str, str]:
    """``{job id: state}`` of this test's jobs still in the queue."""
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True, check=True
    )
    return dict(line.split() for line in out.stdout.splitlines())


def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("field", "change"),
    [("memory", {"memory": "100TB"}), ("cores", {"cores": 4096, "processes": 1})],
)
def test_a_request_no_node_can_satisfy_is_refused_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, change: dict[str, object]
) -> None:
    monkeypatch.setenv("ALPS_DASK_CONFIG", str(_dask_config(tmp_path, big=change)))
    start = time.monotonic()
    result = CliRunner().invoke(
        main, ["generate", "--cluster", "big", "--workdir", str(tmp_path / "w"), "--quiet"]
    )
    assert result.exit_code != 0
    assert f"'big': '{field}'" in result.output, result.output
    assert time.monotonic() - start < 60
    assert not _jobs(f"alps-{tmp_path.name}"), "nothing may be submitted"


def test_a_job_that_never_starts_ends_the_wait_with_its_state(tmp_path: Path) -> None:
    held = {"job_extra_directives": ["--begin=now+1hour"], "worker_timeout": 8}
    config = _dask_config(tmp_path, held=held)
    start = time.monotonic()
    with pytest.raises(BatchError, match=r"PENDING \(BeginTime\)") as info:
        open_session("held", config_path=config, workers=1)
    assert "worker_timeout" in str(info.value) and "'held'" in str(info.value)
    assert time.monotonic() - start < 40
    _wait_for(lambda: not _jobs(f"alps-{tmp_path.name}"), 30, "the held job is cancelled")


@pytest.fixture
def two_jobs(tmp_path: Path) -> Iterator[DaskSession]:
    session = open_session("alps-test", config_path=_dask_config(tmp_path), workers=2)
    try:
        yield session
    finally:
        session.close()


def test_a_cancelled_job_is_resubmitted_and_every_task_finishes(
    two_jobs: DaskSession, tmp_path: Path
) -> None:
    from distributed import as_completed

    def slow_square(i: int) -> int:
        time.sleep(0.3)
        return i * i

    client = two_jobs.client
    futures = client.map(slow_square, range(80), pure=False)
    for done, _ in zip(as_completed(futures), range(4)):
        assert done.status == "finished"
    victim = next(iter(_jobs(f"alps-{tmp_path.name}")))
    subprocess.run(["scancel", victim], check=True)
    assert client.gather(futures) == [i * i for i in range(80)]
    _wait_for(lambda: victim in two_jobs.watch.resubmitted, 30, "the cancelled job is noticed")
    _wait_for(lambda: len(client.scheduler_info()["workers"]) == 2, 120, "two workers again")
    assert victim not in _jobs(f"alps-{tmp_path.name}")


def test_a_cluster_left_without_workers_stops_the_run_with_the_jobs_state(tmp_path: Path) -> None:
    """Fixed scaling, the only job cancelled and its replacement unable to start (partition
    down): the watch interrupts the waiting stage after ``worker_timeout`` with the job state."""
    config = _dask_config(tmp_path, lone={"scale": {"jobs": 1}, "worker_timeout": 10})
    partitions = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True)
    (default,) = [p.rstrip("*") for p in partitions.stdout.split() if p.endswith("*")]
    try:
        with dask_client("lone", config_path=config) as client:
            future = client.submit(time.sleep, 600, pure=False)
            _wait_for(lambda: future.status == "pending" and client.processing(), 30, "running")
            subprocess.run(
                ["scontrol", "update", f"PartitionName={default}", "State=DOWN"], check=True
            )
            subprocess.run(["scancel", "-n", f"alps-{tmp_path.name}"], check=True)
            start = time.monotonic()
            with pytest.raises(BatchError, match=r"PENDING \(PartitionDown\)") as info:
                future.result()
    finally:
        subprocess.run(["scontrol", "update", f"PartitionName={default}", "State=UP"], check=True)
    assert time.monotonic() - start < 60
    assert "'lone'" in str(info.value) and "worker_timeout" in str(info.value)


@pytest.mark.slow
def test_workers_retire_before_the_walltime_and_are_replaced(tmp_path: Path) -> None:
    """Walltime 2 min: the worker retires 60 ± 15 s after its start (``--lifetime``), its job
    ends before SLURM's time limit, and a new job takes over the remaining tasks (fetched as
    they finish, as the stages do)."""
    config = _dask_config(tmp_path, short={"walltime": "00:02:00", "scale": {"jobs": 1}})
    session = open_session("short", config_path=config)
    try:
        first = next(iter(_jobs(f"alps-{tmp_path.name}")))
        results: list[int] = []
        in_flight: deque[Any] = deque()
        for i in range(110):
            in_flight.append(session.client.submit(lambda i: time.sleep(1.0) or i, i, pure=False))
            if len(in_flight) == 2:
                results.append(in_flight.popleft().result())
        results += [future.result() for future in in_flight]
        assert results == list(range(110))
        assert first in session.watch.resubmitted
    finally:
        session.close()
    log = (tmp_path / "logs" / f"alps-{tmp_path.name}-{first}.err").read_text()
    assert "Reason: worker-lifetime-reached" in log, log[-2000:]
    assert "DUE TO TIME LIMIT" not in log


# --- alps run on SLURM vs the local cluster --------------------------------------------------


def _tiny_config() -> str:
    """The end-to-end test's tiny configuration, with a coarser limit scan and fewer toys."""
    from test_pipeline_e2e import TINY

    config = yaml.safe_load(TINY)
    config["limits"].update({"masses": {"start": 0.2, "stop": 9.6, "step": 0.2}, "lee_toys": 20})
    return yaml.safe_dump(config)


def _alps_run(workdir: Path, config: Path, *options: str, env: dict[str, str] | None = None,
              on_line: object = None) -> str:  # fmt: skip
    exe = Path(sys.executable).with_name("alps")
    command = [str(exe), "run", "--config", str(config), "--workdir", str(workdir), "--quiet",
               "--workers", "2", *options]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if on_line is not None:
            on_line(line)  # type: ignore[operator]
    output = "".join(lines)
    assert proc.wait(timeout=60) == 0, output[-4000:]
    return output


def _same_results(local: Path, batch: Path) -> None:
    for name in ("mgg.hist.zip", "mgg_score.hist.zip"):
        ours, theirs = (read_histograms(d / "histograms" / name) for d in (local, batch))
        assert set(ours) == set(theirs)
        for key, h in ours.items():
            np.testing.assert_array_equal(h.values(flow=True), theirs[key].values(flow=True))
            np.testing.assert_array_equal(h.variances(flow=True), theirs[key].variances(flow=True))
    limits = [json.loads((d / "limits" / "limits.json").read_text()) for d in (local, batch)]
    for result in limits:
        result.pop("provenance")
        result.pop("timings_s", None)
    assert limits[0] == limits[1]


@pytest.mark.slow
def test_alps_run_on_slurm_survives_a_cancelled_job_and_matches_the_local_cluster(
    tmp_path: Path,
) -> None:
    import os

    config = tmp_path / "tiny.yaml"
    config.write_text(_tiny_config())
    start = time.monotonic()
    _alps_run(tmp_path / "local", config)
    local_s = time.monotonic() - start

    dask_config = _dask_config(tmp_path)
    name = f"alps-{tmp_path.name}"
    seen: set[str] = set()
    cancelled: list[str] = []
    stop = threading.Event()

    def watch_queue() -> None:
        while not stop.wait(1.0):
            seen.update(_jobs(name))

    def cancel_in_process_stage(line: str) -> None:
        if line.startswith("[process] pre-selection") and not cancelled:
            jobs = _jobs(name)
            cancelled.append(next(iter(jobs)))
            subprocess.run(["scancel", cancelled[0]], check=True)

    watcher = threading.Thread(target=watch_queue, daemon=True)
    watcher.start()
    env = {**os.environ, "ALPS_DASK_CONFIG": str(dask_config)}
    try:
        _alps_run(tmp_path / "slurm", config, "--cluster", "alps-test", env=env,
                  on_line=cancel_in_process_stage)  # fmt: skip
    finally:
        stop.set()
        watcher.join()
    print(f"alps run: local {local_s:.0f} s, SLURM {time.monotonic() - start - local_s:.0f} s")
    assert cancelled, "the process stage never started"
    assert len(seen) >= 3, f"two jobs and a replacement expected in squeue, saw {sorted(seen)}"
    _same_results(tmp_path / "local", tmp_path / "slurm")
