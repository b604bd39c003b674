"""Numba kernels over flat (jagged) cluster arrays; pure functions, no awkward or coffea."""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = [
    "count_good_tracks",
    "gather_candidates",
    "gather_jagged",
    "leading_three",
    "mass_and_timing_cuts",
    "pick_three",
    "segment_argmax",
    "top_candidates",
]


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


@nb.njit(cache=True, nogil=True)
def leading_three(
    energy: npt.NDArray[np.float64], e_min: float, exactly: bool
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Per event of ``energy`` ``(m, k)`` (NaN: no candidate): whether it has three candidates
    with E > e_min (``exactly``: three and no more), and the column indices of its three most
    energetic usable ones (ties: the lower index first, as a stable sort; unusable columns
    follow in index order when fewer than three are usable)."""
    m, k = energy.shape
    three = np.zeros(m, dtype=np.bool_)
    order = np.full((m, 3), -1, dtype=np.int64)
    for i in range(m):
        best = order[i]  # a view: no allocation per event (issue 12)
        count = 0
        for j in range(k):
            e = energy[i, j]
            if not (e > e_min):  # NaN fails
                continue
            count += 1
            pos = 3
            while pos > 0 and (best[pos - 1] < 0 or energy[i, best[pos - 1]] < e):
                pos -= 1
            if pos < 3:
                for q in range(2, pos, -1):
                    best[q] = best[q - 1]
                best[pos] = j
        filled = min(count, 3)
        j = 0
        while filled < 3:  # unusable columns after the usable ones, in index order
            e = energy[i, j]
            if not (e > e_min):
                best[filled] = j
                filled += 1
            j += 1
        three[i] = (count == 3) if exactly else (count >= 3)
    return three, order


@nb.njit(cache=True, nogil=True)
def mass_and_timing_cuts(
    energy: npt.NDArray[np.float64],
    trig: npt.NDArray[np.float64],
    time: npt.NDArray[np.float64],
    order: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    e_cms: npt.NDArray[np.float64],
    m3g_lo: float,
    m3g_hi: float,
    time_constant: float,
    time_floor: float,
    time_e_floor: float,
    nsigma: float,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """For the events ``rows`` (which have three candidates, columns ``order``): whether
    m3g_lo < M_3gamma / E_cms < m3g_hi, and whether the largest pairwise time difference of the
    three photons is below ``nsigma`` of its resolution sigma_t(E) = hypot(constant / max(E,
    e_floor), floor) (ns). ``trig`` ``(4, m, k)`` holds sin theta, cos theta, sin phi, cos phi of
    every candidate (the angles do not change with the energy variations, so they are computed
    once per chunk). Only decides the cuts: the features are computed by the numpy code."""
    n = len(rows)
    mass_ok = np.zeros(n, dtype=np.bool_)
    time_ok = np.zeros(n, dtype=np.bool_)
    for r in range(n):
        i = rows[r]
        tot_e = 0.0
        px = 0.0
        py = 0.0
        pz = 0.0
        sig0 = 0.0
        sig1 = 0.0
        sig2 = 0.0
        for q in range(3):
            j = order[i, q]
            e = energy[i, j]
            st = trig[0, i, j]
            tot_e += e
            px += e * st * trig[3, i, j]
            py += e * st * trig[2, i, j]
            pz += e * trig[1, i, j]
            s = np.hypot(time_constant / max(e, time_e_floor), time_floor)
            if q == 0:
                sig0 = s
            elif q == 1:
                sig1 = s
            else:
                sig2 = s
        m3 = np.sqrt(max(tot_e * tot_e - (px * px + py * py + pz * pz), 0.0))
        ratio = m3 / e_cms[i]
        mass_ok[r] = ratio > m3g_lo and ratio < m3g_hi
        t0 = time[i, order[i, 0]]
        t1 = time[i, order[i, 1]]
        t2 = time[i, order[i, 2]]
        spread = max(
            abs(t0 - t1) / np.hypot(sig0, sig1),
            max(abs(t0 - t2) / np.hypot(sig0, sig2), abs(t1 - t2) / np.hypot(sig1, sig2)),
        )
        time_ok[r] = spread < nsigma
    return mass_ok, time_ok


@nb.njit(cache=True, nogil=True)
def gather_candidates(index: npt.NDArray[np.int64], values: np.ndarray, fill: float) -> np.ndarray:
    """``values[index]`` where ``index >= 0``, else ``fill`` (shape of ``index``, dtype of
    ``values``)."""
    n, k = index.shape
    out = np.empty((n, k), dtype=values.dtype)
    for i in range(n):
        for j in range(k):
            idx = index[i, j]
            out[i, j] = values[idx] if idx >= 0 else fill
    return out


@nb.njit(cache=True, nogil=True)
def count_good_tracks(
    offsets: npt.NDArray[np.int64],
    px: npt.NDArray[np.float64],
    py: npt.NDArray[np.float64],
    pz: npt.NDArray[np.float64],
    dr: npt.NDArray[np.float64],
    dz: npt.NDArray[np.float64],
    dr_max: float,
    dz_max: float,
    theta_lo: float,
    theta_hi: float,
) -> npt.NDArray[np.int64]:
    """Per event: the tracks with |d_r| < dr_max, |d_z| < dz_max and theta_lo < theta < theta_hi
    (theta = atan2(hypot(px, py), pz), radians)."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for j in range(offsets[i], offsets[i + 1]):
            if not (abs(dr[j]) < dr_max and abs(dz[j]) < dz_max):
                continue
            theta = np.arctan2(np.hypot(px[j], py[j]), pz[j])
            if theta > theta_lo and theta < theta_hi:
                out[i] += 1
    return out


@nb.njit(cache=True, nogil=True)
def gather_jagged(
    offsets: npt.NDArray[np.int64],
    values: np.ndarray,
    rows: npt.NDArray[np.int64],
    index: npt.NDArray[np.int64],
    fill: float,
) -> np.ndarray:
    """``values`` of a jagged array (``offsets``, flat ``values``) at event ``rows[i]`` and
    position ``index[i, j]`` within it; ``fill`` where the position is outside the event's list
    (shape of ``index``, dtype of ``values``)."""
    n, k = index.shape
    out = np.empty((n, k), dtype=values.dtype)
    for i in range(n):
        start = offsets[rows[i]]
        count = offsets[rows[i] + 1] - start
        for j in range(k):
            idx = index[i, j]
            out[i, j] = values[start + idx] if 0 <= idx < count else fill
    return out


@nb.njit(cache=True, nogil=True)
def pick_three(
    values: np.ndarray, rows: npt.NDArray[np.int64], order: npt.NDArray[np.int64]
) -> np.ndarray:
    """``values[rows[r], order[r, q]]`` as ``(len(rows), 3)``: the three photons of the events
    ``rows`` of a ``(m, k)`` candidate array, in the columns ``order`` (``(len(rows), 3)``), in
    one pass (the same values as ``np.take_along_axis(values[rows], order, axis=1)``)."""
    n = len(rows)
    out = np.empty((n, 3), dtype=values.dtype)
    for r in range(n):
        i = rows[r]
        for q in range(3):
            out[r, q] = values[i, order[r, q]]
    return out
