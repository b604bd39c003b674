"""Background-only pseudo-experiments: limit coverage of the expected bands, and LEE toy scans.

Toys are drawn from the background-only (mu = 0) fit to the observed data: Poisson main counts
around its expectation and, for the coverage study, Gaussian auxiliary data around its fitted
nuisance parameters (the frequentist toys of Cranmer, CERN-2014-003, Sec. 4; what
``pyhf.infer.calculators.ToyCalculator`` draws). Each toy is analysed exactly like the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from limits.cls import HypothesisTester, expected_limits, observed_limit
from limits.likelihood import CompiledModel, compile_workspace, expected_main, fit
from limits.significance import discovery

__all__ = ["Coverage", "limit_coverage", "null_spectrum", "scan_toys"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Coverage:
    """Observed limits of background-only toys against the expected band of the data.

    ``expected`` is the (-2, -1, 0, +1, +2 sigma) band; ``inside_1sigma``/``inside_2sigma`` the
    fractions of toys whose limit falls inside the bands, with binomial errors."""

    expected: tuple[float, float, float, float, float]
    limits: tuple[float, ...]
    inside_1sigma: float
    inside_1sigma_error: float
    inside_2sigma: float
    inside_2sigma_error: float


def limit_coverage(model: CompiledModel, n_toys: int, seed: int, level: float = 0.05) -> Coverage:
    """Fraction of background-only toys whose observed limit lies inside the expected bands."""
    rng = np.random.default_rng(seed)
    tester = HypothesisTester(model, model.observed, model.aux_nominal)
    band = expected_limits(tester, level=level)
    truth = tester.bkg.pars
    nu = expected_main(model, truth)
    alpha = truth[model.constrained]
    limits = []
    for _ in range(n_toys):
        data = rng.poisson(nu).astype(np.float64)
        aux = alpha + rng.standard_normal(len(alpha))
        toy = HypothesisTester(model, data, aux)
        limits.append(observed_limit(toy, level=level, scale=band[2]))
    lim = np.asarray(limits)
    ok = np.isfinite(lim)
    n = max(int(ok.sum()), 1)
    in1 = float(np.mean((lim[ok] >= band[1]) & (lim[ok] <= band[3])))
    in2 = float(np.mean((lim[ok] >= band[0]) & (lim[ok] <= band[4])))
    return Coverage(
        expected=band,
        limits=tuple(float(v) for v in lim),
        inside_1sigma=in1,
        inside_1sigma_error=float(np.sqrt(in1 * (1 - in1) / n)),
        inside_2sigma=in2,
        inside_2sigma_error=float(np.sqrt(in2 * (1 - in2) / n)),
    )


def null_spectrum(
    specs: Sequence[Mapping[str, Any]], windows: Sequence[Sequence[int]], n_bins: int
) -> FloatArray:
    """Background-only expectation over the whole M_gamma_gamma axis, stitched from the mu = 0
    fits of the windows: each bin takes the fit of the window whose centre is nearest to it (bins
    in no window are 0)."""
    out = np.zeros(n_bins)
    dist = np.full(n_bins, np.inf)
    for spec, bins in zip(specs, windows):
        model = compile_workspace(spec)
        bkg = fit(model, model.observed, model.aux_nominal, fixed={model.poi_index: 0.0})
        nu = expected_main(model, bkg.pars)
        idx = np.asarray(bins)
        centre = 0.5 * (idx[0] + idx[-1])
        d = np.abs(idx - centre)
        better = d < dist[idx]
        out[idx[better]] = nu[better]
        dist[idx[better]] = d[better]
    return out


def _scan_toy_batch(
    specs: Sequence[Mapping[str, Any]],
    windows: Sequence[Sequence[int]],
    null: FloatArray,
    seeds: Sequence[int],
) -> list[tuple[float, FloatArray]]:
    models = [compile_workspace(s) for s in specs]
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        toy = rng.poisson(null).astype(np.float64)
        z = np.empty(len(models))
        for i, (model, bins) in enumerate(zip(models, windows)):
            tester = HypothesisTester(model, toy[np.asarray(bins)], model.aux_nominal)
            z[i] = discovery(tester).z
        out.append((float(np.max(z)), z))
    return out


def scan_toys(
    specs: Sequence[Mapping[str, Any]],
    windows: Sequence[Sequence[int]],
    null: FloatArray,
    n_toys: int,
    seed: int,
    *,
    client: Any | None = None,
    batch: int = 4,
) -> list[tuple[float, FloatArray]]:
    """Background-only toy scans of the whole spectrum: per toy, the largest local significance
    and the local significances of all masses (``specs`` and their ``windows`` in scan order)."""
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(n_toys)]
    chunks = [seeds[i : i + batch] for i in range(0, n_toys, batch)]
    if client is None:
        return [r for c in chunks for r in _scan_toy_batch(specs, windows, null, c)]
    [specs_f, windows_f, null_f] = client.scatter(
        [list(specs), list(windows), null], broadcast=True
    )
    futures = client.map(
        _scan_toy_batch,
        [specs_f] * len(chunks),
        [windows_f] * len(chunks),
        [null_f] * len(chunks),
        chunks,
        pure=False,
    )
    return [r for f in futures for r in f.result()]
