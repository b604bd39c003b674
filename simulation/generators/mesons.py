"""e+e- -> P gamma and P gamma gamma, P = pi0, eta, eta' decaying to gamma gamma: the peaking
backgrounds (physics.md "Backgrounds")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..events import TruthEvents
from ..kinematics import CollisionFrame, boost, isotropic_directions, two_body_decay
from ..physics import BR_GG, MESON_MASSES
from .base import (
    BeamConditions,
    Calibration,
    acceptance_calibration,
    collect,
    directions,
    massive,
    photons_accepted,
)
from .signal import produce_recoil

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = [
    "SIGMA_MESON_GAMMA_GAMMA_PB",
    "SIGMA_MESON_GAMMA_PB",
    "MesonGammaGenerator",
    "make_meson",
]

FloatArray = npt.NDArray[np.float64]

#: physics.md "Backgrounds": sigma(P gamma) * BR(P -> gamma gamma) in pb. For pi0 the seed's
#: sigma_eff = 7.26e-6 nb is taken to include the branching fraction; eta and eta' are the BaBar
#: measurements (4.5 fb, 5.4 fb) times BR(gamma gamma).
SIGMA_MESON_GAMMA_PB = {
    "pi0": 7.26e-3,
    "eta": 4.5e-3 * BR_GG["eta"],
    "etaprime": 5.4e-3 * BR_GG["etaprime"],
}
#: physics.md: sigma_eff(pi0 gamma gamma) = 1.68e-3 nb (seed); eta and eta' scaled by their
#: P gamma ratio to pi0 gamma (an *estimate*).
SIGMA_MESON_GAMMA_GAMMA_PB = {
    meson: 1.68 * SIGMA_MESON_GAMMA_PB[meson] / SIGMA_MESON_GAMMA_PB["pi0"]
    for meson in SIGMA_MESON_GAMMA_PB
}
#: energy fraction range of the extra (mostly beam-collinear) photon in P gamma gamma (*estimate*)
_ISR_X_RANGE = (0.005, 0.5)
_SHORT = {"pi0": "pi0", "eta": "eta", "etaprime": "etap"}


@dataclass(frozen=True)
class MesonGammaGenerator:
    """e+e- -> P gamma (and P gamma gamma), P = pi0, eta, eta' decaying to gamma gamma.

    P gamma: 1 + cos^2 theta* production (vector-current transition), isotropic P -> gamma gamma;
    sigma * BR from physics.md ("Backgrounds"). P gamma gamma (``extra_photon``): the next order,
    modelled as P gamma plus a photon with energy fraction x ~ 1/x in [0.005, 0.5] and the
    initial-state-radiation angular density 1/(1 - beta^2 cos^2 theta) (mostly lost along the
    beams), the P gamma system produced in its own rest frame; normalised to the seed's
    sigma_eff(pi0 gamma gamma) = 1.68 pb, eta and eta' scaled by their P gamma ratio (*estimate*).
    Generator cut: at least three photons inside the ECL cuts.
    """

    meson: str
    extra_photon: bool = False

    @property
    def name(self) -> str:
        return _SHORT[self.meson] + ("gg" if self.extra_photon else "g")

    @property
    def sigma_total_pb(self) -> float:
        table = SIGMA_MESON_GAMMA_GAMMA_PB if self.extra_photon else SIGMA_MESON_GAMMA_PB
        return table[self.meson]

    def _events(self, rng: np.random.Generator, beams: BeamConditions, n: int) -> TruthEvents:
        p_e, p_p = beams.draw(rng, n)
        frame = CollisionFrame(p_e, p_p)
        m_p = MESON_MASSES[self.meson]
        if self.extra_photon:
            x_lo, x_hi = _ISR_X_RANGE
            omega = 0.5 * frame.sqrt_s * x_lo * (x_hi / x_lo) ** rng.random(n)
            beta = math.sqrt(1.0 - 4.0 * 0.000511**2 / beams.sqrt_s**2)
            cos_isr = np.tanh(rng.uniform(-1, 1, n) * np.arctanh(beta)) / beta
            isr = massive(directions(cos_isr, rng.uniform(0, 2 * np.pi, n)), omega, 0.0)
            system = -isr
            system[:, 0] = frame.sqrt_s - omega
            m_system = np.sqrt(system[:, 0] ** 2 - np.sum(system[:, 1:] ** 2, axis=-1))
            photon, meson = produce_recoil(rng, m_system, m_p)
            beta_sys = system[:, 1:] / system[:, :1]
            photon, meson = boost(photon, beta_sys), boost(meson, beta_sys)
            cms = np.stack([isr, photon, meson], axis=1)
        else:
            photon, meson = produce_recoil(rng, frame.sqrt_s, m_p)
            cms = np.stack([photon, meson], axis=1)
        lab = frame.to_lab(cms)
        g1, g2 = two_body_decay(lab[:, -1], 0.0, 0.0, isotropic_directions(rng, (n,)))
        photons = np.concatenate([lab[:, :-1], g1[:, None], g2[:, None]], axis=1)
        return TruthEvents.prompt(self.name, p_e, p_p, photons)

    def _accepted(self, events: TruthEvents, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
        return np.sum(photons_accepted(events.photons, cuts), axis=1) >= 3

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        events = self._events(rng, beams, cuts.calibration_events)
        return acceptance_calibration(self.sigma_total_pb, self._accepted(events, cuts))

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        def batch(size: int) -> TruthEvents:
            events = self._events(rng, beams, size)
            return events.take(self._accepted(events, cuts))

        return collect(n, max(calibration.acceptance, 1e-3), batch)


def make_meson(cuts: GeneratorCuts, meson: str, extra_photon: bool = False) -> MesonGammaGenerator:
    """The registry's factory of P gamma (``extra_photon``: P gamma gamma) for meson ``meson``."""
    return MesonGammaGenerator(meson, extra_photon)
