"""Cost of the input checks that run before processing, against the processing itself.

Generates (untimed) a slice of the embedded default (two signal masses), then times in one run:

* ``structure_checks``: the checks the processor had before the checksums (``events`` tree,
  branches, entry count, baskets inside the file) plus the branch kinds;
* ``with_checksums_and_ranges``: the same plus the SHA-256 of every file against the manifest
  (every file hashed: no remembered digests), as ``alps process`` runs them on files it has not
  verified before (the out-of-range counts are taken by the processor from what it reads since
  #12, so they cost nothing here);
* ``processing``: ``run_processing`` on the same files, checks included (iterative executor,
  one core);

and prints the checks' share of the processing time as a ratio.

Run: ``python -P benchmarks/integrity.py [--quick]``; prints ``name: value unit`` lines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from alps.config import AnalysisConfig, load_config
from processors.run import (
    build_fileset,
    inspect_files,
    manifest_checksums,
    read_manifest,
    run_processing,
)
from simulation.production import generate_samples


def _config(lumi_fb: float) -> AnalysisConfig:
    """The shipped default on a ``lumi_fb`` slice, with two signal masses instead of 41."""
    data = load_config().model_dump(mode="json")
    data["run_slice"] = f"2018,lumi={lumi_fb}"
    data["kinfit"]["covariance"] = "clusters"  # no calibration stage here
    data["simulation"]["signal"].update(masses={"values": [1.0, 5.0]}, events_per_mass=5000)
    data["limits"]["masses"] = {"values": [1.0, 5.0]}
    return AnalysisConfig.model_validate(data)


def _timed(function, repeat: int = 2) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 0.01 fb^-1 slice (under a minute)")
    args = parser.parse_args()
    lumi = 0.01 if args.quick else 0.05
    config = _config(lumi)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        generate_samples(config, workdir, progress=False)
        manifest, expected = read_manifest(workdir)
        checksums = manifest_checksums(workdir, manifest)
        fileset = build_fileset(workdir, manifest)
        size_mb = sum(Path(p).stat().st_size for p in expected) / 1e6
        events = sum(expected.values())

        def structure() -> None:
            inspect_files(fileset, expected, False)

        def full() -> None:
            inspect_files(fileset, expected, False, checksums=checksums)

        run_processing(config, workdir, progress=False, write_skims=False)  # numba warm-up
        t_structure = _timed(structure)
        t_full = _timed(full)
        t_process = _timed(
            lambda: run_processing(config, workdir, progress=False, write_skims=False), repeat=1
        )
    print(f"files: {len(expected)} files")
    print(f"events: {events} events")
    print(f"size: {size_mb:.1f} MB")
    print(f"structure_checks: {t_structure:.3f} s")
    print(f"with_checksums_and_ranges: {t_full:.3f} s")
    print(f"processing: {t_process:.3f} s")
    print(f"checks_over_processing: {t_full / t_process:.3f} ratio")
    print(f"checksums_and_ranges_over_structure_checks: {t_full / t_structure:.2f} ratio")


if __name__ == "__main__":
    main()
