"""k-fold cross-validated evaluation of the selections (``training.evaluation_folds``, issue #13).

With a single split the σ_min of every mass is measured on the validation events only (30% of
them), and the per-mass comparison of two selections that differ by a few per cent is as noisy
as that difference (README "The selection"). With k folds (cut by the same event hash as the
split, in memory from skims read once: ``models.data.SkimRead.sample(validation_fold=...)``)
the selections are trained k times, each time on the other k − 1 folds, and each fold's events
are scored only by the models that never saw them: every event is evaluated once, about
1 / validation_fraction times the events of the single split, at k times the training cost.

The figures are then those of the training procedure (each fold's models are one draw of it,
judged on the events it left out), at one cut for all folds. The deployed models are fold 0's
(trained on (k − 1)/k of the events, as the single split's on 70%): one draw of the procedure
that was measured, and no extra training. The functions here are pure: the I/O and the
training calls stay in ``models/pipeline.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .evaluate import scan_at_hypothesis
from .punzi import sigma_min
from .sample import Candidates, MassPoints
from .train import PunziFit
from .working_point import CutScan

__all__ = ["FoldScores", "pool_folds", "pooled_scan_at_hypothesis"]


@dataclass(frozen=True)
class FoldScores:
    """One fold's evaluation set, the scores of its models on it, and those models.

    ``scores``: per selection name (the nets by kind, ``"xgboost"``); ``cut_based``: pass mask of
    the fold's rectangular cuts; ``fits``: the fold's Punzi nets by kind. The evaluation set's
    weights estimate the whole sample's efficiency and background on their own.
    """

    candidates: Candidates
    scores: dict[str, np.ndarray]
    cut_based: np.ndarray
    fits: dict[str, PunziFit]


def pool_folds(folds: Sequence[FoldScores]) -> FoldScores:
    """The folds' evaluation sets and scores as one (weights divided by the number of folds).

    Each fold's weights estimate the full sample, so the pooled sums are their mean: every
    background event and every trained mass's signal event enters once; a held-out mass's
    signal (in every fold's evaluation set, since no fold trains on it) enters k times with 1/k
    of its weight, each time scored by another fold's models. ``fits`` are fold 0's.
    """
    if not folds:
        raise ValueError("no folds to pool")
    k = len(folds)
    names = set(folds[0].scores)
    if any(set(f.scores) != names for f in folds):
        raise ValueError("every fold must score the same selections")
    parts = [f.candidates for f in folds]
    pooled = Candidates(
        np.concatenate([p.features for p in parts]),
        parts[0].feature_names,
        np.concatenate([p.mgg for p in parts]),
        np.concatenate([p.weight for p in parts]) / k,
        np.concatenate([p.mass_index for p in parts]),
    )
    scores = {n: np.concatenate([f.scores[n] for f in folds]) for n in folds[0].scores}
    cut_based = np.concatenate([f.cut_based for f in folds])
    return FoldScores(pooled, scores, cut_based, folds[0].fits)


def pooled_scan_at_hypothesis(
    folds: Sequence[FoldScores],
    kind: str,
    masses: MassPoints,
    luminosity_pb: float,
    cuts: np.ndarray,
    a: float = 5.0,
    b: float = 1.28,
) -> CutScan:
    """:func:`models.evaluate.scan_at_hypothesis` of each fold's ``kind`` net on its own
    evaluation set, the folds' efficiencies and backgrounds averaged (each estimates the whole
    sample), σ_min recomputed from the averages."""
    scans = [
        scan_at_hypothesis(f.fits[kind], f.candidates, masses, luminosity_pb, cuts, a, b)
        for f in folds
    ]
    eff = np.mean([s.efficiency for s in scans], axis=0)
    bkg = np.mean([s.background for s in scans], axis=0)
    return CutScan(scans[0].cuts, eff, bkg, sigma_min(eff, bkg, luminosity_pb, a, b))
