"""The per-mass models of a scan, built as batched tasks (issue 18).

:func:`build_mass_points` runs :func:`limits.mass_model.mass_workspace` (window, F-test on the
background order, sideband fit, signal template and systematics) and the decay geometry for every
scan mass outside the meson vetoes; on a ``distributed.Client`` as batches of masses, with the spectra,
shape model and configuration sent to each worker once. Each mass is built alone from the same
inputs, so the result does not depend on the batching or on the number of workers. No files are
written here: the caller writes the workspaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alps.config import AnalysisConfig
from alps.tasks import map_tasks
from limits.coupling import DecayGeometry, decay_geometry, decay_probability
from limits.inputs import Spectra
from limits.interpolation import ShapeModel
from limits.mass_model import MassModelInfo, excluded_regions, is_excluded, mass_workspace
from limits.workspace import mass_window

__all__ = ["MassPoint", "build_mass_points"]

#: masses per task on a cluster at most
MAX_BATCH = 32


@dataclass(frozen=True, eq=False)
class MassPoint:
    """One analysed mass (GeV): its pyhf workspace, what went into it, the decay geometry and
    the window's bin indices in the full m_gg binning."""

    mass: float
    spec: dict[str, Any]
    info: MassModelInfo
    geometry: DecayGeometry
    window_bins: tuple[int, ...]


def _mass_point(
    mass: float,
    spectra: Spectra,
    shape_model: ShapeModel,
    config: AnalysisConfig,
    regions: list[tuple[float, float]],
) -> MassPoint | None:
    """The :class:`MassPoint` of ``mass``; None when vetoed or when no workspace can be built."""
    if is_excluded(mass, regions):
        return None
    g_ref = spectra.coupling
    geo = decay_geometry(mass)
    p_ref = decay_probability(geo, g_ref) if np.isfinite(g_ref) else 1.0
    built = mass_workspace(
        spectra, shape_model, config, mass, prompt_fraction_ref=p_ref, regions=regions
    )
    if built is None:
        return None
    spec, info = built
    lcfg = config.limits
    window = mass_window(
        spectra.edges,
        mass,
        float(config.histograms.resolution.sigma(mass)),
        lcfg.window_nsigma,
        lcfg.scan_range_GeV,
        regions,
    )
    return MassPoint(mass, spec, info, geo, window.bins)


def _batch(
    masses: Sequence[float],
    *,
    spectra: Spectra,
    shape_model: ShapeModel,
    config: AnalysisConfig,
) -> list[MassPoint | None]:
    regions = excluded_regions(config)
    return [_mass_point(m, spectra, shape_model, config, regions) for m in masses]


def build_mass_points(
    masses: Sequence[float],
    spectra: Spectra,
    shape_model: ShapeModel,
    config: AnalysisConfig,
    *,
    client: Any | None = None,
    progress: Callable[[int], Any] | None = None,
    batch_size: int | None = None,
) -> list[MassPoint]:
    """The :class:`MassPoint` of every analysable mass of ``masses`` (GeV), in their order; on
    ``client`` (a ``distributed.Client``) as batched tasks. ``progress`` is called with the
    number of masses done."""
    items = [float(m) for m in masses]
    if client is None:
        batch_size = max(len(items), 1)
    elif batch_size is None:
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        batch_size = max(1, min(MAX_BATCH, len(items) // (4 * n_workers) or 1))
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    batches = map_tasks(
        _batch,
        [(c,) for c in chunks],
        client=client,
        shared={"spectra": spectra, "shape_model": shape_model, "config": config},
        scatter=client is not None,
        progress=progress or False,
        count=len,
    )  # fmt: skip
    return [p for batch in batches for p in batch if p is not None]
