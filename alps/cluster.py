"""Dask cluster start-up from the profiles in ``dask_config.yaml``.

``alps <stage> --cluster NAME`` picks a profile (``local`` by default); ``--scheduler ADDRESS``
connects to a running scheduler instead; ``--workers N`` overrides the local worker count or the
number of batch jobs. The same profiles serve every stage that runs tasks (generation, processing,
the grid search, the limits scan).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ClusterProfile",
    "dask_client",
    "find_dask_config",
    "job_script",
    "load_profiles",
    "make_cluster",
]

_TYPES = ("local", "slurm", "htcondor", "pbs", "scheduler")
_CONTROL_KEYS = ("type", "scale", "adapt", "worker_env", "address")


@dataclass(frozen=True)
class ClusterProfile:
    """One validated profile: its type, the cluster class's arguments and scaling."""

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    scale: Mapping[str, int] | None = None
    adapt: Mapping[str, int] | None = None
    worker_env: Mapping[str, str] = field(default_factory=dict)
    address: str | None = None


def find_dask_config() -> Path:
    """``$ALPS_DASK_CONFIG``, else ``./dask_config.yaml``, else the one beside the project."""
    candidates = [
        os.environ.get("ALPS_DASK_CONFIG"),
        Path.cwd() / "dask_config.yaml",
        Path(__file__).resolve().parent.parent / "dask_config.yaml",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "no dask_config.yaml found (set ALPS_DASK_CONFIG or run in the project)"
    )


def load_profiles(path: str | Path | None = None) -> dict[str, ClusterProfile]:
    """All profiles of a cluster file, validated; errors name the profile and key."""
    source = Path(path) if path is not None else find_dask_config()
    raw = yaml.safe_load(source.read_text()) or {}
    profiles = raw.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ValueError(f"{source}: expected a 'profiles' mapping")
    out: dict[str, ClusterProfile] = {}
    for name, spec in profiles.items():
        if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
            raise ValueError(f"{source}: profile {name!r}: 'type' must be one of {_TYPES}")
        if spec["type"] == "scheduler" and not spec.get("address"):
            raise ValueError(f"{source}: profile {name!r}: a scheduler profile needs 'address'")
        if spec.get("scale") and spec.get("adapt"):
            raise ValueError(f"{source}: profile {name!r}: give 'scale' or 'adapt', not both")
        out[name] = ClusterProfile(
            name=name,
            type=spec["type"],
            options={k: v for k, v in spec.items() if k not in _CONTROL_KEYS},
            scale=spec.get("scale"),
            adapt=spec.get("adapt"),
            worker_env={str(k): str(v) for k, v in (spec.get("worker_env") or {}).items()},
            address=spec.get("address"),
        )
    return out


def _jobqueue_class(kind: str) -> Any:
    import dask_jobqueue

    return {
        "slurm": dask_jobqueue.SLURMCluster,
        "htcondor": dask_jobqueue.HTCondorCluster,
        "pbs": dask_jobqueue.PBSCluster,
    }[kind]


def _jobqueue_options(profile: ClusterProfile) -> dict[str, Any]:
    options = {k: v for k, v in profile.options.items() if v is not None}
    prologue = list(options.pop("job_script_prologue", []))
    prologue += [f"export {key}={value}" for key, value in profile.worker_env.items()]
    if prologue:
        options["job_script_prologue"] = prologue
    return options


def job_script(profile: ClusterProfile) -> str:
    """The batch job script a jobqueue profile would submit (nothing is submitted)."""
    if profile.type not in ("slurm", "htcondor", "pbs"):
        raise ValueError(f"profile {profile.name!r} ({profile.type}) submits no batch jobs")
    options = _jobqueue_options(profile)
    # nothing is submitted: keep the temporary scheduler off the default dashboard port
    options["scheduler_options"] = {
        **options.get("scheduler_options", {}),
        "dashboard_address": ":0",
    }
    cluster = _jobqueue_class(profile.type)(**options)
    try:
        return str(cluster.job_script())
    finally:
        cluster.close()


def make_cluster(profile: ClusterProfile, workers: int | None = None) -> Any:
    """Start the profile's cluster (not for ``scheduler`` profiles) and scale it."""
    if profile.type == "local":
        from distributed import LocalCluster

        os.environ.update(profile.worker_env)
        options = dict(profile.options)
        if workers is not None:
            options["n_workers"] = workers
        if options.get("n_workers") is None:
            options["n_workers"] = os.cpu_count() or 1
        options.setdefault("dashboard_address", None)
        return LocalCluster(**options)
    if profile.type == "scheduler":
        raise ValueError("a scheduler profile has no cluster to start; connect to its address")
    cluster = _jobqueue_class(profile.type)(**_jobqueue_options(profile))
    if workers is not None:
        cluster.scale(jobs=workers)
    elif profile.adapt:
        cluster.adapt(**profile.adapt)
    elif profile.scale:
        cluster.scale(**profile.scale)
    return cluster


@contextmanager
def dask_client(
    name: str = "local",
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    config_path: str | Path | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client`` for a profile (or a scheduler address); closed on exit."""
    from distributed import Client

    if scheduler is not None:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    profiles = load_profiles(config_path)
    if name not in profiles:
        raise ValueError(f"unknown cluster profile {name!r}; known: {sorted(profiles)}")
    profile = profiles[name]
    if profile.type == "scheduler":
        client = Client(profile.address)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = make_cluster(profile, workers)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
