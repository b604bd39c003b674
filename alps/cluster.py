"""Dask cluster start-up from the profiles in ``dask_config.yaml``.

``alps <stage> --cluster NAME`` picks a profile (``local`` by default); ``--scheduler ADDRESS``
connects to a running scheduler instead; ``--workers N`` sets the number of local workers, or a
fixed number of batch jobs (lost jobs are resubmitted, see :mod:`alps.batch`). One cluster is held
for a whole ``alps run``: every stage that runs tasks uses it.

Each profile ``type`` is one row of :data:`CLUSTER_TYPES`; a new type (e.g. another
dask-jobqueue class) is one more row.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CLUSTER_TYPES",
    "QUIET_DASK",
    "WORKER_MALLOC",
    "ClusterProfile",
    "ClusterType",
    "DaskSession",
    "dask_client",
    "find_dask_config",
    "job_script",
    "jobqueue_options",
    "load_profiles",
    "make_cluster",
    "open_session",
    "walltime_seconds",
    "worker_malloc",
    "worker_settings",
]

#: glibc malloc settings of the worker processes (issue 12). Dask's nanny sets
#: MALLOC_TRIM_THRESHOLD_=65536 so that workers hand freed memory back; any explicit setting
#: also fixes glibc's mmap threshold at 128 kB, so every array above that was a fresh mmap, its
#: pages faulted in and unmapped again: the processing workers spent 430-540 ns/event in the
#: kernel (110 k page faults per 350 k events) against 30-40 ns/event with these settings
#: (arrays below 16 MB reuse the heap; free heap above 64 MB is returned), at the same resident
#: memory (benchmarks/processor.py; README "Processor speed"). A batch job exports them through
#: Dask's configuration (DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON) unless its profile's
#: ``worker_env`` sets that variable itself.
WORKER_MALLOC = {
    "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
    "MALLOC_MMAP_THRESHOLD_": str(16 * 2**20),
}
_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"
_PRE_SPAWN_ENV = "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON"


@contextmanager
def worker_malloc() -> Iterator[None]:
    """Dask's nannies started inside give their worker processes :data:`WORKER_MALLOC`."""
    import dask
    import distributed  # noqa: F401  (loads Dask's distributed defaults)

    environ = {**dask.config.get(_PRE_SPAWN, default={}), **WORKER_MALLOC}
    with dask.config.set({_PRE_SPAWN: environ}):
        yield


#: Dask settings of alps's clusters (issue 12, 1 -> 2 workers): an idle worker process spent 4%
#: of a core, the client and its in-process scheduler 5-6%, all of it Dask's own bookkeeping
#: (measured on 2 cores: 0.039 -> 0.009 CPU seconds per second per worker, 0.059 -> 0.025 in the
#: client). It is paid during processing too, and on a full machine it takes CPU from the
#: chunks. Off: the workers' statistical profiler (it samples every task thread every 10 ms for
#: the dashboard's profile page; set ``distributed.worker.profile.enabled: true`` to debug with
#: it). Slower: the event loops' health tick (20 ms -> 1 s; it only times how late the loop is,
#: to warn when a task blocked it for more than ``distributed.admin.tick.limit``, 3 s).
QUIET_DASK: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
}
_QUIET_ENV = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
}


@contextmanager
def worker_settings() -> Iterator[None]:
    """Clusters (their scheduler and nannies) made inside run with :data:`QUIET_DASK` and give
    their worker processes :data:`WORKER_MALLOC` (a setting of the caller's Dask configuration,
    e.g. ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED``, wins)."""
    import dask
    import distributed  # noqa: F401  (loads Dask's distributed defaults)

    quiet = {
        key: value
        for (key, value), env in zip(QUIET_DASK.items(), _QUIET_ENV, strict=True)
        if env not in os.environ  # the user's own choice
    }
    with dask.config.set(quiet), worker_malloc():
        yield


#: profile keys read by alps itself; every other key is an argument of the cluster class
_CONTROL_KEYS = (
    "type",
    "scale",
    "adapt",
    "worker_env",
    "address",
    "worker_timeout",
    "memory_headroom",
)


@dataclass(frozen=True)
class ClusterProfile:
    """One validated profile: its type, the cluster class's arguments and scaling.

    ``worker_timeout`` (s) bounds every wait for a worker: the first one, and a replacement when
    all are lost. ``memory_headroom`` is the fraction of a batch job's memory kept out of the
    Dask workers' limit, so that Dask pauses and restarts a worker before the batch system kills
    the job.
    """

    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    scale: Mapping[str, int] | None = None
    adapt: Mapping[str, Any] | None = None
    worker_env: Mapping[str, str] = field(default_factory=dict)
    address: str | None = None
    worker_timeout: float = 300.0
    memory_headroom: float = 0.1


def _start_local(profile: ClusterProfile, workers: int | None) -> Any:
    from distributed import LocalCluster

    os.environ.update(profile.worker_env)
    options = dict(profile.options)
    if workers is not None:
        options["n_workers"] = workers
    if options.get("n_workers") is None:
        options["n_workers"] = os.cpu_count() or 1
    options.setdefault("dashboard_address", None)
    # each nanny keeps the environment and configuration it was made with (restarts too)
    with worker_settings():
        return LocalCluster(**options)


def _connect(profile: ClusterProfile, workers: int | None) -> str:
    assert profile.address is not None  # checked by load_profiles
    return profile.address


def _start_jobqueue(profile: ClusterProfile, workers: int | None) -> Any:
    options = jobqueue_options(profile)
    with worker_settings():  # the scheduler, here (the workers: the job script's exports)
        cluster = _jobqueue_class(profile)(**options)
    from .batch import preflight

    preflight(profile, cluster)
    if workers is not None:
        cluster.scale(jobs=workers)
    elif profile.adapt:
        cluster.adapt(**profile.adapt)
    elif profile.scale:
        cluster.scale(**profile.scale)
    return cluster


def _slurm_memory(profile: ClusterProfile, options: dict[str, Any]) -> None:
    """Ask SLURM for the profile's ``memory`` (``--mem``, MiB rounded up) and give the Dask
    workers ``1 - memory_headroom`` of it, so Dask's own limit is reached first."""
    from dask.utils import parse_bytes

    if "memory" not in options or "job_mem" in options:
        return
    total = parse_bytes(str(options["memory"]))
    options["job_mem"] = f"{math.ceil(total / 2**20)}M"
    options["memory"] = str(int(total * (1.0 - profile.memory_headroom)))


@dataclass(frozen=True)
class ClusterType:
    """How a profile ``type`` starts: ``start(profile, workers)`` returns a cluster object or a
    scheduler address; ``jobqueue`` names the dask-jobqueue class of batch types, ``tune``
    adjusts that class's arguments, ``required`` lists the profile keys the type needs."""

    start: Callable[[ClusterProfile, int | None], Any]
    jobqueue: str | None = None
    tune: Callable[[ClusterProfile, dict[str, Any]], None] | None = None
    required: tuple[str, ...] = ()


CLUSTER_TYPES: dict[str, ClusterType] = {
    "local": ClusterType(_start_local),
    "slurm": ClusterType(_start_jobqueue, "SLURMCluster", tune=_slurm_memory),
    "htcondor": ClusterType(_start_jobqueue, "HTCondorCluster"),
    "pbs": ClusterType(_start_jobqueue, "PBSCluster"),
    "scheduler": ClusterType(_connect, required=("address",)),
}


def find_dask_config() -> Path:
    """The profile file: ``$ALPS_DASK_CONFIG``, else ``./dask_config.yaml`` (the project root
    when run there), else the copy shipped in the package (``alps/data/dask_config.yaml``)."""
    chosen = os.environ.get("ALPS_DASK_CONFIG")
    if chosen and not Path(chosen).is_file():
        raise FileNotFoundError(f"ALPS_DASK_CONFIG={chosen}: no such file")
    candidates = [
        chosen,
        Path.cwd() / "dask_config.yaml",
        Path(__file__).resolve().parent / "data" / "dask_config.yaml",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "no dask_config.yaml found (set ALPS_DASK_CONFIG, or reinstall alps: it ships one)"
    )


def _profile(source: Path, name: str, spec: Any) -> ClusterProfile:
    where = f"{source}: profile {name!r}"
    if not isinstance(spec, dict) or spec.get("type") not in CLUSTER_TYPES:
        raise ValueError(f"{where}: 'type' must be one of {sorted(CLUSTER_TYPES)}")
    kind = CLUSTER_TYPES[spec["type"]]
    for key in kind.required:
        if not spec.get(key):
            raise ValueError(f"{where}: a {spec['type']} profile needs {key!r}")
    if spec.get("scale") and spec.get("adapt"):
        raise ValueError(f"{where}: give 'scale' or 'adapt', not both")
    timeout = spec.get("worker_timeout", 300.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"{where}: 'worker_timeout' must be a positive number of seconds")
    headroom = spec.get("memory_headroom", 0.1)
    if not isinstance(headroom, int | float) or not 0.0 <= headroom < 1.0:
        raise ValueError(f"{where}: 'memory_headroom' must be a fraction in [0, 1)")
    if kind.jobqueue and spec.get("walltime") is not None:
        try:
            walltime_seconds(spec["walltime"])
        except ValueError as exc:
            raise ValueError(f"{where}: 'walltime': {exc}") from None
    return ClusterProfile(
        name=name,
        type=spec["type"],
        options={k: v for k, v in spec.items() if k not in _CONTROL_KEYS},
        scale=spec.get("scale"),
        adapt=spec.get("adapt"),
        worker_env={str(k): str(v) for k, v in (spec.get("worker_env") or {}).items()},
        address=spec.get("address"),
        worker_timeout=float(timeout),
        memory_headroom=float(headroom),
    )


def load_profiles(path: str | Path | None = None) -> dict[str, ClusterProfile]:
    """All profiles of a cluster file, validated; errors name the profile and key."""
    source = Path(path) if path is not None else find_dask_config()
    raw = yaml.safe_load(source.read_text()) or {}
    profiles = raw.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ValueError(f"{source}: expected a 'profiles' mapping")
    return {name: _profile(source, name, spec) for name, spec in profiles.items()}


def walltime_seconds(walltime: str) -> int:
    """Seconds in a batch walltime ``[D-]HH:MM:SS``, ``HH:MM:SS`` or ``MM:SS``.

    >>> walltime_seconds("04:00:00"), walltime_seconds("1-00:00:00"), walltime_seconds("10:00")
    (14400, 86400, 600)
    """
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", str(walltime).strip())
    if match is None:
        raise ValueError(f"{walltime!r} is not [D-]HH:MM:SS")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError(f"{walltime!r} is not a positive duration")
    return total


def _lifetime_args(walltime: str) -> list[str]:
    """dask-jobqueue's worker ``--lifetime`` and ``--lifetime-stagger`` for a walltime.

    The lifetime counts from the worker's start, which comes some time after the job's: the
    margin, min(W/2, max(2 min, min(W/10, 10 min))), covers that start-up; the stagger (a
    quarter of the margin) spreads the retirements of jobs started together.

    >>> _lifetime_args("04:00:00"), _lifetime_args("00:02:00")
    (['--lifetime', '13800s', '--lifetime-stagger', '150s'], ['--lifetime', '60s', '--lifetime-stagger', '15s'])
    """
    total = walltime_seconds(walltime)
    margin = min(total / 2, max(120.0, min(total / 10, 600.0)))
    return [
        "--lifetime",
        f"{int(total - margin)}s",
        "--lifetime-stagger",
        f"{int(margin / 4)}s",
    ]


def jobqueue_options(profile: ClusterProfile) -> dict[str, Any]:
    """The dask-jobqueue class arguments of a batch profile: its own keys, the worker
    environment exported in the prologue, a lifetime before the walltime, a free dashboard port
    and the type's tuning (SLURM: job memory vs the Dask memory limit)."""
    kind = CLUSTER_TYPES[profile.type]
    if kind.jobqueue is None:
        raise ValueError(f"profile {profile.name!r} ({profile.type}) submits no batch jobs")
    options = {k: v for k, v in profile.options.items() if v is not None}
    prologue = list(options.pop("job_script_prologue", []))
    prologue += [f"export {key}={value}" for key, value in profile.worker_env.items()]
    if _PRE_SPAWN_ENV not in profile.worker_env:
        prologue.append(f"export {_PRE_SPAWN_ENV}={shlex.quote(json.dumps(WORKER_MALLOC))}")
    prologue += [f"export {k}={v}" for k, v in _QUIET_ENV.items() if k not in profile.worker_env]
    if prologue:
        options["job_script_prologue"] = prologue
    extra = list(options.get("worker_extra_args", []))
    if options.get("walltime") and "--lifetime" not in extra:
        options["worker_extra_args"] = extra + _lifetime_args(options["walltime"])
    options["scheduler_options"] = {
        "dashboard_address": ":0",
        **options.get("scheduler_options", {}),
    }
    if kind.tune is not None:
        kind.tune(profile, options)
    return options


def _jobqueue_class(profile: ClusterProfile) -> Any:
    import dask_jobqueue

    return getattr(dask_jobqueue, str(CLUSTER_TYPES[profile.type].jobqueue))


def job_script(profile: ClusterProfile) -> str:
    """The batch job script a jobqueue profile would submit (nothing is submitted)."""
    options = jobqueue_options(profile)
    cluster = _jobqueue_class(profile)(**options)
    try:
        return str(cluster.job_script())
    finally:
        cluster.close()


def make_cluster(profile: ClusterProfile, workers: int | None = None) -> Any:
    """Start the profile's cluster and scale it (a ``scheduler`` profile: its address)."""
    return CLUSTER_TYPES[profile.type].start(profile, workers)


class DaskSession:
    """A started profile: its ``client``, the cluster (``None`` for an address) and, for batch
    profiles, the watch of the batch jobs; ``failure`` says why the watch gave up, if it did."""

    def __init__(self, profile: ClusterProfile, workers: int | None) -> None:
        from distributed import Client

        self.profile = profile
        started = make_cluster(profile, workers)
        self.cluster = None if isinstance(started, str) else started
        self.watch: Any = None
        try:
            self.client = Client(started)
            if CLUSTER_TYPES[profile.type].jobqueue is not None:
                from .batch import JobWatch

                self.watch = JobWatch(self.cluster, profile, fixed_jobs=workers)
                self.watch.wait_for_first_worker(self.client)
                self.watch.start()
        except BaseException:
            self.close()
            raise

    @property
    def failure(self) -> str | None:
        return None if self.watch is None else self.watch.failure

    def close(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_session(
    name: str = "local",
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    config_path: str | Path | None = None,
) -> DaskSession:
    """Start the named profile (or connect to ``scheduler``); the caller closes the session."""
    if scheduler is not None:
        return DaskSession(ClusterProfile("--scheduler", "scheduler", address=scheduler), None)
    profiles = load_profiles(config_path)
    if name not in profiles:
        raise ValueError(f"unknown cluster profile {name!r}; known: {sorted(profiles)}")
    return DaskSession(profiles[name], workers)


@contextmanager
def dask_client(
    name: str = "local",
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    config_path: str | Path | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client`` for a profile (or a scheduler address); closed on exit.

    When the watch of a batch profile gives up (no worker within ``worker_timeout``), a
    :class:`alps.batch.BatchError` (a ``RuntimeError``) with the reason interrupts the body."""
    session = open_session(name, scheduler=scheduler, workers=workers, config_path=config_path)
    try:
        yield session.client
    finally:
        session.close()
