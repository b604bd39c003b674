"""Inputs for tests of the processor (not used by any stage).

:func:`write_fixed_calibration` writes a calibration of fixed, plausible numbers, so that a test
on a tiny slice (too few mu mu gamma events for the calibration's own fits) still runs the
processor's corrections: energy scale, smearing, calibrated covariance and trigger scale factors.
"""

from __future__ import annotations

import json
from pathlib import Path

from .calibration import QUANTITIES, TurnOnFit, build_corrections

__all__ = ["write_fixed_calibration"]


def write_fixed_calibration(workdir: Path, periods: tuple[str, ...] = ("2018",)) -> Path:
    """``calibration/corrections.json`` from fixed numbers (the tiny slice has too few mu mu gamma
    events for the calibration's fits): a 1 % energy scale, data resolutions 10 % wider than the
    MC's, trigger turn-ons 2 % apart. The processor applies them like a measured calibration."""
    regions = (1, 2, 3)
    k = {"data": 1.1, "mc": 1.0}
    resolution = {
        q: {s: {p: dict.fromkeys(regions, k[s]) for p in periods} for s in k} for q in QUANTITIES
    }
    scale = {p: {1: 1.012, 2: 1.008, 3: 1.015} for p in periods}
    cov = ((1e-4, 0.0, 0.0), (0.0, 4e-4, 0.0), (0.0, 0.0, 1e-4))
    trigger = {
        "data": {p: TurnOnFit(0.98, 1.10, 0.15, cov, True) for p in periods},
        "mc": {p: TurnOnFit(0.99, 1.05, 0.14, cov, True) for p in periods},
    }
    target = workdir / "calibration" / "corrections.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(build_corrections(resolution, scale, trigger, {}), indent=1))
    return target
