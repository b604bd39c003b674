"""Mass windows and the signal efficiency / background yield inside them (numpy).

Each mass hypothesis m has the window m ± N·σ_m(m) (N = ``TrainingConfig.window_nsigma``,
σ_m = ``HistogramConfig.resolution.sigma``; Abudinen et al., EPJC 82 (2022) 121 use N = 10). Inside
it the efficiency of mass m counts that mass's truth-matched signal candidates and the background
counts every weighted background candidate. :class:`WindowTable` pre-sorts the candidates once so
that yields for a pass mask, or for a whole scan of score cuts, cost one pass over the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "WindowTable",
    "efficiency_weights",
    "indexed_scan",
    "mass_windows",
]


def mass_windows(
    masses: np.ndarray, sigma: np.ndarray, nsigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Window edges (GeV) ``masses ± nsigma·sigma``; the lower edge is clipped at 0.

    >>> lo, hi = mass_windows(np.array([1.0]), np.array([0.014]), 10.0)
    >>> round(float(lo[0]), 6), round(float(hi[0]), 6)
    (0.86, 1.14)
    """
    masses = np.asarray(masses, dtype=np.float64)
    half = nsigma * np.asarray(sigma, dtype=np.float64)
    return np.clip(masses - half, 0.0, None), masses + half


def efficiency_weights(
    mgg: np.ndarray,
    mass_index: np.ndarray,
    weight: np.ndarray,
    generated_weight: np.ndarray,
    window_lo: np.ndarray,
    window_hi: np.ndarray,
) -> np.ndarray:
    """Each signal candidate's contribution to the efficiency of its own mass hypothesis.

    ``weight / generated_weight[mass]`` inside that mass's window (``mgg`` in GeV), 0 outside, so
    that the efficiency of mass j is the sum over its candidates (of a fraction of generated
    events; the generated weight is that of the split the candidates belong to).
    """
    idx = np.asarray(mass_index, dtype=np.int64)
    mgg = np.asarray(mgg, dtype=np.float64)
    inside = (mgg >= window_lo[idx]) & (mgg <= window_hi[idx])
    return np.where(inside, np.asarray(weight, dtype=np.float64) / generated_weight[idx], 0.0)


@dataclass(frozen=True)
class WindowTable:
    """Candidates arranged for fast window sums.

    ``signal_rows`` / ``background_rows`` index the candidate arrays the table was built from;
    signal weights are efficiency contributions (:func:`efficiency_weights`), background weights
    expected events; background rows are sorted by m_γγ and ``lo``/``hi`` delimit each window.
    """

    n_masses: int
    signal_rows: np.ndarray
    signal_mass_index: np.ndarray
    signal_weight: np.ndarray
    background_rows: np.ndarray
    background_weight: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def build(
        cls,
        mgg: np.ndarray,
        weight: np.ndarray,
        mass_index: np.ndarray,
        window_lo: np.ndarray,
        window_hi: np.ndarray,
    ) -> WindowTable:
        """From candidates: ``mass_index`` ≥ 0 marks signal (weight = efficiency contribution,
        already zero outside its window), −1 background (weight = expected events)."""
        mass_index = np.asarray(mass_index)
        sig = np.flatnonzero(mass_index >= 0)
        bkg = np.flatnonzero(mass_index < 0)
        order = np.argsort(mgg[bkg], kind="stable")
        bkg = bkg[order]
        mgg_sorted = np.asarray(mgg, dtype=np.float64)[bkg]
        return cls(
            n_masses=len(window_lo),
            signal_rows=sig,
            signal_mass_index=mass_index[sig].astype(np.int64),
            signal_weight=np.asarray(weight, dtype=np.float64)[sig],
            background_rows=bkg,
            background_weight=np.asarray(weight, dtype=np.float64)[bkg],
            lo=np.searchsorted(mgg_sorted, window_lo, side="left"),
            hi=np.searchsorted(mgg_sorted, window_hi, side="right"),
        )

    def yields(self, passed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Efficiency and background (events) per mass for a per-candidate pass fraction.

        ``passed`` has one entry (0/1 or a soft weight) per candidate of the original arrays.
        """
        passed = np.asarray(passed, dtype=np.float64)
        eff = np.bincount(
            self.signal_mass_index,
            weights=self.signal_weight * passed[self.signal_rows],
            minlength=self.n_masses,
        )
        csum = np.concatenate(
            [[0.0], np.cumsum(self.background_weight * passed[self.background_rows])]
        )
        return eff, csum[self.hi] - csum[self.lo]

    def scan(self, scores: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Efficiency and background for the selections ``score >= cut`` of every cut.

        ``cuts`` must be increasing; returns two ``(len(cuts), n_masses)`` arrays.
        """
        cuts = np.asarray(cuts, dtype=np.float64)
        n_cuts = len(cuts)
        if np.any(np.diff(cuts) <= 0):
            raise ValueError("cuts must be strictly increasing")
        scores = np.asarray(scores, dtype=np.float64)
        eff = indexed_scan(
            self.signal_mass_index,
            scores[self.signal_rows],
            self.signal_weight,
            cuts,
            self.n_masses,
        )
        k_bkg = np.searchsorted(cuts, scores[self.background_rows], side="right")
        bkg = np.empty((self.n_masses, n_cuts + 1))
        for j in range(self.n_masses):
            sl = slice(self.lo[j], self.hi[j])
            bkg[j] = np.bincount(
                k_bkg[sl], weights=self.background_weight[sl], minlength=n_cuts + 1
            )
        return eff, _passing(bkg).T


def indexed_scan(
    index: np.ndarray, scores: np.ndarray, weight: np.ndarray, cuts: np.ndarray, n_masses: int
) -> np.ndarray:
    """Σ ``weight`` of the rows with ``score >= cut``, per cut (rows) and mass ``index`` (columns).

    Every row carries its own mass index and score: the signal of a scan, or the (candidate,
    hypothesis) rows of a mass-parametrised net. ``cuts`` must be increasing.
    """
    n_cuts = len(cuts)
    # k = number of cuts ≤ score: the row passes cuts 0 .. k-1
    k = np.searchsorted(np.asarray(cuts, np.float64), np.asarray(scores, np.float64), side="right")
    hist = np.bincount(
        np.asarray(index, np.int64) * (n_cuts + 1) + k,
        weights=np.asarray(weight, np.float64),
        minlength=n_masses * (n_cuts + 1),
    ).reshape(n_masses, n_cuts + 1)
    return _passing(hist).T


def _passing(hist: np.ndarray) -> np.ndarray:
    """From counts per number-of-cuts-passed k (last axis, 0..C), the sum passing cut i (k > i)."""
    suffix = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
    return suffix[:, 1:]
