"""Model files (I/O edge): safe to load, with their provenance beside the weights.

* Punzi net: ``punzi.pt`` holds only the ``state_dict`` (tensors; read back with
  ``torch.load(..., weights_only=True)``, which unpickles no code), ``punzi.json`` the metadata:
  feature names and order, input normalisation, architecture, training configuration and history,
  the SHA-256 of ``punzi.pt`` (checked on load) and the provenance of the training data.
* XGBoost: ``xgboost.json`` in XGBoost's own JSON model format, with the same metadata stored as
  the booster attribute ``alps_metadata``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xgboost as xgb

from alps.checksums import file_checksum

from .net import NetSpec
from .param import HYPOTHESIS_INPUT
from .train import PunziFit

__all__ = [
    "PUNZI_FORMAT",
    "load_punzi",
    "load_xgboost",
    "save_punzi",
    "save_xgboost",
    "write_json",
]

PUNZI_FORMAT = "alps-punzi-net/1"
XGBOOST_FORMAT = "alps-xgboost/1"


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented strict JSON, atomically (temporary file, then rename).

    Non-finite floats (an infinite σ_min where a mass has no selected signal) become ``null``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(_finite(data), indent=1, default=_jsonable, allow_nan=False)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def save_punzi(
    fit: PunziFit, model_dir: Path, provenance: dict[str, Any], name: str = "punzi"
) -> tuple[Path, Path]:
    """Write ``<name>.pt`` (state_dict) and ``<name>.json`` (metadata) into ``model_dir``.

    A mass-parametrised net records its hypothesis input (``hypothesis_input``: the processor
    column it is taken from and the trained range it is clipped to; ``models/param.py``).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    pt = model_dir / f"{name}.pt"
    tmp = pt.with_name(pt.name + ".tmp")
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in fit.state.items()}, tmp)
    os.replace(tmp, pt)
    h = fit.history
    meta = {
        "format": PUNZI_FORMAT,
        "weights_file": pt.name,
        "weights_sha256": file_checksum(pt),
        "features": list(fit.feature_names),
        "normalisation": {"mean": fit.mean.tolist(), "std": fit.std.tolist()},
        "architecture": fit.spec.to_dict(),
        "output": "score = sigmoid(net(x)) in [0, 1]; select score >= working point",
        "hypothesis_input": None
        if fit.hypothesis_range is None
        else {
            "column": HYPOTHESIS_INPUT,
            "range_GeV": list(fit.hypothesis_range),
            "rule": "last input = the candidate's own fitted M_gg, clipped to range_GeV",
        },
        "training": {
            "seed": fit.seed,
            "device": fit.device,
            "seconds": fit.seconds,
            "config": fit.config,
            "bce_candidates": fit.n_bce_candidates,
            "punzi_candidates": fit.n_punzi_candidates,
            "bce_epochs_run": len(h.bce_train),
            "punzi_epochs_run": len(h.punzi_train),
            "best_punzi_epoch": h.best_punzi_epoch,
            "median_epoch_seconds": {
                "bce": float(np.median(h.bce_seconds)) if h.bce_seconds else None,
                "punzi": float(np.median(h.punzi_seconds)) if h.punzi_seconds else None,
            },
            "median_epoch_cpu_seconds": {
                "bce": float(np.median(h.bce_cpu_seconds)) if h.bce_cpu_seconds else None,
                "punzi": float(np.median(h.punzi_cpu_seconds)) if h.punzi_cpu_seconds else None,
            },
            "cpu_seconds": float(sum(h.bce_cpu_seconds) + sum(h.punzi_cpu_seconds)),
            "stopped_early": h.stopped_early,
            "history": {
                "bce_train": h.bce_train,
                "bce_valid": h.bce_valid,
                "punzi_train_mean_sigma_min_pb": h.punzi_train,
                "punzi_valid_mean_sigma_min_pb": h.punzi_valid,
            },
        },
        "provenance": provenance,
    }
    return pt, write_json(model_dir / f"{name}.json", meta)


def load_punzi(
    model_dir: Path, name: str = "punzi"
) -> tuple[NetSpec, dict[str, np.ndarray], tuple[str, ...], dict[str, Any]]:
    """Architecture, weights (numpy), feature names and metadata of a saved Punzi net.

    The weights are read with ``weights_only=True`` and checked against the SHA-256 and the
    normalisation recorded in ``<name>.json``. The feature names are the net's training
    features (without the hypothesis input of a parametrised net: see ``hypothesis_input``).
    """
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / f"{name}.json").read_text())
    if meta.get("format") != PUNZI_FORMAT:
        raise ValueError(
            f"{model_dir}/{name}.json: format {meta.get('format')!r}, expected {PUNZI_FORMAT}"
        )
    pt = model_dir / meta["weights_file"]
    if file_checksum(pt) != meta["weights_sha256"]:
        raise ValueError(f"{pt} does not match the checksum recorded in {name}.json")
    raw = torch.load(pt, map_location="cpu", weights_only=True)
    state = {k: v.numpy() for k, v in raw.items()}
    spec = NetSpec(**meta["architecture"])
    norm = meta["normalisation"]
    if not (np.allclose(state["mean"], norm["mean"]) and np.allclose(state["std"], norm["std"])):
        raise ValueError(f"{pt}: normalisation differs from {name}.json")
    return spec, state, tuple(meta["features"]), meta


def save_xgboost(
    booster: xgb.Booster, path: Path, features: tuple[str, ...], provenance: dict[str, Any]
) -> Path:
    """Save in XGBoost's JSON format with the metadata as attribute ``alps_metadata``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": XGBOOST_FORMAT, "features": list(features), "provenance": provenance}
    booster = booster.copy()
    booster.set_attr(alps_metadata=json.dumps(meta, default=_jsonable))
    tmp = path.with_name(path.stem + ".tmp.json")
    booster.save_model(tmp)
    os.replace(tmp, path)
    return path


def load_xgboost(path: Path) -> tuple[xgb.Booster, tuple[str, ...], dict[str, Any]]:
    """Booster, feature names and metadata from :func:`save_xgboost`'s file."""
    booster = xgb.Booster()
    booster.load_model(Path(path))
    raw = booster.attr("alps_metadata")
    if raw is None:
        raise ValueError(f"{path}: no alps_metadata attribute; not written by models.save_xgboost")
    meta = json.loads(raw)
    return booster, tuple(meta["features"]), meta
