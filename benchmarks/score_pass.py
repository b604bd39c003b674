"""The score pass against the processing pass on one work directory (issue 12: score <= 1/4).

Both passes run on the same local cluster (two single-threaded worker processes, as ``alps run``)
alternately, ``--repeat`` times each, on a work directory that ``alps run`` has filled (ntuples,
calibration, skims, a trained model): the processing pass rewrites identical skims and
histograms, the score pass rewrites ``histograms/mgg_score.hist.zip``. Printed per pass: the
wall time and the CPU time (this process plus the workers, from their ``cpu_times``), the median
over the repeats, and the ratios score / process of both; the machine's load average beside
them (a loaded machine stretches wall times, CPU times much less). Also the size of
``mgg_score.hist.zip`` on disk and of its ``mgg`` histogram in memory.

Run: ``python -P benchmarks/score_pass.py --workdir alps-output [--quick] [--repeat 3]``
(``--quick``: one repeat each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from alps.config import load_config
from alps.histio import read_histograms

MB = 1024.0**2


def _worker_cpu(client: Any) -> float:
    import psutil

    def cpu() -> float:
        times = psutil.Process().cpu_times()
        return float(times.user + times.system)

    return float(sum(client.run(cpu).values()))


def timed(client: Any, run: Any) -> tuple[float, float]:
    """(wall s, CPU s of this process and the workers) of ``run()``."""
    cpu0, workers0, wall0 = time.process_time(), _worker_cpu(client), time.perf_counter()
    run()
    wall = time.perf_counter() - wall0
    return wall, time.process_time() - cpu0 + _worker_cpu(client) - workers0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a work directory of alps run")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat each")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    from models import load_scorer
    from processors.run import run_processing
    from processors.score_pass import run_scoring

    config = load_config(args.config)
    workdir = args.workdir
    scorer = load_scorer(workdir / "models")
    repeat = 1 if args.quick else args.repeat
    rows: dict[str, list[tuple[float, float]]] = {"process": [], "score": []}
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        passes = {
            "process": lambda: run_processing(config, workdir, client=client, progress=False),
            "score": lambda: run_scoring(
                config, workdir, scorer=scorer, model_dir=workdir / "models", client=client,
                progress=False,
            ),
        }  # fmt: skip
        for _ in range(repeat):
            for name, run in passes.items():
                rows[name].append(timed(client, run))
                wall, cpu = rows[name][-1]
                load = os.getloadavg()[0]
                print(f"score_pass.run.{name}: {wall:.2f} s wall, {cpu:.2f} s cpu, load {load:.1f}")
    medians = {
        name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        for name, runs in rows.items()
    }
    for name, (wall, cpu) in medians.items():
        print(f"score_pass.{name}.wall: {wall:.2f} s")
        print(f"score_pass.{name}.cpu: {cpu:.2f} s")
    print(f"score_pass.ratio.wall: {medians['score'][0] / medians['process'][0]:.3f}")
    print(f"score_pass.ratio.cpu: {medians['score'][1] / medians['process'][1]:.3f}")
    path = workdir / "histograms" / "mgg_score.hist.zip"
    print(f"score_pass.mgg_score_file: {path.stat().st_size / MB:.1f} MB")
    h: Any = read_histograms(path, ["mgg"])["mgg"]
    print(f"score_pass.mgg_score_memory: {h.view(flow=True).nbytes / MB:.1f} MB")
    print(f"score_pass.load_average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
