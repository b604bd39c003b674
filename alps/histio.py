"""Histogram files: ``hist.Hist`` objects with provenance, stored without pickle.

A histogram file is a zip archive (``*.hist.zip``) in the uhi serialisation format
(``uhi.io.zip``: one JSON description per histogram, its arrays as ``.npy`` files, read back with
``allow_pickle=False``), plus ``provenance.json`` (configuration, input files and checksums,
package versions, git revision). Any uhi-aware tool (boost-histogram, hist, uproot) can read the
histograms back; nothing needs this project's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import zipfile
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import hist
import uhi.io.zip as uhi_zip

from alps.checksums import file_checksum

__all__ = [
    "file_checksum",
    "package_versions",
    "provenance",
    "read_histograms",
    "read_provenance",
    "signal_digest",
    "write_histograms",
]

_PACKAGES = (
    "alps",
    "numpy",
    "scipy",
    "numba",
    "awkward",
    "uproot",
    "coffea",
    "dask",
    "distributed",
    "dask-awkward",
    "hist",
    "boost-histogram",
    "pyhf",
    "iminuit",
    "torch",
    "xgboost-cpu",
    "correctionlib",
)


def package_versions(packages: Iterable[str] = _PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(where: str | Path | None = None) -> str | None:
    """The git revision of the source tree (``None`` outside a checkout), ``+dirty`` if changed."""
    cwd = Path(where) if where is not None else Path(__file__).resolve().parent
    # read-only queries: no index refresh, so no index.lock written into the source checkout
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")


def provenance(
    *,
    config: Mapping[str, Any] | None = None,
    inputs: Iterable[str | Path] = (),
    checksums: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A provenance record: configuration, input files (with checksums), versions, git revision."""
    files = [Path(p) for p in inputs]
    record: dict[str, Any] = {
        "config": dict(config) if config is not None else None,
        "inputs": [
            {"path": str(p), **({"sha256": file_checksum(p)} if checksums else {})} for p in files
        ],
        "versions": package_versions(),
        "git_revision": git_revision(),
    }
    record.update(extra)
    return record


def write_histograms(
    path: str | Path, histograms: Mapping[str, hist.Hist], provenance_record: Mapping[str, Any]
) -> Path:
    """Write named histograms and their provenance to ``path`` (atomically: temp file, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=4) as archive:
        for name, histogram in histograms.items():
            if "/" in name or name == "provenance":
                raise ValueError(f"histogram name {name!r} is not allowed")
            uhi_zip.write(archive, name, histogram)
        archive.writestr("provenance.json", json.dumps(provenance_record, indent=1, default=str))
        archive.writestr("index.json", json.dumps(sorted(histograms)))
    tmp.replace(target)
    return target


def read_histograms(path: str | Path, names: Iterable[str] | None = None) -> dict[str, hist.Hist]:
    """Read histograms (all, or the given names) from a file written by :func:`write_histograms`."""
    with zipfile.ZipFile(path) as archive:
        available = json.loads(archive.read("index.json"))
        wanted = list(names) if names is not None else available
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise KeyError(f"{path}: no histogram named {missing}; available: {available}")
        return {name: hist.Hist(uhi_zip.read(archive, name)) for name in wanted}


def read_provenance(path: str | Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        result: dict[str, Any] = json.loads(archive.read("provenance.json"))
        return result


def signal_digest(path: str | Path) -> str:
    """A digest of the signal samples' bins (``alp_m*`` datasets) of every histogram in a file:
    what the signal-shape fits read, unchanged when only the pseudo-data or the backgrounds
    change (the cache of the shapes stage keys on it)."""
    sha = hashlib.sha256()
    for name, histogram in sorted(read_histograms(path).items()):
        if "dataset" not in histogram.axes.name:
            continue
        axis = histogram.axes["dataset"]
        for dataset in sorted(d for d in axis if str(d).startswith("alp_m")):
            part: Any = histogram[{"dataset": dataset}]
            axes = [(a.name, [str(b) for b in a]) for a in part.axes]
            sha.update(json.dumps([name, dataset, axes]).encode())
            values: Any = part.view(flow=True)
            for field_name in values.dtype.names or ():
                sha.update(values[field_name].tobytes())
            if not values.dtype.names:
                sha.update(values.tobytes())
    return sha.hexdigest()
