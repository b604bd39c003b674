"""#12: Dask worker processes get glibc malloc settings that keep large arrays on the heap
(alps.cluster.WORKER_MALLOC) instead of Dask's MALLOC_TRIM_THRESHOLD_=65536, locally and in
batch job scripts."""

from __future__ import annotations

import ast
import dataclasses
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alps.cluster import WORKER_MALLOC, job_script, load_profiles, make_cluster

ROOT = Path(__file__).resolve().parent.parent


def _environ() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in WORKER_MALLOC}


def test_batch_workers_get_the_settings_through_dask_s_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    profiles = load_profiles(ROOT / "dask_config.yaml")
    # HTCondor's job description quotes the prologue its own way (dask-jobqueue escapes it)
    assert "export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=" in job_script(profiles["htcondor"])
    script = job_script(profiles["slurm"])
    line = next(x for x in script.splitlines() if "PRE_SPAWN_ENVIRON=" in x)
    assert line.startswith("export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=")
    # what a worker's Dask reads from that variable (in a fresh interpreter, as on the node)
    key, _, value = line.removeprefix("export ").partition("=")
    code = (
        "import dask, distributed; from distributed.nanny import _get_env_variables; "
        "print(_get_env_variables('distributed.nanny.pre-spawn-environ'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, **{key: shlex.split(value)[0]}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = ast.literal_eval(out)  # the dict the child printed
    assert {k: seen[k] for k in WORKER_MALLOC} == WORKER_MALLOC
    assert seen["OMP_NUM_THREADS"] == "1"  # Dask's other defaults are kept


def test_local_workers_run_with_the_settings() -> None:
    from distributed import Client

    profile = load_profiles(ROOT / "dask_config.yaml")["local"]
    profile = dataclasses.replace(profile, options={**profile.options, "dashboard_address": ":0"})
    with make_cluster(profile, workers=1) as cluster, Client(cluster) as client:
        seen = list(client.run(_environ).values())
    assert seen == [WORKER_MALLOC]


def _quiet() -> tuple[Any, Any]:
    import dask

    return (
        dask.config.get("distributed.worker.profile.enabled"),
        dask.config.get("distributed.admin.tick.interval"),
    )


def test_local_workers_are_quiet_unless_the_user_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers without the statistical profiler and with a 1 s event-loop tick (QUIET_DASK); a
    user's own ``DASK_...`` variable wins."""
    from distributed import Client

    profile = load_profiles(ROOT / "dask_config.yaml")["local"]
    profile = dataclasses.replace(profile, options={**profile.options, "dashboard_address": ":0"})
    with make_cluster(profile, workers=1) as cluster, Client(cluster) as client:
        assert list(client.run(_quiet).values()) == [(False, "1s")]
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", "True")
    with make_cluster(profile, workers=1) as cluster, Client(cluster) as client:
        assert list(client.run(_quiet).values()) == [(True, "1s")]


def test_batch_workers_are_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    script = job_script(load_profiles(ROOT / "dask_config.yaml")["slurm"])
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in script
    assert "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s" in script
