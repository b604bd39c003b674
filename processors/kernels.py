"""Numba kernels over flat (jagged) cluster arrays; pure functions, no awkward or coffea."""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = [
    "count_good_tracks",
    "gather_jagged",
    "gather_pool",
    "pick_three",
    "pick_three_stacked",
    "pool_candidates",
    "regular_bins",
    "segment_argmax",
    "segment_sum",
    "select_for_fit",
    "top_candidates",
    "variable_bins",
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
        _event_top(offsets, i, energy, theta, time, e_min, theta_lo, theta_hi, time_window, out[i])
    return out


@nb.njit(cache=True, inline="always")
def _event_top(
    offsets: npt.NDArray[np.int64],
    i: int,
    energy: npt.NDArray[np.floating],
    theta: npt.NDArray[np.floating],
    time: npt.NDArray[np.floating],
    e_min: float,
    theta_lo: float,
    theta_hi: float,
    time_window: float,
    top: npt.NDArray[np.int64],
) -> int:
    """Event ``i``'s row of :func:`top_candidates` into ``top`` (length k, filled with -1 by
    the caller), by insertion into the sorted top-k; the number of slots filled."""
    k = len(top)
    filled = 0
    for j in range(offsets[i], offsets[i + 1]):
        e = energy[j]
        if not (
            e > e_min and theta[j] > theta_lo and theta[j] < theta_hi and abs(time[j]) < time_window
        ):
            continue
        pos = filled if filled < k else k
        while pos > 0 and energy[top[pos - 1]] < e:
            if pos < k:
                top[pos] = top[pos - 1]
            pos -= 1
        if pos < k:
            top[pos] = j
            if filled < k:
                filled += 1
    return filled


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
def count_good_tracks(
    offsets: npt.NDArray[np.int64],
    px: npt.NDArray[np.floating],
    py: npt.NDArray[np.floating],
    pz: npt.NDArray[np.floating],
    dr: npt.NDArray[np.floating],
    dz: npt.NDArray[np.floating],
    dr_max: float,
    dz_max: float,
    theta_lo: float,
    theta_hi: float,
    rows: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """For the events ``rows``: the tracks with |d_r| < dr_max, |d_z| < dz_max and theta_lo <
    theta < theta_hi (theta = atan2(hypot(px, py), pz), radians), computed in float64 whatever
    the values' dtype (the file's float32 values are read without a converted copy)."""
    out = np.zeros(len(rows), dtype=np.int64)
    for r in range(len(rows)):
        i = rows[r]
        for j in range(offsets[i], offsets[i + 1]):
            if not (abs(np.float64(dr[j])) < dr_max and abs(np.float64(dz[j])) < dz_max):
                continue
            theta = np.arctan2(np.hypot(np.float64(px[j]), np.float64(py[j])), np.float64(pz[j]))
            if theta > theta_lo and theta < theta_hi:
                out[r] += 1
    return out


@nb.njit(cache=True, nogil=True)
def segment_sum(offsets: npt.NDArray[np.int64], values: np.ndarray) -> np.ndarray:
    """Sum of each segment ``[offsets[i], offsets[i + 1])`` in the values' dtype, added in
    order (as ``ak.sum(..., axis=1)`` sums a jagged array: a float32 sum stays float32)."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=values.dtype)
    for i in range(n):
        for j in range(offsets[i], offsets[i + 1]):
            out[i] += values[j]
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


#: 1 / n! for n = 0 ... 17: the Taylor coefficients of sine and cosine
_INVERSE_FACTORIALS = tuple(1.0 / float(np.prod(np.arange(1, n + 1))) for n in range(18))
#: |x| up to which :func:`_sin_cos_table` reduces its argument (beyond it, and for a value not
#: finite, the cut decides with libm's sine and cosine)
_SIN_COS_RANGE = 64.0


@nb.njit(cache=True, nogil=True)
def _sin_cos_into(x: np.ndarray, sin_out: np.ndarray, cos_out: np.ndarray) -> None:
    """sin and cos of the flat array ``x`` to within some 1e-14 (not libm's rounding: only for
    decisions with a margin, :func:`_mass_verdict`), in a loop without branches that LLVM
    vectorises: the argument reduced by the nearest multiple q of pi / 2 to |r| <= pi / 4 (plus
    rounding), the Taylor series of sin r to r^17 / 17! and of cos r to r^16 / 16! (truncation
    below 1e-16), then the quadrant q mod 4. An argument beyond :data:`_SIN_COS_RANGE` or not
    finite gives NaN (the cut then decides with libm's)."""
    f = _INVERSE_FACTORIALS
    for i in range(len(x)):
        v = x[i]
        inside = abs(v) <= _SIN_COS_RANGE
        v = v if inside else 0.0
        q = np.floor(v * (2.0 / np.pi) + 0.5)
        r = v - q * (np.pi / 2.0)
        r2 = r * r
        s = f[15] - r2 * f[17]
        s = f[13] - r2 * s
        s = f[11] - r2 * s
        s = f[9] - r2 * s
        s = f[7] - r2 * s
        s = f[5] - r2 * s
        s = f[3] - r2 * s
        s = r * (1.0 - r2 * s)
        c = f[14] - r2 * f[16]
        c = f[12] - r2 * c
        c = f[10] - r2 * c
        c = f[8] - r2 * c
        c = f[6] - r2 * c
        c = f[4] - r2 * c
        c = f[2] - r2 * c
        c = 1.0 - r2 * c
        quadrant = np.int64(q) & 3
        odd = (quadrant & 1) == 1
        sin_v = c if odd else s
        cos_v = s if odd else c
        sin_v = -sin_v if (quadrant & 2) == 2 else sin_v
        cos_v = -cos_v if ((quadrant + 1) & 2) == 2 else cos_v
        sin_out[i] = sin_v if inside else np.nan
        cos_out[i] = cos_v if inside else np.nan


@nb.njit(cache=True, nogil=True)
def _sin_cos_table(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """sin theta, cos theta, sin phi, cos phi of ``(m, k)`` angles as ``(4, m, k)``
    (:func:`_sin_cos_into`)."""
    m, k = theta.shape
    out = np.empty((4, m, k))
    flat = out.reshape(4, m * k)
    _sin_cos_into(np.ascontiguousarray(theta).reshape(m * k), flat[0], flat[1])
    _sin_cos_into(np.ascontiguousarray(phi).reshape(m * k), flat[2], flat[3])
    return out


#: relative margin of :func:`_mass_verdict` on the squared window edges, and its absolute
#: tolerance on M^2 in units of (sum |E|)^2: the rounding of the cut's own mass and of the
#: polynomial one differ by some 1e-15 of these
_MASS_MARGIN = 1e-9
_MASS_TOLERANCE = 1e-10


@nb.njit(cache=True, nogil=True, inline="always")
def _mass_verdict(
    tot_e: float,
    abs_e: float,
    px: float,
    py: float,
    pz: float,
    e_cms: float,
    lo: float,
    hi: float,
) -> int:
    """The m3g cut of :func:`select_for_fit`, lo < M_3gamma / E_cms < hi, from the three
    photons' summed energy ``tot_e`` and momentum (with :func:`_sin_cos`'s directions; ``abs_e``
    their summed |E|, which bounds |p|): 1 inside, 0 outside, each by more than the margins
    (:data:`_MASS_MARGIN` relative on the edges, :data:`_MASS_TOLERANCE` times abs_e^2 on M^2),
    where the verdict is the cut's; -1: undecided (that close to an edge, a window not
    0 < lo < hi < inf, or a value not finite), for the cut as defined to decide."""
    if not (lo > 0.0 and lo < hi and hi < np.inf and e_cms > 0.0 and e_cms < np.inf):
        return -1
    if not (abs_e < np.inf):
        return -1
    m2 = tot_e * tot_e - (px * px + py * py + pz * pz)
    if not (abs(m2) < np.inf):
        return -1
    tol = _MASS_TOLERANCE * (abs_e * abs_e)
    c2 = e_cms * e_cms
    lo2 = lo * lo * c2
    hi2 = hi * hi * c2
    if m2 + tol < lo2 * (1.0 - _MASS_MARGIN) or m2 - tol > hi2 * (1.0 + _MASS_MARGIN):
        return 0
    if m2 - tol > lo2 * (1.0 + _MASS_MARGIN) and m2 + tol < hi2 * (1.0 - _MASS_MARGIN):
        return 1
    return -1


#: relative margin of :func:`_timing_verdict`'s squared ratios: their rounding differs from the
#: cut's own by some 1e-15 relative
_TIMING_MARGIN = 1e-9


@nb.njit(cache=True, nogil=True, inline="always")
def _timing_verdict(
    e0: float,
    e1: float,
    e2: float,
    t0: float,
    t1: float,
    t2: float,
    time_constant: float,
    time_floor: float,
    time_e_floor: float,
    nsigma: float,
) -> int:
    """The timing cut of :func:`select_for_fit` without its six ``hypot`` calls (issue 12: they
    were most of its cost): each pair's squared ratio (t_i - t_j)^2 / (sigma_i^2 + sigma_j^2)
    against nsigma^2. 1: every pair is below it, 0: one is above it, each by more than a relative
    :data:`_TIMING_MARGIN`, where the verdict is the cut's (the ratios as the cut computes them
    differ by rounding only, some 1e-15); -1: undecided (a ratio that close, or a value not
    finite), for the cut as defined to decide."""
    a0 = time_constant / max(e0, time_e_floor)
    a1 = time_constant / max(e1, time_e_floor)
    a2 = time_constant / max(e2, time_e_floor)
    f2 = time_floor * time_floor
    s0 = a0 * a0 + f2
    s1 = a1 * a1 + f2
    s2 = a2 * a2 + f2
    n2 = nsigma * nsigma
    lo = n2 * (1.0 - _TIMING_MARGIN)
    hi = n2 * (1.0 + _TIMING_MARGIN)
    d01 = t0 - t1
    d02 = t0 - t2
    d12 = t1 - t2
    r01 = d01 * d01 / (s0 + s1)
    r02 = d02 * d02 / (s0 + s2)
    r12 = d12 * d12 / (s1 + s2)
    # finite, positive denominators: a NaN or infinity anywhere fails every comparison below
    if not (s0 > 0.0 and s1 > 0.0 and s2 > 0.0 and s0 + s1 + s2 < np.inf and nsigma > 0.0):
        return -1
    if not (r01 < np.inf and r02 < np.inf and r12 < np.inf and hi < np.inf):
        return -1
    if r01 > hi or r02 > hi or r12 > hi:
        return 0
    if r01 < lo and r02 < lo and r12 < lo:
        return 1
    return -1


@nb.njit(cache=True, nogil=True)
def select_for_fit(
    energies: npt.NDArray[np.float64],
    theta: npt.NDArray[np.float64],
    phi: npt.NDArray[np.float64],
    time: npt.NDArray[np.float64],
    e_cms: npt.NDArray[np.float64],
    no_track: npt.NDArray[np.bool_],
    e_min: float,
    exactly: bool,
    m3g_lo: float,
    m3g_hi: float,
    time_constant: float,
    time_floor: float,
    time_e_floor: float,
    nsigma: float,
) -> tuple[
    npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """The pre-selection of every set of candidate energies in one pass (issue 12): for each
    ``energies[v]`` ``(m, k)`` (NaN: no candidate) and each event, whether it has three candidates
    with E > e_min (``exactly``: three and no more) and the columns of its three most energetic
    ones (ties: the lower column first, as a stable sort); whether m3g_lo < M_3gamma / E_cms <
    m3g_hi; whether the largest pairwise time difference of the three photons is below
    ``nsigma`` of its resolution sigma_t(E) = hypot(constant / max(E, e_floor), floor) (ns); and
    the track veto ``no_track``. The angles ``theta``, ``phi`` and times ``time`` ``(m, k)``
    are the same in every set (the variations change energies only): the sines and cosines of
    a candidate are computed once, and only for the candidates that enter a mass.

    Returns ``cuts`` ``(3, m)``: three_photons, m3g and timing of the first set (its cutflow,
    whose rows are cumulative: m3g is False where three_photons fails, timing where m3g fails);
    ``offsets`` ``(V + 1,)``; and ``rows`` ``(F,)``, ``order`` ``(F, 3)``: the events that pass
    every cut (they reach the fit) and the columns of their three photons, set by set (set ``v``
    at ``offsets[v]:offsets[v + 1]``), in event order."""
    n_sets, m, k = energies.shape
    cuts = np.zeros((3, m), dtype=np.bool_)
    found = np.empty((n_sets, m), dtype=np.int64)
    chosen = np.empty((n_sets, m, 3), dtype=np.int64)
    counts = np.zeros(n_sets, dtype=np.int64)
    best = np.empty(3, dtype=np.int64)
    sig = np.empty(3)
    trig = np.empty((k, 4))  # sin theta, cos theta, sin phi, cos phi of the event's candidates
    known = np.zeros(k, dtype=np.bool_)
    approx = _sin_cos_table(theta, phi)  # the same to some 1e-15, every candidate at once
    for i in range(m):
        known[:] = False
        for v in range(n_sets):
            if v > 0 and not no_track[i]:  # only the first set's cutflow needs the other cuts
                continue
            energy = energies[v]
            best[0] = -1
            best[1] = -1
            best[2] = -1
            count = 0
            for j in range(k):  # insertion into the sorted three, no allocation per event
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
            three = (count == 3) if exactly else (count >= 3)
            if not three:
                continue
            # the mass window from polynomial sines and cosines, decided where the mass is
            # farther than a 1e-9 margin from either edge (issue 12: libm's sin and cos were
            # half the cost of the selection); otherwise as the cut is defined
            tot_e = 0.0
            abs_e = 0.0
            px = 0.0
            py = 0.0
            pz = 0.0
            for q in range(3):
                j = best[q]
                e = energy[i, j]
                st = approx[0, i, j]
                tot_e += e
                abs_e += abs(e)
                px += e * st * approx[3, i, j]
                py += e * st * approx[2, i, j]
                pz += e * approx[1, i, j]
            verdict = _mass_verdict(tot_e, abs_e, px, py, pz, e_cms[i], m3g_lo, m3g_hi)
            if verdict >= 0:
                mass_ok = verdict == 1
            else:
                tot_e = 0.0
                px = 0.0
                py = 0.0
                pz = 0.0
                for q in range(3):
                    j = best[q]
                    if not known[j]:
                        trig[j, 0] = np.sin(theta[i, j])
                        trig[j, 1] = np.cos(theta[i, j])
                        trig[j, 2] = np.sin(phi[i, j])
                        trig[j, 3] = np.cos(phi[i, j])
                        known[j] = True
                    e = energy[i, j]
                    st = trig[j, 0]
                    tot_e += e
                    px += e * st * trig[j, 3]
                    py += e * st * trig[j, 2]
                    pz += e * trig[j, 1]
                m3 = np.sqrt(max(tot_e * tot_e - (px * px + py * py + pz * pz), 0.0))
                ratio = m3 / e_cms[i]
                mass_ok = ratio > m3g_lo and ratio < m3g_hi
            time_ok = False
            if mass_ok:  # the cutflow is cumulative: timing counts only after m3g
                t0 = time[i, best[0]]
                t1 = time[i, best[1]]
                t2 = time[i, best[2]]
                verdict = _timing_verdict(
                    energy[i, best[0]], energy[i, best[1]], energy[i, best[2]], t0, t1, t2,
                    time_constant, time_floor, time_e_floor, nsigma,
                )  # fmt: skip
                if verdict >= 0:
                    time_ok = verdict == 1
                else:  # within 1e-9 of the cut (or not finite): as the cut is defined
                    for q in range(3):
                        sig[q] = np.hypot(
                            time_constant / max(energy[i, best[q]], time_e_floor), time_floor
                        )
                    spread = max(
                        abs(t0 - t1) / np.hypot(sig[0], sig[1]),
                        max(
                            abs(t0 - t2) / np.hypot(sig[0], sig[2]),
                            abs(t1 - t2) / np.hypot(sig[1], sig[2]),
                        ),
                    )
                    time_ok = spread < nsigma
            if v == 0:
                cuts[0, i] = True
                cuts[1, i] = mass_ok
                cuts[2, i] = time_ok
            if mass_ok and time_ok and no_track[i]:
                c = counts[v]
                found[v, c] = i
                chosen[v, c, 0] = best[0]
                chosen[v, c, 1] = best[1]
                chosen[v, c, 2] = best[2]
                counts[v] = c + 1
    offsets = np.zeros(n_sets + 1, dtype=np.int64)
    for v in range(n_sets):
        offsets[v + 1] = offsets[v] + counts[v]
    rows = np.empty(offsets[n_sets], dtype=np.int64)
    order = np.empty((offsets[n_sets], 3), dtype=np.int64)
    for v in range(n_sets):
        rows[offsets[v] : offsets[v + 1]] = found[v, : counts[v]]
        order[offsets[v] : offsets[v + 1]] = chosen[v, : counts[v]]
    return cuts, offsets, rows, order


@nb.njit(cache=True, nogil=True)
def pick_three_stacked(
    values: np.ndarray,
    offsets: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    order: npt.NDArray[np.int64],
) -> np.ndarray:
    """:func:`pick_three` of ``(V, m, k)`` stacked candidate arrays: entry ``r`` of set ``v``
    (``offsets[v] <= r < offsets[v + 1]``, as :func:`select_for_fit` returns them) from
    ``values[v]``."""
    out = np.empty((len(rows), 3), dtype=values.dtype)
    for v in range(len(offsets) - 1):
        for r in range(offsets[v], offsets[v + 1]):
            i = rows[r]
            for q in range(3):
                out[r, q] = values[v, i, order[r, q]]
    return out


@nb.njit(cache=True, nogil=True)
def regular_bins(n: int, lo: float, hi: float, x: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """The bin of each ``x`` in the flow view of a regular axis of ``n`` bins from ``lo`` to
    ``hi`` with both flow bins, as boost-histogram bins it: z = (x - lo) / (hi - lo), bin
    floor(z n) for 0 <= z < 1 (after the underflow), the underflow below, the overflow at or
    above 1 and for NaN."""
    delta = hi - lo
    out = np.empty(len(x), dtype=np.intp)
    for i in range(len(x)):
        z = (x[i] - lo) / delta
        if z < 1.0:
            out[i] = int(z * n) + 1 if z >= 0.0 else 0
        else:
            out[i] = n + 1
    return out


@nb.njit(cache=True, nogil=True)
def variable_bins(
    edges: npt.NDArray[np.float64], start: npt.NDArray[np.intp], x: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """The bin of each ``x`` in the flow view of a variable axis with ``edges`` and both flow
    bins: ``np.searchsorted(edges, x, side="right")`` (the underflow below the first edge, the
    overflow at or above the last and for NaN), found from ``start`` (``m`` cells of equal width
    over the edges, each with the last edge at or below its lower end: a guess that is then
    corrected, so the result is exact whatever the rounding of the cell)."""
    n = len(edges) - 1
    lo = edges[0]
    hi = edges[n]
    cells = len(start)
    width = (hi - lo) / cells
    out = np.empty(len(x), dtype=np.intp)
    for r in range(len(x)):
        v = x[r]
        if not (v < hi):  # at or above the last edge, or NaN
            out[r] = n + 1
            continue
        if v < lo:
            out[r] = 0
            continue
        c = min(int((v - lo) / width), cells - 1)
        i = start[c]
        while i > 0 and edges[i] > v:
            i -= 1
        while edges[i + 1] <= v:
            i += 1
        out[r] = i + 1
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _put_candidate(
    floats: npt.NDArray[np.float64],
    ints: npt.NDArray[np.int64],
    row: int,
    j: int,
    c: int,
    first: int,
    energy: np.ndarray,
    theta: np.ndarray,
    phi: np.ndarray,
    time: np.ndarray,
    err_e: np.ndarray,
    err_theta: np.ndarray,
    err_phi: np.ndarray,
    region: np.ndarray,
    mc_index: np.ndarray,
) -> None:
    """Slot ``j`` of pool row ``row`` of :func:`gather_pool`'s ``floats`` and ``ints``: flat
    cluster ``c`` (its event's clusters start at ``first``), or the padding where ``c`` < 0."""
    if c >= 0:
        floats[0, row, j] = energy[c]
        floats[1, row, j] = theta[c]
        floats[2, row, j] = phi[c]
        floats[3, row, j] = time[c]
        floats[4, row, j] = err_e[c]
        floats[5, row, j] = err_theta[c]
        floats[6, row, j] = err_phi[c]
        ints[0, row, j] = region[c]
        ints[1, row, j] = mc_index[c]
        ints[2, row, j] = c - first
    else:
        floats[0, row, j] = np.nan
        floats[1, row, j] = 0.0
        floats[2, row, j] = 0.0
        floats[3, row, j] = 0.0
        floats[4, row, j] = 1.0
        floats[5, row, j] = 1.0
        floats[6, row, j] = 1.0
        ints[0, row, j] = 0
        ints[1, row, j] = -1
        ints[2, row, j] = -1


@nb.njit(cache=True, nogil=True)
def gather_pool(
    index: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    pool: npt.NDArray[np.int64],
    energy: np.ndarray,
    theta: np.ndarray,
    phi: np.ndarray,
    time: np.ndarray,
    err_e: np.ndarray,
    err_theta: np.ndarray,
    err_phi: np.ndarray,
    region: np.ndarray,
    mc_index: np.ndarray,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The candidates ``index`` ``(m, k)`` (flat cluster indices, -1: none) of the events
    ``pool`` in one pass: ``floats`` ``(7, m, k)`` (E, theta, phi, time, errE, errTheta, errPhi
    as float64; E NaN, the errors 1 and the others 0 where there is no candidate) and ``ints``
    ``(3, m, k)`` (region (0), mcIndex (-1) as int64 and the candidate's position in its
    event's list (-1)), each value converted exactly from the file's dtype."""
    m, k = index.shape
    floats = np.empty((7, m, k))
    ints = np.empty((3, m, k), dtype=np.int64)
    for i in range(m):
        first = offsets[pool[i]]
        for j in range(k):
            _put_candidate(
                floats, ints, i, j, index[i, j], first, energy, theta, phi, time, err_e,
                err_theta, err_phi, region, mc_index,
            )  # fmt: skip
    return floats, ints


@nb.njit(cache=True, nogil=True)
def pool_candidates(
    offsets: npt.NDArray[np.int64],
    energy: np.ndarray,
    theta: np.ndarray,
    phi: np.ndarray,
    time: np.ndarray,
    err_e: np.ndarray,
    err_theta: np.ndarray,
    err_phi: np.ndarray,
    region: np.ndarray,
    mc_index: np.ndarray,
    trigger: npt.NDArray[np.bool_],
    beam: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    e_min: float,
    theta_lo: float,
    theta_hi: float,
    time_window: float,
    k: int,
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """:func:`top_candidates`, the pool (the triggered events with at least three of them) and
    :func:`gather_pool` of the pool's candidates in one pass over the chunk's clusters (issue
    12), with the pool's beam four-momenta ``(m, 4)`` (float64, from ``beam`` = E, px, py, pz
    per event) and E_cms = sqrt(max(E^2 - ((px^2 + py^2) + pz^2), 0)) (numpy's order of the same
    expression). Returns ``pool``, ``floats``, ``ints`` (as :func:`gather_pool`), ``beam`` and
    ``e_cms``: the same values as the separate steps."""
    if k < 3:
        raise ValueError("pool_candidates keeps at least the three leading candidates")
    n = len(offsets) - 1
    # the pool's size first (a triggered event with three clusters that pass the cuts): the
    # outputs are allocated at their size, not the chunk's (a chunk-sized block would be a fresh
    # memory map with the workers' fixed mmap threshold, alps.cluster.WORKER_MALLOC)
    size = 0
    for i in range(n):
        if not trigger[i]:
            continue
        passing = 0
        for j in range(offsets[i], offsets[i + 1]):
            e = energy[j]
            if (
                e > e_min
                and theta[j] > theta_lo
                and theta[j] < theta_hi
                and abs(time[j]) < time_window
            ):
                passing += 1
                if passing == 3:
                    size += 1
                    break
    pool = np.empty(size, dtype=np.int64)
    floats = np.empty((7, size, k))
    ints = np.empty((3, size, k), dtype=np.int64)
    beams = np.empty((size, 4))
    e_cms = np.empty(size)
    top = np.empty(k, dtype=np.int64)
    beam_e, beam_px, beam_py, beam_pz = beam
    m = 0
    for i in range(n):
        if not trigger[i]:
            continue
        top[:] = -1
        filled = _event_top(
            offsets, i, energy, theta, time, e_min, theta_lo, theta_hi, time_window, top
        )
        if filled < 3:
            continue
        first = offsets[i]
        for j in range(k):  # as gather_pool
            _put_candidate(
                floats, ints, m, j, top[j], first, energy, theta, phi, time, err_e,
                err_theta, err_phi, region, mc_index,
            )  # fmt: skip
        b0 = np.float64(beam_e[i])
        b1 = np.float64(beam_px[i])
        b2 = np.float64(beam_py[i])
        b3 = np.float64(beam_pz[i])
        beams[m, 0] = b0
        beams[m, 1] = b1
        beams[m, 2] = b2
        beams[m, 3] = b3
        s2 = b0 * b0 - ((b1 * b1 + b2 * b2) + b3 * b3)
        e_cms[m] = np.sqrt(s2 if not (s2 < 0.0) else 0.0)  # np.clip(s2, 0, None)
        pool[m] = i
        m += 1
    return pool, floats, ints, beams, e_cms
