"""Histogram files: ``hist.Hist`` objects with provenance, stored without pickle.

A histogram file is a zip archive (``*.hist.zip``) in the uhi serialisation format
(``uhi.io.zip``: one JSON description per histogram, its arrays as ``.npy`` files, read back with
``allow_pickle=False``), plus ``provenance.json`` (configuration, input files and checksums,
package versions, git revision). Any uhi-aware tool (boost-histogram, hist, uproot) can read the
histograms back; nothing needs this project's code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import hist
import numpy as np
import uhi.io.zip as uhi_zip
from uhi.io import ARRAY_KEYS
from uhi.io._common import _convert_input

from alps.checksums import file_checksum

__all__ = [
    "SlabHistogram",
    "file_checksum",
    "iter_categories",
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
    """Python's and the installed ``packages``' versions (looked up once per process: reading
    the installed packages' metadata costs some 20 ms, issue 12)."""
    return dict(_versions(tuple(packages)))


@functools.cache
def _versions(packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


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


@dataclass(frozen=True)
class SlabHistogram:
    """A dense histogram written one category of its first axis at a time, never whole.

    ``first`` is the histogram with the first category only (its other axes, storage type and
    metadata those of the whole), ``categories`` the whole first axis, and ``slab(i)`` the bins
    of category ``i`` as ``{"values": ..., "variances": ...}`` (flow bins included, the shape of
    ``first.view(flow=True)`` without its first axis). :func:`write_histograms` writes the file
    the whole histogram would give (:func:`iter_categories` reads it back the same way).
    """

    first: hist.Hist
    categories: tuple[str, ...]
    slab: Callable[[int], Mapping[str, Any]]


def _write_slabs(archive: zipfile.ZipFile, name: str, lazy: SlabHistogram) -> None:
    """The uhi zip members of ``lazy`` (as ``uhi.io.zip.write`` of the whole histogram)."""
    # the conversion uhi.io.zip.write makes (so the JSON is the same, key order included)
    ir: dict[str, Any] = dict(_convert_input(lazy.first))
    first_axis = ir["axes"][0]
    if first_axis.get("type") != "category_str" or first_axis.get("flow"):
        raise ValueError(f"{name}: the first axis must be a string category without flow bins")
    storage = dict(ir["storage"])
    for key in sorted(ARRAY_KEYS & storage.keys()):
        one = np.asarray(storage[key])
        path = f"{name}_storage_{key}.npy"
        header = {
            "descr": np.lib.format.dtype_to_descr(one.dtype),
            "fortran_order": False,
            "shape": (len(lazy.categories), *one.shape[1:]),
        }
        with archive.open(path, "w") as member:
            try:
                np.lib.format.write_array_header_1_0(member, header)
            except ValueError:  # a header too long for format 1.0
                np.lib.format.write_array_header_2_0(member, header)
            for i in range(len(lazy.categories)):
                slab = np.ascontiguousarray(lazy.slab(i)[key], dtype=one.dtype)
                if slab.shape != one.shape[1:]:
                    raise ValueError(
                        f"{name}: slab {i} has shape {slab.shape}, not {one.shape[1:]}"
                    )
                member.write(slab.tobytes())
        storage[key] = path
    axes = [dict(first_axis, categories=list(lazy.categories))]
    for i, axis in enumerate(ir["axes"][1:], start=1):
        axis = dict(axis)
        for key in ARRAY_KEYS & axis.keys():
            path = f"{name}_axis_{i}_{key}.npy"
            with archive.open(path, "w") as member:
                np.save(member, axis[key])
            axis[key] = path
        axes.append(axis)
    archive.writestr(f"{name}.json", json.dumps(dict(ir, axes=axes, storage=storage)))


def write_histograms(
    path: str | Path,
    histograms: Mapping[str, hist.Hist | SlabHistogram],
    provenance_record: Mapping[str, Any],
) -> Path:
    """Write named histograms and their provenance to ``path`` (atomically: temp file, rename);
    a :class:`SlabHistogram` is written one category at a time."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=4) as archive:
        for name, histogram in histograms.items():
            if "/" in name or name == "provenance":
                raise ValueError(f"histogram name {name!r} is not allowed")
            if isinstance(histogram, SlabHistogram):
                _write_slabs(archive, name, histogram)
            else:
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


def iter_categories(
    path: str | Path, name: str, axis: str = "dataset", only: Iterable[str] | None = None
) -> Iterator[tuple[str, hist.Hist]]:
    """Histogram ``name`` of a file, one category of its first axis (``axis``) at a time: a
    histogram whose first axis holds that category alone, with its bins as stored.

    The stored arrays are C-ordered with the first axis outermost, so each category's bins are
    one contiguous slab of the ``.npy`` member, read straight from the zip: the memory is one
    category's bins, not the whole histogram (``mgg_score`` grows with the run periods and
    datasets: about 0.3 GB per array at 2 fb^-1, 1.4 GB at Run 1). ``only``: these categories
    (in the axis's order), the others are skipped unread where the format allows.
    """
    wanted = None if only is None else set(only)
    with zipfile.ZipFile(path) as archive:
        ir: dict[str, Any] = json.loads(archive.read(f"{name}.json"))
        first = ir["axes"][0]
        label = (first.get("metadata") or {}).get("name")
        if label != axis or first.get("type") != "category_str":
            raise ValueError(f"{path}: {name}'s first axis is {label!r}, not the category {axis!r}")
        for other in ir["axes"][1:]:
            for key in ARRAY_KEYS & other.keys():
                if isinstance(other[key], str):
                    other[key] = np.load(archive.open(other[key]), allow_pickle=False)
        storage = ir["storage"]
        keys = sorted(k for k in ARRAY_KEYS & storage.keys() if isinstance(storage[k], str))
        members = {key: archive.open(storage[key]) for key in keys}
        try:
            layouts = {key: _npy_layout(f, f"{path}:{storage[key]}") for key, f in members.items()}
            for category in first["categories"]:
                slabs = {
                    key: _read_slab(
                        members[key],
                        *layouts[key],
                        skip=wanted is not None and category not in wanted,
                    )
                    for key in keys
                }
                if wanted is not None and category not in wanted:
                    continue
                one = dict(
                    ir, axes=[dict(first, categories=[category], flow=False), *ir["axes"][1:]]
                )
                one["storage"] = dict(storage, **{k: v[np.newaxis] for k, v in slabs.items()})
                yield str(category), hist.Hist(one)
        finally:
            for f in members.values():
                f.close()


def _npy_layout(member: Any, where: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """(shape of one slab of the first axis, dtype) from a ``.npy`` header (C order only)."""
    version = np.lib.format.read_magic(member)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        raise ValueError(f"{where}: .npy format version {version} is not read here")
    shape, fortran, dtype = read_header(member)
    if fortran or dtype.hasobject or not shape:
        raise ValueError(f"{where}: not a C-ordered numeric array")
    return tuple(shape[1:]), dtype


def _read_slab(member: Any, shape: tuple[int, ...], dtype: np.dtype[Any], *, skip: bool) -> Any:
    """The next slab of ``shape`` from an open ``.npy`` member (read into one buffer)."""
    out = np.empty(shape, dtype=dtype)
    buffer = memoryview(out.data).cast("B")
    done = 0
    while done < len(buffer):
        n = member.readinto(buffer[done:])
        if not n:
            raise ValueError(f"{member.name}: the array ends before its header's shape")
        done += n
    return None if skip else out


def signal_digest(path: str | Path) -> str:
    """A digest of the signal samples' bins (``alp_m*`` datasets) of every histogram in a file:
    what the signal-shape fits read, unchanged when only the pseudo-data or the backgrounds
    change (the cache of the shapes stage keys on it). Histograms with a dataset axis are read
    one dataset at a time (:func:`iter_categories`): each signal dataset's axes and bins get
    their own digest, and the file's digest is that of the sorted (histogram, dataset, digest)
    list, so it does not depend on the order of the dataset axis."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(json.loads(archive.read("index.json")))
        first = {n: json.loads(archive.read(f"{n}.json"))["axes"][:1] for n in names}
    parts: list[tuple[str, str, str]] = []
    for name in names:
        if not first[name] or (first[name][0].get("metadata") or {}).get("name") != "dataset":
            continue
        signal = [
            str(d) for d in first[name][0].get("categories", []) if str(d).startswith("alp_m")
        ]
        for dataset, one in iter_categories(path, name, only=signal):
            part: Any = one[{"dataset": dataset}]
            sha = hashlib.sha256()
            sha.update(json.dumps([(a.name, [str(b) for b in a]) for a in part.axes]).encode())
            values: Any = part.view(flow=True)
            for field_name in values.dtype.names or ():
                sha.update(values[field_name].tobytes())
            if not values.dtype.names:
                sha.update(values.tobytes())
            parts.append((name, dataset, sha.hexdigest()))
    return hashlib.sha256(json.dumps(sorted(parts)).encode()).hexdigest()
