"""How each systematic of the contract's variation table (``alps.contract.VARIATIONS``) is made.

``ENERGY_SHIFTS[systematic](inputs, direction)`` gives the varied candidate energies (the
selection and the fit re-run on them); ``EVENT_WEIGHTS[systematic](inputs, direction)`` the
varied event weights (the nominal reconstruction is re-filled with them). Direction 0 is the
nominal. A new systematic is one row of the table and one entry here.

* ``escale``: E -> E (1 +- delta_s) (``systematics.energy_scale``);
* ``eres``: E -> E_true + (E - E_true)(1 +- delta_r), the deviation from the true photon energy
  scaled (``systematics.energy_resolution``);
* ``trigger``: the weight times the trigger scale factor at the edge of its 1 sigma band (the
  nominal weight carries the nominal scale factor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alps.config import SystematicsConfig
from alps.contract import NOMINAL, VARIATIONS, Variation

from .corrections import Corrections

__all__ = [
    "ENERGY_SHIFTS",
    "EVENT_WEIGHTS",
    "VariationInputs",
    "filled_variations",
    "nominal_weight",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class VariationInputs:
    """What the variations act on: per-event ``weight`` and cluster energy sum ``esum`` of the
    chunk (GeV, as the file's float32 values sum; None without ``corrections``, whose trigger
    scale factor is the only use of it); the pool's ``(m, TOP)`` candidate energies and their
    true energies."""

    weight: FloatArray
    esum: npt.NDArray[np.floating] | None
    energy: FloatArray
    true_energy: FloatArray
    period: str
    corrections: Corrections | None
    systematics: SystematicsConfig


def _energy_scale(v: VariationInputs, direction: int) -> FloatArray:
    return v.energy * (1.0 + direction * v.systematics.energy_scale)


def _energy_resolution(v: VariationInputs, direction: int) -> FloatArray:
    scale = 1.0 + direction * v.systematics.energy_resolution
    return v.true_energy + (v.energy - v.true_energy) * scale


def _trigger(v: VariationInputs, direction: int) -> FloatArray:
    if v.corrections is None or v.esum is None:
        return v.weight * np.ones(len(v.weight))
    band = {0: "nominal", 1: "up", -1: "down"}[direction]
    return v.weight * v.corrections.trigger_scale_factor(v.period, v.esum, band)


ENERGY_SHIFTS: dict[str, Callable[[VariationInputs, int], FloatArray]] = {
    "escale": _energy_scale,
    "eres": _energy_resolution,
}
EVENT_WEIGHTS: dict[str, Callable[[VariationInputs, int], FloatArray]] = {"trigger": _trigger}


def nominal_weight(v: VariationInputs) -> FloatArray:
    """The nominal event weight: generator weight times the nominal trigger scale factor."""
    return _trigger(v, 0)


def filled_variations(is_data: bool, systematics: SystematicsConfig) -> tuple[Variation, ...]:
    """The rows a sample fills: data the nominal only; MC every row (the trigger pair only with
    ``systematics.trigger``)."""
    if is_data:
        return tuple(v for v in VARIATIONS if v.name == NOMINAL)
    return tuple(v for v in VARIATIONS if v.systematic != "trigger" or systematics.trigger)
