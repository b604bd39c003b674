"""XGBoost baseline selection: a boosted-tree classifier on the same weighted training sample.

The classifier sees the same candidates and class weights as the Punzi net's BCE pre-training
(:func:`models.sample.training_weights`): signal (truth-matched, trained masses) against weighted
background. Its working point is the score cut that minimises the mean σ_min (the baseline of
Abudinen et al., EPJC 82 (2022) 121). Saved in XGBoost's own JSON format (no pickle).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xgboost as xgb

from .sample import Candidates, MassPoints, training_weights

__all__ = ["gain_importance", "train_xgboost", "xgboost_scores"]


def train_xgboost(
    train: Candidates,
    masses: MassPoints,
    *,
    rounds: int,
    depth: int,
    seed: int,
    learning_rate: float = 0.1,
    threads: int | None = None,
) -> xgb.Booster:
    """Fit ``rounds`` trees of depth ``depth`` (histogram method; deterministic for a seed)."""
    dtrain = xgb.DMatrix(
        train.features,
        label=train.is_signal.astype(np.float32),
        weight=training_weights(train, masses),
        feature_names=list(train.feature_names),
        nthread=threads or os.cpu_count() or 1,
    )
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": depth,
        "eta": learning_rate,
        "seed": seed,
        "nthread": threads or os.cpu_count() or 1,
        "device": "cpu",
    }
    return xgb.train(params, dtrain, num_boost_round=rounds)


def xgboost_scores(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    """Signal probabilities (float32, [0, 1]) for features ``x`` (n, k) in the model's order."""
    if len(x) == 0:
        return np.zeros(0, np.float32)
    return np.asarray(
        booster.inplace_predict(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32
    )


def gain_importance(booster: xgb.Booster, names: tuple[str, ...]) -> np.ndarray:
    """Total split gain per feature as a fraction of the sum (0 for unused features)."""
    gains = booster.get_score(importance_type="total_gain")
    out = np.array([float(np.sum(gains.get(n, 0.0))) for n in names])
    total = out.sum()
    return out / total if total > 0 else out
