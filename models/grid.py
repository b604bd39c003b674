"""Hyperparameter grid search for the Punzi net, as Dask tasks when a client is given.

The seed's backup slide scans depth, width, activation, Punzi batch size and epochs. Here
``TrainingConfig.grid`` maps any ``TrainingConfig`` field to the values to try, e.g.
``{"hidden_layers": [4, 10], "width": [20, 30], "activation": ["relu", "leaky_relu"]}``; the
Cartesian product is trained, each point with the same seed, and scored by the mean σ_min over the
trained masses on the validation split at that point's best score cut. The best point's model is
the one the pipeline keeps (no retraining). Each task trains on one thread when it runs in a Dask
worker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from alps.tasks import map_tasks

from .evaluate import deployed_scores
from .sample import SelectionSample
from .train import PunziFit, train_punzi_net
from .working_point import scan_cuts, scan_sigma_min

__all__ = ["GridPoint", "GridResult", "evaluate_config", "expand_grid", "grid_search"]


@dataclass(frozen=True)
class GridPoint:
    """One configuration: its overrides, mean σ_min (pb) at its best cut, and the model."""

    overrides: dict[str, Any]
    mean_sigma_min_pb: float
    best_cut: float
    seconds: float
    fit: PunziFit


@dataclass(frozen=True)
class GridResult:
    points: tuple[GridPoint, ...]
    best: int

    def table(self) -> list[dict[str, Any]]:
        """JSON-ready rows (without the models)."""
        return [
            {
                **p.overrides,
                "mean_sigma_min_pb": p.mean_sigma_min_pb,
                "best_cut": p.best_cut,
                "seconds": p.seconds,
                "best": i == self.best,
            }
            for i, p in enumerate(self.points)
        ]


def expand_grid(base: Any, grid: Mapping[str, Sequence[Any]]) -> list[tuple[dict[str, Any], Any]]:
    """``(overrides, TrainingConfig)`` for every point of the grid, each validated.

    A key that is not a ``TrainingConfig`` field, or a value that fails validation, raises
    ``ValueError`` naming ``training.grid.<key>``.
    """
    cls = type(base)
    fields = set(cls.model_fields) - {"grid"}
    for key in grid:
        if key not in fields:
            raise ValueError(
                f"training.grid.{key}: not a training setting; use one of {sorted(fields)}"
            )
    keys = list(grid)
    points = []
    for values in itertools.product(*(tuple(grid[k]) for k in keys)):
        overrides = dict(zip(keys, values))
        data = base.model_dump()
        data.update(overrides, grid={})
        try:
            points.append((overrides, cls.model_validate(data)))
        except ValidationError as exc:
            where = ", ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()
            )
            raise ValueError(f"training.grid point {overrides}: {where}") from None
    return points


def _evaluate_point(
    overrides: dict[str, Any], config: Any, seed: int, sample: SelectionSample
) -> GridPoint:
    return evaluate_config(sample, overrides, config, seed)


def evaluate_config(
    sample: SelectionSample, overrides: dict[str, Any], config: Any, seed: int
) -> GridPoint:
    """Train one configuration and score it (a Dask task; pure apart from the thread count)."""
    start = time.perf_counter()
    threads = None
    try:
        from distributed import get_worker

        get_worker()
        threads = 1
    except (ImportError, ValueError):
        pass
    previous = torch.get_num_threads()
    try:
        fit = train_punzi_net(
            sample.without_held_out(),
            sample.valid,
            sample.masses,
            sample.luminosity_pb,
            config,
            seed=seed,
            threads=threads,
        )
        scores = deployed_scores(fit, sample.valid)
        table = sample.valid.window_table(sample.masses)
        cuts = scan_cuts(scores[sample.valid.is_signal])
        scan = scan_sigma_min(
            table, scores, sample.luminosity_pb, cuts, config.punzi_a, config.punzi_b
        )
        mean = scan.mean_sigma(sample.masses.trained, config.working_point_metric)
        best = int(np.argmin(mean))
    finally:
        torch.set_num_threads(previous)
    return GridPoint(
        overrides, float(mean[best]), float(scan.cuts[best]), time.perf_counter() - start, fit
    )


def grid_search(
    sample: SelectionSample,
    base: Any,
    *,
    seed: int,
    client: Any = None,
    progress: bool = False,
) -> GridResult:
    """Evaluate every point of ``base.grid``; with a Dask ``client`` one task per point."""
    points = expand_grid(base, base.grid)
    if not points:
        raise ValueError("training.grid is empty")
    results = map_tasks(
        _evaluate_point, [(o, c, seed) for o, c in points], client=client,
        shared={"sample": sample}, scatter=True, progress=progress, desc="grid search",
    )  # fmt: skip
    best = int(np.argmin([r.mean_sigma_min_pb for r in results]))
    return GridResult(tuple(results), best)
