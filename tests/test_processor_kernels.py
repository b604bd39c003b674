"""The compiled kernels of the processor against the numpy expressions they replace: the same
choices (leading three, cuts, track veto) and the same gathered values, on random inputs with
NaNs, ties and empty events."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from alps.config import HistogramConfig
from alps.contract import CUTFLOW, FEATURE_BINNING, MGG, make_histograms
from processors.binning import flow_index, mass_edges
from processors.features import (
    candidate_features,
    event_features,
    momenta_and_masses,
    pair_masses,
    photon_momenta,
    three_photon_features,
)
from processors.filling import ChunkFills, HistogramSums, layouts
from processors.kernels import (
    count_good_tracks,
    gather_pool,
    pick_three,
    pick_three_stacked,
    pool_candidates,
    segment_sum,
    select_for_fit,
    top_candidates,
    variable_bins,
)
from simulation.resolution import TIME_E_FLOOR_GEV, time_resolution


def _energies(rng: np.random.Generator, n: int) -> np.ndarray:
    energy = rng.choice([0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0], size=(n, 5))  # many ties
    energy[rng.random((n, 5)) < 0.3] = np.nan
    return energy


def _numpy_selection(
    energy: np.ndarray, trig: np.ndarray, time: np.ndarray, e_cms: np.ndarray, exactly: bool
) -> tuple[np.ndarray, ...]:
    """The pre-selection of one set of energies as numpy expressions: three candidates above
    0.1 GeV, the stable order of the usable energies, 0.8 < M_3gamma / E_cms < 1.05, the time
    spread below 3 sigma (sigma_t with constant 1 ns, floor 0.5 ns)."""
    usable = np.isfinite(energy) & (energy > 0.1)
    count = usable.sum(axis=1)
    three = (count == 3) if exactly else (count >= 3)
    order = np.argsort(-np.where(usable, energy, -np.inf), axis=1, kind="stable")[:, :3]
    e3 = np.take_along_axis(energy, order, axis=1)
    sin_t, cos_t, sin_p, cos_p = (np.take_along_axis(x, order, axis=1) for x in trig)
    px = (e3 * sin_t * cos_p).sum(axis=1)
    py = (e3 * sin_t * sin_p).sum(axis=1)
    pz = (e3 * cos_t).sum(axis=1)
    ratio = np.sqrt(np.clip(e3.sum(axis=1) ** 2 - (px**2 + py**2 + pz**2), 0, None)) / e_cms
    t3 = np.take_along_axis(time, order, axis=1)
    with np.errstate(invalid="ignore"):
        sigma = time_resolution(e3, 1.0, 0.5)
    spread = np.zeros(len(energy))
    for i, j in ((0, 1), (0, 2), (1, 2)):
        spread = np.maximum(
            spread, np.abs(t3[:, i] - t3[:, j]) / np.hypot(sigma[:, i], sigma[:, j])
        )
    return three, order, three & (ratio > 0.8) & (ratio < 1.05), three & (spread < 3.0)


@pytest.mark.parametrize("exactly", [False, True])
def test_select_for_fit_agrees_with_the_numpy_selection_of_each_set(exactly: bool) -> None:
    """The one-pass selection of several energy sets: per set the events that pass every cut and
    their leading three (a stable sort: many ties, NaNs), and the first set's cuts (cutflow)."""
    rng = np.random.default_rng(7)
    n = 40_000
    nominal = _energies(rng, n)
    scaled = nominal * 1.3  # moves candidates across the threshold and the mass window
    smeared = nominal + rng.normal(0.0, 0.2, nominal.shape)
    theta = rng.uniform(0.3, 2.7, (n, 5))
    phi = rng.uniform(-np.pi, np.pi, (n, 5))
    time = rng.normal(0.0, 4.0, (n, 5))
    e_cms = rng.uniform(2.0, 6.0, n)
    no_track = rng.random(n) < 0.8
    trig = np.stack([np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)])
    sets = np.stack([nominal, scaled, smeared])
    cuts, offsets, rows, order = select_for_fit(
        sets,
        theta,
        phi,
        time,
        e_cms,
        no_track,
        0.1,
        exactly,
        0.8,
        1.05,
        1.0,
        0.5,
        TIME_E_FLOOR_GEV,
        3.0,
    )
    for v, energy in enumerate(sets):
        three, want_order, mass_ok, time_ok = _numpy_selection(energy, trig, time, e_cms, exactly)
        passed = np.flatnonzero(three & mass_ok & time_ok & no_track)
        got = slice(offsets[v], offsets[v + 1])
        np.testing.assert_array_equal(rows[got], passed)
        np.testing.assert_array_equal(order[got], want_order[passed])
        assert 0 < len(passed) < three.sum()
        if v == 0:
            np.testing.assert_array_equal(cuts[0], three)
            np.testing.assert_array_equal(cuts[1], mass_ok)
            np.testing.assert_array_equal(cuts[2], time_ok & mass_ok)  # cumulative
            assert 0 < mass_ok.sum() < three.sum() and 0 < (time_ok & mass_ok).sum() < mass_ok.sum()
    e3 = pick_three_stacked(sets, offsets, rows, order)
    for v, energy in enumerate(sets):
        got = slice(offsets[v], offsets[v + 1])
        np.testing.assert_array_equal(e3[got], pick_three(energy, rows[got], order[got]))


def test_timing_cut_at_its_edge_is_the_cut_as_defined() -> None:
    """#12: select_for_fit decides the timing cut from squared ratios (no hypot) unless a ratio
    lies within 1e-9 of the cut; events whose time differences put the spread on the cut, a few
    ulps either side and 1e-9 either side pass or fail exactly as the cut's own expression."""
    rng = np.random.default_rng(3)
    n = 6000
    energy = np.full((n, 5), np.nan)
    energy[:, :3] = rng.uniform(0.2, 4.0, (n, 3))
    theta = rng.uniform(0.5, 2.5, (n, 5))
    phi = rng.uniform(-np.pi, np.pi, (n, 5))
    sigma = time_resolution(energy[:, :3], 1.0, 0.5)
    order = np.argsort(-energy[:, :3], axis=1, kind="stable")
    s = np.take_along_axis(sigma, order, axis=1)  # the leading three's resolutions
    edge = 3.0 * np.hypot(s[:, 0], s[:, 1])  # t0 - t1 on the cut
    steps = rng.integers(-4, 5, n).astype(float)
    scale = np.where(rng.random(n) < 0.5, 1.0 + steps * np.finfo(float).eps, 1.0 + steps * 1e-9)
    time = np.zeros((n, 5))
    t = np.zeros((n, 3))
    t[:, 1] = -edge * scale  # the leading photon at 0, the second at the edge, the third between
    t[:, 2] = -0.5 * edge * scale
    inverse = np.argsort(order, axis=1)
    time[:, :3] = np.take_along_axis(t, inverse, axis=1)
    cuts, _, rows, _ = select_for_fit(
        energy[None], theta, phi, time, np.ones(n), np.ones(n, bool), 0.1, True, -1.0, np.inf,
        1.0, 0.5, TIME_E_FLOOR_GEV, 3.0,
    )  # fmt: skip
    trig = np.stack([np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)])
    three, _, _, time_ok = _numpy_selection(energy, trig, time, np.ones(n), True)
    assert three.all()
    np.testing.assert_array_equal(cuts[2], time_ok)
    np.testing.assert_array_equal(rows, np.flatnonzero(time_ok))
    assert 0.2 < time_ok.mean() < 0.8  # both sides of the edge


def test_mass_window_at_its_edges_is_the_cut_as_defined() -> None:
    """#12: select_for_fit decides the m3g window from polynomial sines and cosines unless the
    mass lies within a 1e-9 margin of an edge; events whose E_cms puts M_3gamma / E_cms on
    either edge, a few ulps either side and 1e-9 either side, pass or fail exactly as the cut's
    own expression (libm's sines and cosines)."""
    rng = np.random.default_rng(5)
    n = 8000
    energy = np.full((n, 5), np.nan)
    energy[:, :3] = rng.uniform(0.5, 5.0, (n, 3))
    theta = rng.uniform(0.3, 2.8, (n, 5))
    phi = rng.uniform(-np.pi, np.pi, (n, 5))
    trig = np.stack([np.sin(theta), np.cos(theta), np.sin(phi), np.cos(phi)])
    e3 = energy[:, :3]
    px = (e3 * trig[0, :, :3] * trig[3, :, :3]).sum(axis=1)
    py = (e3 * trig[0, :, :3] * trig[2, :, :3]).sum(axis=1)
    pz = (e3 * trig[1, :, :3]).sum(axis=1)
    m3 = np.sqrt(np.clip(e3.sum(axis=1) ** 2 - (px**2 + py**2 + pz**2), 0, None))
    edge = np.where(rng.random(n) < 0.5, 0.8, 1.05)
    steps = rng.integers(-4, 5, n).astype(float)
    scale = np.where(rng.random(n) < 0.5, 1.0 + steps * np.finfo(float).eps, 1.0 + steps * 1e-9)
    e_cms = m3 / (edge * scale)
    time = np.zeros((n, 5))
    cuts, _, rows, _ = select_for_fit(
        energy[None], theta, phi, time, e_cms, np.ones(n, bool), 0.1, True, 0.8, 1.05,
        1.0, 0.5, TIME_E_FLOOR_GEV, 3.0,
    )  # fmt: skip
    three, _, mass_ok, _ = _numpy_selection(energy, trig, time, e_cms, True)
    assert three.all()
    np.testing.assert_array_equal(cuts[1], mass_ok)
    np.testing.assert_array_equal(rows, np.flatnonzero(mass_ok))
    assert 0.2 < mass_ok.mean() < 0.8  # both sides of the edges


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
    rows = np.arange(len(counts))
    result = count_good_tracks(offsets, *cols.values(), 1.0, 3.0, lo, hi, rows)
    np.testing.assert_array_equal(result, expected)
    assert 0 < (result == 0).sum() < len(result)
    # the file's float32 values: the same counts as of their float64 conversion, for any rows
    narrow = {k: v.astype(np.float32) for k, v in cols.items()}
    wide = {k: v.astype(np.float64) for k, v in narrow.items()}
    some = np.sort(rng.choice(len(counts), 3000, replace=False))
    np.testing.assert_array_equal(
        count_good_tracks(offsets, *narrow.values(), 1.0, 3.0, lo, hi, some),
        count_good_tracks(offsets, *wide.values(), 1.0, 3.0, lo, hi, rows)[some],
    )


def test_segment_sum_is_awkward_s_sum_in_the_values_dtype() -> None:
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 9, 20_000)
    values = rng.uniform(0.0, 3.0, int(counts.sum())).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    got = segment_sum(offsets, values)
    want = ak.to_numpy(ak.sum(ak.unflatten(values, counts), axis=1))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_gather_pool_is_a_fill_padded_take_in_float64_and_int64() -> None:
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 8, 3000)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    pool = np.sort(rng.choice(3000, 1000, replace=False))
    index = np.full((1000, 5), -1)
    for r, i in enumerate(pool):
        chosen = rng.permutation(counts[i])[: rng.integers(0, 6)]
        index[r, : len(chosen)] = offsets[i] + chosen
    floats = [rng.normal(0, 10, total).astype(np.float32) for _ in range(7)]
    ints = [rng.integers(-1, 9, total).astype(np.int32) for _ in range(2)]
    got_f, got_i = gather_pool(index, offsets, pool, *floats, *ints)
    valid = index >= 0
    safe = np.where(valid, index, 0)
    for q, (values, fill) in enumerate(zip(floats, (np.nan, 0, 0, 0, 1, 1, 1), strict=True)):
        want = np.where(valid, values[safe].astype(np.float64), fill)
        np.testing.assert_array_equal(got_f[q], want)
    for q, (values, fill) in enumerate(zip(ints, (0, -1), strict=True)):
        np.testing.assert_array_equal(
            got_i[q], np.where(valid, values[safe].astype(np.int64), fill)
        )
    np.testing.assert_array_equal(got_i[2], np.where(valid, index - offsets[pool, None], -1))
    assert got_f.dtype == np.float64 and got_i.dtype == np.int64 and valid.any() and not valid.all()


def test_pool_candidates_equal_the_separate_steps() -> None:
    """#12: the one-pass pool (top candidates, pool, gathering, beams, E_cms) against
    top_candidates, the pool's mask, gather_pool and the numpy beam expressions, to the bit."""
    rng = np.random.default_rng(4)
    n = 5000
    counts = rng.integers(0, 9, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    energy = rng.choice([0.05, 0.095, 0.2, 0.5, 1.0, 3.0], total).astype(np.float32)  # ties
    energy[rng.random(total) < 0.02] = np.nan
    theta = rng.uniform(0.1, 3.0, total).astype(np.float32)
    time = rng.normal(0.0, 150.0, total).astype(np.float32)
    others = [rng.normal(0, 1, total).astype(np.float32) for _ in range(4)]
    region = rng.integers(0, 4, total).astype(np.int32)
    mc_index = rng.integers(-1, 5, total).astype(np.int32)
    trigger = rng.random(n) < 0.9
    beam = [rng.normal(11.0, 0.01, n), rng.normal(0.46, 0.01, n), rng.normal(0, 0.01, n),
            rng.normal(2.9, 0.01, n)]  # fmt: skip
    beam[0][:3] = 0.0  # below the momentum: E_cms clipped to 0
    cuts = (0.09, 0.3, 2.6, 200.0, 5)
    pool, floats, ints, beams, e_cms = pool_candidates(
        offsets, energy, theta, others[0], time, *others[1:], region, mc_index, trigger,
        tuple(beam), *cuts,
    )  # fmt: skip
    index = top_candidates(offsets, energy, theta, time, *cuts)
    want_pool = np.flatnonzero(trigger & (index[:, 2] >= 0))
    np.testing.assert_array_equal(pool, want_pool)
    want_f, want_i = gather_pool(
        index[want_pool], offsets, want_pool, energy, theta, others[0], time, *others[1:], region,
        mc_index,
    )  # fmt: skip
    assert floats.tobytes() == want_f.tobytes() and ints.tobytes() == want_i.tobytes()
    want_beam = np.stack([b[want_pool] for b in beam], axis=1)
    np.testing.assert_array_equal(beams, want_beam)
    want_cms = np.sqrt(
        np.clip(want_beam[:, 0] ** 2 - np.sum(want_beam[:, 1:] ** 2, axis=1), 0.0, None)
    )
    assert e_cms.tobytes() == want_cms.tobytes()
    assert 0 < len(pool) < n and (e_cms == 0).any()


def test_pick_three_equals_take_along_axis() -> None:
    rng = np.random.default_rng(8)
    for values in (rng.normal(size=(500, 5)), rng.integers(-1, 9, size=(500, 5))):
        rows = np.sort(rng.choice(500, 200, replace=False))
        order = np.stack([rng.permutation(5)[:3] for _ in rows])
        expected = np.take_along_axis(values[rows], order, axis=1)
        got = pick_three(values, rows, order)
        assert got.dtype == values.dtype
        np.testing.assert_array_equal(got, expected)


def test_chunk_fills_equal_hist_fill_to_the_last_bit() -> None:
    """The batched direct fills (bin index and bincount into each slice's sums) against
    hist.fill: the same values and variances in every bin, flow bins included (edges, NaN,
    infinities), the same category axes grown in the same order, for every kind of histogram the
    processor fills (variable M_gg axis, regular axes, two regular axes, a fixed category axis);
    category-only histograms get np.sum. Over three chunks merged by coffea's accumulate (the
    sums against the chunks' hist.Hist objects), the first a chunk that could not be read (its
    cutflow only), the others with categories in different orders."""
    from coffea.processor import accumulate

    rng = np.random.default_rng(9)
    edges = (0.0, 0.2, 0.21, 1.0, 3.3, 9.7)
    layout = layouts(make_histograms(edges, None))

    def sample(lo: float, hi: float, n: int = 20_000) -> np.ndarray:
        grid = np.linspace(lo, hi, 41)  # every edge of the regular axes used below
        x = rng.uniform(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo), n)
        return np.concatenate([x, grid, np.nextafter(grid, -np.inf), [np.nan, np.inf, -np.inf]])

    def chunk(datasets: tuple[str, str]) -> tuple[HistogramSums, dict]:
        slow = make_histograms(edges, None)
        fills = ChunkFills(layout)

        def both(name: str, where: dict[str, str], w: np.ndarray, *values: np.ndarray) -> None:
            fills.add(name, where, w, *values)
            axes = [a.name for a in slow[name].axes][len(where) :]
            if axes:
                slow[name].fill(**where, **dict(zip(axes, values, strict=True)), weight=w)
                return
            # category axes only: the processor adds np.sum(w), np.sum(w**2) (as before #12)
            slow[name].fill(**{k: [v] for k, v in where.items()}, weight=[0.0])
            at = tuple(list(a).index(where[a.name]) for a in slow[name].axes)
            view = slow[name].view(flow=True)
            view.value[at] += float(np.sum(w))
            view.variance[at] += float(np.sum(w * w))

        first, second = datasets
        for where in (
            {"dataset": first, "period": "2018", "variation": "nominal", "truth": "unmatched"},
            {"dataset": second, "period": "2019", "variation": "escale_up", "truth": "matched"},
        ):  # a slice is filled once per chunk (a second fill's sum would be added as a whole)
            x = sample(0.0, 9.7)
            both(MGG, where, rng.exponential(0.37, len(x)), x)
        x = sample(-6.0, 6.0)
        both("kinfit_pull", {"dataset": second, "quantity": "theta"}, rng.exponential(1.0, len(x)), x)  # fmt: skip
        x, y = sample(0.0, 30.0), sample(0.0, 1.0)
        both("kinfit_chi2", {"dataset": first}, rng.exponential(1.0, len(x)), x, rng.permutation(y))
        x = sample(-0.2, 0.2)
        both("mass_resolution", {"dataset": "alp", "kind": "fit"}, rng.exponential(1.0, len(x)), x)
        for name, (_, lo, hi) in FEATURE_BINNING.items():
            x = sample(lo, hi)
            where = {"dataset": second, "period": "2018"}
            both(f"feature_{name}", where, rng.exponential(1.0, len(x)), x)
        for cut in ("all", "m3g"):
            w = rng.exponential(1.0, 1000)
            both(CUTFLOW, {"dataset": first, "period": "2018", "cut": cut}, w)
        return fills.flush(), slow

    unread = make_histograms(edges, None)
    chunks = [({"h": HistogramSums([CUTFLOW])}, {CUTFLOW: unread[CUTFLOW]})]
    for datasets in (("gg", "ggg"), ("ggg", "data")):
        sums, slow = chunk(datasets)
        chunks.append(({"h": sums}, slow))
    merged = accumulate(c[0] for c in chunks)["h"].histograms(make_histograms(edges, None))
    want = accumulate(c[1] for c in chunks)
    assert list(merged) == list(want)  # the unread chunk's cutflow first, as its output had it
    for name in want:
        assert [list(a) for a in merged[name].axes] == [list(a) for a in want[name].axes], name
        got, expected = merged[name].view(flow=True), want[name].view(flow=True)
        assert got.value.tobytes() == expected.value.tobytes(), name
        assert got.variance.tobytes() == expected.variance.tobytes(), name
    assert merged[MGG].sum(flow=True).value > 0


def test_three_photon_features_equal_the_numpy_features_to_the_last_bit() -> None:
    """The compiled features against :func:`event_features` and :func:`candidate_features`
    (numpy, the reference): every feature the same to the bit on random three-photon events
    (the compiled pass repeats numpy's order of additions, einsum's included)."""
    rng = np.random.default_rng(12)
    n = 20_000
    energy = rng.uniform(0.1, 6.0, (n, 3))
    theta, phi = rng.uniform(0.3, 2.8, (n, 3)), rng.uniform(-3.2, 3.2, (n, 3))
    p_fit = photon_momenta(energy, theta, phi)
    p_raw = photon_momenta(energy * rng.normal(1.0, 0.02, (n, 3)), theta, phi)
    beam = np.stack(
        [
            rng.normal(11.0, 0.005, n),
            rng.normal(0.4567, 0.001, n),
            np.zeros(n),
            rng.normal(2.99, 0.005, n),
        ],
        axis=1,
    )
    event, candidate = three_photon_features(p_fit, p_raw, beam)
    want = {**event_features(p_fit, beam), **candidate_features(p_fit, p_raw, beam)}
    got = {**event, **candidate}
    assert sorted(got) == sorted(want)
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_variable_bins_equal_searchsorted_on_the_mass_edges() -> None:
    """The table-guided bin search against ``flow_index`` (``np.searchsorted``) on the default
    mass binning: every edge, its neighbours, random values, flows, NaN and infinities."""
    edges = mass_edges(HistogramConfig())
    rng = np.random.default_rng(13)
    x = np.concatenate([
        edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
        rng.uniform(-1.0, edges[-1] + 1.0, 200_000), [np.nan, np.inf, -np.inf],
    ])  # fmt: skip
    for cells in (1, 7, 4096):
        lower = edges[0] + (edges[-1] - edges[0]) / cells * np.arange(cells)
        start = np.clip(np.searchsorted(edges, lower, side="right") - 1, 0, len(edges) - 2)
        np.testing.assert_array_equal(variable_bins(edges, start, x), flow_index(edges, x)[0])


def test_momenta_and_masses_equal_the_numpy_momenta_and_masses() -> None:
    rng = np.random.default_rng(14)
    n = 50_000
    energy = rng.uniform(0.05, 6.0, (n, 3))
    theta, phi = rng.uniform(0.0, np.pi, (n, 3)), rng.uniform(-4.0, 4.0, (n, 3))
    energy[::97, 1] = np.nan
    p, mgg = momenta_and_masses(energy, theta, phi)
    want = photon_momenta(energy, theta, phi)
    np.testing.assert_array_equal(p, want)
    np.testing.assert_array_equal(mgg, pair_masses(want))
