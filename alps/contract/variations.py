"""The systematic variations the processor fills: one row per variation.

A row names the variation, the systematic it belongs to (``<systematic>_up`` / ``_down`` pairs are
read by the limits stage as one nuisance parameter) and how it acts: ``"energy"`` variations
change the photon energies, so the selection and the kinematic fit re-run on them; ``"weight"``
variations change only the event weight. The processor holds one function per systematic
(``processors/variations.py``) that gives the varied energies or weights; a new systematic is one
row here and one entry there. Data fill the nominal only. The luminosity uncertainty is no
variation: the limits take it as a normalisation from ``systematics.luminosity``.

>>> [v.name for v in VARIATIONS if v.acts_on == "weight"]
['trigger_up', 'trigger_down']
>>> variation_names(is_data=True)
('nominal',)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["NOMINAL", "VARIATIONS", "Variation", "variation_names"]

NOMINAL = "nominal"


@dataclass(frozen=True)
class Variation:
    """One systematic variation: its histogram category and how it is made."""

    name: str
    systematic: str
    direction: Literal[-1, 0, 1]
    acts_on: Literal["nominal", "energy", "weight"]


def _pair(systematic: str, acts_on: Literal["energy", "weight"]) -> tuple[Variation, Variation]:
    return (
        Variation(f"{systematic}_up", systematic, 1, acts_on),
        Variation(f"{systematic}_down", systematic, -1, acts_on),
    )


#: the table, in the order the processor fills the variation axis
VARIATIONS: tuple[Variation, ...] = (
    Variation(NOMINAL, NOMINAL, 0, "nominal"),
    *_pair("escale", "energy"),  # photon energy scale, systematics.energy_scale
    *_pair("eres", "energy"),  # photon energy resolution, systematics.energy_resolution
    *_pair("trigger", "weight"),  # trigger efficiency band of the calibration
)


def variation_names(is_data: bool = False) -> tuple[str, ...]:
    """The variation categories a sample fills (data: the nominal only)."""
    return (NOMINAL,) if is_data else tuple(v.name for v in VARIATIONS)
