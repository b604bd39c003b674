"""In-memory training sample: candidates, mass hypotheses, held-out masses, class weights.

Conventions (see ``models/data.py`` for how the skims become these arrays):

* Signal rows are truth-matched candidates of one ALP mass (``mass_index`` ≥ 0). Their ``weight``
  is their contribution to the efficiency of that mass: MC weight / (generated weight of the mass
  × fraction of events in the split), set to zero outside the mass window, so that the efficiency
  ε_j is a plain sum. Unmatched signal candidates (wrong photon pairings) are dropped: they are
  neither the peaking signal the efficiency counts (physics.md: efficiency = truth-matched /
  generated) nor Standard-Model background, whose size B the Punzi figure of merit takes under the
  background-only hypothesis.
* Background rows (``mass_index`` = −1) are all non-signal MC datasets (never "data"); ``weight``
  is expected events at the data luminosity, divided by the background keep fraction and by the
  split fraction, so that window sums estimate the full-sample background B_j.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .windows import WindowTable

__all__ = [
    "Candidates",
    "MassPoints",
    "SelectionSample",
    "choose_held_out",
    "training_weights",
]


@dataclass(frozen=True)
class Candidates:
    """Candidates of one split; ``features`` is ``(n, k)`` float32 in ``feature_names`` order."""

    features: np.ndarray
    feature_names: tuple[str, ...]
    mgg: np.ndarray
    weight: np.ndarray
    mass_index: np.ndarray

    def __len__(self) -> int:
        return len(self.mgg)

    @property
    def is_signal(self) -> np.ndarray:
        return self.mass_index >= 0

    def subset(self, rows: np.ndarray) -> Candidates:
        """The candidates at ``rows`` (integer indices or a boolean mask)."""
        return Candidates(
            self.features[rows],
            self.feature_names,
            self.mgg[rows],
            self.weight[rows],
            self.mass_index[rows],
        )

    def with_features(self, names: tuple[str, ...] | list[str]) -> Candidates:
        """The same candidates restricted to the named feature columns, in that order."""
        missing = [n for n in names if n not in self.feature_names]
        if missing:
            raise KeyError(
                f"features {missing} are not in the skims; available: {list(self.feature_names)}"
            )
        cols = [self.feature_names.index(n) for n in names]
        return Candidates(
            np.ascontiguousarray(self.features[:, cols]),
            tuple(names),
            self.mgg,
            self.weight,
            self.mass_index,
        )

    def trained_signal(self, masses: MassPoints) -> np.ndarray:
        """Mask of the signal candidates of trained masses (held-out masses' signal excluded)."""
        sig = self.is_signal
        return sig & masses.trained[np.where(sig, self.mass_index, 0)]

    def window_table(self, masses: MassPoints) -> WindowTable:
        return WindowTable.build(
            self.mgg, self.weight, self.mass_index, masses.window_lo, masses.window_hi
        )


@dataclass(frozen=True)
class MassPoints:
    """Signal mass hypotheses (GeV) with their windows (GeV) and held-out flags."""

    masses: np.ndarray
    window_lo: np.ndarray
    window_hi: np.ndarray
    held_out: np.ndarray
    datasets: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.masses)

    @property
    def trained(self) -> np.ndarray:
        return ~self.held_out


@dataclass(frozen=True)
class SelectionSample:
    """Training and validation candidates, the mass hypotheses, and where they came from."""

    train: Candidates
    valid: Candidates
    masses: MassPoints
    luminosity_pb: float
    info: dict[str, Any] = field(default_factory=dict)

    def with_features(self, names: tuple[str, ...] | list[str]) -> SelectionSample:
        return SelectionSample(
            self.train.with_features(names),
            self.valid.with_features(names),
            self.masses,
            self.luminosity_pb,
            self.info,
        )

    def evaluation_set(self) -> Candidates:
        """Validation candidates plus the training-split signal of the held-out masses.

        No training step sees a held-out mass, so all its events can measure its efficiency:
        the two splits' estimates are combined with the split fractions as weights
        (f·ε_valid + (1 − f)·ε_train), which halves the statistical error of the held-out σ_min.
        """
        f = float(self.info["validation_fraction"])
        held = self.masses.held_out
        v_held = (
            self.valid.is_signal & held[np.where(self.valid.is_signal, self.valid.mass_index, 0)]
        )
        t_held = (
            self.train.is_signal & held[np.where(self.train.is_signal, self.train.mass_index, 0)]
        )
        extra = self.train.subset(np.flatnonzero(t_held))
        weight = np.where(v_held, self.valid.weight * f, self.valid.weight)
        return Candidates(
            np.concatenate([self.valid.features, extra.features]),
            self.valid.feature_names,
            np.concatenate([self.valid.mgg, extra.mgg]),
            np.concatenate([weight, extra.weight * (1 - f)]),
            np.concatenate([self.valid.mass_index, extra.mass_index]),
        )

    def without_held_out(self) -> Candidates:
        """Training candidates with the signal of held-out masses removed."""
        keep = ~(self.train.is_signal & self.masses.held_out[self.train.mass_index])
        return self.train.subset(np.flatnonzero(keep))


def choose_held_out(n_masses: int, n_held_out: int) -> np.ndarray:
    """Evenly spaced held-out masses that each have trained neighbours on both sides.

    At most ``(n_masses - 1) // 2`` are held out (no two adjacent, first and last trained), so the
    held-out σ_min can be compared with the mean of its two trained neighbours.

    >>> choose_held_out(7, 22).nonzero()[0].tolist()
    [1, 3, 5]
    """
    flags = np.zeros(n_masses, dtype=bool)
    n = min(n_held_out, max(0, (n_masses - 1) // 2))
    if n == 0:
        return flags
    picks = np.unique(np.round(np.linspace(1, n_masses - 2, n)).astype(int))
    for i in picks:
        if not (flags[i - 1] or flags[i + 1]):
            flags[i] = True
    return flags


def training_weights(
    candidates: Candidates, masses: MassPoints, signal_fraction: float = 0.5
) -> np.ndarray:
    """Per-candidate weights for the classifier (BCE, XGBoost) training, mean 1.

    Signal gets ``signal_fraction`` of the total weight (equal classes by default), background the
    rest; inside the signal every trained mass gets the same total (a uniform prior over the mass
    hypotheses); inside the background candidates keep their physical weights (expected events).
    Held-out masses get 0.
    """
    if not 0 < signal_fraction < 1:
        raise ValueError(f"signal_fraction must be in (0, 1), got {signal_fraction}")
    w = np.zeros(len(candidates))
    sig = candidates.is_signal
    idx = candidates.mass_index[sig]
    counts = np.bincount(idx, minlength=len(masses)).astype(np.float64)
    trained = masses.trained & (counts > 0)
    if trained.any():
        per_mass = np.where(trained, signal_fraction / (trained.sum() * np.maximum(counts, 1)), 0.0)
        w[sig] = per_mass[idx]
    bkg = ~sig
    total = candidates.weight[bkg].sum()
    if total > 0:
        w[bkg] = (1 - signal_fraction) * candidates.weight[bkg] / total
    mean = w.mean() if len(w) else 1.0
    return w / mean if mean > 0 else w
