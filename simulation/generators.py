"""Event generators for the ALP signal and the backgrounds, numpy/numba-vectorised, lab frame.

Every generator draws each event's beam energies from the run's nominal values and spreads,
generates in that event's centre-of-mass frame (z along the electron) and takes the particles to
the lab with the crossing angle (physics.md "Beams"). All randomness comes from the
``numpy.random.Generator`` passed in.

A generator is calibrated once per run block (:meth:`calibrate`: its cross-section inside the
generator cuts and, for the weighted QED processes, the weight ceiling used for unweighting),
then asked for a number of unweighted events (:meth:`generate`). Unweighting is unbiased: an event
whose weight exceeds the ceiling w_max is kept floor(w/w_max) times plus once more with
probability frac(w/w_max) (the copies get independent detector simulation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from alps.config import GeneratorCuts

from .events import TruthEvents
from .geometry import CDC_THETA_DEG
from .kinematics import CollisionFrame, boost, isotropic_directions, polar_angle, two_body_decay
from .matrix_elements import me2_bhabha_gamma, me2_ggg, me2_mumu_gamma
from .phase_space import ThreeBodySampler
from .physics import (
    ALPHA,
    BR_GG,
    GEV2_TO_PB,
    MESON_MASSES,
    alp_decay_length,
    beam_four_momenta,
    sigma_alp,
)
from .registry import RunBlock

__all__ = [
    "AlpGenerator",
    "BeamConditions",
    "Calibration",
    "DiphotonGenerator",
    "Generator",
    "MesonGammaGenerator",
    "ThreeBodyGenerator",
    "background_generator",
    "sample_one_plus_cos2",
]

FloatArray = npt.NDArray[np.float64]

MUON_MASS = 0.1056583755
SPEED_OF_LIGHT_CM_NS = 29.9792458
_BATCH = 100_000

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
#: peaked angular densities of the QED samplers cover the ECL acceptance seen from the CM frame
_CM_COS_ACCEPTANCE = (-0.965, 0.98)


@dataclass(frozen=True)
class BeamConditions:
    """A run block's nominal beam energies and energy spreads (GeV)."""

    e_her: float
    e_ler: float
    sigma_her: float
    sigma_ler: float

    @classmethod
    def from_block(cls, block: RunBlock) -> BeamConditions:
        return cls(block.e_her, block.e_ler, block.sigma_her, block.sigma_ler)

    @property
    def nominal(self) -> tuple[FloatArray, FloatArray]:
        """The run's calibrated beam four-momenta (what the ntuple's ``beam_*`` hold)."""
        return beam_four_momenta(self.e_her, self.e_ler)

    @property
    def sqrt_s(self) -> float:
        p_e, p_p = self.nominal
        total = p_e + p_p
        return float(np.sqrt(total[0] ** 2 - np.sum(total[1:] ** 2)))

    def draw(self, rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
        """Per-event electron and positron four-momenta with the energy spread."""
        e_her = rng.normal(self.e_her, self.sigma_her, n)
        e_ler = rng.normal(self.e_ler, self.sigma_ler, n)
        return beam_four_momenta(e_her, e_ler)


@dataclass(frozen=True)
class Calibration:
    """A generator's cross-section inside its cuts (pb) and its unweighting ceiling."""

    sigma_pb: float
    sigma_err_pb: float
    w_max: float = 0.0
    acceptance: float = 1.0


class Generator(Protocol):
    name: str

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration: ...

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents: ...


def sample_one_plus_cos2(u: FloatArray) -> FloatArray:
    """Map uniforms on [0, 1) to cos(theta) distributed as 1 + cos^2 theta (exact inverse CDF).

    F(c) = (c + c^3/3 + 4/3) / (8/3); c solves c^3 + 3c + 4 - 8u = 0 (Cardano, one real root).
    """
    q = 4.0 - 8.0 * np.asarray(u, dtype=np.float64)
    root = np.sqrt(q * q / 4.0 + 1.0)
    return np.asarray(np.cbrt(-q / 2.0 + root) + np.cbrt(-q / 2.0 - root))


def _directions(cos_t: FloatArray, phi: FloatArray) -> FloatArray:
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def _massive(direction: FloatArray, momentum: FloatArray, mass: float) -> FloatArray:
    out = np.empty((*direction.shape[:-1], 4))
    out[..., 0] = np.sqrt(momentum**2 + mass**2)
    out[..., 1:] = momentum[..., None] * direction
    return out


def _in_theta(lab: FloatArray, theta_deg: tuple[float, float]) -> npt.NDArray[np.bool_]:
    theta = np.degrees(polar_angle(lab))
    return (theta >= theta_deg[0]) & (theta <= theta_deg[1])


def _photons_accepted(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    """Per photon: inside the ECL polar range of the cuts and above the energy cut."""
    inside = _in_theta(lab, (cuts.theta_min_deg, cuts.theta_max_deg))
    return inside & (lab[..., 0] > cuts.photon_e_min_GeV)


def _opening_cos(a: FloatArray, b: FloatArray) -> FloatArray:
    na = np.linalg.norm(a[..., 1:], axis=-1)
    nb = np.linalg.norm(b[..., 1:], axis=-1)
    return np.asarray(np.sum(a[..., 1:] * b[..., 1:], axis=-1) / (na * nb))


def _unweight(rng: np.random.Generator, weights: FloatArray, w_max: float) -> npt.NDArray[np.int64]:
    """Indices of kept events, repeated floor(w/w_max) times plus once with prob frac(w/w_max)."""
    ratio = weights / w_max
    copies = np.floor(ratio).astype(np.int64)
    copies += rng.random(len(ratio)) < (ratio - copies)
    return np.repeat(np.arange(len(ratio)), copies)


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
    accept: Callable[[FloatArray, GeneratorCuts], npt.NDArray[np.bool_]]

    def weighted(
        self, rng: np.random.Generator, beams: BeamConditions, n: int, cuts: GeneratorCuts
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """n weighted events: beams (electron, positron), lab momenta (n, 3, 4), weights in pb
        (their mean is the cross-section inside the cuts)."""
        p_e, p_p = beams.draw(rng, n)
        frame = CollisionFrame(p_e, p_p)
        k, density = self.sampler.sample(rng, frame.sqrt_s)
        lab = frame.to_lab(k)
        ok = self.accept(lab, cuts) & (density > 0)
        weights = np.zeros(n)
        idx = np.flatnonzero(ok)
        me2 = self.me2(np.ascontiguousarray(k[idx]), np.ascontiguousarray(frame.sqrt_s[idx]))
        weights[idx] = me2 / density[idx] * self.symmetry / (2.0 * frame.s[idx]) * GEV2_TO_PB
        return p_e, p_p, lab, weights

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        n = cuts.calibration_events
        weights = self.weighted(rng, beams, n, cuts)[3]
        positive = weights[weights > 0]
        if len(positive) < 100:
            raise RuntimeError(f"{self.name}: generator cuts leave almost no phase space")
        return Calibration(
            sigma_pb=float(weights.mean()),
            sigma_err_pb=float(weights.std() / math.sqrt(n)),
            w_max=float(np.quantile(positive, 0.999)),
            acceptance=len(positive) / n,
        )

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        parts: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        have = 0
        efficiency = calibration.sigma_pb / calibration.w_max
        while have < n:
            batch = int(min(_BATCH, max(1000, 1.1 * (n - have) / efficiency)))
            p_e, p_p, lab, weights = self.weighted(rng, beams, batch, cuts)
            keep = _unweight(rng, weights, calibration.w_max)
            parts.append((p_e[keep], p_p[keep], lab[keep]))
            have += len(keep)
        p_e, p_p, lab = (np.concatenate([p[i] for p in parts])[:n] for i in range(3))
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


def _accept_ggg(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    return np.all(_photons_accepted(lab, cuts), axis=1)


def _accept_leptons_photon(
    lab: FloatArray, cuts: GeneratorCuts, photon_e_min: float, photon_theta: tuple[float, float]
) -> npt.NDArray[np.bool_]:
    leptons_in = np.all(_in_theta(lab[:, :2], CDC_THETA_DEG), axis=1)
    photon = lab[:, 2]
    photon_in = _in_theta(photon, photon_theta) & (photon[:, 0] > photon_e_min)
    min_cos = np.cos(np.radians(cuts.lepton_photon_angle_min_deg))
    isolated = (_opening_cos(photon, lab[:, 0]) < min_cos) & (
        _opening_cos(photon, lab[:, 1]) < min_cos
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


@dataclass(frozen=True)
class DiphotonGenerator:
    """e+e- -> gamma gamma at leading order (massless): dsigma/dOmega = alpha^2/(2s)
    (1 + cos^2)/(1 - cos^2) in the CM frame, identical photons (physics.md: 2.54 nb with both
    photons inside 17-150 degrees). It reaches three clusters through a beam-background cluster;
    a hard radiated third photon is the gamma gamma gamma sample's (no double counting)."""

    name: str = "gg"
    cos_max: float = 0.99

    def _sigma_range(self, s: float) -> float:
        c = self.cos_max
        return float(np.pi * ALPHA**2 / s * (4.0 * np.arctanh(c) - 2.0 * c) * GEV2_TO_PB)

    def _events(
        self, rng: np.random.Generator, beams: BeamConditions, n: int
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        p_e, p_p = beams.draw(rng, n)
        frame = CollisionFrame(p_e, p_p)
        cos_t = np.empty(0)
        while len(cos_t) < n:  # 1/(1-c^2) proposal, accepted with (1 + c^2)/2
            c = np.tanh(rng.uniform(-1, 1, 2 * n) * np.arctanh(self.cos_max))
            cos_t = np.concatenate([cos_t, c[rng.random(2 * n) < 0.5 * (1 + c * c)]])
        direction = _directions(cos_t[:n], rng.uniform(0, 2 * np.pi, n))
        half = 0.5 * frame.sqrt_s[:, None]
        k = np.empty((n, 2, 4))
        k[:, 0, 0] = k[:, 1, 0] = half[:, 0]
        k[:, 0, 1:] = half * direction
        k[:, 1, 1:] = -half * direction
        return p_e, p_p, frame.to_lab(k)

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        n = cuts.calibration_events
        lab = self._events(rng, beams, n)[2]
        passed = np.all(_photons_accepted(lab, cuts), axis=1)
        fraction = passed.mean()
        sigma = self._sigma_range(beams.sqrt_s**2)
        return Calibration(
            sigma * fraction, sigma * math.sqrt(fraction * (1 - fraction) / n), acceptance=fraction
        )

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        parts = []
        have = 0
        while have < n:
            batch = int(min(_BATCH, max(1000, 1.1 * (n - have) / calibration.acceptance)))
            p_e, p_p, lab = self._events(rng, beams, batch)
            keep = np.all(_photons_accepted(lab, cuts), axis=1)
            parts.append((p_e[keep], p_p[keep], lab[keep]))
            have += int(keep.sum())
        p_e, p_p, lab = (np.concatenate([p[i] for p in parts])[:n] for i in range(3))
        return TruthEvents.prompt(self.name, p_e, p_p, lab)


def _produce_recoil(
    rng: np.random.Generator, sqrt_s: FloatArray, mass: float
) -> tuple[FloatArray, FloatArray]:
    """e+e- -> gamma X (mass ``mass``) with 1 + cos^2 theta*: CM four-momenta of gamma and X."""
    n = len(sqrt_s)
    cos_t = sample_one_plus_cos2(rng.random(n))
    direction = _directions(cos_t, rng.uniform(0, 2 * np.pi, n))
    p = (sqrt_s**2 - mass**2) / (2.0 * sqrt_s)
    x = _massive(direction, p, mass)
    photon = _massive(-direction, p, 0.0)
    return photon, x


@dataclass(frozen=True)
class AlpGenerator:
    """Signal e+e- -> gamma a, a -> gamma gamma (Dolan et al., JHEP 12 (2017) 094).

    Production with 1 + cos^2 theta* in the CM frame, recoil photon momentum (s - m^2)/(2 sqrt s),
    isotropic decay in the ALP rest frame; the decay point is drawn from the exponential decay
    law with mean (p/m) c tau, Gamma = g^2 m^3/(64 pi) (physics.md "Signal"), and the decay
    photons start there, late by the ALP's flight time. Every generated event is kept (no cuts):
    the signal efficiency is counted against all of them. The cross-section is sigma(g, m) at the
    run's nominal sqrt(s).
    """

    mass: float
    coupling: float
    name: str = "alp"

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        return Calibration(float(sigma_alp(self.mass, self.coupling, beams.sqrt_s)), 0.0)

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        p_e, p_p = beams.draw(rng, n)
        frame = CollisionFrame(p_e, p_p)
        recoil, alp = _produce_recoil(rng, frame.sqrt_s, self.mass)
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
        short = {"pi0": "pi0", "eta": "eta", "etaprime": "etap"}[self.meson]
        return short + ("gg" if self.extra_photon else "g")

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
            isr = _massive(_directions(cos_isr, rng.uniform(0, 2 * np.pi, n)), omega, 0.0)
            system = -isr
            system[:, 0] = frame.sqrt_s - omega
            m_system = np.sqrt(system[:, 0] ** 2 - np.sum(system[:, 1:] ** 2, axis=-1))
            photon, meson = _produce_recoil(rng, m_system, m_p)
            beta_sys = system[:, 1:] / system[:, :1]
            photon, meson = boost(photon, beta_sys), boost(meson, beta_sys)
            cms = np.stack([isr, photon, meson], axis=1)
        else:
            photon, meson = _produce_recoil(rng, frame.sqrt_s, m_p)
            cms = np.stack([photon, meson], axis=1)
        lab = frame.to_lab(cms)
        g1, g2 = two_body_decay(lab[:, -1], 0.0, 0.0, isotropic_directions(rng, (n,)))
        photons = np.concatenate([lab[:, :-1], g1[:, None], g2[:, None]], axis=1)
        return TruthEvents.prompt(self.name, p_e, p_p, photons)

    def _accepted(self, events: TruthEvents, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
        return np.sum(_photons_accepted(events.photons, cuts), axis=1) >= 3

    def calibrate(
        self, rng: np.random.Generator, beams: BeamConditions, cuts: GeneratorCuts
    ) -> Calibration:
        n = cuts.calibration_events
        fraction = float(self._accepted(self._events(rng, beams, n), cuts).mean())
        sigma = self.sigma_total_pb
        return Calibration(
            sigma * fraction, sigma * math.sqrt(fraction * (1 - fraction) / n), acceptance=fraction
        )

    def generate(
        self,
        rng: np.random.Generator,
        beams: BeamConditions,
        n: int,
        cuts: GeneratorCuts,
        calibration: Calibration,
    ) -> TruthEvents:
        parts = []
        have = 0
        while have < n:
            batch = int(
                min(_BATCH, max(1000, 1.1 * (n - have) / max(calibration.acceptance, 1e-3)))
            )
            events = self._events(rng, beams, batch)
            keep = self._accepted(events, cuts)
            parts.append(events.take(keep))
            have += int(keep.sum())
        return TruthEvents.concatenate(parts).take(np.arange(n))


def background_generator(name: str, cuts: GeneratorCuts) -> Generator:
    """The generator of a background process by its sample name.

    The QED samplers' lowest soft-photon energy is set below the lowest CM energy a photon that
    passes the lab energy cut can have (E_lab <= gamma (1 + beta) E_cm, gamma (1 + beta) = 1.33 at
    Belle II; 0.7 leaves room for every run's boost).
    """
    acceptance = _CM_COS_ACCEPTANCE
    omega_min = 0.7 * cuts.photon_e_min_GeV
    if name == "ggg":
        sampler = ThreeBodySampler(
            (0.0, 0.0, 0.0), (0, 1, 2), "symmetric", omega_min, acceptance, acceptance
        )
        return ThreeBodyGenerator(name, sampler, me2_ggg, 1.0 / 6.0, ("photon",) * 3, _accept_ggg)
    if name == "mumug":
        omega_mumug = 0.7 * max(cuts.mumug_photon_e_min_GeV, cuts.photon_e_min_GeV)
        sampler = ThreeBodySampler(
            (MUON_MASS, MUON_MASS, 0.0), (2,), "flat", omega_mumug, acceptance
        )
        return ThreeBodyGenerator(
            name, sampler, me2_mumu_gamma, 1.0, (13, -13, "photon"), _accept_mumug
        )
    if name == "eeg":
        sampler = ThreeBodySampler(
            (0.0, 0.0, 0.0), (2,), "forward", omega_min, acceptance, (-0.99, 0.95)
        )
        return ThreeBodyGenerator(
            name, sampler, me2_bhabha_gamma, 1.0, (11, -11, "photon"), _accept_eeg
        )
    if name == "gg":
        return DiphotonGenerator()
    mesons = {"pi0g": "pi0", "etag": "eta", "etapg": "etaprime"}
    if name in mesons:
        return MesonGammaGenerator(mesons[name])
    if name.endswith("gg") and name[:-1] in mesons:
        return MesonGammaGenerator(mesons[name[:-1]], extra_photon=True)
    raise ValueError(f"unknown background process {name!r}")
