"""The mass-parametrised Punzi net: hypothesis pairs, the indexed loss, the combinations of σ_min,
its training, model files and the deployed scorer (hypothesis = the candidate's M_γγ)."""

from __future__ import annotations

import doctest
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import models.param
from alps.config import TrainingConfig
from models import (
    SelectionSample,
    combine_sigma,
    deployed_scores,
    hypothesis_pairs,
    indexed_scan,
    load_scorer,
    mass_windows,
    punzi_loss,
    punzi_loss_indexed,
    save_punzi,
    scan_at_hypothesis,
    scan_sigma_min,
    train_punzi_net,
    with_hypothesis,
)
from models.param import parametrised_bce_rows
from models.sample import MassPoints
from models.testing import toy_selection_sample

FEATURES = TrainingConfig().features
SMALL = TrainingConfig(
    hidden_layers=3,
    width=12,
    bce_epochs=3,
    punzi_epochs=3,
    bce_batch_size=1024,
    punzi_batch_size=4000,
    held_out_masses=1,
    parametrised=True,
)


def test_doctests() -> None:
    assert doctest.testmod(models.param).failed == 0


def _points(masses: np.ndarray) -> MassPoints:
    lo, hi = mass_windows(masses, 0.006 + 0.008 * masses, 10.0)
    return MassPoints(masses, lo, hi, np.zeros(len(masses), bool), tuple(map(str, masses)))


def test_hypothesis_pairs_are_every_window_a_candidate_falls_in() -> None:
    rng = np.random.default_rng(1)
    pts = _points(np.array([0.5, 0.6, 0.7, 2.0, 4.0]))
    mgg = rng.uniform(0, 5, 4000)
    which = np.array([True, True, False, True, True])
    pairs = hypothesis_pairs(mgg, pts, which)
    brute = {
        (i, j)
        for j in np.flatnonzero(which)
        for i in np.flatnonzero((mgg >= pts.window_lo[j]) & (mgg <= pts.window_hi[j]))
    }
    assert set(zip(pairs.rows.tolist(), pairs.mass_index.tolist())) == brute
    assert len(pairs) == len(brute)
    # overlapping windows: some candidates fake two masses
    assert np.bincount(pairs.rows).max() == 2


def test_indexed_loss_of_a_plain_net_equals_the_window_loss() -> None:
    """A net that ignores the hypothesis gives the same σ_min per mass either way."""
    rng = np.random.default_rng(2)
    masses = np.array([0.5, 0.6, 1.0, 3.0])
    pts = _points(masses)
    j_sig = rng.integers(0, 4, 3000)
    w_sig = rng.uniform(0, 1e-3, 3000)
    mgg_b = rng.uniform(0, 4, 20000)
    w_b = rng.exponential(1.0, 20000)
    s_sig, s_bkg = rng.beta(4, 2, 3000), rng.beta(2, 4, 20000)
    pairs = hypothesis_pairs(mgg_b, pts, np.ones(4, bool))
    t = torch.as_tensor
    args = {"threshold": 0.5, "sharpness": 20.0, "signal_scale": 1.5, "background_scale": 2.0}
    for combine in ("mean", "log", "relative"):
        ref = t(np.array([1.0, 2.0, 3.0, 4.0]))
        window, per_w = punzi_loss(
            t(s_sig), t(j_sig), t(w_sig), t(s_bkg), t(mgg_b), t(w_b),
            t(pts.window_lo), t(pts.window_hi), 445.0, combine=combine, reference=ref, **args,
        )  # fmt: skip
        indexed, per_i = punzi_loss_indexed(
            t(s_sig), t(j_sig), t(w_sig), t(s_bkg[pairs.rows]), t(pairs.mass_index),
            t(w_b[pairs.rows]), 4, 445.0, combine=combine, reference=ref, **args,
        )  # fmt: skip
        np.testing.assert_allclose(per_i.numpy(), per_w.numpy(), rtol=1e-12)
        assert float(indexed) == pytest.approx(float(window), rel=1e-12)
    sigma = per_w
    used = torch.tensor([True, True, False, True])
    assert float(combine_sigma(sigma, used, "log")) == pytest.approx(
        float(torch.log(sigma[used]).mean()), rel=1e-12
    )
    with pytest.raises(ValueError, match="reference"):
        combine_sigma(sigma, used, "relative")
    with pytest.raises(ValueError, match="combine"):
        combine_sigma(sigma, used, "median")


def test_indexed_scan_matches_a_loop_over_cuts() -> None:
    rng = np.random.default_rng(3)
    index, scores, weight = rng.integers(0, 5, 500), rng.uniform(0, 1, 500), rng.uniform(0, 1, 500)
    cuts = np.array([0.0, 0.25, 0.5, 0.9])
    got = indexed_scan(index, scores, weight, cuts, 6)
    for i, c in enumerate(cuts):
        ref = np.bincount(index, weights=weight * (scores >= c), minlength=6)
        np.testing.assert_allclose(got[i], ref, rtol=1e-12)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SelectionSample:
    path = tmp_path_factory.mktemp("skims")
    full = toy_selection_sample(
        path, (0.6, 1.2, 1.8, 2.4), 500, 1200, toy_seed=9, split_seed=1, features=FEATURES
    )
    return full


def test_bce_rows_balance_every_trained_hypothesis(sample: SelectionSample) -> None:
    c, pts = sample.without_held_out(), sample.masses
    x, y, w = parametrised_bce_rows(c, pts)
    assert x.shape[1] == len(FEATURES) + 1 and w.mean() == pytest.approx(1.0)
    hyp = x[:, -1]
    for j in np.flatnonzero(pts.trained):
        at = np.isclose(hyp, pts.masses[j])
        assert w[at & (y == 1)].sum() == pytest.approx(w[at & (y == 0)].sum(), rel=1e-5)
    held = np.isclose(hyp[:, None], pts.masses[pts.held_out][None, :]).any(axis=1)
    assert not held.any()
    # a signal share other than one half, per hypothesis (training.bce_signal_fraction)
    x, y, w = parametrised_bce_rows(c, pts, 0.2)
    for j in np.flatnonzero(pts.trained):
        at = np.isclose(x[:, -1], pts.masses[j])
        assert w[at & (y == 1)].sum() == pytest.approx(0.25 * w[at & (y == 0)].sum(), rel=1e-5)
    with pytest.raises(ValueError, match="signal_fraction"):
        parametrised_bce_rows(c, pts, 1.0)


def test_parametrised_net_trains_saves_and_scores_at_the_candidate_mass(
    sample: SelectionSample, tmp_path: Path
) -> None:
    fit = train_punzi_net(
        sample.without_held_out(), sample.valid, sample.masses, sample.luminosity_pb, SMALL, seed=3
    )
    assert fit.parametrised and fit.spec.n_inputs == len(FEATURES) + 1
    assert fit.hypothesis_range == (0.6, 2.4)
    assert np.all(np.isfinite(fit.history.punzi_valid))
    again = train_punzi_net(
        sample.without_held_out(), sample.valid, sample.masses, sample.luminosity_pb, SMALL, seed=3
    )
    for k in fit.state:
        np.testing.assert_array_equal(fit.state[k], again.state[k])

    save_punzi(fit, tmp_path, {"inputs": ["toy"]})
    meta = json.loads((tmp_path / "punzi.json").read_text())
    assert meta["hypothesis_input"]["range_GeV"] == [0.6, 2.4]
    scorer = pickle.loads(pickle.dumps(load_scorer(tmp_path)))
    assert scorer.features == (*FEATURES, "mgg")
    valid = sample.valid
    x = with_hypothesis(valid.features, valid.mgg)
    scores = scorer(x)
    np.testing.assert_allclose(scores, deployed_scores(fit, valid), atol=1e-6)
    # the hypothesis is clipped to the trained range: far outside, the score is the edge's
    low = x.copy()
    low[:, -1] = 0.01
    edge = x.copy()
    edge[:, -1] = 0.6
    np.testing.assert_array_equal(scorer(low), scorer(edge))
    # a column mapping (what the processor hands over) gives the same scores
    names = scorer.features
    np.testing.assert_array_equal(scorer({n: x[:, k] for k, n in enumerate(names)}), scores)

    # at the exact hypothesis, signal sees its own mass: the scan there differs from the deployed
    table = valid.window_table(sample.masses)
    cuts = np.array([0.0, 0.3, 0.5, 0.8])
    deployed = scan_sigma_min(table, scores, sample.luminosity_pb, cuts)
    exact = scan_at_hypothesis(fit, valid, sample.masses, sample.luminosity_pb, cuts)
    # no cut: the same candidates in the same windows
    np.testing.assert_allclose(exact.sigma[0], deployed.sigma[0], rtol=1e-12)
    assert np.all(np.isfinite(exact.sigma[1]))


def test_full_2018_configuration_has_the_seed_grid_and_the_measured_schedule() -> None:
    from importlib import resources

    from alps.config import load_config

    config = load_config(Path(str(resources.files("alps") / "data" / "full-2018.yaml")))
    masses = config.simulation.signal.masses.masses()
    assert len(masses) == 205 and masses[0] == 0.175 and masses[-1] == 10.375
    assert np.allclose(np.diff(masses), 0.05)
    tc = config.training
    # 20 + 50 epochs beat the seed's 200 + 500 on the full grid (issue #13, README)
    assert (tc.held_out_masses, tc.bce_epochs, tc.punzi_epochs) == (22, 20, 50)
    assert (tc.bce_batch_size, tc.punzi_batch_size) == (2048, 20_000)
    assert tc.parametrised and tc.training_hypothesis == "candidate"


def test_working_point_masses_follow_the_search_range() -> None:
    from alps.config import AnalysisConfig
    from models.pipeline import search_mask

    m = np.array([0.175, 0.2, 5.0, 9.575, 9.7, 9.925])  # 9.575: the last of 0.175-9.6 step 0.05
    steps = AnalysisConfig.model_validate({"limits": {"masses": None}})
    assert search_mask(m, steps).tolist() == [False, True, True, True, True, False]
    grid = {"limits": {"masses": {"start": 0.175, "stop": 9.6, "step": 0.05}}}
    listed = AnalysisConfig.model_validate(grid)
    assert search_mask(m, listed).tolist() == [True, True, True, True, False, False]
