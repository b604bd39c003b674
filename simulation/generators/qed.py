"""QED backgrounds at leading order: e+e- -> gamma gamma gamma, gamma gamma, e+e- gamma, mu+mu- gamma.

The three-body processes use the exact tree-level matrix elements (:mod:`simulation.matrix_elements`)
on the multichannel phase space of :mod:`simulation.phase_space`, weighted and then unweighted;
gamma gamma is drawn directly from its analytic angular distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..events import TruthEvents
from ..geometry import CDC_THETA_DEG
from ..kinematics import CollisionFrame
from ..matrix_elements import me2_bhabha_gamma, me2_ggg, me2_mumu_gamma
from ..phase_space import ThreeBodySampler
from ..physics import ALPHA, GEV2_TO_PB
from .base import (
    MUON_MASS,
    BeamConditions,
    Calibration,
    acceptance_calibration,
    collect,
    directions,
    in_theta,
    opening_cos,
    photons_accepted,
    unweight,
)

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = [
    "DiphotonGenerator",
    "ThreeBodyGenerator",
    "make_eeg",
    "make_gg",
    "make_ggg",
    "make_mumug",
]

FloatArray = npt.NDArray[np.float64]
Accept = Callable[[FloatArray, "GeneratorCuts"], npt.NDArray[np.bool_]]

#: peaked angular densities of the QED samplers cover the ECL acceptance seen from the CM frame
CM_COS_ACCEPTANCE = (-0.965, 0.98)


@dataclass(frozen=True)
class ThreeBodyGenerator:
    """A 2 -> 3 QED process generated with :class:`ThreeBodySampler` and unweighted.

    ``layout`` gives, for the three sampled particles, either "photon" or a lepton PDG code.
    ``accept(lab, cuts)`` returns the per-event generator cut on lab momenta ``(n, 3, 4)``.
    """

    name: str
    sampler: ThreeBodySampler
    me2: Callable[[FloatArray, FloatArray], FloatArray]
    symmetry: float
    layout: tuple[str | int, str | int, str | int]
    accept: Accept

    def weighted_at(
        self, rng: np.random.Generator, p_e: FloatArray, p_p: FloatArray, cuts: GeneratorCuts
    ) -> tuple[FloatArray, FloatArray]:
        """Weighted events for given beam four-momenta: lab momenta ``(n, 3, 4)`` and weights
        in pb (their mean is the cross-section inside the cuts)."""
        n = len(p_e)
        frame = CollisionFrame(p_e, p_p)
        k, density = self.sampler.sample(rng, frame.sqrt_s)
        lab = frame.to_lab(k)
        ok = self.accept(lab, cuts) & (density > 0)
        weights = np.zeros(n)
        idx = np.flatnonzero(ok)
        me2 = self.me2(np.ascontiguousarray(k[idx]), np.ascontiguousarray(frame.sqrt_s[idx]))
        weights[idx] = me2 / density[idx] * self.symmetry / (2.0 * frame.s[idx]) * GEV2_TO_PB
        return lab, weights

    def weighted(
        self, rng: np.random.Generator, beams: BeamConditions, n: int, cuts: GeneratorCuts
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """n weighted events: beams (electron, positron), lab momenta (n, 3, 4), weights in pb."""
        p_e, p_p = beams.draw(rng, n)
        lab, weights = self.weighted_at(rng, p_e, p_p, cuts)
        return p_e, p_p, lab, weights

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        return calibrate_weights(
            self.name, self.weighted(rng, beams, cuts.calibration_events, cuts)[3]
        )

    def events(self, p_e: FloatArray, p_p: FloatArray, lab: FloatArray) -> TruthEvents:
        """Truth events of this process from beams and lab momenta ``(n, 3, 4)``."""
        photon_idx = [i for i, kind in enumerate(self.layout) if kind == "photon"]
        lepton_idx = [i for i, kind in enumerate(self.layout) if kind != "photon"]
        return TruthEvents.prompt(
            self.name,
            p_e,
            p_p,
            np.ascontiguousarray(lab[:, photon_idx]),
            np.ascontiguousarray(lab[:, lepton_idx]),
            tuple(int(self.layout[i]) for i in lepton_idx),
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
            p_e, p_p, lab, weights = self.weighted(rng, beams, size, cuts)
            keep = unweight(rng, weights, calibration.w_max)
            return self.events(p_e[keep], p_p[keep], lab[keep])

        return collect(n, calibration.sigma_pb / calibration.w_max, batch)


def calibrate_weights(name: str, weights: FloatArray) -> Calibration:
    """Cross-section (mean weight), its error and the unweighting ceiling (99.9% quantile of
    the positive weights) from a calibration run's event weights in pb."""
    n = len(weights)
    positive = weights[weights > 0]
    if len(positive) < 100:
        raise RuntimeError(f"{name}: generator cuts leave almost no phase space")
    return Calibration(
        sigma_pb=float(weights.mean()),
        sigma_err_pb=float(weights.std() / math.sqrt(n)),
        w_max=float(np.quantile(positive, 0.999)),
        acceptance=len(positive) / n,
    )


def _accept_ggg(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    return np.all(photons_accepted(lab, cuts), axis=1)


def _accept_leptons_photon(
    lab: FloatArray, cuts: GeneratorCuts, photon_e_min: float, photon_theta: tuple[float, float]
) -> npt.NDArray[np.bool_]:
    leptons_in = np.all(in_theta(lab[:, :2], CDC_THETA_DEG), axis=1)
    photon = lab[:, 2]
    photon_in = in_theta(photon, photon_theta) & (photon[:, 0] > photon_e_min)
    min_cos = np.cos(np.radians(cuts.lepton_photon_angle_min_deg))
    isolated = (opening_cos(photon, lab[:, 0]) < min_cos) & (
        opening_cos(photon, lab[:, 1]) < min_cos
    )
    return leptons_in & photon_in & isolated


def _accept_mumug(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    """mu mu gamma, the calibration channel: both muons inside the CDC acceptance (tracks), the
    photon inside the ECL above the calibration energy and isolated from the muons."""
    e_min = max(cuts.mumug_photon_e_min_GeV, cuts.photon_e_min_GeV)
    return _accept_leptons_photon(lab, cuts, e_min, (cuts.theta_min_deg, cuts.theta_max_deg))


def _accept_eeg(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    """e e gamma reaching three photon candidates: all three inside the CDC acceptance (the
    pre-selection's photon polar range), the photon isolated from the leptons and every particle
    above the photon energy cut. It becomes background only when both tracks are lost (the
    detector simulation applies that, with the run's track-finding inefficiency)."""
    energetic = np.all(lab[..., 0] > cuts.photon_e_min_GeV, axis=1)
    return energetic & _accept_leptons_photon(lab, cuts, cuts.photon_e_min_GeV, CDC_THETA_DEG)


def soft_photon_floor(cuts: GeneratorCuts, e_min: float | None = None) -> float:
    """The QED samplers' lowest soft-photon energy in the CM frame, below the lowest CM energy a
    photon passing the lab energy cut can have (E_lab <= gamma (1 + beta) E_cm, gamma (1 + beta)
    = 1.33 at Belle II; 0.7 leaves room for every run's boost)."""
    return 0.7 * (cuts.photon_e_min_GeV if e_min is None else e_min)


def make_ggg(cuts: GeneratorCuts) -> ThreeBodyGenerator:
    """e+e- -> gamma gamma gamma, all three photons inside the ECL cuts (physics.md: 186 pb)."""
    sampler = ThreeBodySampler(
        (0.0, 0.0, 0.0), (0, 1, 2), "symmetric", soft_photon_floor(cuts),
        CM_COS_ACCEPTANCE, CM_COS_ACCEPTANCE,
    )  # fmt: skip
    return ThreeBodyGenerator("ggg", sampler, me2_ggg, 1.0 / 6.0, ("photon",) * 3, _accept_ggg)


def make_mumug(cuts: GeneratorCuts) -> ThreeBodyGenerator:
    """e+e- -> mu+ mu- gamma, the calibration channel."""
    omega = soft_photon_floor(cuts, max(cuts.mumug_photon_e_min_GeV, cuts.photon_e_min_GeV))
    sampler = ThreeBodySampler((MUON_MASS, MUON_MASS, 0.0), (2,), "flat", omega, CM_COS_ACCEPTANCE)
    return ThreeBodyGenerator(
        "mumug", sampler, me2_mumu_gamma, 1.0, (13, -13, "photon"), _accept_mumug
    )


def make_eeg(cuts: GeneratorCuts) -> ThreeBodyGenerator:
    """e+e- -> e+e- gamma (radiative Bhabha) with all three particles in the CDC acceptance."""
    sampler = ThreeBodySampler(
        (0.0, 0.0, 0.0), (2,), "forward", soft_photon_floor(cuts), CM_COS_ACCEPTANCE, (-0.99, 0.95)
    )
    return ThreeBodyGenerator(
        "eeg", sampler, me2_bhabha_gamma, 1.0, (11, -11, "photon"), _accept_eeg
    )


@dataclass(frozen=True)
class DiphotonGenerator:
    """e+e- -> gamma gamma at leading order (massless): dsigma/dOmega = alpha^2/(2s)
    (1 + cos^2)/(1 - cos^2) in the CM frame, identical photons (physics.md: 2.54 nb with both
    photons inside 17-150 degrees). It reaches three clusters through a beam-background cluster;
    a hard radiated third photon is the gamma gamma gamma sample's (no double counting)."""

    name: str = "gg"
    cos_max: float = 0.99

    def sigma_range(self, s: FloatArray | float) -> FloatArray:
        """Cross-section (pb) with |cos theta*| < cos_max at CM energy squared ``s`` (GeV^2)."""
        c = self.cos_max
        return np.asarray(
            np.pi * ALPHA**2 / np.asarray(s) * (4.0 * np.arctanh(c) - 2.0 * c) * GEV2_TO_PB
        )

    def momenta_at(self, rng: np.random.Generator, p_e: FloatArray, p_p: FloatArray) -> FloatArray:
        """Lab momenta ``(n, 2, 4)`` of the photon pair for given beam four-momenta."""
        n = len(p_e)
        frame = CollisionFrame(p_e, p_p)
        cos_t = np.empty(0)
        while len(cos_t) < n:  # 1/(1-c^2) proposal, accepted with (1 + c^2)/2
            c = np.tanh(rng.uniform(-1, 1, 2 * n) * np.arctanh(self.cos_max))
            cos_t = np.concatenate([cos_t, c[rng.random(2 * n) < 0.5 * (1 + c * c)]])
        direction = directions(cos_t[:n], rng.uniform(0, 2 * np.pi, n))
        half = 0.5 * frame.sqrt_s[:, None]
        k = np.empty((n, 2, 4))
        k[:, 0, 0] = k[:, 1, 0] = half[:, 0]
        k[:, 0, 1:] = half * direction
        k[:, 1, 1:] = -half * direction
        return frame.to_lab(k)

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        p_e, p_p = beams.draw(rng, cuts.calibration_events)
        lab = self.momenta_at(rng, p_e, p_p)
        passed = np.all(photons_accepted(lab, cuts), axis=1)
        return acceptance_calibration(float(self.sigma_range(beams.sqrt_s**2)), passed)

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        def batch(size: int) -> TruthEvents:
            p_e, p_p = beams.draw(rng, size)
            lab = self.momenta_at(rng, p_e, p_p)
            keep = np.all(photons_accepted(lab, cuts), axis=1)
            return TruthEvents.prompt(self.name, p_e[keep], p_p[keep], lab[keep])

        return collect(n, calibration.acceptance, batch)


def make_gg(cuts: GeneratorCuts) -> DiphotonGenerator:
    """e+e- -> gamma gamma at leading order, both photons inside the ECL cuts."""
    return DiphotonGenerator()
