"""Integrity of the input ntuples before processing: checksum, branch types, physical ranges.

* **Checksum**: the manifest written by the generation holds the SHA-256 of every ntuple; a file
  whose content changed since (garbage written into its baskets, a file of another configuration
  copied over it) is refused before any of it is read into a histogram.
* **Branch types**: every branch the processor reads has the kind (floating point, integer, bool)
  of the ntuple contract (design.md, "The ntuple contract"); an integer energy would truncate
  silently.
* **Physical ranges**: per file, the number of entries with a value no detector can give
  (negative or non-finite cluster energies and energy errors, non-finite cluster times, polar
  angles outside [0, pi], non-positive beam energies, non-finite weights). They are counted and
  reported per file (the processor's pre-selection keeps only finite energies above threshold),
  never silently histogrammed. The processor counts them in the arrays it reads
  (:func:`count_out_of_range`), so no file is read twice for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np

__all__ = [
    "BRANCH_KINDS",
    "RANGE_CHECKS",
    "branch_kind_problems",
    "count_out_of_range",
    "out_of_range_counts",
]

#: numpy kind of each branch the processor reads: "f" floating point, "i" integer, "b" bool
BRANCH_KINDS: dict[str, str] = {
    **dict.fromkeys(("exp", "run", "event", "ncluster", "ntrack", "nmc_photon"), "i"),
    **dict.fromkeys(("beam_E", "beam_px", "beam_py", "beam_pz", "weight"), "f"),
    **dict.fromkeys(("trg_esum", "trg_ncl", "mc_photon_fromALP"), "b"),
    **dict.fromkeys(("cluster_region", "cluster_mcIndex"), "i"),
    **{f"cluster_{k}": "f" for k in ("E", "theta", "phi", "time", "errE", "errTheta", "errPhi")},
    **{f"track_{k}": "f" for k in ("px", "py", "pz", "dr", "dz")},
    "mc_photon_E": "f",
}

#: name of the count -> (branch, test that is True for a physically impossible value)
RANGE_CHECKS: dict[str, tuple[str, Any]] = {
    "cluster_E negative or non-finite": ("cluster_E", lambda v: ~np.isfinite(v) | (v < 0)),
    "cluster_errE non-positive or non-finite": (
        "cluster_errE",
        lambda v: ~np.isfinite(v) | (v <= 0),
    ),
    "cluster_time non-finite": ("cluster_time", lambda v: ~np.isfinite(v)),
    "cluster_theta outside [0, pi]": (
        "cluster_theta",
        lambda v: ~np.isfinite(v) | (v < 0) | (v > np.pi),
    ),
    "beam_E non-positive or non-finite": ("beam_E", lambda v: ~np.isfinite(v) | (v <= 0)),
    "weight non-finite": ("weight", lambda v: ~np.isfinite(v)),
}


def _kind(branch: Any) -> str | None:
    """numpy kind of a TBranch's values (of the content, for a jagged branch)."""
    interpretation = branch.interpretation
    content = getattr(interpretation, "content", interpretation)
    dtype = getattr(content, "to_dtype", None)
    return None if dtype is None else str(np.dtype(dtype).kind)


def branch_kind_problems(tree: Any, names: tuple[str, ...]) -> list[str]:
    """``branch 'x' holds int32, the contract says floating point`` for each mistyped branch."""
    words = {"f": "floating point", "i": "integer", "u": "integer", "b": "bool"}
    problems = []
    for name in names:
        expected = BRANCH_KINDS.get(name)
        if expected is None:
            continue
        kind = _kind(tree[name])
        if kind == "u":
            kind = "i"
        if kind != expected:
            problems.append(
                f"branch {name!r} holds {tree[name].typename}, the ntuple contract says "
                f"{words[expected]}"
            )
    return problems


def count_out_of_range(values: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Number of values outside their physical range, per check of :data:`RANGE_CHECKS` (only
    the non-zero counts), from each checked branch's flat values as read (their own dtype: a
    float32 angle is compared with pi in float32, as the file holds it). The processor counts
    them in the arrays it reads anyway, so a file is not read a second time for this."""
    counts = {}
    for label, (branch, impossible) in RANGE_CHECKS.items():
        with np.errstate(invalid="ignore"):
            n = int(np.count_nonzero(impossible(values[branch])))
        if n:
            counts[label] = n
    return counts


def out_of_range_counts(tree: Any) -> dict[str, int]:
    """:func:`count_out_of_range` of a whole TTree (reads the checked branches)."""
    branches = sorted({branch for branch, _ in RANGE_CHECKS.values()})
    arrays = tree.arrays(branches, library="ak")
    return count_out_of_range({b: np.asarray(ak.flatten(arrays[b], axis=None)) for b in branches})
