"""Regenerate the stored reference of a tiny run (``tests/reference/``).

The tiny configuration (``TINY`` below: a 0.004 fb^-1 slice of 2018, three signal masses, a short
training, a handful of limit masses) is run through generate, calibrate and process (the fast
reference, compared by ``tests/test_reference.py`` in every CI run) and, with ``--full``, through
train, score, shapes and limits as well (compared by the ``slow`` test).

Run it from the repository root whenever the physics changes on purpose (a new background, a new
systematic, other scan masses)::

    PYTHONPATH=$PWD python tests/reference/make_reference.py --full

and commit the files it writes (``histograms.npz``, ``full.npz``, ``limits.json``, ``model.json``)
with a commit message that says why the numbers changed. Every stage runs eagerly (no Dask
client) in one process with fixed seeds, so the outputs are reproducible bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alps.config import AnalysisConfig
from alps.histio import read_histograms

__all__ = [
    "HERE",
    "TINY",
    "flatten_histograms",
    "limit_numbers",
    "model_digest",
    "run_fast",
    "run_full",
    "tiny_config",
]

HERE = Path(__file__).resolve().parent

TINY = """\
name: reference
seed: 11
run_slice: "2018,lumi=0.004"
simulation:
  events_per_file: 4000
  signal:
    masses: {values: [0.5, 2.0, 6.0]}
    events_per_mass: 500
processing:
  chunk_size: 3000
training:
  bce_epochs: 2
  punzi_epochs: 3
  held_out_masses: 0
  xgboost_rounds: 10
  punzi_batch_size: 4000
limits:
  masses: {values: [0.5, 1.2, 2.0, 4.0, 6.0]}
  lee_toys: 0
"""


def tiny_config() -> AnalysisConfig:
    """The reference configuration, validated."""
    return AnalysisConfig.model_validate(yaml.safe_load(TINY))


def flatten_histograms(histograms: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Every histogram as arrays keyed by ``name|axis=category|...|values`` (and ``variances``):
    one entry per combination of the category axes, so a category added or removed (a new
    systematic, a new background) shows up as keys, not as a shape mismatch."""
    out: dict[str, np.ndarray] = {}
    for name, h in sorted(histograms.items()):
        values = np.asarray(h.values(flow=True), dtype=np.float64)
        raw_variances = h.variances(flow=True)
        variances = None if raw_variances is None else np.asarray(raw_variances, dtype=np.float64)
        cats = [(i, a) for i, a in enumerate(h.axes) if a.traits.discrete and not a.traits.ordered]
        combos: list[tuple[tuple[str, ...], tuple[int, ...]]] = [((), ())]
        for _, axis in cats:
            combos = [
                ((*labels, f"{axis.name}={v}"), (*index, axis.index(v)))
                for labels, index in combos
                for v in axis
            ]
        for labels, index in combos:
            where: list[Any] = [slice(None)] * h.ndim
            for (position, _), i in zip(cats, index):
                where[position] = i
            key = "|".join([name, *labels])
            out[f"{key}|values"] = values[tuple(where)]
            if variances is not None:
                out[f"{key}|variances"] = variances[tuple(where)]
    return out


def limit_numbers(path: Path) -> dict[str, Any]:
    """The numbers of ``limits.json`` (without its provenance and timings)."""
    data = json.loads(path.read_text())
    data.pop("provenance", None)
    data.pop("timings_s", None)
    return data


def model_digest(model_dir: Path) -> dict[str, str]:
    """sha256 of the trained model's state (tensors) and of the working point."""
    import torch

    state = torch.load(model_dir / "punzi.pt", map_location="cpu", weights_only=False)
    digest = hashlib.sha256()
    tensors = state.get("state_dict", state) if isinstance(state, dict) else state
    for key in sorted(tensors):
        value = tensors[key]
        if hasattr(value, "detach"):
            digest.update(key.encode())
            digest.update(value.detach().cpu().numpy().tobytes())
    wp = json.loads((model_dir / "working_point.json").read_text())
    return {"punzi_state_sha256": digest.hexdigest(), "working_point": repr(wp["cut"])}


def run_fast(workdir: Path, config: AnalysisConfig | None = None) -> dict[str, np.ndarray]:
    """generate, a fixed calibration, process (eagerly); the flattened ``mgg.hist.zip``."""
    from processors.run import run_processing
    from processors.testing import write_fixed_calibration
    from simulation.production import generate_samples

    config = config or tiny_config()
    generate_samples(config, workdir, progress=False)
    write_fixed_calibration(workdir)
    result = run_processing(config, workdir, progress=False)
    return flatten_histograms(read_histograms(result.histogram_file))


def run_full(workdir: Path, config: AnalysisConfig | None = None) -> dict[str, Any]:
    """The fast part, then train, score, shapes and limits (eagerly)."""
    from limits import run_limits
    from models import load_scorer, train_models
    from processors.run import run_processing

    config = config or tiny_config()
    fast = run_fast(workdir, config)
    torch_threads()
    train_models(workdir / "skims", config, workdir, progress=False)
    scored = run_processing(
        config,
        workdir,
        scorer=load_scorer(workdir / "models"),
        model_dir=workdir / "models",
        progress=False,
    )
    wp = float(json.loads((workdir / "models" / "working_point.json").read_text())["cut"])
    run_limits(scored.histogram_file, config, workdir, working_point=wp, progress=False)
    return {
        "histograms": fast,
        "scored": flatten_histograms(read_histograms(scored.histogram_file)),
        "limits": limit_numbers(workdir / "limits" / "limits.json"),
        "model": model_digest(workdir / "models"),
    }


def torch_threads() -> None:
    """One torch thread: the training's floating-point sums do not depend on the machine."""
    import torch

    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also train, score and set limits")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="alps-reference-") as tmp:
        if args.full:
            out = run_full(Path(tmp))
            np.savez_compressed(HERE / "histograms.npz", **out["histograms"])
            np.savez_compressed(HERE / "full.npz", **out["scored"])
            (HERE / "limits.json").write_text(json.dumps(out["limits"], indent=1) + "\n")
            (HERE / "model.json").write_text(json.dumps(out["model"], indent=1) + "\n")
        else:
            np.savez_compressed(HERE / "histograms.npz", **run_fast(Path(tmp)))
    print(f"reference written to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
