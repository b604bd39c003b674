"""Belle II-flavoured ROOT ntuples (design.md "The ntuple contract"), written with uproot.

A file holds the flat TTree ``events`` (one entry per event; jagged ``cluster_*``, ``track_*`` and,
for MC, ``mc_photon_*`` branches with their counters ``ncluster``, ``ntrack``, ``nmc_photon``) and
``meta``, a JSON string (ROOT TObjString) with the sample's facts: sample, process(es),
cross-section, generated events, seed, run-registry entry, generator version, luminosity and the
``mc_process`` code table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from .detector import CLUSTER_FIELDS, TRACK_FIELDS, RecoEvents
from .events import TruthEvents

__all__ = ["EVENT_BRANCHES", "NtupleContent", "read_meta", "write_ntuple"]

#: flat per-event branches and their types
EVENT_BRANCHES = {
    "exp": np.int32,
    "run": np.int32,
    "event": np.int64,
    "beam_E": np.float64,
    "beam_px": np.float64,
    "beam_py": np.float64,
    "beam_pz": np.float64,
    "weight": np.float64,
    "trg_esum": np.bool_,
    "trg_ncl": np.bool_,
}
_INT_FIELDS = {"region": np.int32, "nHits": np.int32, "mcIndex": np.int32, "charge": np.int32}


class NtupleContent(dict):
    """Branch name -> array for one file (flat numpy arrays or jagged awkward arrays)."""

    @classmethod
    def build(
        cls,
        event: Mapping[str, np.ndarray],
        reco: RecoEvents,
        truth: TruthEvents | None,
    ) -> NtupleContent:
        """Assemble the contract's branches; ``truth`` is None for (pseudo-)data.

        ``event`` holds the per-event branches except the trigger bits (from ``reco``) and the
        event number (set by the caller once files are assembled; zero here).
        """
        flat = dict(event, trg_esum=reco.trg_esum, trg_ncl=reco.trg_ncl)
        flat.setdefault("event", np.zeros(len(reco), dtype=np.int64))
        content = cls(
            {name: np.asarray(flat[name], dtype=dt) for name, dt in EVENT_BRANCHES.items()}
        )
        content["cluster"] = ak.unflatten(
            ak.zip({f: _typed(f, reco.clusters[f]) for f in CLUSTER_FIELDS}), reco.cluster_counts
        )
        content["track"] = ak.unflatten(
            ak.zip({f: _typed(f, reco.tracks[f]) for f in TRACK_FIELDS}), reco.track_counts
        )
        if truth is not None:
            n, k = truth.photons.shape[:2]
            p = truth.photons
            content["mc_process"] = np.asarray(event["mc_process"], dtype=np.int32)
            content["mc_ma"] = np.asarray(event["mc_ma"], dtype=np.float64)
            content["mc_decay_r"] = np.asarray(event["mc_decay_r"], dtype=np.float64)
            photon = {
                "E": p[..., 0].reshape(-1),
                "theta": np.arctan2(np.hypot(p[..., 1], p[..., 2]), p[..., 3]).reshape(-1),
                "phi": np.arctan2(p[..., 2], p[..., 1]).reshape(-1),
                "fromALP": truth.photon_from_alp.reshape(-1),
            }
            content["mc_photon"] = ak.unflatten(ak.zip(photon), np.full(n, k, dtype=np.int64))
        return content


def _typed(name: str, values: np.ndarray) -> np.ndarray:
    if name in _INT_FIELDS:
        return np.asarray(values, dtype=_INT_FIELDS[name])
    return np.asarray(values, dtype=np.float32)


def write_ntuple(path: str | Path, content: NtupleContent, meta: Mapping[str, Any]) -> Path:
    """Write one ntuple file atomically (to a temporary name, then renamed)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with uproot.recreate(tmp, compression=uproot.LZ4(1)) as handle:
            types = {
                name: (value.type if isinstance(value, ak.Array) else value.dtype)
                for name, value in content.items()
            }
            tree = handle.mktree("events", types, title="Belle II-flavoured ALP ntuple")
            tree.extend(dict(content))
            handle["meta"] = json.dumps(meta, sort_keys=True, default=_json_default)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or an interrupt leaves no partial file
        raise
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` record of an ntuple file."""
    with uproot.open(path) as handle:
        result: dict[str, Any] = json.loads(str(handle["meta"]))
        return result
