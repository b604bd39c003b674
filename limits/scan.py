"""The mass scan: every mass hypothesis analysed as an independent task.

:func:`analyse_workspace` is the task: compile one pyhf workspace, compute the asymptotic CLs
limits (:mod:`limits.cls`) and the local significance (:mod:`limits.significance`), and return a
frozen :class:`MassResult`. :func:`analyse_workspaces` runs the tasks on a Dask cluster
(``distributed.Client``, the same cluster as the processing) in batches, or in sequence when no
client is given; results come back in input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alps.tasks import map_tasks
from limits.background import SpuriousSignal, spurious_signal
from limits.cls import HypothesisTester, UpperLimit, asymptotic_upper_limit
from limits.likelihood import compile_workspace, expected_main, nll_and_grad
from limits.significance import Discovery, discovery

__all__ = ["MassResult", "analyse_workspace", "analyse_workspaces", "best_fit_curves"]

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[int], None]

#: largest |gradient| of -ln L at a free parameter for a fit to count as converged
_GRADIENT_TOLERANCE = 1e-2


@dataclass(frozen=True)
class MassResult:
    """Limits (in units of the POI, i.e. of sigma_ref) and local significance of one mass.

    ``signal_per_mu`` is the expected number of signal events in the window for mu = 1 at the
    nominal systematics, so mu_hat x signal_per_mu is the fitted signal yield. ``status`` is
    "ok", or why the mass has no result (then ``limit`` and ``discovery`` are None: a failed
    fit never gives a number). ``spurious`` is the spurious-signal test on the background MC.
    """

    name: str
    limit: UpperLimit | None
    discovery: Discovery | None
    signal_per_mu: float
    seconds: float
    status: str = "ok"
    spurious: SpuriousSignal | None = None


def _failed_fit(tester: HypothesisTester) -> str | None:
    """Why the unconditional or background-only fit cannot be used, else None. L-BFGS-B's own
    flag is not the test (it reports precision-limited line searches at the minimum as
    failures); a fit fails when its -ln L is not finite or its projected gradient is large."""
    model = tester.model
    if not np.all(np.isfinite(tester.data)):
        return "observed counts not finite"
    for label, result in (("signal+background", tester.free), ("background-only", tester.bkg)):
        if not np.isfinite(result.nll) or not np.all(np.isfinite(result.pars)):
            return f"{label} fit: -ln L not finite"
        grad = nll_and_grad(result.pars, model, tester.data, tester.aux)[1]
        at_lo = result.pars <= model.bounds[:, 0] + 1e-8
        at_hi = result.pars >= model.bounds[:, 1] - 1e-8
        free = ~((at_lo & (grad > 0)) | (at_hi & (grad < 0)))
        if label == "background-only":
            free[model.poi_index] = False
        worst = float(np.max(np.abs(grad[free]), initial=0.0))
        if worst > _GRADIENT_TOLERANCE:
            return f"{label} fit did not converge (|d(-ln L)/d par| = {worst:.2g})"
    return None


def analyse_workspace(
    spec: Mapping[str, Any], level: float = 0.05, background_mc: Sequence[float] | None = None
) -> MassResult:
    """Limits and local significance of one workspace (the per-mass task); with
    ``background_mc`` (the MC background counts of the window), the spurious-signal test too.
    A failed fit or a failing computation gives a result with ``status`` saying why."""
    start = time.perf_counter()
    name = str(spec["measurements"][0]["name"])
    model = compile_workspace(spec)
    nominal = model.inits.copy()
    nominal[model.constrained] = 0.0
    nominal[model.poi_index] = 1.0
    with_signal = expected_main(model, nominal)
    nominal[model.poi_index] = 0.0
    signal_per_mu = float(np.sum(with_signal - expected_main(model, nominal)))
    try:
        tester = HypothesisTester(model, model.observed, model.aux_nominal)
        failure = _failed_fit(tester)
        if failure is None:
            limit = asymptotic_upper_limit(model, level=level, tester=tester)
            disc = discovery(tester)
            if not np.isfinite(limit.observed):
                failure = "observed limit beyond the POI range"
            elif not (np.isfinite(disc.mu_hat_error) and disc.mu_hat_error > 0):
                failure = "no finite error on the fitted signal (singular Hessian)"
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as err:
        failure = f"{type(err).__name__}: {err}"
    if failure is not None:
        return MassResult(name, None, None, signal_per_mu, time.perf_counter() - start, failure)
    spurious = None
    if background_mc is not None:
        spurious = spurious_signal(
            model, np.asarray(background_mc), disc.mu_hat_error * signal_per_mu
        )
    return MassResult(
        name=name,
        limit=limit,
        discovery=disc,
        signal_per_mu=signal_per_mu,
        seconds=time.perf_counter() - start,
        spurious=spurious,
    )


def best_fit_curves(spec: Mapping[str, Any]) -> tuple[FloatArray, FloatArray]:
    """Expected counts per bin of the signal + background fit (mu >= 0) and of the
    background-only fit to the workspace's observed data."""
    model = compile_workspace(spec)
    tester = HypothesisTester(model, model.observed, model.aux_nominal)
    return expected_main(model, tester.free.pars), expected_main(model, tester.bkg.pars)


Task = tuple[Mapping[str, Any], "Sequence[float] | None"]


def _batch(tasks: Sequence[Task], level: float) -> list[MassResult]:
    return [analyse_workspace(spec, level, mc) for spec, mc in tasks]


def analyse_workspaces(
    specs: Sequence[Mapping[str, Any]],
    *,
    level: float = 0.05,
    background_mc: Sequence[Sequence[float] | None] | None = None,
    client: Any | None = None,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> list[MassResult]:
    """Analyse every workspace (with the spurious-signal test where ``background_mc`` gives
    the window's MC background); on ``client`` (a ``distributed.Client``) as batched tasks."""
    mcs = list(background_mc) if background_mc is not None else [None] * len(specs)
    if len(mcs) != len(specs):
        raise ValueError(f"{len(mcs)} background MC spectra for {len(specs)} workspaces")
    tasks: list[Task] = list(zip(specs, mcs))
    if client is None:
        batch_size = 1
    elif batch_size is None:
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        batch_size = max(1, min(32, len(tasks) // (4 * n_workers) or 1))
    chunks = [tasks[i : i + batch_size] for i in range(0, len(tasks), batch_size)]
    batches = map_tasks(
        _batch, [(c,) for c in chunks], client=client, shared={"level": level},
        progress=progress or False, count=len,
    )  # fmt: skip
    return [r for batch in batches for r in batch]
