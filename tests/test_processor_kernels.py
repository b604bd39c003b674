"""The compiled kernels of the processor against the numpy expressions they replace: the same
choices (leading three, cuts, track veto) and the same gathered values, on random inputs with
NaNs, ties and empty events."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from alps.contract import MGG, make_histograms
from processors.features import photon_momenta
from processors.filling import add_weighted
from processors.kernels import (
    count_good_tracks,
    gather_candidates,
    leading_three,
    mass_and_timing_cuts,
    pick_three,
)
from simulation.resolution import TIME_E_FLOOR_GEV, time_resolution


def _energies(rng: np.random.Generator, n: int) -> np.ndarray:
    energy = rng.choice([0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0], size=(n, 5))  # many ties
    energy[rng.random((n, 5)) < 0.3] = np.nan
    return energy


@pytest.mark.parametrize("exactly", [False, True])
def test_leading_three_is_the_stable_sort_of_the_usable_energies(exactly: bool) -> None:
    rng = np.random.default_rng(5)
    energy = _energies(rng, 20_000)
    three, order = leading_three(energy, 0.1, exactly)
    usable = np.isfinite(energy) & (energy > 0.1)
    key = np.where(usable, energy, -np.inf)
    expected = np.argsort(-key, axis=1, kind="stable")[:, :3]
    count = usable.sum(axis=1)
    np.testing.assert_array_equal(three, (count == 3) if exactly else (count >= 3))
    np.testing.assert_array_equal(order, expected)
    assert three.any() and not three.all()


def test_mass_and_timing_cuts_agree_with_the_numpy_expressions() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    energy = rng.uniform(0.1, 6.0, (n, 5))
    theta = rng.uniform(0.3, 2.7, (n, 5))
    phi = rng.uniform(-np.pi, np.pi, (n, 5))
    time = rng.normal(0.0, 4.0, (n, 5))
    e_cms = rng.uniform(9.0, 11.0, n)
    three, order = leading_three(energy, 0.1, False)
    rows = np.flatnonzero(three)
    trig = np.stack([np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)])
    mass_ok, time_ok = mass_and_timing_cuts(
        energy, trig, time, order, rows, e_cms, 0.8, 1.05, 1.0, 0.5, TIME_E_FLOOR_GEV, 3.0
    )
    e3 = np.take_along_axis(energy, order, axis=1)
    p3 = photon_momenta(e3, *(np.take_along_axis(x, order, axis=1) for x in (theta, phi)))
    total = p3.sum(axis=1)
    ratio = np.sqrt(np.clip(total[:, 0] ** 2 - np.sum(total[:, 1:] ** 2, axis=1), 0, None)) / e_cms
    t3 = np.take_along_axis(time, order, axis=1)
    sigma = time_resolution(e3, 1.0, 0.5)
    spread = np.zeros(n)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        spread = np.maximum(
            spread, np.abs(t3[:, i] - t3[:, j]) / np.hypot(sigma[:, i], sigma[:, j])
        )
    np.testing.assert_array_equal(mass_ok, ((ratio > 0.8) & (ratio < 1.05))[rows])
    np.testing.assert_array_equal(time_ok, (spread < 3.0)[rows])
    assert 0 < mass_ok.sum() < len(rows) and 0 < time_ok.sum() < len(rows)


def test_count_good_tracks_agrees_with_the_awkward_expression() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, 10_000)
    total = int(counts.sum())
    cols = {
        "px": rng.normal(0, 1, total),
        "py": rng.normal(0, 1, total),
        "pz": rng.normal(0, 2, total),
        "dr": rng.normal(0, 2, total),
        "dz": rng.normal(0, 5, total),
    }
    trk = {k: ak.unflatten(v, counts) for k, v in cols.items()}
    theta = np.arctan2(np.hypot(trk["px"], trk["py"]), trk["pz"])
    lo, hi = np.radians(17.0), np.radians(150.0)
    good = (abs(trk["dr"]) < 1.0) & (abs(trk["dz"]) < 3.0) & (theta > lo) & (theta < hi)
    expected = ak.to_numpy(ak.sum(good, axis=1))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    result = count_good_tracks(offsets, *cols.values(), 1.0, 3.0, lo, hi)
    np.testing.assert_array_equal(result, expected)
    assert 0 < (result == 0).sum() < len(result)


@pytest.mark.parametrize(("dtype", "fill"), [(np.float64, np.nan), (np.int64, -1)])
def test_gather_candidates_is_a_fill_padded_take(dtype: type, fill: float) -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(0, 10, 1000).astype(dtype)
    index = rng.integers(-1, 1000, (300, 5))
    out = gather_candidates(index, values, fill)
    expected = np.where(index >= 0, values[np.where(index >= 0, index, 0)], fill)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)


def test_pick_three_equals_take_along_axis() -> None:
    rng = np.random.default_rng(8)
    for values in (rng.normal(size=(500, 5)), rng.integers(-1, 9, size=(500, 5))):
        rows = np.sort(rng.choice(500, 200, replace=False))
        order = np.stack([rng.permutation(5)[:3] for _ in rows])
        expected = np.take_along_axis(values[rows], order, axis=1)
        got = pick_three(values, rows, order)
        assert got.dtype == values.dtype
        np.testing.assert_array_equal(got, expected)


def test_add_weighted_equals_hist_fill_to_the_last_bit() -> None:
    """The direct M_gg fill (bin index and bincount into the slice) against hist.fill: the same
    values and variances in every bin, flow bins included (edges, NaN, infinities), the same
    category axes grown, into a histogram that holds other slices already."""
    rng = np.random.default_rng(9)
    edges = (0.0, 0.2, 0.21, 1.0, 3.3, 9.7)
    x = np.concatenate([rng.uniform(-1, 11, 50_000), edges, [np.nan, np.inf, -np.inf]])
    w = rng.exponential(0.37, len(x))
    fast, slow = make_histograms(edges, None)[MGG], make_histograms(edges, None)[MGG]
    for h in (fast, slow):
        h.fill(dataset="gg", period="2018", variation="nominal", truth="matched", mgg=[0.5], weight=[2.0])  # fmt: skip
    for where in (
        {"dataset": "gg", "period": "2018", "variation": "nominal", "truth": "unmatched"},
        {"dataset": "ggg", "period": "2019", "variation": "escale_up", "truth": "matched"},
    ):
        add_weighted(fast, where, x, w)
        slow.fill(**where, mgg=x, weight=w)
    assert [list(a) for a in fast.axes[:4]] == [list(a) for a in slow.axes[:4]]
    np.testing.assert_array_equal(fast.view(flow=True).value, slow.view(flow=True).value)
    np.testing.assert_array_equal(fast.view(flow=True).variance, slow.view(flow=True).variance)
