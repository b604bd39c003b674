"""The mass-parametrised Punzi net: the hypothesis mass as an input (Baldi et al., EPJC 76 (2016) 235).

A parametrised net scores a candidate *for a mass hypothesis* m_H: its inputs are the features and
m_H. In training, a signal candidate of mass j is seen with m_H = m_j; a background candidate is
seen once for every mass hypothesis whose window (m_j ± N σ_m) it falls in, with m_H = m_j: the
masses it can fake. The Punzi loss then sums, for each mass j, the signal of j and the
background rows of j (:func:`models.punzi.punzi_loss_indexed`), so the net learns one selection
per mass that interpolates smoothly between the trained masses.

Deployed in the processor (one score per candidate, one score axis), the hypothesis is the
candidate's own fitted diphoton mass, clipped to the trained mass range: m_H = clip(M_γγ). A
candidate inside the window of mass m is then scored at a hypothesis within N σ_m of m; the
sensitivity tables give σ_min for this deployed score and, beside it, for the score at the exact
hypothesis (the net's best case), so the cost of the choice is measured.

Functions are pure (arrays in, arrays out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sample import Candidates, MassPoints

__all__ = [
    "HYPOTHESIS_INPUT",
    "HypothesisPairs",
    "hypothesis_pairs",
    "parametrised_bce_rows",
    "row_hypothesis",
    "with_hypothesis",
]

#: the processor column the deployed net takes its hypothesis mass from
HYPOTHESIS_INPUT = "mgg"


@dataclass(frozen=True)
class HypothesisPairs:
    """(candidate row, mass index) for every mass window a candidate falls in."""

    rows: np.ndarray
    mass_index: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def hypothesis_pairs(mgg: np.ndarray, masses: MassPoints, which: np.ndarray) -> HypothesisPairs:
    """Every (row, j) with ``window_lo[j] <= mgg[row] <= window_hi[j]`` for the masses in ``which``.

    Pairs are ordered by mass, then by row.

    >>> from models.sample import MassPoints
    >>> pts = MassPoints(np.array([1.0, 1.2]), np.array([0.9, 1.1]), np.array([1.1, 1.3]),
    ...                  np.zeros(2, bool), ("a", "b"))
    >>> p = hypothesis_pairs(np.array([0.95, 1.1, 1.25, 2.0]), pts, np.ones(2, bool))
    >>> p.rows.tolist(), p.mass_index.tolist()
    ([0, 1, 1, 2], [0, 0, 1, 1])
    """
    mgg = np.asarray(mgg, dtype=np.float64)
    order = np.argsort(mgg, kind="stable")
    sorted_m = mgg[order]
    rows, index = [], []
    for j in np.flatnonzero(which):
        lo = np.searchsorted(sorted_m, masses.window_lo[j], side="left")
        hi = np.searchsorted(sorted_m, masses.window_hi[j], side="right")
        rows.append(np.sort(order[lo:hi]))
        index.append(np.full(hi - lo, j, dtype=np.int64))
    if not rows:
        return HypothesisPairs(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return HypothesisPairs(np.concatenate(rows).astype(np.int64), np.concatenate(index))


def row_hypothesis(
    mode: str, window_mass_GeV: np.ndarray, mgg_GeV: np.ndarray, masses: MassPoints
) -> np.ndarray:
    """The hypothesis input of training rows: ``"window"``: the mass of the window the row
    stands for (m_j); ``"candidate"``: the candidate's own M_γγ clipped to the trained mass
    range, exactly the deployed rule (issue #13: trained at m_j, the net can reject a window's
    outer background by the mismatch of its M_γγ proxies with m_j, which the deployed score never
    sees)."""
    if mode == "window":
        return np.asarray(window_mass_GeV, dtype=np.float64)
    if mode == "candidate":
        m = masses.masses[masses.trained]
        return np.clip(np.asarray(mgg_GeV, dtype=np.float64), m.min(), m.max())
    raise ValueError(f"hypothesis mode {mode!r}; use 'window' or 'candidate'")


def with_hypothesis(features: np.ndarray, hypothesis_GeV: np.ndarray) -> np.ndarray:
    """The parametrised net's input: ``features`` (n, k) with the hypothesis mass as column k."""
    return np.concatenate(
        [np.asarray(features, np.float32), np.asarray(hypothesis_GeV, np.float32)[:, None]], axis=1
    )


def parametrised_bce_rows(
    candidates: Candidates,
    masses: MassPoints,
    signal_fraction: float = 0.5,
    hypothesis: str = "window",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels and weights (mean 1) for the BCE pre-training of a parametrised net.

    Signal of trained mass j enters with m_H = m_j, background once per trained window it falls
    in. Every trained mass gets the same total signal weight and the same total background weight
    (its window's background with its physical weights): the signal gets ``signal_fraction`` of
    each hypothesis's weight (a balanced problem at 0.5), the prior over hypotheses is uniform, as
    in the plain net's pre-training (:func:`models.sample.training_weights`). ``hypothesis``:
    the rows' hypothesis input (:func:`row_hypothesis`).
    """
    if not 0 < signal_fraction < 1:
        raise ValueError(f"signal_fraction must be in (0, 1), got {signal_fraction}")
    trained = masses.trained
    sig = np.flatnonzero(candidates.is_signal)
    sig = sig[trained[candidates.mass_index[sig]]]
    bkg = np.flatnonzero(~candidates.is_signal)
    pairs = hypothesis_pairs(candidates.mgg[bkg], masses, trained)
    j_sig = candidates.mass_index[sig].astype(np.int64)
    n_sig = np.bincount(j_sig, minlength=len(masses)).astype(np.float64)
    w_pair = candidates.weight[bkg][pairs.rows]
    b_tot = np.bincount(pairs.mass_index, weights=w_pair, minlength=len(masses))
    used = trained & (n_sig > 0) & (b_tot > 0)
    n_used = max(int(used.sum()), 1)
    w_s = np.where(used[j_sig], signal_fraction / (n_used * np.maximum(n_sig[j_sig], 1)), 0.0)
    w_b = np.where(
        used[pairs.mass_index],
        (1 - signal_fraction) * w_pair / (n_used * np.maximum(b_tot[pairs.mass_index], 1e-300)),
        0.0,
    )
    b_rows = bkg[pairs.rows]
    x = np.concatenate(
        [
            with_hypothesis(
                candidates.features[sig],
                row_hypothesis(hypothesis, masses.masses[j_sig], candidates.mgg[sig], masses),
            ),
            with_hypothesis(
                candidates.features[b_rows],
                row_hypothesis(
                    hypothesis, masses.masses[pairs.mass_index], candidates.mgg[b_rows], masses
                ),
            ),
        ]
    )
    y = np.concatenate([np.ones(len(sig), np.float32), np.zeros(len(pairs), np.float32)])
    w = np.concatenate([w_s, w_b])
    mean = w.mean() if len(w) else 1.0
    return x, y, (w / mean if mean > 0 else w).astype(np.float32)
