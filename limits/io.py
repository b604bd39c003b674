"""File edges of the limits stage: read the histogram file, write JSON (atomically).

JSON files are written to a temporary name and renamed, so a reader never sees half a file; NaN
and infinities become ``null`` (design.md: a mass inside an excluded region has null entries).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alps.histio import iter_categories, read_histograms, read_provenance
from limits.inputs import Spectra, project_histograms

__all__ = ["read_json", "read_spectra", "to_jsonable", "write_json"]


def read_spectra(path: str | Path, working_point: float | None) -> Spectra:
    """Read ``mgg`` and ``generated`` from a histogram file and project them (see
    :func:`limits.inputs.project_histograms`).

    ``mgg`` is read and projected one dataset at a time (:func:`alps.histio.iter_categories`),
    the projections stacked: the same numbers as projecting the whole histogram, without ever
    holding it (its size grows with the run periods; the projection sums them).
    """
    provenance = read_provenance(path)
    generated = read_histograms(path, names=["generated"])
    parts = [
        project_histograms({"mgg": one, **generated}, provenance, working_point=working_point)
        for _, one in iter_categories(path, "mgg")
    ]
    if not parts:  # no dataset: the empty histogram is small
        hists = read_histograms(path, names=["mgg", "generated"])
        return project_histograms(hists, provenance, working_point=working_point)
    return dataclasses.replace(
        parts[0],
        datasets=tuple(d for p in parts for d in p.datasets),
        values=np.concatenate([p.values for p in parts]),
        variances=np.concatenate([p.variances for p in parts]),
    )


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: tuples to lists, numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, str | bytes):
        return to_jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` (parents created, temp file renamed into place)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(obj), indent=indent, allow_nan=False))
    tmp.replace(target)
    return target


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
