"""Cut-based reference selection: rectangular cuts optimised for the mean σ_min.

The comparison the Punzi net and XGBoost are held against: one lower and one upper cut per input
feature (``x_k >= lower_k`` and ``x_k <= upper_k``, either may be absent), found by coordinate
descent. Each pass visits every (feature, side) and tries "no cut" and thresholds at quantiles of
the trained signal inside its windows (1–50% for lower cuts, 50–99% for upper cuts), keeping the
value with the smallest mean σ_min over the trained masses on the training split. A candidate with
a missing (NaN) feature fails any cut on that feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .punzi import sigma_min
from .sample import Candidates, MassPoints

__all__ = ["RectangularCuts", "optimise_cuts"]


@dataclass(frozen=True)
class RectangularCuts:
    """Lower/upper cut per feature (``None``: no cut); mean σ_min (pb) on the training split."""

    features: tuple[str, ...]
    lower: tuple[float | None, ...]
    upper: tuple[float | None, ...]
    train_mean_sigma_min_pb: float

    def passes(self, x: np.ndarray) -> np.ndarray:
        """Boolean pass flag for features ``x`` (n, k) in ``features`` order."""
        ok = np.ones(len(x), dtype=bool)
        for k, (lo, hi) in enumerate(zip(self.lower, self.upper)):
            if lo is not None:
                ok &= x[:, k] >= lo
            if hi is not None:
                ok &= x[:, k] <= hi
        return ok

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        return {
            f: {"min": lo, "max": hi} for f, lo, hi in zip(self.features, self.lower, self.upper)
        }


def optimise_cuts(
    train: Candidates,
    masses: MassPoints,
    luminosity_pb: float,
    *,
    a: float = 5.0,
    b: float = 1.28,
    n_thresholds: int = 24,
    passes: int = 2,
) -> RectangularCuts:
    """Coordinate-descent rectangular cuts on ``train`` (see the module docstring)."""
    table = train.window_table(masses)
    trained = masses.trained
    x = train.features
    k = x.shape[1]
    sig = train.trained_signal(masses) & (train.weight > 0)
    q_lo = np.linspace(0.01, 0.5, n_thresholds)
    q_hi = np.linspace(0.5, 0.99, n_thresholds)
    options: list[list[np.ndarray]] = []
    for j in range(k):
        col = x[sig, j]
        col = col[np.isfinite(col)]
        if len(col) == 0:
            options.append([np.zeros(0), np.zeros(0)])
        else:
            options.append([np.unique(np.quantile(col, q_lo)), np.unique(np.quantile(col, q_hi))])

    def objective(passed: np.ndarray) -> float:
        eff, bkg = table.yields(passed)
        return float(np.mean(sigma_min(eff[trained], bkg[trained], luminosity_pb, a, b)))

    cuts: list[list[float | None]] = [[None, None] for _ in range(k)]
    masks = np.ones((k, 2, len(train)), dtype=bool)
    best = objective(np.ones(len(train)))
    for _ in range(passes):
        changed = False
        for j in range(k):
            for side in (0, 1):
                others = np.ones(len(train), dtype=bool)
                for jj in range(k):
                    for ss in (0, 1):
                        if (jj, ss) != (j, side):
                            others &= masks[jj, ss]
                choice, value = cuts[j][side], objective(others & masks[j, side])
                for t in options[j][side]:
                    m = x[:, j] >= t if side == 0 else x[:, j] <= t
                    v = objective(others & m)
                    if v < value - 1e-12 * abs(value):
                        choice, value = float(t), v
                none_value = objective(others)
                if none_value <= value:
                    choice, value = None, none_value
                if choice != cuts[j][side]:
                    changed = True
                    cuts[j][side] = choice
                    if choice is None:
                        masks[j, side] = True
                    else:
                        masks[j, side] = x[:, j] >= choice if side == 0 else x[:, j] <= choice
                best = value
        if not changed:
            break
    return RectangularCuts(
        train.feature_names,
        tuple(c[0] for c in cuts),
        tuple(c[1] for c in cuts),
        best,
    )
