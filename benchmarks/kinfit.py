"""Throughput of the three-photon kinematic fit on one core, four implementations in one run:

- ``lanes``: :func:`kinfit.fit_three_photons`, the compiled loop the processor calls
  (:mod:`kinfit.lanes`: eight events side by side in SIMD lanes, #12),
- ``scalar``: the same fit through the compiled one-event-at-a-time kernel it replaced
  (:mod:`kinfit.kernel`, kept as the free-energy fit and as this baseline),
- ``numpy``: :func:`kinfit.batched.fit_three_photons_numpy` (same algorithm, vectorised numpy),
- ``scipy``: the independent reference of the tests (SLSQP per event).

Events are simulated three-photon events (tests/test_kinfit_reference.py) with σ_E/E = 2 % and
σ_θ = σ_φ = 4 mrad, fitted in chunks of 100 000 as the processor does. Times are CPU time of
this process (``time.process_time``: the machines are shared), the best of several repeats, the
lanes and scalar kernels alternating inside each repeat so that both see the same load; numba is
compiled and warmed up before timing. All run on one core: no ``parallel=True``, ``np.einsum``
without BLAS, the reference one event at a time. Prints one ``name: value unit`` line per
figure, and how far the lanes kernel's results are from the scalar kernel's. ``--quick`` runs
in well under a minute.

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
from kinfit.fit import _fit_three_photons_scalar

ROOT = Path(__file__).resolve().parents[1]


def _reference_module() -> ModuleType:
    """The test module holding the event generator and the scipy reference fit."""
    path = ROOT / "tests" / "test_kinfit_reference.py"
    spec = importlib.util.spec_from_file_location("kinfit_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cpu_times(runs: dict[str, Callable[[], object]], repeats: int, budget_s: float) -> dict:
    """Smallest CPU time of each run over ``repeats`` rounds (fewer if ``budget_s`` of wall
    time runs out), the runs alternating inside each round."""
    best = dict.fromkeys(runs, np.inf)
    start = time.perf_counter()
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - t0)
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


def _agreement(new: kinfit.KinFitResult, old: kinfit.KinFitResult, cov: np.ndarray) -> dict:
    """Largest differences of the lanes kernel's converged fits from the scalar kernel's:
    relative for E and χ², absolute for θ and φ (rad; φ crosses 0) and the pulls, relative to
    the measured covariance for the fitted one; and whether status and iterations are equal."""
    ok = old.converged
    rel = {
        name: float(np.max(np.abs(getattr(new, name)[ok] - getattr(old, name)[ok])
                           / np.abs(getattr(old, name)[ok])))
        for name in ("E", "chi2")
    }  # fmt: skip
    for name in ("theta", "phi"):
        rel[name] = float(np.max(np.abs(getattr(new, name)[ok] - getattr(old, name)[ok])))
    var = np.diagonal(kinfit.full_covariance(cov), axis1=-2, axis2=-1)
    scale = np.sqrt(var[..., :, None] * var[..., None, :])[ok]
    rel["cov"] = float(np.max(np.abs(new.cov[ok] - old.cov[ok]) / scale))
    rel["pulls"] = float(np.max(np.abs(new.pulls[ok] - old.pulls[ok])))
    same = np.array_equal(new.status, old.status) and np.array_equal(new.iterations, old.iterations)
    return {"same_status": same, **rel}


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
    scalar = _fit_three_photons_scalar

    # compile (or load from the cache) and warm up
    warm = tuple(x[:1000] for x in args)
    for fit in (kinfit.fit_three_photons, scalar):
        fit(*warm)
        fit(*(x[:1000] for x in full_args))
    kinfit.fit_three_photons_free_energy(*warm, np.zeros(1000, dtype=np.int64))
    check = kinfit.fit_three_photons(*args)
    agreement = _agreement(check, scalar(*args), cov)

    t = _cpu_times(
        {
            "lanes": _chunked(kinfit.fit_three_photons, args, chunk),
            "scalar": _chunked(scalar, args, chunk),
        },
        repeats,
        40.0,
    )
    t_full = _cpu_times(
        {
            "lanes": _chunked(kinfit.fit_three_photons, full_args, chunk),
            "scalar": _chunked(scalar, full_args, chunk),
        },
        max(2, repeats // 2),
        20.0,
    )
    numpy_args = tuple(x[:n_numpy] for x in args)
    t_numpy = _cpu_times({"numpy": _chunked(fit_three_photons_numpy, numpy_args, chunk)}, 3, 15.0)
    scipy_args = tuple(x[:n_scipy] for x in args)
    t_scipy = _cpu_times({"scipy": lambda: ref.reference_fits(*scipy_args)}, 1, 0.0)

    lanes_rate = n_numba / t["lanes"]
    scalar_rate = n_numba / t["scalar"]
    numpy_rate = n_numpy / t_numpy["numpy"]
    scipy_rate = n_scipy / t_scipy["scipy"]
    print(f"lanes_fits_per_s: {lanes_rate:.3g} fits/s")
    print(f"lanes_time_per_fit: {1e9 / lanes_rate:.0f} ns")
    print(f"scalar_fits_per_s: {scalar_rate:.3g} fits/s")
    print(f"scalar_time_per_fit: {1e9 / scalar_rate:.0f} ns")
    print(f"ratio_lanes_over_scalar: {lanes_rate / scalar_rate:.2f} x")
    print(f"lanes_full_covariance_fits_per_s: {n_numba / t_full['lanes']:.3g} fits/s")
    print(f"scalar_full_covariance_fits_per_s: {n_numba / t_full['scalar']:.3g} fits/s")
    print(f"numpy_fits_per_s: {numpy_rate:.3g} fits/s")
    print(f"scipy_fits_per_s: {scipy_rate:.3g} fits/s")
    print(f"ratio_lanes_over_numpy: {lanes_rate / numpy_rate:.1f} x")
    print(f"ratio_lanes_over_scipy: {lanes_rate / scipy_rate:.3g} x")
    print(f"ratio_numpy_over_scipy: {numpy_rate / scipy_rate:.3g} x")
    print(f"converged_fraction: {check.converged.mean():.4f} fraction")
    print(f"mean_iterations: {check.iterations.mean():.2f} iterations")
    print(f"lanes_vs_scalar_same_status_and_iterations: {int(agreement['same_status'])} bool")
    for name in ("E", "chi2"):
        print(f"lanes_vs_scalar_max_rel_diff_{name}: {agreement[name]:.2g} fraction")
    for name in ("theta", "phi"):
        print(f"lanes_vs_scalar_max_diff_{name}: {agreement[name]:.2g} rad")
    print(f"lanes_vs_scalar_max_diff_cov: {agreement['cov']:.2g} of the measured covariance")
    print(f"lanes_vs_scalar_max_diff_pulls: {agreement['pulls']:.2g} pulls")


if __name__ == "__main__":
    main()
