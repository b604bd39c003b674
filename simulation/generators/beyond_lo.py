"""Backgrounds beyond the leading-order MC: what a real detector sees and the LO samples lack.

docs/background_model.md describes each model, its source and its approximations.

* :func:`make_ggg_lost`: e+e- -> gamma gamma gamma with exactly one photon outside the ECL
  acceptance (the exact tree-level matrix element, as for ``ggg``); the event reaches three
  clusters through a beam-background cluster.
* :class:`CollinearRadiator` and :class:`RadiativeGenerator`: a leading-order process dressed with
  one initial-state photon radiated collinear to a beam (within ``collinear_angle_deg``), in the
  leading-logarithmic quasi-real-photon approximation. The photon is lost in the beam pipe; the
  hard process happens at the reduced energy and is boosted along the beam: ``gg_isr`` (gamma
  gamma with an extra radiated photon beyond LO), ``ggg_isr`` (the same for gamma gamma gamma)
  and ``eeg_isr`` (e+e- gamma gamma, the radiative
  Bhabha at the next order, background when both tracks are lost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from ..events import TruthEvents
from ..geometry import ECL_THETA_DEG
from ..kinematics import CollisionFrame
from ..matrix_elements import me2_ggg
from ..phase_space import ThreeBodySampler
from ..physics import ALPHA, beam_four_momenta
from .base import (
    BeamConditions,
    Calibration,
    collect,
    in_theta,
    opening_cos,
    photons_accepted,
    unweight,
)
from .qed import (
    DiphotonGenerator,
    ThreeBodyGenerator,
    calibrate_weights,
    make_eeg,
    make_ggg,
    soft_photon_floor,
)

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = [
    "ELECTRON_MASS",
    "CollinearRadiator",
    "DiphotonWeighted",
    "RadiativeGenerator",
    "make_eeg_isr",
    "make_gg_isr",
    "make_ggg_isr",
    "make_ggg_lost",
]

FloatArray = npt.NDArray[np.float64]

ELECTRON_MASS = 0.51099895e-3
#: CM polar range of the peaked angular densities for a photon that may go down the beam pipe
_CM_COS_COLLINEAR = (-0.99995, 0.99995)
#: beam directions (fixed by the crossing angle, whatever the energies)
_BEAM_E, _BEAM_P = beam_four_momenta(1.0, 1.0)


def _outside_ecl_not_collinear(photon: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    """A photon geometrically outside the ECL polar range, above the energy cut, and further
    than ``collinear_angle_deg`` from both beams (closer is the collinear radiator's)."""
    outside = ~in_theta(photon, ECL_THETA_DEG)
    min_cos = np.cos(np.radians(cuts.collinear_angle_deg))
    apart = (opening_cos(photon, _BEAM_E) < min_cos) & (opening_cos(photon, _BEAM_P) < min_cos)
    return outside & apart & (photon[:, 0] > cuts.photon_e_min_GeV)


def _accept_ggg_lost(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    """Generator cut of ``ggg_lost``: two photons inside the ECL cuts, the third lost."""
    accepted = photons_accepted(lab, cuts)
    lost = np.zeros(len(lab), dtype=bool)
    for i in range(3):
        lost |= ~accepted[:, i] & _outside_ecl_not_collinear(lab[:, i], cuts)
    return (accepted.sum(axis=1) == 2) & lost


def make_ggg_lost(cuts: GeneratorCuts) -> ThreeBodyGenerator:
    """e+e- -> gamma gamma gamma with one photon outside the ECL acceptance (tree level, massless:
    physics.md "Backgrounds" matrix element), more than ``collinear_angle_deg`` from the beams."""
    sampler = ThreeBodySampler(
        (0.0, 0.0, 0.0), (0, 1, 2), "symmetric", soft_photon_floor(cuts),
        _CM_COS_COLLINEAR, _CM_COS_COLLINEAR,
    )  # fmt: skip
    return ThreeBodyGenerator(
        "ggg_lost", sampler, me2_ggg, 1.0 / 6.0, ("photon",) * 3, _accept_ggg_lost
    )


@dataclass(frozen=True)
class CollinearRadiator:
    """One photon radiated by either beam, collinear within ``theta_c`` (rad), energy fraction x.

    Per beam, the leading-logarithmic quasi-real-photon density (Weizsaecker-Williams; Baier,
    Fadin, Khoze, Nucl. Phys. B 65 (1973) 381; Budnev et al., Phys. Rep. 15 (1975) 181, Eq. 6.16
    form) integrated over emission angles up to theta_c:

        dP/dx = (alpha / 2 pi) (1 + (1 - x)^2) / x * L,   L = 2 ln(theta_c E_beam / m_e)

    with E_beam = sqrt(s)/2 in the CM frame; both beams radiate (twice the density). The
    radiating beam keeps (1 - x) of its four-momentum (massless, no recoil angle: the
    photon goes along the beam). Events are drawn with x ~ 1/x on [x_min, x_max] and weighted by
    the ratio of densities. Approximations: one emission (no exponentiation), no interference
    between the beams, the photon exactly collinear (it is lost in the beam pipe either way:
    the beams are 2.4 degrees from z, the ECL starts at 12.4 degrees).
    """

    x_min: float
    x_max: float
    theta_c: float

    def log_factor(self, sqrt_s: FloatArray | float) -> FloatArray:
        """L = 2 ln(theta_c E_beam / m_e)."""
        return np.asarray(2.0 * np.log(self.theta_c * 0.5 * np.asarray(sqrt_s) / ELECTRON_MASS))

    @staticmethod
    def _splitting_integral(x_lo: float, x_hi: float) -> float:
        """Integral of (1 + (1 - x)^2) / x over [x_lo, x_hi]."""
        f = lambda x: 2.0 * math.log(x) - 2.0 * x + 0.5 * x * x  # noqa: E731
        return f(x_hi) - f(x_lo)

    def emission_probability(self, sqrt_s: float) -> float:
        """Probability that either beam radiates x > x_min inside theta_c (the part the LO
        sample must give up when this is added: the radiator is unitary)."""
        per_beam = ALPHA / (2.0 * math.pi) * float(self.log_factor(sqrt_s))
        return 2.0 * per_beam * self._splitting_integral(self.x_min, 1.0)

    def radiate(
        self, rng: np.random.Generator, p_e: FloatArray, p_p: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Reduced beams, the radiated photons ``(n, 4)`` and the event weights (the
        emission density over the sampling density, both beams)."""
        n = len(p_e)
        sqrt_s = CollisionFrame(p_e, p_p).sqrt_s
        x = self.x_min * (self.x_max / self.x_min) ** rng.random(n)
        from_electron = rng.random(n) < 0.5
        leg = np.where(from_electron[:, None], p_e, p_p)
        photon = x[:, None] * leg
        p_e = np.where(from_electron[:, None], p_e - photon, p_e)
        p_p = np.where(from_electron[:, None], p_p, p_p - photon)
        density = ALPHA / (2.0 * math.pi) * self.log_factor(sqrt_s) * (1.0 + (1.0 - x) ** 2) / x
        sampling = 1.0 / (x * math.log(self.x_max / self.x_min))
        return p_e, p_p, photon, 2.0 * density / sampling


class WeightedProcess(Protocol):
    """A leading-order process that can give weighted events at given beam four-momenta."""

    @property
    def name(self) -> str: ...

    def weighted_at(
        self, rng: np.random.Generator, p_e: FloatArray, p_p: FloatArray, cuts: GeneratorCuts
    ) -> tuple[FloatArray, FloatArray]: ...

    def events(self, p_e: FloatArray, p_p: FloatArray, lab: FloatArray) -> TruthEvents: ...


@dataclass(frozen=True)
class DiphotonWeighted:
    """e+e- -> gamma gamma as weighted events (weight = sigma(s') inside cos_max, 0 outside the
    ECL cuts), so that the radiator can vary s event by event."""

    lo: DiphotonGenerator = field(default_factory=DiphotonGenerator)

    @property
    def name(self) -> str:
        return self.lo.name

    def weighted_at(
        self, rng: np.random.Generator, p_e: FloatArray, p_p: FloatArray, cuts: GeneratorCuts
    ) -> tuple[FloatArray, FloatArray]:
        lab = self.lo.momenta_at(rng, p_e, p_p)
        accepted = np.all(photons_accepted(lab, cuts), axis=1)
        s = CollisionFrame(p_e, p_p).s
        return lab, np.where(accepted, self.lo.sigma_range(s), 0.0)

    def events(self, p_e: FloatArray, p_p: FloatArray, lab: FloatArray) -> TruthEvents:
        return TruthEvents.prompt(self.name, p_e, p_p, lab)


@dataclass(frozen=True)
class RadiativeGenerator:
    """``process`` dressed with one collinear initial-state photon (:class:`CollinearRadiator`).

    The truth keeps the event's original beams and lists the radiated photon last among the
    photons, so four-momentum is conserved; it makes no cluster (inside the beam pipe).
    """

    name: str
    process: WeightedProcess
    radiator: CollinearRadiator

    def weighted(
        self, rng: np.random.Generator, beams: BeamConditions, n: int, cuts: GeneratorCuts
    ) -> tuple[TruthEvents, FloatArray]:
        p_e, p_p = beams.draw(rng, n)
        q_e, q_p, photon, w_rad = self.radiator.radiate(rng, p_e, p_p)
        lab, weights = self.process.weighted_at(rng, q_e, q_p, cuts)
        hard = self.process.events(p_e, p_p, lab)
        truth = replace(
            hard,
            process=self.name,
            photons=np.concatenate([hard.photons, photon[:, None]], axis=1),
            photon_vertex=np.zeros((n, hard.photons.shape[1] + 1, 3)),
            photon_delay_ns=np.zeros((n, hard.photons.shape[1] + 1)),
            photon_from_alp=np.zeros((n, hard.photons.shape[1] + 1), dtype=bool),
        )
        return truth, weights * w_rad

    def emission_probability(self, beams: BeamConditions) -> float:
        return self.radiator.emission_probability(beams.sqrt_s)

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        return calibrate_weights(
            self.name, self.weighted(rng, beams, cuts.calibration_events, cuts)[1]
        )

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        def batch(size: int) -> TruthEvents:
            truth, weights = self.weighted(rng, beams, size, cuts)
            return truth.take(unweight(rng, weights, calibration.w_max))

        return collect(n, calibration.sigma_pb / calibration.w_max, batch)


def _radiator(cuts: GeneratorCuts) -> CollinearRadiator:
    return CollinearRadiator(cuts.isr_x_min, cuts.isr_x_max, math.radians(cuts.collinear_angle_deg))


def make_gg_isr(cuts: GeneratorCuts) -> RadiativeGenerator:
    """gamma gamma (LO, both photons inside the ECL cuts) with a collinear ISR photon."""
    return RadiativeGenerator("gg_isr", DiphotonWeighted(), _radiator(cuts))


def make_ggg_isr(cuts: GeneratorCuts) -> RadiativeGenerator:
    """gamma gamma gamma (LO, all three photons inside the ECL cuts) with a collinear ISR photon."""
    return RadiativeGenerator("ggg_isr", make_ggg(cuts), _radiator(cuts))


def make_eeg_isr(cuts: GeneratorCuts) -> RadiativeGenerator:
    """e+e- gamma (radiative Bhabha in the CDC acceptance) with a collinear ISR photon."""
    return RadiativeGenerator("eeg_isr", make_eeg(cuts), _radiator(cuts))
