"""Training the Punzi net: BCE pre-training, then the Punzi loss (Abudinen et al., EPJC 82 (2022) 121).

1. Pre-training: weighted binary cross-entropy (signal and background equal in total, every
   trained mass equal inside the signal: :func:`models.sample.training_weights`), batch
   ``bce_batch_size``, ``bce_epochs`` epochs.
2. Punzi training: :func:`models.punzi.punzi_loss`, σ_min averaged over the trained masses, batch
   ``punzi_batch_size`` made of the same fraction of the signal and of the background (so
   ``total / batch`` undoes the sampling in every window sum), ``punzi_epochs`` epochs. Only signal
   candidates inside their own window and background inside some window enter this phase.

Both phases use Adam at ``learning_rate`` with a half-cosine decay to 1% over the phase's epochs
(``lr_schedule: cosine``) or, as the KIT reference does, halved whenever the validation loss has
not improved for ``plateau_patience`` epochs, down to 1% (``lr_schedule: plateau``). The
per-mass σ_min are combined into one loss by ``loss_combination`` (:func:`models.punzi.combine_sigma`).
With ``parametrised: true`` the net takes the hypothesis mass as an extra input
(``models/param.py``): BCE rows and Punzi background rows are (candidate, hypothesis) pairs,
the hypothesis input being the window's mass or, with ``training_hypothesis: candidate``, the
candidate's own clipped M_γγ as in deployment (:func:`models.param.row_hypothesis`).
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
from .param import hypothesis_pairs, parametrised_bce_rows, row_hypothesis, with_hypothesis
from .punzi import punzi_loss, punzi_loss_indexed, sigma_min
from .sample import Candidates, MassPoints, training_weights

__all__ = ["PunziFit", "TrainingHistory", "net_scores", "train_punzi_net"]

_EVAL_BATCH = 262_144


@dataclass(frozen=True)
class TrainingHistory:
    """Loss per epoch (BCE: weighted mean; Punzi: mean σ_min in pb), wall seconds per epoch and
    the process's CPU seconds per epoch (every torch thread; ``time.process_time``)."""

    bce_train: tuple[float, ...] = ()
    bce_valid: tuple[float, ...] = ()
    punzi_train: tuple[float, ...] = ()
    punzi_valid: tuple[float, ...] = ()
    bce_seconds: tuple[float, ...] = ()
    punzi_seconds: tuple[float, ...] = ()
    best_punzi_epoch: int | None = None
    stopped_early: bool = False
    bce_cpu_seconds: tuple[float, ...] = ()
    punzi_cpu_seconds: tuple[float, ...] = ()


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
    #: trained mass range (GeV) of a mass-parametrised net (its last input); None for a plain net
    hypothesis_range: tuple[float, float] | None = None

    @property
    def parametrised(self) -> bool:
        return self.hypothesis_range is not None


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
    """The candidates that enter the Punzi loss, on the device.

    Signal: trained masses, positive weight. Background: candidates inside some trained window;
    for a parametrised net, one row per (candidate, trained window) pair (``models/param.py``).
    ``reference`` is σ_min without selection per mass (for ``loss_combination: relative``).
    """

    def __init__(
        self,
        c: Candidates,
        masses: MassPoints,
        device: torch.device,
        parametrised: bool,
        luminosity_pb: float,
        hypothesis: str = "window",
    ) -> None:
        sig = np.flatnonzero(c.is_signal & (c.weight > 0))
        sig = sig[masses.trained[c.mass_index[sig]]]
        bkg_all = np.flatnonzero(~c.is_signal)
        pairs = hypothesis_pairs(c.mgg[bkg_all], masses, masses.trained)
        self.parametrised = parametrised
        self.n_masses = len(masses)
        self.lo = torch.as_tensor(masses.window_lo, dtype=torch.float64, device=device)
        self.hi = torch.as_tensor(masses.window_hi, dtype=torch.float64, device=device)

        def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype).to(device)

        bkg = bkg_all[np.unique(pairs.rows)]  # the background in some trained window
        rows = bkg_all[pairs.rows]  # each (candidate, window) pair's candidate
        xs = c.features[sig]
        if parametrised:
            xs = with_hypothesis(
                xs, row_hypothesis(hypothesis, masses.masses[c.mass_index[sig]], c.mgg[sig], masses)
            )
            local = np.searchsorted(bkg, rows)
            self.pair_row = t(local, torch.int64)
            self.pair_j = t(pairs.mass_index, torch.int64)
            # the net's input of every (candidate, hypothesis) row, built once: a batch is one
            # gather instead of a gather and a concatenation per step (same values)
            self.x_pair = t(
                with_hypothesis(
                    c.features[rows],
                    row_hypothesis(
                        hypothesis, masses.masses[pairs.mass_index], c.mgg[rows], masses
                    ),
                ),
                torch.float32,
            )
            self.n_bkg = len(pairs)
        else:
            self.n_bkg = len(bkg)
        self.xs, self.js = t(xs, torch.float32), t(c.mass_index[sig], torch.int64)
        self.ws = t(c.weight[sig], torch.float64)
        self.xb, self.mb = t(c.features[bkg], torch.float32), t(c.mgg[bkg], torch.float64)
        self.wb = t(c.weight[bkg], torch.float64)
        self.n_sig, self.n_candidates = len(sig), len(sig) + len(bkg)
        eff0 = np.bincount(c.mass_index[sig], weights=c.weight[sig], minlength=len(masses))
        b0 = np.bincount(pairs.mass_index, weights=c.weight[rows], minlength=len(masses))
        ref = sigma_min(eff0, b0, luminosity_pb)
        self.reference = t(np.where(np.isfinite(ref), ref, 1.0), torch.float64)

    def background_scores(self, net: ScoreNet, b_idx: torch.Tensor) -> torch.Tensor:
        """Scores of background rows ``b_idx`` (pairs for a parametrised net)."""
        if not self.parametrised:
            return torch.sigmoid(net(self.xb[b_idx]))
        return torch.sigmoid(net(self.x_pair[b_idx]))

    def loss(
        self,
        signal_scores: torch.Tensor,
        s_idx: torch.Tensor,
        background_scores: torch.Tensor,
        b_idx: torch.Tensor,
        luminosity_pb: float,
        loss_args: dict[str, Any],
    ) -> torch.Tensor:
        """Punzi loss of the rows ``s_idx`` / ``b_idx`` scaled up to the whole set."""
        scales: dict[str, Any] = {
            "signal_scale": self.n_sig / max(len(s_idx), 1),
            "background_scale": self.n_bkg / max(len(b_idx), 1),
            "reference": self.reference,
        }
        if self.parametrised:
            loss, _ = punzi_loss_indexed(
                signal_scores,
                self.js[s_idx],
                self.ws[s_idx],
                background_scores,
                self.pair_j[b_idx],
                self.wb[self.pair_row[b_idx]],
                self.n_masses,
                luminosity_pb,
                **scales,
                **loss_args,
            )
        else:
            loss, _ = punzi_loss(
                signal_scores,
                self.js[s_idx],
                self.ws[s_idx],
                background_scores,
                self.mb[b_idx],
                self.wb[b_idx],
                self.lo,
                self.hi,
                luminosity_pb,
                **scales,
                **loss_args,
            )
        return loss


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


def _bce_rows(
    c: Candidates, masses: MassPoints, parametrised: bool, signal_fraction: float, hypothesis: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if parametrised:
        return parametrised_bce_rows(c, masses, signal_fraction, hypothesis)
    w = training_weights(c, masses, signal_fraction)
    return c.features, c.is_signal.astype(np.float32), w


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
    parametrised = bool(config.parametrised)
    n_inputs = len(train.feature_names) + int(parametrised)
    spec = NetSpec(n_inputs, config.hidden_layers, config.width, config.activation)
    net = build_net(spec, seed)
    mean, std = _normalisation(train.features)
    hypothesis_range = None
    if parametrised:
        m = masses.masses[masses.trained]
        mean, std = np.append(mean, m.mean()), np.append(std, max(float(m.std()), 1e-3))
        hypothesis_range = (float(m.min()), float(m.max()))
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    net.set_normalisation(mean, std)
    net.to(device)
    trained = torch.as_tensor(masses.trained, device=device)
    loss_args = {
        "threshold": config.soft_cut_threshold,
        "sharpness": config.soft_cut_sharpness,
        "a": config.punzi_a,
        "b": config.punzi_b,
        "mass_mask": trained,
        "combine": config.loss_combination,
    }
    hist: dict[str, list[float]] = {k: [] for k in ("bt", "bv", "pt", "pv", "bs", "ps", "bc", "pc")}
    best_epoch, stopped = None, False

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32).to(device)

    with _deterministic(device):
        # --- phase 1: weighted BCE -------------------------------------------------------
        fraction = config.bce_signal_fraction
        hyp = config.training_hypothesis
        xt, yt, wt = (t(a) for a in _bce_rows(train, masses, parametrised, fraction, hyp))
        xv, yv, wv = (t(a) for a in _bce_rows(valid, masses, parametrised, fraction, hyp))
        n_bce = len(xt)
        opt = _adam(net, config.learning_rate)
        sched = _Schedule(opt, config, config.bce_epochs)
        bar = _bar(config.bce_epochs, "BCE pre-training", progress)
        for _ in range(config.bce_epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            net.train()
            total, wsum = 0.0, 0.0
            perm = torch.as_tensor(rng.permutation(n_bce), device=device)
            for i in range(0, n_bce, config.bce_batch_size):
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
            hist["bc"].append(time.process_time() - c0)
            bar.set_postfix(train=f"{hist['bt'][-1]:.4f}", valid=f"{hist['bv'][-1]:.4f}")
            bar.update()
            sched.step(hist["bv"][-1])
        bar.close()
        del xt, yt, wt, xv, yv, wv

        # --- phase 2: Punzi loss ------------------------------------------------------------
        ptrain = _PunziSet(train, masses, device, parametrised, luminosity_pb, hyp)
        pvalid = _PunziSet(valid, masses, device, parametrised, luminosity_pb, hyp)
        opt = _adam(net, config.learning_rate)
        sched = _Schedule(opt, config, config.punzi_epochs)
        n_batches = max(1, math.ceil((ptrain.n_sig + ptrain.n_bkg) / config.punzi_batch_size))
        best_loss, best_state, waited = math.inf, None, 0
        bar = _bar(config.punzi_epochs, "Punzi training", progress)
        for epoch in range(config.punzi_epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            loss_args["sharpness"] = _sharpness(config, epoch)
            net.train()
            sig_chunks = np.array_split(rng.permutation(ptrain.n_sig), n_batches)
            bkg_chunks = np.array_split(rng.permutation(ptrain.n_bkg), n_batches)
            losses = []
            for s_idx, b_idx in zip(sig_chunks, bkg_chunks):
                if len(s_idx) == 0:
                    continue
                si = torch.as_tensor(s_idx, device=device)
                bi = torch.as_tensor(b_idx, device=device)
                loss = ptrain.loss(
                    torch.sigmoid(net(ptrain.xs[si])),
                    si,
                    ptrain.background_scores(net, bi),
                    bi,
                    luminosity_pb,
                    loss_args,
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            hist["pt"].append(float(np.mean(losses)) if losses else math.nan)
            hist["pv"].append(_punzi_valid(net, pvalid, luminosity_pb, loss_args))
            hist["ps"].append(time.perf_counter() - t0)
            hist["pc"].append(time.process_time() - c0)
            bar.set_postfix(train=f"{hist['pt'][-1]:.4g}", valid=f"{hist['pv'][-1]:.4g}")
            bar.update()
            sched.step(hist["pv"][-1])
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
        tuple(hist["bc"]),
        tuple(hist["pc"]),
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
        n_bce_candidates=n_bce,
        n_punzi_candidates=ptrain.n_sig + ptrain.n_bkg,
        hypothesis_range=hypothesis_range,
    )


def _adam(net: ScoreNet, learning_rate: float) -> torch.optim.Optimizer:
    """Adam with torch's multi-tensor ("foreach") update: one call per step for all parameter
    tensors instead of a Python loop over them (the same update; ``benchmarks/selection_training.py``)."""
    return torch.optim.Adam(net.parameters(), lr=learning_rate, foreach=True)


def _sharpness(config: Any, epoch: int) -> float:
    """Soft-cut sharpness of Punzi epoch ``epoch``: ``soft_cut_sharpness``, or with
    ``soft_cut_sharpness_final`` a geometric ramp from it (first epoch) to that (last epoch)."""
    start, final = float(config.soft_cut_sharpness), config.soft_cut_sharpness_final
    if final is None or config.punzi_epochs <= 1:
        return start
    return start * (float(final) / start) ** (epoch / (config.punzi_epochs - 1))


class _Schedule:
    """The learning-rate schedule of one phase (``TrainingConfig.lr_schedule``).

    ``cosine``: from the start value to 1% along a half cosine over the phase's epochs;
    ``plateau``: halved after ``plateau_patience`` epochs without a better validation loss,
    never below 1% of the start value.
    """

    def __init__(self, opt: torch.optim.Optimizer, config: Any, epochs: int) -> None:
        lr0 = opt.param_groups[0]["lr"]
        self.plateau = config.lr_schedule == "plateau"
        if self.plateau:
            self.sched: Any = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, factor=0.5, patience=config.plateau_patience, min_lr=0.01 * lr0
            )
        else:
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=max(epochs, 1), eta_min=0.01 * lr0
            )

    def step(self, valid_loss: float) -> None:
        if not self.plateau:
            self.sched.step()
        elif math.isfinite(valid_loss):
            self.sched.step(valid_loss)


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
    net: ScoreNet, data: _PunziSet, luminosity_pb: float, loss_args: dict[str, Any]
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
            data.background_scores(
                net, torch.arange(i, min(i + _EVAL_BATCH, data.n_bkg), device=ss.device)
            )
            for i in range(0, data.n_bkg, _EVAL_BATCH)
        ]
        bt = torch.cat(bs) if bs else torch.zeros(0, device=ss.device)
        all_s = torch.arange(data.n_sig, device=ss.device)
        all_b = torch.arange(data.n_bkg, device=ss.device)
        loss = data.loss(ss, all_s, bt, all_b, luminosity_pb, loss_args)
    return float(loss)
