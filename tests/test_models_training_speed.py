"""The training speed-ups of issue #13 change no number: in-place activations, multi-tensor Adam,
the parametrised net's (candidate, hypothesis) inputs built once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models.net
from alps.config import TrainingConfig
from models import SelectionSample, train_punzi_net
from models.net import NetSpec, build_net
from models.param import hypothesis_pairs, parametrised_bce_rows, row_hypothesis
from models.testing import toy_selection_sample
from models.train import _adam, _PunziSet


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SelectionSample:
    path = tmp_path_factory.mktemp("skims")
    return toy_selection_sample(path, (0.6, 1.0, 1.4, 1.8), 400, 1500, toy_seed=4, split_seed=2)


@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "elu", "silu", "tanh"])
def test_in_place_activation_gives_the_same_outputs_and_gradients(
    activation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = NetSpec(5, 4, 8, activation)
    fast = build_net(spec, seed=3)
    monkeypatch.setattr(models.net, "_IN_PLACE", frozenset())
    slow = build_net(spec, seed=3)
    assert any(getattr(m, "inplace", False) for m in fast.modules()) == (
        activation not in ("tanh", "elu")
    )
    assert not any(getattr(m, "inplace", False) for m in slow.modules())
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(1))
    outs = []
    for net in (fast, slow):
        out = net(x)
        out.square().sum().backward()
        outs.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.equal(outs[0][0], outs[1][0])
    for ga, gb in zip(outs[0][1], outs[1][1]):
        assert torch.equal(ga, gb)


def test_multi_tensor_adam_makes_the_same_steps() -> None:
    spec = NetSpec(5, 3, 8, "leaky_relu")
    nets = [build_net(spec, seed=5) for _ in range(2)]
    opts = [_adam(nets[0], 1e-2), torch.optim.Adam(nets[1].parameters(), lr=1e-2, foreach=False)]
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(2))
    for _ in range(5):
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            net(x).tanh().sum().backward()
            opt.step()
    for pa, pb in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(pa, pb)


def test_parametrised_pair_inputs_are_the_candidate_features_and_the_hypothesis(
    sample: SelectionSample,
) -> None:
    c, masses = sample.train, sample.masses
    ps = _PunziSet(c, masses, torch.device("cpu"), True, sample.luminosity_pb)
    bkg_all = np.flatnonzero(~c.is_signal)
    pairs = hypothesis_pairs(c.mgg[bkg_all], masses, masses.trained)
    expected = np.concatenate(
        [c.features[bkg_all[pairs.rows]], masses.masses[pairs.mass_index][:, None]], axis=1
    ).astype(np.float32)
    assert ps.n_bkg == len(pairs) > 0
    np.testing.assert_array_equal(ps.x_pair.numpy(), expected)
    old = torch.cat([ps.xb[ps.pair_row], ps.x_pair[:, -1:]], dim=1)
    assert torch.equal(old, ps.x_pair)


def test_history_records_cpu_time_per_epoch(sample: SelectionSample) -> None:
    cfg = TrainingConfig(
        hidden_layers=2, width=8, bce_epochs=2, punzi_epochs=3, bce_batch_size=512,
        punzi_batch_size=2000, held_out_masses=1, parametrised=True,
    )  # fmt: skip
    s = sample.with_features(cfg.features)
    fit = train_punzi_net(
        s.without_held_out(), s.valid, s.masses, s.luminosity_pb, cfg, seed=1, threads=1
    )
    h = fit.history
    assert len(h.bce_cpu_seconds) == 2 and len(h.punzi_cpu_seconds) == 3
    assert all(c > 0 for c in (*h.bce_cpu_seconds, *h.punzi_cpu_seconds))


def test_candidate_hypothesis_is_the_clipped_own_mass_everywhere(sample: SelectionSample) -> None:
    """``training_hypothesis: candidate`` trains every row at the deployed hypothesis (issue #13)."""
    c, masses = sample.train, sample.masses
    lo, hi = masses.masses[masses.trained].min(), masses.masses[masses.trained].max()
    own = np.clip(c.mgg, lo, hi).astype(np.float32)
    ps = _PunziSet(c, masses, torch.device("cpu"), True, sample.luminosity_pb, "candidate")
    bkg_all = np.flatnonzero(~c.is_signal)
    pairs = hypothesis_pairs(c.mgg[bkg_all], masses, masses.trained)
    np.testing.assert_array_equal(ps.x_pair[:, -1].numpy(), own[bkg_all[pairs.rows]])
    sig = np.flatnonzero(c.is_signal & (c.weight > 0))
    sig = sig[masses.trained[c.mass_index[sig]]]
    np.testing.assert_array_equal(ps.xs[:, -1].numpy(), own[sig])
    x, y, _ = parametrised_bce_rows(c, masses, 0.5, "candidate")
    x_w, y_w, _ = parametrised_bce_rows(c, masses, 0.5, "window")
    np.testing.assert_array_equal(y, y_w)
    np.testing.assert_array_equal(x[:, :-1], x_w[:, :-1])
    assert np.all((x[:, -1] >= np.float32(lo)) & (x[:, -1] <= np.float32(hi)))
    assert not np.array_equal(x[:, -1], x_w[:, -1])
    with pytest.raises(ValueError, match="hypothesis mode"):
        row_hypothesis("other", masses.masses, masses.masses, masses)
