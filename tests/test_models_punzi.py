"""The Punzi figure of merit, its differentiable loss, mass windows and the cut scan."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest
import torch

import models.data
import models.punzi
import models.sample
import models.windows
import models.working_point
from models import (
    Candidates,
    MassPoints,
    WindowTable,
    choose_held_out,
    choose_working_point,
    efficiency_weights,
    mass_windows,
    punzi_loss,
    s_min,
    scan_sigma_min,
    sigma_min,
    sigma_min_torch,
)
from models.evaluate import (
    core_window_table,
    paired_significance,
    per_mass_difference_std,
    std_decomposition,
    strict_share_projection,
)
from models.working_point import scan_cuts

A, B_PUNZI = 5.0, 1.28


@pytest.mark.parametrize(
    "module",
    [models.punzi, models.windows, models.sample, models.data, models.working_point],
)
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0


def test_sigma_min_formula() -> None:
    """σ_min = (b²/2 + a√B + b/2 √(b² + 4a√B + 4B)) / (εL), written out by hand."""
    eff, bkg, lumi = 0.25, 400.0, 445.0
    expected = (B_PUNZI**2 / 2 + A * 20 + B_PUNZI / 2 * np.sqrt(B_PUNZI**2 + 4 * A * 20 + 1600)) / (
        eff * lumi
    )
    assert sigma_min(eff, bkg, lumi) == pytest.approx(expected, rel=1e-14)
    assert s_min(0.0) == pytest.approx(B_PUNZI**2)
    assert np.isinf(sigma_min(0.0, 10.0, 1.0))
    # large B: S_min → (a/2 + b)·√B... to leading order √B (a + b)
    big = 1e10
    assert s_min(big) / np.sqrt(big) == pytest.approx(A + B_PUNZI, rel=1e-3)
    t = sigma_min_torch(torch.tensor([eff]), torch.tensor([bkg]), lumi)
    assert float(t[0]) == pytest.approx(expected, rel=1e-6)


def _toy_inputs(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    masses = np.array([0.5, 1.0, 2.0, 4.0, 6.0])
    lo, hi = mass_windows(masses, 0.006 + 0.008 * masses, 10.0)
    n_sig, n_bkg = 4000, 30000
    sig_mass = rng.integers(0, len(masses), n_sig)
    sig_mgg = masses[sig_mass] + 0.01 * (1 + masses[sig_mass]) * rng.standard_t(3, n_sig)
    gen = np.array([1500.0, 1400.0, 1300.0, 1200.0, 1100.0])
    sig_w = efficiency_weights(sig_mgg, sig_mass, np.ones(n_sig), gen, lo, hi)
    bkg_mgg = rng.uniform(0, 7, n_bkg)
    bkg_w = rng.exponential(2.0, n_bkg)
    scores_s = rng.beta(4, 2, n_sig)
    scores_b = rng.beta(2, 4, n_bkg)
    return {
        "masses": masses,
        "lo": lo,
        "hi": hi,
        "sig_mass": sig_mass,
        "sig_mgg": sig_mgg,
        "sig_w": sig_w,
        "gen": gen,
        "bkg_mgg": bkg_mgg,
        "bkg_w": bkg_w,
        "scores_s": scores_s,
        "scores_b": scores_b,
    }


def _numpy_sigma(d: dict[str, np.ndarray], cut: float, lumi: float) -> np.ndarray:
    """Direct computation: loop over masses, explicit windows and hard cut."""
    out = []
    for j, _ in enumerate(d["masses"]):
        in_sig = (d["sig_mass"] == j) & (d["sig_mgg"] >= d["lo"][j]) & (d["sig_mgg"] <= d["hi"][j])
        eff = np.sum(in_sig & (d["scores_s"] >= cut)) / d["gen"][j]
        in_bkg = (d["bkg_mgg"] >= d["lo"][j]) & (d["bkg_mgg"] <= d["hi"][j])
        bkg = np.sum(d["bkg_w"][in_bkg & (d["scores_b"] >= cut)])
        out.append(sigma_min(eff, bkg, lumi))
    return np.array(out)


def test_punzi_loss_equals_numpy_sigma_min_for_a_steep_cut() -> None:
    d = _toy_inputs()
    cut, lumi = 0.55, 445.0
    # keep scores away from the cut so a steep sigmoid is a hard cut to double precision
    for key in ("scores_s", "scores_b"):
        near = np.abs(d[key] - cut) < 2e-3
        d[key] = np.where(near, d[key] + 4e-3, d[key])
    reference = _numpy_sigma(d, cut, lumi)
    t = {k: torch.as_tensor(v) for k, v in d.items()}
    loss, per_mass = punzi_loss(
        t["scores_s"],
        t["sig_mass"],
        t["sig_w"],
        t["scores_b"],
        t["bkg_mgg"],
        t["bkg_w"],
        t["lo"],
        t["hi"],
        lumi,
        threshold=cut,
        sharpness=1e5,
        a=A,
        b=B_PUNZI,
    )
    np.testing.assert_allclose(per_mass.numpy(), reference, rtol=1e-9)
    assert float(loss) == pytest.approx(reference.mean(), rel=1e-9)


def test_punzi_loss_is_differentiable_and_scales_with_batches() -> None:
    d = _toy_inputs(5)
    t = {k: torch.as_tensor(v) for k, v in d.items()}
    s = t["scores_s"].clone().requires_grad_(True)
    b = t["scores_b"].clone().requires_grad_(True)
    loss, _ = punzi_loss(
        s,
        t["sig_mass"],
        t["sig_w"],
        b,
        t["bkg_mgg"],
        t["bkg_w"],
        t["lo"],
        t["hi"],
        445.0,
        threshold=0.5,
        sharpness=20.0,
    )
    loss.backward()
    assert s.grad is not None and b.grad is not None
    # raising a signal score lowers σ_min, raising a background score in a window raises it
    assert (s.grad[d["sig_w"] > 0] <= 0).all() and (s.grad[d["sig_w"] > 0] < 0).any()
    assert (b.grad >= 0).all() and (b.grad > 0).any()
    # half of the candidates with scale 2 estimate the same sums
    half = {k: v[::2] if len(v) > 10 else v for k, v in t.items()}
    full_loss, _ = punzi_loss(
        t["scores_s"],
        t["sig_mass"],
        t["sig_w"],
        t["scores_b"],
        t["bkg_mgg"],
        t["bkg_w"],
        t["lo"],
        t["hi"],
        445.0,
        threshold=0.5,
        sharpness=20.0,
    )
    half_loss, _ = punzi_loss(
        half["scores_s"],
        half["sig_mass"],
        half["sig_w"],
        half["scores_b"],
        half["bkg_mgg"],
        half["bkg_w"],
        t["lo"],
        t["hi"],
        445.0,
        threshold=0.5,
        sharpness=20.0,
        signal_scale=2.0,
        background_scale=2.0,
    )
    assert float(half_loss) == pytest.approx(float(full_loss), rel=0.05)


def test_punzi_loss_leaves_out_masses_without_signal() -> None:
    d = _toy_inputs()
    keep = d["sig_mass"] != 2
    t = {k: torch.as_tensor(v) for k, v in d.items()}
    mask = torch.tensor([True, True, True, True, False])
    loss, per_mass = punzi_loss(
        t["scores_s"][keep],
        t["sig_mass"][keep],
        t["sig_w"][keep],
        t["scores_b"],
        t["bkg_mgg"],
        t["bkg_w"],
        t["lo"],
        t["hi"],
        445.0,
        threshold=0.5,
        sharpness=1e5,
        mass_mask=mask,
    )
    assert torch.isnan(per_mass[2]) and torch.isnan(per_mass[4])
    assert float(loss) == pytest.approx(float(per_mass[[0, 1, 3]].mean()), rel=1e-12)


def test_window_table_yields_and_scan_match_brute_force() -> None:
    d = _toy_inputs(7)
    mgg = np.concatenate([d["sig_mgg"], d["bkg_mgg"]])
    weight = np.concatenate([d["sig_w"], d["bkg_w"]])
    index = np.concatenate([d["sig_mass"], np.full(len(d["bkg_mgg"]), -1)])
    scores = np.concatenate([d["scores_s"], d["scores_b"]])
    table = WindowTable.build(mgg, weight, index, d["lo"], d["hi"])
    cuts = np.array([0.0, 0.3, 0.55, 0.8])
    scan = scan_sigma_min(table, scores, 445.0, cuts)
    for i, c in enumerate(cuts):
        np.testing.assert_allclose(scan.sigma[i], _numpy_sigma(d, c, 445.0), rtol=1e-12)
        eff, bkg = table.yields(scores >= c)
        np.testing.assert_allclose(eff, scan.efficiency[i], rtol=1e-12)
        np.testing.assert_allclose(bkg, scan.background[i], rtol=1e-12)


def test_working_point_snaps_to_score_edges() -> None:
    d = _toy_inputs(11)
    mgg = np.concatenate([d["sig_mgg"], d["bkg_mgg"]])
    weight = np.concatenate([d["sig_w"], d["bkg_w"]])
    index = np.concatenate([d["sig_mass"], np.full(len(d["bkg_mgg"]), -1)])
    scores = np.concatenate([d["scores_s"], d["scores_b"]])
    table = WindowTable.build(mgg, weight, index, d["lo"], d["hi"])
    edges = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
    scan = scan_sigma_min(table, scores, 445.0, scan_cuts(d["scores_s"], edges))
    wp = choose_working_point(scan, edges)
    assert wp.cut in edges[:-1]
    assert edges[wp.edge_index] == wp.cut
    mean = scan.mean_sigma()
    edge_means = [mean[scan.at(e)] for e in edges[:-1]]
    assert wp.mean_sigma_min_pb == pytest.approx(min(edge_means))
    assert wp.best_mean_sigma_min_pb <= wp.mean_sigma_min_pb
    fixed = choose_working_point(scan, edges, fixed=0.62)
    assert fixed.cut == 0.6 and fixed.fixed_by_config
    # a tolerance picks the tightest edge within it of the best edge, never a worse one outside
    for tol in (0.01, 0.05, 0.2):
        loose = choose_working_point(scan, edges, tolerance=tol)
        within = [e for e, m in zip(edges[:-1], edge_means) if m <= min(edge_means) * (1 + tol)]
        assert loose.plateau == tuple(within)
        assert loose.cut == max(within) >= wp.cut
        assert loose.mean_sigma_min_pb <= min(edge_means) * (1 + tol)
    with pytest.raises(ValueError, match="tolerance"):
        choose_working_point(scan, edges, tolerance=-0.1)


def _toy_pool() -> tuple[dict[str, Any], Candidates, MassPoints, np.ndarray]:
    """The toy's signal and background as one candidate pool, its mass points and scores."""
    d = _toy_inputs(5)
    mgg = np.concatenate([d["sig_mgg"], d["bkg_mgg"]])
    weight = np.concatenate([d["sig_w"], d["bkg_w"]])
    index = np.concatenate([d["sig_mass"], np.full(len(d["bkg_mgg"]), -1)])
    scores = np.concatenate([d["scores_s"], d["scores_b"]])
    n = len(d["masses"])
    names = tuple(f"m{j}" for j in range(n))
    points = MassPoints(d["masses"], d["lo"], d["hi"], np.zeros(n, bool), names)
    cands = Candidates(np.zeros((len(mgg), 1)), ("x",), mgg, weight, index)
    return d, cands, points, scores


def test_core_window_counts_only_inside_the_core() -> None:
    """The fair comparison's table: signal and background inside m ± k σ_m, brute force."""
    d, cands, points, scores = _toy_pool()
    mgg, weight, index = cands.mgg, cands.weight, cands.mass_index
    m = d["masses"]
    n = len(m)
    core = core_window_table(cands, points, 10.0, 2.0)
    half = (d["hi"] - m) * 0.2
    passed = scores >= 0.4
    eff, bkg = core.yields(passed)
    for j in range(n):
        inside = np.abs(mgg - m[j]) <= half[j]
        assert eff[j] == pytest.approx(weight[(index == j) & inside & passed].sum(), rel=1e-12)
        assert bkg[j] == pytest.approx(weight[(index < 0) & inside & passed].sum(), rel=1e-12)
    full = core_window_table(cands, points, 10.0, 10.0)
    np.testing.assert_allclose(
        full.yields(passed), WindowTable.build(mgg, weight, index, d["lo"], d["hi"]).yields(passed)
    )
    with pytest.raises(ValueError, match="core window"):
        core_window_table(cands, points, 10.0, 12.0)
    # the per-mass bootstrap spread of a difference: zero for one selection against itself,
    # and of the size of the σ_min difference's statistical error for two different cuts
    same = per_mass_difference_std(core, passed, passed, 445.0, A, B_PUNZI, replicas=20)
    np.testing.assert_array_equal(same, 0.0)
    other = per_mass_difference_std(core, passed, scores >= 0.6, 445.0, A, B_PUNZI, replicas=50)
    assert np.all(np.isfinite(other)) and np.all(other > 0)
    again = per_mass_difference_std(core, passed, scores >= 0.6, 445.0, A, B_PUNZI, replicas=50)
    np.testing.assert_array_equal(other, again)


def test_std_decomposition_splits_signal_and_background_statistics() -> None:
    """Resampling only the signal (only the background) gives the part of the per-mass spread
    that each sample's statistics cause: the two add in quadrature to the total; a pair of
    selections that differ only in the background has no signal-only spread beyond the common
    efficiency's, and the total equals the default bootstrap (issue #13)."""
    d, cands, points, scores = _toy_pool()
    index = cands.mass_index
    n = len(d["masses"])
    core = core_window_table(cands, points, 10.0, 2.0)
    pa, pb = scores >= 0.4, scores >= 0.6
    ref = np.ones(n)
    parts = std_decomposition(core, pa, pb, ref, 445.0, A, B_PUNZI, replicas=150, seed=3)
    total = per_mass_difference_std(core, pa, pb, 445.0, A, B_PUNZI, replicas=150, seed=3)
    np.testing.assert_array_equal(parts["total"], total)
    assert np.all(parts["signal"] > 0) and np.all(parts["background"] > 0)
    quad = np.hypot(parts["signal"], parts["background"]) / parts["total"]
    assert np.all(np.abs(quad - 1) < 0.25), quad
    # twice the reference σ_min halves every relative figure
    half = std_decomposition(core, pa, pb, 2 * ref, 445.0, A, B_PUNZI, replicas=150, seed=3)
    np.testing.assert_allclose(half["signal"], parts["signal"] / 2)
    # the same signal passes: the signal-only spread is only the common 1/ε factor's, far below
    # the background's
    sig = index >= 0
    pc = np.where(sig, pa, scores >= 0.6)
    same_sig = std_decomposition(core, pa, pc, ref, 445.0, A, B_PUNZI, replicas=60, seed=3)
    assert np.all(same_sig["signal"] < same_sig["background"])
    with pytest.raises(ValueError, match="resample"):
        per_mass_difference_std(core, pa, pb, 445.0, A, B_PUNZI, resample="data")  # type: ignore[arg-type]


def test_strict_share_projection_recovers_a_uniform_advantage() -> None:
    """Noise around one true advantage μ: the observed share is about Φ(μ/σ), the projected
    true spread about 0, and the share rises to 1 without noise (issue #13)."""
    rng = np.random.default_rng(7)
    mu, sd = 0.035, 0.049
    adv = mu + sd * rng.standard_normal(4000)
    out = strict_share_projection(adv, np.full(len(adv), sd), (1.0, 1 / 0.3, float("inf")))
    assert out["centre"] == pytest.approx(mu, abs=0.004)
    assert out["true_spread"] < 0.01
    assert out["share_at_1x"] == pytest.approx(float((adv >= 0).mean()), abs=0.03)
    assert out["share_at_3.33333x"] > out["share_at_1x"]
    assert out["share_at_infx"] > 0.99
    # a true spread as large as the mean: some masses stay worse however many events
    spread = mu + 0.05 * rng.standard_normal(4000) + 0.01 * rng.standard_normal(4000)
    wide = strict_share_projection(spread, np.full(4000, 0.01), (float("inf"),))
    assert wide["true_spread"] == pytest.approx(0.05, rel=0.1)
    assert 0.7 < wide["share_at_infx"] < 0.8  # Φ(0.7) = 0.76
    # signal statistics only: the background part stays, the share rises less
    both = strict_share_projection(adv, np.full(4000, sd), (10.0,))
    only = strict_share_projection(
        adv, np.full(4000, sd), (10.0,), signal_std=np.full(4000, sd / 2)
    )
    assert out["share_at_1x"] < only["share_at_10x"] < both["share_at_10x"]


def test_paired_significance_counts_significant_deficits() -> None:
    """z = difference / bootstrap std per mass; counts beyond ±2 and Stouffer's Σz/√n."""
    diff = np.array([0.3, -0.1, 0.15, -0.5, 0.0, 0.2])
    std = np.array([0.1, 0.1, 0.1, 0.1, 0.0, 0.0])  # z = 3, -1, 1.5, -5, 0, inf
    held = np.array([False, False, False, False, False, True])
    out = paired_significance(diff, std, held)
    assert out["trained_worse_by_2std"] == 1 and out["trained_better_by_2std"] == 1
    assert out["trained"] == pytest.approx(4 / 5)  # within 2 std
    assert out["trained_within_1std"] == pytest.approx(3 / 5)
    assert out["trained_combined_z"] == pytest.approx((3 - 1 + 1.5 - 5 + 0) / np.sqrt(5))
    # a deficit with no spread at all is significant
    assert out["held_out_worse_by_2std"] == 1 and out["held_out"] == 0.0


def test_held_out_masses_have_trained_neighbours() -> None:
    for n, k in [(205, 22), (31, 7), (5, 22), (3, 1), (2, 1), (40, 22)]:
        flags = choose_held_out(n, k)
        assert flags.sum() == min(k, (n - 1) // 2)
        assert not flags[0] and not flags[-1]
        assert not np.any(flags[1:] & flags[:-1])
