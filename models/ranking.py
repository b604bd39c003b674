"""Feature ranking with XGBoost: split gain and permutation importance.

The seed chose its nine inputs by a random-forest importance ranking (physics.md); here an XGBoost
classifier is trained on every float feature of the skims (mass, weight and truth columns
excluded) and each feature is scored twice:

* gain: its share of the total split gain in the trees (training sample);
* permutation: the drop of the weighted ROC AUC on the validation split when the feature's column
  is shuffled (mean and standard deviation over repeats; Breiman, Machine Learning 45 (2001) 5).

Features are ranked by permutation importance (it is measured on unseen events and is not biased
towards features with many split points), ties broken by gain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from .sample import Candidates, MassPoints, training_weights
from .xgb import gain_importance, train_xgboost, xgboost_scores

__all__ = ["FeatureImportance", "Ranking", "rank_features"]


@dataclass(frozen=True)
class FeatureImportance:
    """One feature's importances; ``rank`` starts at 1."""

    name: str
    rank: int
    gain: float
    permutation: float
    permutation_std: float


@dataclass(frozen=True)
class Ranking:
    """Features, best first, with the validation AUC of the ranking model."""

    features: tuple[FeatureImportance, ...]
    auc: float
    rounds: int
    rows_for_permutation: int

    def top(self, n: int) -> tuple[str, ...]:
        return tuple(f.name for f in self.features[:n])


def rank_features(
    train: Candidates,
    valid: Candidates,
    masses: MassPoints,
    *,
    rounds: int,
    depth: int,
    seed: int,
    repeats: int = 3,
    max_rows: int = 100_000,
    threads: int | None = None,
) -> Ranking:
    """Rank ``train.feature_names`` (see the module docstring); both splits without held-out signal.

    At most ``max_rows`` validation candidates (a seeded random subset) are used for the
    permutation importance.
    """
    rng = np.random.default_rng(seed)
    booster = train_xgboost(train, masses, rounds=rounds, depth=depth, seed=seed, threads=threads)
    gain = gain_importance(booster, train.feature_names)
    rows = np.arange(len(valid))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    sub = valid.subset(rows)
    w = training_weights(sub, masses)
    y = sub.is_signal
    x = np.array(sub.features, dtype=np.float32)
    base = float(roc_auc_score(y, xgboost_scores(booster, x), sample_weight=w))
    perm_mean, perm_std = [], []
    for k in range(x.shape[1]):
        drops = []
        column = x[:, k].copy()
        for _ in range(repeats):
            x[:, k] = rng.permutation(column)
            drops.append(base - roc_auc_score(y, xgboost_scores(booster, x), sample_weight=w))
        x[:, k] = column
        perm_mean.append(float(np.mean(drops)))
        perm_std.append(float(np.std(drops)))
    order = sorted(range(len(gain)), key=lambda k: (-perm_mean[k], -gain[k]))
    features = tuple(
        FeatureImportance(train.feature_names[k], r + 1, float(gain[k]), perm_mean[k], perm_std[k])
        for r, k in enumerate(order)
    )
    return Ranking(features, base, rounds, len(rows))
