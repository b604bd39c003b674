"""Throughput of the three-photon kinematic fit on one core, three implementations in one run:

- ``numba``: :func:`kinfit.fit_three_photons` (the compiled loop the processor calls),
- ``numpy``: :func:`kinfit.batched.fit_three_photons_numpy` (same algorithm, vectorised numpy),
- ``scipy``: the independent reference of the tests (SLSQP per event).

Events are simulated three-photon events (tests/test_kinfit_reference.py) with σ_E/E = 2 % and
σ_θ = σ_φ = 4 mrad, fitted in chunks as the processor does. Each figure is the best of several
repeats (the machines are noisy); numba is compiled and warmed up before timing. All three run
on one core: the numba loop has no ``parallel=True``, the numpy version uses ``np.einsum`` without
BLAS, and the reference fits one event at a time. Prints one ``name: value unit`` line per
figure. ``--quick`` runs in well under a minute.

Run: ``python -P benchmarks/kinfit.py [--quick]`` (``-P``: the script's folder stays off the
import path, so ``import kinfit`` finds the package, not this script).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

import kinfit
from kinfit.batched import fit_three_photons_numpy

ROOT = Path(__file__).resolve().parents[1]


def _reference_module() -> ModuleType:
    """The test module holding the event generator and the scipy reference fit."""
    path = ROOT / "tests" / "test_kinfit_reference.py"
    spec = importlib.util.spec_from_file_location("kinfit_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best_time(run: Callable[[], object], repeats: int, budget_s: float) -> float:
    """Smallest wall time of ``run`` over ``repeats`` calls (fewer if ``budget_s`` runs out)."""
    best = np.inf
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return best


def _chunked(
    fit: Callable[..., kinfit.KinFitResult], args: tuple, chunk: int
) -> Callable[[], None]:
    n = len(args[0])

    def run() -> None:
        for start in range(0, n, chunk):
            fit(*(x[start : start + chunk] for x in args))

    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples, under a minute")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    n_numba, n_numpy, n_scipy = (
        (200_000, 50_000, 100) if options.quick else (1_000_000, 200_000, 400)
    )
    repeats = 5 if options.quick else 10
    chunk = 100_000

    ref = _reference_module()
    _, measured, cov, beam = ref.smeared_sample(options.seed, n_numba)
    args = (*measured, cov, beam)
    full_args = (*measured, kinfit.full_covariance(cov), beam)

    # compile (or load from the cache) and warm up
    warm = tuple(x[:1000] for x in args)
    kinfit.fit_three_photons(*warm)
    kinfit.fit_three_photons(*(x[:1000] for x in full_args))
    kinfit.fit_three_photons_free_energy(*warm, np.zeros(1000, dtype=np.int64))
    check = kinfit.fit_three_photons(*args)
    converged = check.converged.mean()

    t_numba = _best_time(_chunked(kinfit.fit_three_photons, args, chunk), repeats, 20.0)
    t_full = _best_time(_chunked(kinfit.fit_three_photons, full_args, chunk), repeats, 10.0)
    numpy_args = tuple(x[:n_numpy] for x in args)
    t_numpy = _best_time(_chunked(fit_three_photons_numpy, numpy_args, chunk), 3, 15.0)
    scipy_args = tuple(x[:n_scipy] for x in args)
    t_scipy = _best_time(lambda: ref.reference_fits(*scipy_args), 1, 0.0)

    numba_rate = n_numba / t_numba
    numpy_rate = n_numpy / t_numpy
    scipy_rate = n_scipy / t_scipy
    print(f"numba_fits_per_s: {numba_rate:.3g} fits/s")
    print(f"numba_time_per_fit: {1e9 / numba_rate:.0f} ns")
    print(f"numba_full_covariance_fits_per_s: {n_numba / t_full:.3g} fits/s")
    print(f"numpy_fits_per_s: {numpy_rate:.3g} fits/s")
    print(f"scipy_fits_per_s: {scipy_rate:.3g} fits/s")
    print(f"ratio_numba_over_numpy: {numba_rate / numpy_rate:.1f} x")
    print(f"ratio_numba_over_scipy: {numba_rate / scipy_rate:.3g} x")
    print(f"ratio_numpy_over_scipy: {numpy_rate / scipy_rate:.3g} x")
    print(f"numba_converged_fraction: {converged:.4f} fraction")
    print(f"numba_mean_iterations: {check.iterations.mean():.2f} iterations")


if __name__ == "__main__":
    main()
