"""How far from an injected signal its coupling may legitimately be excluded (issue 18, 3b).

A hypothesis at m' = m + d sigma_m(m) sees only part of a signal at m: for Gaussian peaks of the
same width the fitted signal is exp(-d^2 / 4) of it (the overlap of the two templates), and the 95%
CL limit lies about 1.645 sigma_mu above the fitted signal. With an injected mu_inj = k^2 x the
median expected limit (about 1.96 k^2 sigma_mu), the median observed limit at m' falls below
mu_inj beyond d* = 2 sqrt(-ln(1 - 1.645 / (1.96 k^2))): 1.26 sigma_m for k = 1.6. Beyond d* the
hypothesis "an ALP at m' with this coupling" predicts a peak the data do not have, and excluding
it is right; inside d*, at d = 0 in particular, the true hypothesis is excluded in about 5% of
the experiments, as a 95% CL limit must.

This script measures it on the histograms of an ``alps run`` work directory: at a few masses m,
pseudo-experiments = Poisson(background-only fit + mu_inj x signal template at m) are analysed
at the hypotheses m + d sigma_m (d = 0 ... 2), with mu_inj = k^2 x the expected median limit at
m; it prints per d the fraction of pseudo-experiments whose observed limit excludes the injected
coupling (mu_lim(m') < mu_inj, mu being (g / g_ref)^2 in every workspace), the median fitted
signal mu_hat(m') / mu_inj and the Gaussian estimate exp(-d^2 / 4).

Run: ``python docs/exclusion_near_signal.py --workdir alps-output [--toys 100] [--strength 1.6]``.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster

from alps.config import load_config
from limits.cls import HypothesisTester, expected_limits, observed_limit
from limits.interpolation import ShapeModel
from limits.io import read_json, read_spectra
from limits.likelihood import compile_workspace, expected_main
from limits.mass_points import build_mass_points
from limits.toys import null_spectrum

DISTANCES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
MASSES = (1.5, 3.3, 5.1, 7.3)


def _signal_template(spec: dict[str, Any]) -> np.ndarray:
    model = compile_workspace(spec)
    pars = np.array(model.inits, dtype=np.float64)
    pars[model.poi_index] = 0.0
    background = expected_main(model, pars)
    pars[model.poi_index] = 1.0
    return expected_main(model, pars) - background


def _toys(
    specs: list[dict[str, Any]],
    windows: list[list[int]],
    expectation: np.ndarray,
    mu_inj: float,
    seeds: list[int],
) -> list[list[tuple[float, float]]]:
    """Per toy, per hypothesis: (observed limit, fitted mu) in units of the injected mu."""
    models = [compile_workspace(s) for s in specs]
    out = []
    for seed in seeds:
        data = np.random.default_rng(seed).poisson(expectation).astype(np.float64)
        row = []
        for model, bins in zip(models, windows):
            tester = HypothesisTester(model, data[np.asarray(bins)], model.aux_nominal)
            limit = observed_limit(tester, level=0.05, scale=mu_inj)
            row.append((limit / mu_inj, float(tester.free.pars[model.poi_index]) / mu_inj))
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--config", default=None)
    parser.add_argument("--toys", type=int, default=100)
    parser.add_argument("--strength", type=float, default=1.6, help="g_inj / g_expected")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cfg = load_config(args.config)
    limits = read_json(args.workdir / "limits" / "limits.json")
    spectra = read_spectra(
        args.workdir / "histograms" / "mgg_score.hist.zip", limits["working_point"]
    )
    shapes = ShapeModel.from_dict(read_json(args.workdir / "shapes" / "shapes.json"))
    sigma = cfg.histograms.resolution.sigma
    k2 = args.strength**2
    d_star = 2 * np.sqrt(-np.log(1 - 1.645 / (1.96 * k2)))
    print(f"strength: {args.strength} x the expected g limit (mu_inj = {k2:.2f} x)")
    print(f"gaussian_crossover_d_star: {d_star:.2f} sigma_m")
    excluded = np.zeros((len(MASSES), len(DISTANCES)))
    ratio_hat = np.zeros_like(excluded)
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=":0", processes=True
        ) as cluster,
        Client(cluster) as client,
    ):
        for j, mass in enumerate(MASSES):
            s_m = float(sigma(mass))
            hyps = [mass + d * s_m for d in DISTANCES]
            points = build_mass_points(hyps, spectra, shapes, cfg, client=client)
            assert [p.mass for p in points] == hyps, (mass, [p.mass for p in points])
            specs = [p.spec for p in points]
            windows = [list(p.window_bins) for p in points]
            n_bins = len(spectra.edges) - 1
            null = null_spectrum(specs, windows, n_bins)
            template = np.zeros(n_bins)
            template[np.asarray(windows[0])] = _signal_template(specs[0])
            model = compile_workspace(specs[0])
            tester = HypothesisTester(model, null[np.asarray(windows[0])], model.aux_nominal)
            mu_exp = expected_limits(tester, level=0.05)[2]
            mu_inj = k2 * mu_exp
            seeds = [
                int(s) for s in np.random.SeedSequence([args.seed, j]).generate_state(args.toys)
            ]
            chunks = [seeds[i : i + 5] for i in range(0, len(seeds), 5)]
            futures = client.map(
                _toys,
                [specs] * len(chunks),
                [windows] * len(chunks),
                [null + mu_inj * template] * len(chunks),
                [mu_inj] * len(chunks),
                chunks,
                pure=False,
            )
            rows = np.array([r for f in futures for r in f.result()])  # toys x hyps x 2
            excluded[j] = np.mean(rows[:, :, 0] < 1.0, axis=0)
            ratio_hat[j] = np.median(rows[:, :, 1], axis=0)
            print(f"mass_{mass:g}GeV: sigma_m {1e3 * s_m:.1f} MeV, mu_inj {mu_inj:.3g}, "
                  f"{args.toys} toys")  # fmt: skip
            for i, d in enumerate(DISTANCES):
                print(f"  d_{d:.2f}_sigma_m: excluded {excluded[j, i]:.2f}, "
                      f"median mu_hat/mu_inj {ratio_hat[j, i]:.2f}")  # fmt: skip
    n = args.toys * len(MASSES)
    for i, d in enumerate(DISTANCES):
        p = float(excluded[:, i].mean())
        print(f"excluded_fraction_d_{d:.2f}_sigma_m: {p:.3f} +- {np.sqrt(max(p * (1 - p), 1 / n) / n):.3f} "
              f"(mu_hat/mu_inj {ratio_hat[:, i].mean():.2f}, exp(-d^2/4) {np.exp(-d * d / 4):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
