"""Numba kernels over flat (jagged) cluster arrays; pure functions, no awkward or coffea."""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["segment_argmax", "top_candidates"]


@nb.njit(cache=True)
def top_candidates(
    offsets: npt.NDArray[np.int64],
    energy: npt.NDArray[np.floating],
    theta: npt.NDArray[np.floating],
    time: npt.NDArray[np.floating],
    e_min: float,
    theta_lo: float,
    theta_hi: float,
    time_window: float,
    k: int,
) -> npt.NDArray[np.int64]:
    """Flat indices ``(n, k)`` of each event's ``k`` most energetic clusters with E > e_min,
    theta_lo < theta < theta_hi and |time| < time_window, by decreasing energy; -1 pads."""
    n = len(offsets) - 1
    out = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        filled = 0
        for j in range(offsets[i], offsets[i + 1]):
            e = energy[j]
            if not (
                e > e_min
                and theta[j] > theta_lo
                and theta[j] < theta_hi
                and abs(time[j]) < time_window
            ):
                continue
            # insertion into the sorted top-k
            pos = filled if filled < k else k
            while pos > 0 and energy[out[i, pos - 1]] < e:
                if pos < k:
                    out[i, pos] = out[i, pos - 1]
                pos -= 1
            if pos < k:
                out[i, pos] = j
                if filled < k:
                    filled += 1
    return out


@nb.njit(cache=True)
def segment_argmax(
    offsets: npt.NDArray[np.int64], values: npt.NDArray[np.floating]
) -> npt.NDArray[np.int64]:
    """Flat index of the largest value in each segment ``[offsets[i], offsets[i + 1])``; -1 if
    the segment is empty."""
    n = len(offsets) - 1
    out = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        best = -np.inf
        for j in range(offsets[i], offsets[i + 1]):
            if values[j] > best:
                best = values[j]
                out[i] = j
    return out
