"""Training the Punzi net: BCE pre-training, then the Punzi loss (Abudinen et al., EPJC 82 (2022) 121).

1. Pre-training: weighted binary cross-entropy (signal and background equal in total, every
   trained mass equal inside the signal: :func:`models.sample.training_weights`), batch
   ``bce_batch_size``, ``bce_epochs`` epochs.
2. Punzi training: :func:`models.punzi.punzi_loss`, σ_min averaged over the trained masses, batch
   ``punzi_batch_size`` made of the same fraction of the signal and of the background (so
   ``total / batch`` undoes the sampling in every window sum), ``punzi_epochs`` epochs. Only signal
   candidates inside their own window and background inside some window enter this phase.

Both phases use Adam at ``learning_rate`` with a half-cosine decay to 1% over the phase's epochs.
The validation loss (the same Punzi loss on the validation split, trained masses) is recorded
every epoch; with ``early_stopping_patience`` > 0 the Punzi phase stops after that many epochs
without improvement and keeps the best epoch's weights (an optional speed-up: the validation
split is then also used to pick the epoch, a slight optimism in its σ_min).

Runs on ``TrainingConfig.device`` ("auto": CUDA when present). Weight initialisation is seeded
without touching the global RNG and batches come from a seeded ``numpy.random.Generator``, so the
same seed gives the same model on the same device and thread count; on CUDA deterministic
algorithms are requested.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .net import NetSpec, ScoreNet, build_net, resolve_device, state_to_numpy
from .punzi import punzi_loss
from .sample import Candidates, MassPoints, training_weights

__all__ = ["PunziFit", "TrainingHistory", "net_scores", "train_punzi_net"]

_EVAL_BATCH = 262_144


@dataclass(frozen=True)
class TrainingHistory:
    """Loss per epoch (BCE: weighted mean; Punzi: mean σ_min in pb) and seconds per epoch."""

    bce_train: tuple[float, ...] = ()
    bce_valid: tuple[float, ...] = ()
    punzi_train: tuple[float, ...] = ()
    punzi_valid: tuple[float, ...] = ()
    bce_seconds: tuple[float, ...] = ()
    punzi_seconds: tuple[float, ...] = ()
    best_punzi_epoch: int | None = None
    stopped_early: bool = False


@dataclass(frozen=True)
class PunziFit:
    """A trained Punzi net: architecture, weights (numpy), inputs, history, provenance."""

    spec: NetSpec
    state: dict[str, np.ndarray]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    history: TrainingHistory
    seed: int
    device: str
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    n_bce_candidates: int = 0
    n_punzi_candidates: int = 0


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def net_scores(net: ScoreNet, x: np.ndarray | torch.Tensor, batch: int = _EVAL_BATCH) -> np.ndarray:
    """Scores sigmoid(logit) in [0, 1] (float32) for ``x`` (n, k), in batches, no gradient."""
    device = next(net.parameters()).device
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = []
    with torch.inference_mode():
        for i in range(0, len(xt), batch):
            out.append(torch.sigmoid(net(xt[i : i + batch].to(device))).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _normalisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    with np.errstate(invalid="ignore"):
        mean = np.nan_to_num(np.nanmean(x.astype(np.float64), axis=0))
        std = np.nan_to_num(np.nanstd(x.astype(np.float64), axis=0))
    std = np.where(std > 0, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


class _PunziSet:
    """The candidates that enter the Punzi loss, on the device."""

    def __init__(self, c: Candidates, masses: MassPoints, device: torch.device) -> None:
        sig = np.flatnonzero(c.is_signal & (c.weight > 0))
        sig = sig[masses.trained[c.mass_index[sig]]]
        in_any = np.zeros(len(c), dtype=bool)
        bkg_all = np.flatnonzero(~c.is_signal)
        m = c.mgg[bkg_all]
        order = np.argsort(masses.window_lo)
        lo, hi = masses.window_lo[order], np.maximum.accumulate(masses.window_hi[order])
        k = np.searchsorted(lo, m, side="right") - 1
        in_any[bkg_all] = (k >= 0) & (m <= hi[np.clip(k, 0, None)])
        bkg = np.flatnonzero(in_any)

        def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype).to(device)

        self.xs, self.js = t(c.features[sig], torch.float32), t(c.mass_index[sig], torch.int64)
        self.ws = t(c.weight[sig], torch.float64)
        self.xb, self.mb = t(c.features[bkg], torch.float32), t(c.mgg[bkg], torch.float64)
        self.wb = t(c.weight[bkg], torch.float64)
        self.n_sig, self.n_bkg = len(sig), len(bkg)


def train_punzi_net(
    train: Candidates,
    valid: Candidates,
    masses: MassPoints,
    luminosity_pb: float,
    config: Any,
    *,
    seed: int,
    progress: bool = False,
    threads: int | None = None,
) -> PunziFit:
    """Train a Punzi net on ``train`` (held-out masses' signal must already be removed).

    ``config`` is a ``TrainingConfig``; ``valid`` gives the per-epoch validation losses. CPU
    training uses ``threads`` torch threads (default ``config.torch_threads``).
    """
    start = time.perf_counter()
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or config.torch_threads)
    try:
        return _train(train, valid, masses, luminosity_pb, config, seed, device, progress, start)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    train: Candidates,
    valid: Candidates,
    masses: MassPoints,
    luminosity_pb: float,
    config: Any,
    seed: int,
    device: torch.device,
    progress: bool,
    start: float,
) -> PunziFit:
    rng = np.random.default_rng(seed)
    spec = NetSpec(len(train.feature_names), config.hidden_layers, config.width, config.activation)
    net = build_net(spec, seed)
    mean, std = _normalisation(train.features)
    net.set_normalisation(mean, std)
    net.to(device)
    lo = torch.as_tensor(masses.window_lo, dtype=torch.float64, device=device)
    hi = torch.as_tensor(masses.window_hi, dtype=torch.float64, device=device)
    trained = torch.as_tensor(masses.trained, device=device)
    loss_args = {
        "threshold": config.soft_cut_threshold,
        "sharpness": config.soft_cut_sharpness,
        "a": config.punzi_a,
        "b": config.punzi_b,
        "mass_mask": trained,
    }
    hist: dict[str, list[float]] = {k: [] for k in ("bt", "bv", "pt", "pv", "bs", "ps")}
    best_epoch, stopped = None, False

    with _deterministic(device):
        # --- phase 1: weighted BCE -------------------------------------------------------
        xt = torch.as_tensor(train.features, dtype=torch.float32).to(device)
        yt = torch.as_tensor(train.is_signal, dtype=torch.float32).to(device)
        wt = torch.as_tensor(training_weights(train, masses), dtype=torch.float32).to(device)
        xv = torch.as_tensor(valid.features, dtype=torch.float32).to(device)
        yv = torch.as_tensor(valid.is_signal, dtype=torch.float32).to(device)
        wv = torch.as_tensor(training_weights(valid, masses), dtype=torch.float32).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        sched = _cosine(opt, config.bce_epochs)
        n = len(train)
        bar = _bar(config.bce_epochs, "BCE pre-training", progress)
        for _ in range(config.bce_epochs):
            t0 = time.perf_counter()
            net.train()
            total, wsum = 0.0, 0.0
            perm = torch.as_tensor(rng.permutation(n), device=device)
            for i in range(0, n, config.bce_batch_size):
                idx = perm[i : i + config.bce_batch_size]
                w = wt[idx]
                loss_vec = F.binary_cross_entropy_with_logits(
                    net(xt[idx]), yt[idx], reduction="none"
                )
                loss = (w * loss_vec).sum() / torch.clamp(w.sum(), min=1e-12)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * float(w.sum())
                wsum += float(w.sum())
            hist["bt"].append(total / max(wsum, 1e-12))
            hist["bv"].append(_bce(net, xv, yv, wv))
            hist["bs"].append(time.perf_counter() - t0)
            bar.set_postfix(train=f"{hist['bt'][-1]:.4f}", valid=f"{hist['bv'][-1]:.4f}")
            bar.update()
            sched.step()
        bar.close()
        del xt, yt, wt, xv, yv, wv

        # --- phase 2: Punzi loss ------------------------------------------------------------
        ptrain = _PunziSet(train, masses, device)
        pvalid = _PunziSet(valid, masses, device)
        opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        sched = _cosine(opt, config.punzi_epochs)
        n_batches = max(1, math.ceil((ptrain.n_sig + ptrain.n_bkg) / config.punzi_batch_size))
        best_loss, best_state, waited = math.inf, None, 0
        bar = _bar(config.punzi_epochs, "Punzi training", progress)
        for epoch in range(config.punzi_epochs):
            t0 = time.perf_counter()
            net.train()
            sig_chunks = np.array_split(rng.permutation(ptrain.n_sig), n_batches)
            bkg_chunks = np.array_split(rng.permutation(ptrain.n_bkg), n_batches)
            losses = []
            for s_idx, b_idx in zip(sig_chunks, bkg_chunks):
                if len(s_idx) == 0:
                    continue
                si = torch.as_tensor(s_idx, device=device)
                bi = torch.as_tensor(b_idx, device=device)
                loss, _ = punzi_loss(
                    torch.sigmoid(net(ptrain.xs[si])),
                    ptrain.js[si],
                    ptrain.ws[si],
                    torch.sigmoid(net(ptrain.xb[bi])),
                    ptrain.mb[bi],
                    ptrain.wb[bi],
                    lo,
                    hi,
                    luminosity_pb,
                    signal_scale=ptrain.n_sig / len(s_idx),
                    background_scale=ptrain.n_bkg / max(len(b_idx), 1),
                    **loss_args,
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            hist["pt"].append(float(np.mean(losses)) if losses else math.nan)
            hist["pv"].append(_punzi_valid(net, pvalid, lo, hi, luminosity_pb, loss_args))
            hist["ps"].append(time.perf_counter() - t0)
            bar.set_postfix(train=f"{hist['pt'][-1]:.4g}", valid=f"{hist['pv'][-1]:.4g}")
            bar.update()
            sched.step()
            if config.early_stopping_patience > 0:
                if hist["pv"][-1] < best_loss:
                    best_loss, best_state, best_epoch, waited = (
                        hist["pv"][-1],
                        copy.deepcopy(net.state_dict()),
                        epoch,
                        0,
                    )
                else:
                    waited += 1
                    if waited >= config.early_stopping_patience:
                        stopped = True
                        break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)

    net.eval()
    history = TrainingHistory(
        tuple(hist["bt"]),
        tuple(hist["bv"]),
        tuple(hist["pt"]),
        tuple(hist["pv"]),
        tuple(hist["bs"]),
        tuple(hist["ps"]),
        best_epoch,
        stopped,
    )
    return PunziFit(
        spec=spec,
        state=state_to_numpy(net.cpu()),
        feature_names=train.feature_names,
        mean=mean,
        std=std,
        history=history,
        seed=seed,
        device=str(device),
        seconds=time.perf_counter() - start,
        config=config.model_dump(mode="json"),
        n_bce_candidates=len(train),
        n_punzi_candidates=ptrain.n_sig + ptrain.n_bkg,
    )


def _cosine(opt: torch.optim.Optimizer, epochs: int) -> Any:
    """Learning rate falling from its start to 1% along a half cosine over ``epochs``."""
    lr0 = opt.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=0.01 * lr0)


def _bar(total: int, desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def _bce(net: ScoreNet, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
    if len(x) == 0:
        return math.nan
    net.eval()
    with torch.inference_mode():
        total = 0.0
        for i in range(0, len(x), _EVAL_BATCH):
            sl = slice(i, i + _EVAL_BATCH)
            lv = F.binary_cross_entropy_with_logits(net(x[sl]), y[sl], reduction="none")
            total += float((w[sl] * lv).sum())
    return total / max(float(w.sum()), 1e-12)


def _punzi_valid(
    net: ScoreNet,
    data: _PunziSet,
    lo: torch.Tensor,
    hi: torch.Tensor,
    luminosity_pb: float,
    loss_args: dict[str, Any],
) -> float:
    if data.n_sig == 0:
        return math.nan
    net.eval()
    with torch.inference_mode():
        ss = torch.cat(
            [
                torch.sigmoid(net(data.xs[i : i + _EVAL_BATCH]))
                for i in range(0, data.n_sig, _EVAL_BATCH)
            ]
        )
        bs = [
            torch.sigmoid(net(data.xb[i : i + _EVAL_BATCH]))
            for i in range(0, data.n_bkg, _EVAL_BATCH)
        ]
        bt = torch.cat(bs) if bs else torch.zeros(0, device=ss.device)
        loss, _ = punzi_loss(
            ss, data.js, data.ws, bt, data.mb, data.wb, lo, hi, luminosity_pb, **loss_args
        )
    return float(loss)
