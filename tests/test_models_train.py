"""Punzi-net training, reproducibility, model files and scorers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from alps.config import TrainingConfig
from models import (
    SelectionSample,
    expand_grid,
    load_scorer,
    net_scores,
    optimise_cuts,
    rank_features,
    save_punzi,
    save_xgboost,
    train_punzi_net,
    train_xgboost,
)
from models.net import state_from_numpy
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
    parametrised=False,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SelectionSample:
    path = tmp_path_factory.mktemp("skims")
    full = toy_selection_sample(path, (0.6, 1.2, 1.8, 2.4), 500, 1200, toy_seed=9, split_seed=1)
    return full


def _fit(sample: SelectionSample, seed: int = 7, config: TrainingConfig = SMALL):
    s = sample.with_features(FEATURES)
    return train_punzi_net(
        s.without_held_out(), s.valid, s.masses, s.luminosity_pb, config, seed=seed
    )


def test_same_seed_gives_the_same_model(sample: SelectionSample) -> None:
    a, b, c = _fit(sample, 7), _fit(sample, 7), _fit(sample, 8)
    for k in a.state:
        np.testing.assert_array_equal(a.state[k], b.state[k])
    assert any(not np.array_equal(a.state[k], c.state[k]) for k in a.state if "body" in k)
    assert a.history.punzi_valid == b.history.punzi_valid
    assert len(a.history.bce_train) == 3 and len(a.history.punzi_train) == 3
    assert np.all(np.isfinite(a.history.punzi_valid))
    assert a.device == "cpu"
    assert torch.get_num_threads() >= 1


def test_training_reduces_the_punzi_loss(sample: SelectionSample) -> None:
    config = SMALL.model_copy(update={"bce_epochs": 0, "punzi_epochs": 8, "learning_rate": 3e-3})
    fit = _fit(sample, 3, config)
    assert fit.history.punzi_train[-1] < fit.history.punzi_train[0]


def test_early_stopping_keeps_the_best_epoch(sample: SelectionSample) -> None:
    config = SMALL.model_copy(update={"punzi_epochs": 40, "early_stopping_patience": 2})
    fit = _fit(sample, 5, config)
    h = fit.history
    assert h.best_punzi_epoch is not None
    assert h.stopped_early == (len(h.punzi_valid) < 40)
    assert h.punzi_valid[h.best_punzi_epoch] == min(h.punzi_valid)


def test_model_files_round_trip_and_scorers_pickle(sample: SelectionSample, tmp_path: Path) -> None:
    fit = _fit(sample)
    pt, meta_path = save_punzi(fit, tmp_path, {"inputs": ["toy"]})
    raw = torch.load(pt, weights_only=True)
    assert set(raw) == set(fit.state)
    meta = json.loads(meta_path.read_text())
    assert meta["features"] == list(FEATURES)
    assert meta["architecture"] == {
        "n_inputs": 9,
        "hidden_layers": 3,
        "width": 12,
        "activation": "leaky_relu",
    }
    assert len(meta["normalisation"]["mean"]) == 9 and meta["provenance"] == {"inputs": ["toy"]}

    s = sample.with_features(FEATURES)
    x = s.valid.features[:5000]
    reference = net_scores(state_from_numpy(fit.spec, fit.state), x)
    scorer = load_scorer(tmp_path)
    assert scorer.features == FEATURES
    threads = torch.get_num_threads()
    scores = scorer(x)
    assert torch.get_num_threads() == threads
    assert scores.dtype == np.float32 and scores.shape == (len(x),)
    assert np.all((scores >= 0) & (scores < 1))
    np.testing.assert_allclose(scores, reference, atol=1e-6)
    as_dict = {name: x[:, k].astype(np.float64) for k, name in enumerate(FEATURES)}
    np.testing.assert_array_equal(scorer(as_dict), scores)
    clone = pickle.loads(pickle.dumps(scorer))
    np.testing.assert_array_equal(clone(x), scores)
    with pytest.raises(KeyError, match="E_low"):
        scorer({k: v for k, v in as_dict.items() if k != "E_low"})

    booster = train_xgboost(s.without_held_out(), s.masses, rounds=20, depth=3, seed=1)
    save_xgboost(booster, tmp_path / "xgboost.json", FEATURES, {"inputs": ["toy"]})
    xs = load_scorer(tmp_path, "xgboost")
    np.testing.assert_allclose(xs(x), booster.inplace_predict(x), atol=1e-6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(xs))(as_dict), xs(x))

    pt.write_bytes(pt.read_bytes()[:-8] + b"tampered")
    with pytest.raises(ValueError, match="checksum"):
        load_scorer(tmp_path)


def test_ranking_and_cut_based_selection(sample: SelectionSample) -> None:
    train = sample.without_held_out()
    ranking = rank_features(train, sample.valid, sample.masses, rounds=30, depth=3, seed=1)
    names = [f.name for f in ranking.features]
    assert sorted(names) == sorted(sample.train.feature_names)
    assert "mgg" not in names and "mgg_raw" not in names and "weight" not in names
    assert [f.rank for f in ranking.features] == list(range(1, len(names) + 1))
    assert 0.5 < ranking.auc <= 1.0
    assert sum(f.gain for f in ranking.features) == pytest.approx(1.0)
    perm = [f.permutation for f in ranking.features]
    assert perm == sorted(perm, reverse=True)

    s = sample.with_features(FEATURES)
    cuts = optimise_cuts(s.without_held_out(), s.masses, s.luminosity_pb, n_thresholds=8)
    passed = cuts.passes(s.valid.features)
    assert 0 < passed.mean() < 1
    table = s.without_held_out().window_table(s.masses)
    from models import sigma_min

    eff, bkg = table.yields(np.ones(len(s.without_held_out())))
    no_cut = np.mean(sigma_min(eff, bkg, s.luminosity_pb)[s.masses.trained])
    assert cuts.train_mean_sigma_min_pb < no_cut


def test_grid_expansion_validates_names_and_values() -> None:
    base = TrainingConfig()
    points = expand_grid(base, {"hidden_layers": (2, 4), "activation": ("relu", "tanh")})
    assert len(points) == 4
    assert {(c.hidden_layers, c.activation) for _, c in points} == {
        (2, "relu"),
        (2, "tanh"),
        (4, "relu"),
        (4, "tanh"),
    }
    assert all(c.grid == {} for _, c in points)
    with pytest.raises(ValueError, match=r"training\.grid\.depth"):
        expand_grid(base, {"depth": (2,)})
    with pytest.raises(ValueError, match="hidden_layers"):
        expand_grid(base, {"hidden_layers": (0,)})


def test_soft_cut_sharpness_ramps_geometrically_over_the_punzi_epochs() -> None:
    from models.train import _sharpness

    flat = TrainingConfig(punzi_epochs=5, soft_cut_sharpness=20.0)
    assert [_sharpness(flat, e) for e in range(5)] == [20.0] * 5
    ramp = TrainingConfig(punzi_epochs=5, soft_cut_sharpness=5.0, soft_cut_sharpness_final=80.0)
    got = [_sharpness(ramp, e) for e in range(5)]
    np.testing.assert_allclose(got, [5.0, 10.0, 20.0, 40.0, 80.0])
