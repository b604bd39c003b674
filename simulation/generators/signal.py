"""The ALP signal, e+e- -> gamma a, a -> gamma gamma (physics.md "Signal")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..events import TruthEvents
from ..kinematics import CollisionFrame, isotropic_directions, two_body_decay
from ..physics import alp_decay_length, sigma_alp
from .base import (
    SPEED_OF_LIGHT_CM_NS,
    BeamConditions,
    Calibration,
    directions,
    massive,
    sample_one_plus_cos2,
)

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = ["AlpGenerator", "produce_recoil"]

FloatArray = npt.NDArray[np.float64]


def produce_recoil(
    rng: np.random.Generator, sqrt_s: FloatArray, mass: float
) -> tuple[FloatArray, FloatArray]:
    """e+e- -> gamma X (mass ``mass``) with 1 + cos^2 theta*: CM four-momenta of gamma and X."""
    n = len(sqrt_s)
    cos_t = sample_one_plus_cos2(rng.random(n))
    direction = directions(cos_t, rng.uniform(0, 2 * np.pi, n))
    p = (sqrt_s**2 - mass**2) / (2.0 * sqrt_s)
    x = massive(direction, p, mass)
    photon = massive(-direction, p, 0.0)
    return photon, x


@dataclass(frozen=True)
class AlpGenerator:
    """Signal e+e- -> gamma a, a -> gamma gamma (Dolan et al., JHEP 12 (2017) 094).

    Production with 1 + cos^2 theta* in the CM frame, recoil photon momentum (s - m^2)/(2 sqrt s),
    isotropic decay in the ALP rest frame; the decay point is drawn from the exponential decay
    law with mean (p/m) c tau, Gamma = g^2 m^3/(64 pi) (physics.md "Signal"), and the decay
    photons start there, late by the ALP's flight time. Every generated event is kept (no cuts):
    the signal efficiency is counted against all of them. The cross-section is sigma(g, m) at the
    run's nominal sqrt(s). A mass at or above a run block's sqrt(s) is refused
    (:class:`~simulation.generators.base.KinematicsError`), never generated.
    """

    mass: float
    coupling: float
    name: str = "alp"

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        beams.require_below_threshold(self.mass, f"ALP signal {self.name}")
        return Calibration(float(sigma_alp(self.mass, self.coupling, beams.sqrt_s)), 0.0)

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        beams.require_below_threshold(self.mass, f"ALP signal {self.name}")
        p_e, p_p = beams.draw(rng, n)
        frame = CollisionFrame(p_e, p_p)
        recoil, alp = produce_recoil(rng, frame.sqrt_s, self.mass)
        lab = frame.to_lab(np.stack([recoil, alp], axis=1))
        alp_lab = lab[:, 1]
        gamma1, gamma2 = two_body_decay(alp_lab, 0.0, 0.0, isotropic_directions(rng, (n,)))
        p_alp = np.linalg.norm(alp_lab[:, 1:], axis=-1)
        length = rng.exponential(1.0, n) * alp_decay_length(self.mass, self.coupling, p_alp)
        vertex = alp_lab[:, 1:] / p_alp[:, None] * length[:, None]
        delay = length / (p_alp / alp_lab[:, 0] * SPEED_OF_LIGHT_CM_NS)
        zeros = np.zeros((n, 3))
        return TruthEvents(
            process=self.name,
            p_electron=p_e,
            p_positron=p_p,
            photons=np.stack([lab[:, 0], gamma1, gamma2], axis=1),
            photon_vertex=np.stack([zeros, vertex, vertex], axis=1),
            photon_delay_ns=np.stack([np.zeros(n), delay, delay], axis=1),
            photon_from_alp=np.tile(np.array([False, True, True]), (n, 1)),
            leptons=np.zeros((n, 0, 4)),
            lepton_pdg=np.zeros(0, dtype=np.int32),
            decay_r=np.hypot(vertex[:, 0], vertex[:, 1]),
            mc_ma=self.mass,
        )
