"""Benchmark of the Punzi net's training cost on a real sample, and the projected full schedule.

Trains the deployed net (``training`` section of ``--config``) for a few epochs of each phase with
the current code and with the previous implementation in the same run (baseline: activations not
in place, Adam's per-tensor loop, the parametrised net's (candidate, hypothesis) inputs gathered and
concatenated per batch; the weights come out bit-identical, ``tests/test_models_training_speed.py``),
and prints ``name: value unit`` lines:

* ``<code>_t<threads>_bce_epoch_cpu`` / ``_punzi_epoch_cpu``: CPU seconds of one epoch (median;
  ``time.process_time`` of the process, every torch thread), and per million rows;
* ``<code>_t<threads>_setup_cpu``: CPU seconds outside the epochs (rows, normalisation, sets);
* ``current_over_baseline_<phase>_t<threads>``: the ratio of the two codes' epoch CPU;
* ``projected_training_cpu_t<threads>``: setup + ``bce_epochs`` × BCE + ``punzi_epochs`` × Punzi
  epoch CPU of the configured schedule, i.e. the wall time on that many idle cores when the
  threads scale perfectly (CPU time is what a loaded machine still measures fairly);
* ``<code>_t2_wall_over_cpu``: wall / CPU of the two-thread epochs (0.5 if two threads were
  perfectly parallel; meaningful only on an idle machine).

Run: ``python -P benchmarks/selection_training.py --skims DIR --config YAML [--epochs 3]
[--threads 1 2]``; ``--quick`` uses a toy sample (under a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import models.net
import models.train
from alps.config import AnalysisConfig, load_config
from models.pipeline import load_training_sample
from models.train import train_punzi_net


@contextlib.contextmanager
def baseline_code() -> Iterator[None]:
    """The training code before the speed-up (same results, more work per step)."""
    in_place, adam = models.net._IN_PLACE, models.train._adam
    scores = models.train._PunziSet.background_scores

    def old_scores(self: Any, net: Any, b_idx: torch.Tensor) -> torch.Tensor:
        if not self.parametrised:
            return torch.sigmoid(net(self.xb[b_idx]))
        x = torch.cat([self.xb[self.pair_row[b_idx]], self.x_pair[b_idx, -1:]], dim=1)
        return torch.sigmoid(net(x))

    models.net._IN_PLACE = frozenset()
    models.train._adam = lambda net, lr: torch.optim.Adam(  # type: ignore[assignment]
        net.parameters(), lr=lr, foreach=False
    )
    models.train._PunziSet.background_scores = old_scores  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.net._IN_PLACE = in_place
        models.train._adam = adam
        models.train._PunziSet.background_scores = scores  # type: ignore[method-assign]


def measure(sample: Any, tc: Any, epochs: int, threads: int, seed: int) -> dict[str, float]:
    """CPU (and wall) seconds of ``epochs`` epochs of each phase; medians per epoch."""
    cfg = tc.model_copy(update={"bce_epochs": epochs, "punzi_epochs": epochs})
    train = sample.without_held_out()
    c0 = time.process_time()
    fit = train_punzi_net(
        train, sample.valid, sample.masses, sample.luminosity_pb, cfg, seed=seed, threads=threads
    )
    cpu = time.process_time() - c0
    h = fit.history
    epoch_cpu = sum(h.bce_cpu_seconds) + sum(h.punzi_cpu_seconds)
    return {
        "bce_cpu": float(np.median(h.bce_cpu_seconds)),
        "punzi_cpu": float(np.median(h.punzi_cpu_seconds)),
        "bce_wall": float(np.median(h.bce_seconds)),
        "punzi_wall": float(np.median(h.punzi_seconds)),
        "setup_cpu": cpu - epoch_cpu,
        "bce_rows": float(fit.n_bce_candidates),
        "punzi_rows": float(fit.n_punzi_candidates),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skims", type=Path, default=None, help="the processor's skim directory")
    parser.add_argument("--config", type=Path, default=None, help="analysis YAML (its schedule)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each phase timed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads")
    parser.add_argument("--quick", action="store_true", help="toy sample, 2 epochs, one thread")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    config = load_config(args.config)
    tc = config.training
    with tempfile.TemporaryDirectory() as tmp:
        skims = args.skims
        if args.quick or skims is None:
            from models.testing import write_toy_skims

            skims = write_toy_skims(Path(tmp), np.round(np.arange(0.3, 3.1, 0.1), 3), 1500, 20000)
            config = AnalysisConfig.model_validate(
                {"training": {"held_out_masses": 3, "parametrised": True}}
            )
            tc = config.training
            args.epochs, args.threads = 2, [1]
        sample = load_training_sample(skims, config, features=list(tc.features))
    # warm-up (torch's first calls, allocator)
    measure(sample, tc, 1, 1, int(config.seed))
    for threads in args.threads:
        res = {}
        for code in ("baseline", "current"):
            ctx = baseline_code() if code == "baseline" else contextlib.nullcontext()
            with ctx:
                r = measure(sample, tc, args.epochs, threads, int(config.seed))
            res[code] = r
            p = f"{code}_t{threads}"
            print(f"{p}_bce_epoch_cpu: {r['bce_cpu']:.3f} s ({r['bce_rows']:.0f} rows)")
            print(f"{p}_punzi_epoch_cpu: {r['punzi_cpu']:.3f} s ({r['punzi_rows']:.0f} rows)")
            print(f"{p}_bce_epoch_cpu_per_million: {r['bce_cpu'] / r['bce_rows'] * 1e6:.3f} s")
            print(
                f"{p}_punzi_epoch_cpu_per_million: {r['punzi_cpu'] / r['punzi_rows'] * 1e6:.3f} s"
            )
            print(f"{p}_setup_cpu: {r['setup_cpu']:.2f} s")
            if threads > 1:
                ratio = (r["bce_wall"] + r["punzi_wall"]) / (r["bce_cpu"] + r["punzi_cpu"])
                print(f"{p}_wall_over_cpu: {ratio:.3f}")
        for phase in ("bce", "punzi"):
            ratio = res["current"][f"{phase}_cpu"] / res["baseline"][f"{phase}_cpu"]
            print(f"current_over_baseline_{phase}_t{threads}: {ratio:.3f}")
        cur = res["current"]
        total = (
            cur["setup_cpu"] + tc.bce_epochs * cur["bce_cpu"] + tc.punzi_epochs * cur["punzi_cpu"]
        )
        print(
            f"projected_training_cpu_t{threads}: {total:.0f} s "
            f"({tc.bce_epochs} BCE + {tc.punzi_epochs} Punzi epochs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
