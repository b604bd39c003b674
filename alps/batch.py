"""Batch jobs of a dask-jobqueue cluster: check a request before submitting it, wait for workers
with a timeout that reports the jobs' state, replace lost jobs, and give up in bounded time.

Everything that could otherwise hang has a bound: a request no node can satisfy is refused
before submission (naming the profile field), the first worker must connect within the
profile's ``worker_timeout``, and a cluster left without any worker for ``worker_timeout``
while jobs are wanted ends the run with the jobs' state. Under fixed scaling (``--workers N``
or ``scale``) a job that ended (cancelled, failed, reached its walltime, or retired through
``--lifetime``) is resubmitted; under ``adapt`` dask's adaptive scaling does that.
"""

from __future__ import annotations

import _thread
import asyncio
import getpass
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from .cluster import ClusterProfile

__all__ = ["BatchError", "JobWatch", "WarmKernels", "preflight", "slurm_job_states"]

#: SLURM job states after which no worker of the job will ever run
_SLURM_ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "TIMEOUT",
}


class BatchError(RuntimeError):
    """The batch system cannot give (or keep) the workers a profile asks for."""


def _call(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


def slurm_job_states(job_ids: Sequence[str]) -> dict[str, str]:
    """``{job id: "STATE (reason)"}`` from ``squeue``; ended or unknown jobs are absent."""
    if not job_ids:
        return {}
    out = _call(["squeue", "-h", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T|%r"])
    if out.returncode != 0:
        raise BatchError(f"squeue failed: {out.stderr.strip()}")
    states: dict[str, str] = {}
    for line in out.stdout.splitlines():
        job_id, state, reason = [*line.split("|"), "", ""][:3]
        if job_id in job_ids and state and state not in _SLURM_ENDED:
            states[job_id] = f"{state} ({reason})" if reason and reason != "None" else state
    return states


#: per batch type: the states of live jobs (absent: ended); types without one rely on Dask
_JOB_STATES: dict[str, Callable[[Sequence[str]], dict[str, str]]] = {"slurm": slurm_job_states}


def _sbatch_request(script: str) -> tuple[int | None, int | None]:
    """CPUs and memory (MiB) per job from the ``#SBATCH`` lines of a job script."""
    cpus = re.search(r"^#SBATCH\s+--cpus-per-task=(\d+)", script, re.MULTILINE)
    memory = re.search(r"^#SBATCH\s+--mem=(\d+)([KMGT]?)", script, re.MULTILINE)
    mib = None
    if memory:
        scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[memory.group(2)]
        mib = int(int(memory.group(1)) * scale)
    return (int(cpus.group(1)) if cpus else None), mib


def _slurm_preflight(profile: ClusterProfile, cluster: Any) -> None:
    where = f"cluster profile {profile.name!r}"
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise BatchError(f"{where}: no 'sbatch'/'sinfo' on PATH: run alps on a SLURM submit host")
    script = str(cluster.job_script())
    cpus, mib = _sbatch_request(script)
    partition = ["-p", str(profile.options["queue"])] if profile.options.get("queue") else []
    nodes = _call(["sinfo", "-h", *partition, "-o", "%c %m"]).stdout.split()
    if len(nodes) >= 2:
        most_cpus = max(int(re.sub(r"\D", "", n) or 0) for n in nodes[0::2])
        most_mib = max(int(re.sub(r"\D", "", n) or 0) for n in nodes[1::2])
        if cpus is not None and cpus > most_cpus:
            raise BatchError(
                f"{where}: 'cores': {cpus} per job, but the largest node has {most_cpus} CPUs"
            )
        if mib is not None and mib > most_mib:
            raise BatchError(
                f"{where}: 'memory': {profile.options.get('memory')} asks SLURM for {mib} MiB "
                f"per job, but the largest node has {most_mib} MiB"
            )
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as handle:
        handle.write(script)
        handle.flush()
        test = _call(["sbatch", "--test-only", handle.name])
    if test.returncode != 0:
        raise BatchError(
            f"{where}: SLURM refuses the job ({test.stderr.strip() or test.stdout.strip()}); "
            "check 'queue', 'account', 'walltime', 'job_extra_directives' "
            "(print the script with `alps cluster show-script --cluster "
            f"{profile.name}`)"
        )


_PREFLIGHT: dict[str, Callable[[ClusterProfile, Any], None]] = {"slurm": _slurm_preflight}


def preflight(profile: ClusterProfile, cluster: Any) -> None:
    """Refuse, before any submission, a request the batch system can never satisfy; the
    error names the profile field. The cluster is closed when the check fails."""
    check = _PREFLIGHT.get(profile.type)
    if check is None:
        return
    try:
        check(profile, cluster)
    except BaseException:
        cluster.close()
        raise


def _warm() -> None:
    import numpy as np

    import kinfit

    beam = np.array([[10.0, 0.0, 0.0, 0.0]])
    E = np.array([[4.04, 3.03, 3.03]])
    theta = np.full((1, 3), np.pi / 2)
    phi = np.array([[0.0, np.pi - np.arccos(2 / 3), np.pi + np.arccos(2 / 3)]])
    diagonal = np.broadcast_to([0.01, 1e-5, 1e-5], (1, 3, 3))
    kinfit.fit_three_photons(E, theta, phi, diagonal, beam)
    kinfit.fit_three_photons(E, theta, phi, kinfit.full_covariance(diagonal), beam)


class WarmKernels(WorkerPlugin):
    """Compile (or load from the node's ``NUMBA_CACHE_DIR``) the kinematic-fit kernels when a
    worker joins, off its event loop, so that a job started mid-stage does not compile inside
    its first tasks."""

    name = "alps-warm-kernels"

    async def setup(self, worker: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, _warm)


class JobWatch(threading.Thread):
    """Watches the jobs of a dask-jobqueue cluster from the client process.

    ``fixed_jobs``: under fixed scaling, the number of jobs kept (ended jobs are resubmitted).
    When no worker has been connected for the profile's ``worker_timeout`` while jobs are
    wanted, :attr:`failure` says why, and a :class:`BatchError` with that reason is raised in
    the main thread (through ``SIGUSR1``, whose handler :meth:`start` installs when called
    from the main thread), ending whatever stage waits there for results.
    """

    def __init__(
        self, cluster: Any, profile: ClusterProfile, fixed_jobs: int | None, interval: float = 2.0
    ) -> None:
        super().__init__(name=f"alps-job-watch-{profile.name}", daemon=True)
        self.cluster = cluster
        self.profile = profile
        self.fixed_jobs = (
            fixed_jobs if fixed_jobs is not None else (profile.scale or {}).get("jobs")
        )
        self.interval = interval
        self.failure: str | None = None
        self.resubmitted: list[str] = []
        self._stopped = threading.Event()
        self._previous_handler: Any = None

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGUSR1, self._raise_failure)
        super().start()

    def _raise_failure(self, signum: int, frame: Any) -> None:
        raise BatchError(self.failure or "the batch cluster was lost")

    def _workers(self) -> int:
        return len(self.cluster.scheduler_info.get("workers", {}))

    def _job_ids(self) -> list[str]:
        return [str(job.job_id) for job in list(self.cluster.workers.values()) if job.job_id]

    def describe_jobs(self) -> str:
        """One line on the cluster's batch jobs, for error messages."""
        ids = self._job_ids()
        states_of = _JOB_STATES.get(self.profile.type)
        if not ids:
            return "no job was submitted"
        if states_of is None:
            return f"jobs {', '.join(ids)}"
        states = states_of(ids)
        return "jobs " + ", ".join(f"{i} {states.get(i, 'ended')}" for i in ids)

    def _give_up_message(self, waited: float) -> str:
        logs = self.profile.options.get("log_directory") or "the submission directory"
        return (
            f"cluster profile {self.profile.name!r}: no Dask worker connected for {waited:.0f} s "
            f"(worker_timeout); {self.describe_jobs()}. Check the profile's 'cores', 'memory', "
            f"'walltime', 'queue' and 'account' against the site, and the job logs in {logs}"
        )

    def wait_for_first_worker(self, client: Any) -> None:
        """Block until one worker has connected; a :class:`BatchError` after ``worker_timeout``."""
        start = time.monotonic()
        while self._workers() == 0:
            waited = time.monotonic() - start
            if waited > self.profile.worker_timeout:
                raise BatchError(self._give_up_message(waited))
            time.sleep(0.5)
        client.register_plugin(WarmKernels())

    def _resubmit_ended(self) -> None:
        states_of = _JOB_STATES.get(self.profile.type)
        jobs = dict(self.cluster.workers)
        ended: list[str] = []
        if states_of is not None:
            live = states_of([str(job.job_id) for job in jobs.values() if job.job_id])
            ended = [
                name
                for name, job in jobs.items()
                if job.job_id and job.job_id not in live and job.job_id not in self.resubmitted
            ]
        # without job states: Dask drops a job whose workers left (lost-worker-timeout)
        missing = set(self.cluster.worker_spec) - set(jobs)
        if not ended and not missing:
            return
        self.resubmitted += [str(jobs[name].job_id) for name in ended]
        target = self.fixed_jobs

        def resubmit() -> None:
            # the new job gets a new name: Dask would close a job named like a lost worker
            for name in ended:
                self.cluster.worker_spec.update(self.cluster.new_worker_spec())
                self.cluster.worker_spec.pop(name, None)
            self.cluster.scale(jobs=target)

        self.cluster.loop.add_callback(resubmit)

    def run(self) -> None:
        empty_since: float | None = None
        while not self._stopped.wait(self.interval):
            try:
                if self.fixed_jobs:
                    self._resubmit_ended()
                wanted = bool(self.cluster.worker_spec)
            except (OSError, subprocess.SubprocessError, RuntimeError):
                continue  # a slow or failing squeue: try again at the next interval
            if self._workers() > 0 or not wanted:
                empty_since = None
                continue
            empty_since = empty_since or time.monotonic()
            waited = time.monotonic() - empty_since
            if waited > self.profile.worker_timeout:
                self.failure = self._give_up_message(waited)
                if self._previous_handler is not None:
                    _thread.interrupt_main(signal.SIGUSR1)
                return

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(timeout=10)
        if self._previous_handler is not None:
            signal.signal(signal.SIGUSR1, self._previous_handler)
            self._previous_handler = None
