"""File edges of the limits stage: read the histogram file, write JSON (atomically).

JSON files are written to a temporary name and renamed, so a reader never sees half a file; NaN
and infinities become ``null`` (design.md: a mass inside an excluded region has null entries).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alps.histio import read_histograms, read_provenance
from limits.inputs import Spectra, project_histograms

__all__ = ["read_json", "read_spectra", "to_jsonable", "write_json"]


def read_spectra(path: str | Path, working_point: float | None) -> Spectra:
    """Read ``mgg`` and ``generated`` from a histogram file and project them (see
    :func:`limits.inputs.project_histograms`)."""
    hists = read_histograms(path, names=["mgg", "generated"])
    return project_histograms(hists, read_provenance(path), working_point=working_point)


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
