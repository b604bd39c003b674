"""Benchmark of the selection stage: Punzi-net training time and scoring rate.

Prints one ``name: value unit`` line per figure:

* ``skim_read_rate``: candidates read from parquet skims per second (``load_selection_sample``);
* ``bce_epoch_time_per_million`` / ``punzi_epoch_time_per_million``: seconds per training epoch
  per million candidates entering that phase (median epoch, the first one excluded), with the
  seed architecture (10 × 30 LeakyReLU) and batch sizes (2048 / 20 000), on one torch thread
  (``TrainingConfig.torch_threads``) or the GPU when ``--device cuda``;
* ``punzi_over_bce_epoch_ratio``: the cost of the Punzi loss relative to plain BCE, same run;
* ``punzi_inference_rate_per_core`` and ``xgboost_inference_rate_per_core``: candidates scored
  per second on one CPU thread by the scorers the processor's workers use, and their ratio.

Run alone: ``python -P benchmarks/selection.py [--quick] [--device cpu|cuda|auto]
[--parametrised]`` (the mass-parametrised net instead of the plain one); ``--quick`` takes well
under a minute on two cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from alps.config import MassResolution, TrainingConfig
from models import (
    Scorer,
    XGBoostScorer,
    load_selection_sample,
    train_punzi_net,
    train_xgboost,
    with_hypothesis,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sample, few epochs (< 1 min)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument(
        "--parametrised", action="store_true", help="the mass-parametrised net (default: plain)"
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    from models.testing import write_toy_skims

    if args.quick:
        masses, events, background, epochs = np.arange(0.5, 8.6, 1.0), 1500, 12_000, 3
    else:
        masses, events, background, epochs = np.arange(0.3, 9.4, 0.3), 4000, 60_000, 6
    config = TrainingConfig(
        bce_epochs=epochs,
        punzi_epochs=epochs,
        held_out_masses=0,
        device=args.device,
        parametrised=args.parametrised,
    )

    with tempfile.TemporaryDirectory() as tmp:
        write_toy_skims(Path(tmp), np.round(masses, 3), events, background, seed=1)
        t0 = time.perf_counter()
        sample = load_selection_sample(
            Path(tmp),
            window_nsigma=config.window_nsigma,
            resolution=MassResolution(),
            held_out_masses=0,
            max_background_candidates=config.max_background_candidates,
            validation_fraction=config.validation_fraction,
            seed=1,
            features=config.features,
        )
        read_s = time.perf_counter() - t0
    n_read = len(sample.train) + len(sample.valid)
    print(f"skim_read_rate: {n_read / read_s:.4g} candidates/s")

    fit = train_punzi_net(
        sample.train, sample.valid, sample.masses, sample.luminosity_pb, config, seed=1
    )
    h = fit.history
    bce = float(np.median(h.bce_seconds[1:] or h.bce_seconds))
    punzi = float(np.median(h.punzi_seconds[1:] or h.punzi_seconds))
    print(f"# training on {fit.device}, torch_threads {config.torch_threads}", file=sys.stderr)
    print(f"bce_epoch_time_per_million: {bce / fit.n_bce_candidates * 1e6:.4g} s")
    print(f"punzi_epoch_time_per_million: {punzi / fit.n_punzi_candidates * 1e6:.4g} s")
    print(
        f"punzi_over_bce_epoch_ratio: "
        f"{(punzi / fit.n_punzi_candidates) / (bce / fit.n_bce_candidates):.3g} x"
    )

    x = np.ascontiguousarray(np.tile(sample.valid.features, (4 if args.quick else 10, 1)))
    names = fit.feature_names
    if fit.hypothesis_range is not None:  # the hypothesis is the candidate's M_gg (last column)
        mgg = np.tile(sample.valid.mgg, 4 if args.quick else 10)
        x, names = with_hypothesis(x, mgg), (*names, "mgg")
    scorer = Scorer(fit.spec, fit.state, names, threads=1, hypothesis_range=fit.hypothesis_range)
    booster = train_xgboost(
        sample.train,
        sample.masses,
        rounds=config.xgboost_rounds,
        depth=config.xgboost_depth,
        seed=1,
        threads=1,
    )
    xscorer = XGBoostScorer(bytes(booster.save_raw("json")), fit.feature_names, threads=1)
    rates = {}
    for name, f, xx in (("punzi", scorer, x), ("xgboost", xscorer, x[:, : len(fit.feature_names)])):
        f(xx[:1000])  # warm-up (builds the module / booster)
        t0 = time.perf_counter()
        f(xx)
        rates[name] = len(x) / (time.perf_counter() - t0)
        print(f"{name}_inference_rate_per_core: {rates[name]:.4g} candidates/s")
    print(f"punzi_over_xgboost_inference_ratio: {rates['punzi'] / rates['xgboost']:.3g} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
