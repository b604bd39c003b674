"""Event generators for the ALP signal and the backgrounds, by family (numpy/numba, lab frame).

:mod:`.base` holds what they share (beams, calibration, unweighting, the kinematic guard);
:mod:`.qed` the leading-order QED processes; :mod:`.mesons` P gamma (gamma); :mod:`.signal` the
ALP; :mod:`.beyond_lo` the processes beyond the LO MC (docs/background_model.md). The process
registry, :mod:`simulation.processes`, says which generator makes which sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (
    MUON_MASS,
    BeamConditions,
    Calibration,
    Generator,
    KinematicsError,
    check_four_momentum,
    sample_one_plus_cos2,
)
from .beyond_lo import (
    CollinearRadiator,
    RadiativeGenerator,
    make_eeg_isr,
    make_gg_isr,
    make_ggg_isr,
    make_ggg_lost,
)
from .mesons import MesonGammaGenerator
from .qed import DiphotonGenerator, ThreeBodyGenerator, make_eeg, make_gg, make_ggg, make_mumug
from .signal import AlpGenerator

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = [
    "MUON_MASS",
    "AlpGenerator",
    "BeamConditions",
    "Calibration",
    "CollinearRadiator",
    "DiphotonGenerator",
    "Generator",
    "KinematicsError",
    "MesonGammaGenerator",
    "RadiativeGenerator",
    "ThreeBodyGenerator",
    "background_generator",
    "check_four_momentum",
    "make_eeg",
    "make_eeg_isr",
    "make_gg",
    "make_gg_isr",
    "make_ggg",
    "make_ggg_isr",
    "make_ggg_lost",
    "make_mumug",
    "sample_one_plus_cos2",
]


def background_generator(name: str, cuts: GeneratorCuts) -> Generator:
    """The generator of a background process by its sample name (from the process registry)."""
    from ..processes import make_background

    return make_background(name, cuts)
