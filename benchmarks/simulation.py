"""Simulation throughput: generated + simulated + written events per second on one core.

For the ALP signal and for e+e- -> gamma gamma gamma, times each step of one production file
(generation with unweighting, detector simulation, ntuple assembly, ROOT writing) and the whole,
after a warm-up that compiles every numba kernel. The baseline, timed in the same run, is writing
the same ntuple content alone: the ratio says how far the simulation is from the I/O floor.

Run: ``python -P benchmarks/simulation.py [--quick]``; prints ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from alps.config import AnalysisConfig
from simulation.detector import DetectorConditions, simulate
from simulation.generators import AlpGenerator, BeamConditions, background_generator
from simulation.ntuple import NtupleContent, write_ntuple
from simulation.production import ProcessShare, _event_arrays
from simulation.registry import load_registry


def _one_file(name: str, n: int, seed: int, target: Path) -> dict[str, float]:
    config = AnalysisConfig()
    block = load_registry().select("2018")[0]
    beams = BeamConditions.from_block(block)
    cuts = config.simulation.cuts
    generator = AlpGenerator(1.0, 1e-3) if name == "alp" else background_generator(name, cuts)
    rng = np.random.default_rng(seed)
    calibration = generator.calibrate(rng, beams, cuts)
    times: dict[str, float] = {}
    start = time.perf_counter()
    truth = generator.generate(rng, beams, n, cuts, calibration)
    times["generate"] = time.perf_counter() - start
    start = time.perf_counter()
    reco = simulate(truth, DetectorConditions.for_block(block), config.simulation.detector, rng)
    times["simulate"] = time.perf_counter() - start
    start = time.perf_counter()
    share = ProcessShare(name, n, calibration, calibration.sigma_pb, 1.0)
    content = NtupleContent.build(_event_arrays(rng, truth, share, block), reco, truth)
    content["event"] = np.arange(n, dtype=np.int64)
    times["assemble"] = time.perf_counter() - start
    start = time.perf_counter()
    write_ntuple(target, content, {"sample": name})
    times["write"] = time.perf_counter() - start
    # baseline: writing the same content again, nothing else
    start = time.perf_counter()
    write_ntuple(target.with_name("baseline.root"), content, {"sample": name})
    times["baseline_write"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples (under a minute)")
    args = parser.parse_args()
    n = 100_000 if args.quick else 500_000
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("alp", "ggg"):
            _one_file(name, 2_000, 1, Path(tmp) / "warmup.root")  # compile the numba kernels
            times = _one_file(name, n, 2, Path(tmp) / f"{name}.root")
            total = sum(v for k, v in times.items() if k != "baseline_write")
            print(f"{name}_events: {n} events")
            for step in ("generate", "simulate", "assemble", "write"):
                print(f"{name}_{step}_rate: {n / times[step]:.0f} events/s")
            print(f"{name}_end_to_end_rate: {n / total:.0f} events/s/core")
            print(f"{name}_write_only_baseline_rate: {n / times['baseline_write']:.0f} events/s")
            print(
                f"{name}_ratio_end_to_end_over_write_only: {times['baseline_write'] / total:.3f} x"
            )
            print(f"{name}_goal_fraction_of_200k: {n / total / 200_000:.2f} x")


if __name__ == "__main__":
    main()
