"""Applying a trained selection: small picklable scorers for the processor's Dask workers.

``load_scorer(model_dir)`` returns a :class:`Scorer` (the Punzi net) or, with
``kind="xgboost"``, an :class:`XGBoostScorer`. Both hold plain numpy arrays / bytes, so Dask ships
them cheaply; the torch module or booster is rebuilt lazily in each process. A call takes an
``(n, k)`` array in ``scorer.features`` order or a mapping of column arrays (a dict, a pandas
DataFrame), runs on the CPU in batches with torch (or XGBoost) limited to ``threads`` threads
(1 by default: one core per Dask worker thread), and returns float32 scores in [0, 1]. Scores are
capped just below 1 so that the last bin of a score axis ending at 1.0 contains them.

A mass-parametrised net (``models/param.py``) is scored at the candidate's own fitted M_γγ as
the hypothesis: its :attr:`Scorer.features` end with ``"mgg"`` (the processor hands that column
over like any feature), and the hypothesis is clipped to the trained mass range.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .io import load_punzi, load_xgboost
from .net import NetSpec, ScoreNet, state_from_numpy

__all__ = ["Scorer", "XGBoostScorer", "load_scorer"]

_TOP = np.nextafter(np.float32(1.0), np.float32(0.0))


def _as_matrix(x: Any, features: tuple[str, ...]) -> np.ndarray:
    if isinstance(x, Mapping) or hasattr(x, "columns"):
        missing = [f for f in features if f not in x]
        if missing:
            raise KeyError(f"scorer needs features {missing}")
        cols = [np.asarray(x[f], dtype=np.float32) for f in features]
        return np.stack(cols, axis=1) if cols else np.zeros((0, 0), np.float32)
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != len(features):
        raise ValueError(f"expected an (n, {len(features)}) array of {features}, got {arr.shape}")
    return arr


class Scorer:
    """Punzi-net scores; picklable (weights as numpy, the module is rebuilt on first use)."""

    kind = "punzi"

    def __init__(
        self,
        spec: NetSpec,
        state: dict[str, np.ndarray],
        features: tuple[str, ...],
        *,
        batch_size: int = 65_536,
        threads: int | None = 1,
        metadata: dict[str, Any] | None = None,
        hypothesis_range: tuple[float, float] | None = None,
    ) -> None:
        if spec.n_inputs != len(features):
            raise ValueError(f"net has {spec.n_inputs} inputs but {len(features)} features")
        if hypothesis_range is not None and not hypothesis_range[0] <= hypothesis_range[1]:
            raise ValueError(f"hypothesis_range {hypothesis_range} is not an interval")
        self.hypothesis_range = hypothesis_range
        self.spec = spec
        self.state = state
        self._features = tuple(features)
        self.batch_size = batch_size
        self.threads = threads
        self.metadata = metadata or {}
        self._net: ScoreNet | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self._features

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_net"] = None
        return state

    def __call__(self, x: Any) -> np.ndarray:
        arr = _as_matrix(x, self._features)
        if self.hypothesis_range is not None:
            arr = arr.copy()
            arr[:, -1] = np.clip(arr[:, -1], *self.hypothesis_range)
        if self._net is None:
            self._net = state_from_numpy(self.spec, self.state)
        previous = torch.get_num_threads()
        if self.threads is not None and self.threads != previous:
            torch.set_num_threads(self.threads)
        try:
            out = np.empty(len(arr), dtype=np.float32)
            with torch.inference_mode():
                for i in range(0, len(arr), self.batch_size):
                    chunk = torch.from_numpy(np.ascontiguousarray(arr[i : i + self.batch_size]))
                    out[i : i + len(chunk)] = torch.sigmoid(self._net(chunk)).numpy()
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)
        return np.clip(out, 0.0, _TOP)


class XGBoostScorer:
    """XGBoost scores from the model's JSON bytes; picklable, booster rebuilt on first use."""

    kind = "xgboost"

    def __init__(
        self,
        model_json: bytes,
        features: tuple[str, ...],
        *,
        batch_size: int = 262_144,
        threads: int = 1,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.model_json = bytes(model_json)
        self._features = tuple(features)
        self.batch_size = batch_size
        self.threads = threads
        self.metadata = metadata or {}
        self._booster: Any = None

    @property
    def features(self) -> tuple[str, ...]:
        return self._features

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_booster"] = None
        return state

    def __call__(self, x: Any) -> np.ndarray:
        import xgboost as xgb

        arr = _as_matrix(x, self._features)
        if self._booster is None:
            booster = xgb.Booster()
            booster.load_model(bytearray(self.model_json))
            booster.set_param({"nthread": self.threads})
            self._booster = booster
        out = np.empty(len(arr), dtype=np.float32)
        for i in range(0, len(arr), self.batch_size):
            chunk = np.ascontiguousarray(arr[i : i + self.batch_size])
            out[i : i + len(chunk)] = self._booster.inplace_predict(chunk)
        return np.clip(out, 0.0, _TOP)


def load_scorer(
    model_dir: Path, kind: str = "punzi", *, threads: int = 1
) -> Scorer | XGBoostScorer:
    """The selection saved in ``model_dir`` by :func:`models.train_models`.

    ``kind="punzi"`` reads ``punzi.pt`` / ``punzi.json``; ``kind="xgboost"`` reads
    ``xgboost.json``. ``threads`` caps the CPU threads one call uses.
    """
    model_dir = Path(model_dir)
    if kind == "punzi":
        spec, state, features, meta = load_punzi(model_dir)
        hyp = meta.get("hypothesis_input")
        if hyp is None:
            return Scorer(spec, state, features, threads=threads, metadata=meta)
        return Scorer(
            spec,
            state,
            (*features, hyp["column"]),
            threads=threads,
            metadata=meta,
            hypothesis_range=(float(hyp["range_GeV"][0]), float(hyp["range_GeV"][1])),
        )
    if kind == "xgboost":
        path = model_dir / "xgboost.json"
        _, features, meta = load_xgboost(path)
        return XGBoostScorer(path.read_bytes(), features, threads=threads, metadata=meta)
    raise ValueError(f"unknown scorer kind {kind!r}; use 'punzi' or 'xgboost'")
