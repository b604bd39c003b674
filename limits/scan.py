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

from limits.cls import HypothesisTester, UpperLimit, asymptotic_upper_limit
from limits.likelihood import compile_workspace, expected_main
from limits.significance import Discovery, discovery

__all__ = ["MassResult", "analyse_workspace", "analyse_workspaces"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class MassResult:
    """Limits (in units of the POI, i.e. of sigma_ref) and local significance of one mass.

    ``signal_per_mu`` is the expected number of signal events in the window for mu = 1 at the
    nominal systematics, so mu_hat x signal_per_mu is the fitted signal yield.
    """

    name: str
    limit: UpperLimit
    discovery: Discovery
    signal_per_mu: float
    seconds: float


def analyse_workspace(spec: Mapping[str, Any], level: float = 0.05) -> MassResult:
    """Limits and local significance of one workspace (the per-mass task)."""
    start = time.perf_counter()
    model = compile_workspace(spec)
    tester = HypothesisTester(model, model.observed, model.aux_nominal)
    limit = asymptotic_upper_limit(model, level=level, tester=tester)
    disc = discovery(tester)
    nominal = model.inits.copy()
    nominal[model.constrained] = 0.0
    nominal[model.poi_index] = 1.0
    with_signal = expected_main(model, nominal)
    nominal[model.poi_index] = 0.0
    signal_per_mu = float(np.sum(with_signal - expected_main(model, nominal)))
    return MassResult(
        name=str(spec["measurements"][0]["name"]),
        limit=limit,
        discovery=disc,
        signal_per_mu=signal_per_mu,
        seconds=time.perf_counter() - start,
    )


def _batch(specs: Sequence[Mapping[str, Any]], level: float) -> list[MassResult]:
    return [analyse_workspace(s, level) for s in specs]


def analyse_workspaces(
    specs: Sequence[Mapping[str, Any]],
    *,
    level: float = 0.05,
    client: Any | None = None,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> list[MassResult]:
    """Analyse every workspace; on ``client`` (a ``distributed.Client``) as batched tasks."""
    if client is None:
        out = []
        for spec in specs:
            out.append(analyse_workspace(spec, level))
            if progress:
                progress(1)
        return out
    from distributed import as_completed

    if batch_size is None:
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        batch_size = max(1, min(16, len(specs) // (4 * n_workers) or 1))
    chunks = [list(specs[i : i + batch_size]) for i in range(0, len(specs), batch_size)]
    futures = client.map(_batch, chunks, level=level, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    done: dict[int, list[MassResult]] = {}
    for fut in as_completed(futures):
        i = index[fut.key]
        done[i] = fut.result()
        if progress:
            progress(len(done[i]))
    return [r for i in range(len(chunks)) for r in done[i]]
