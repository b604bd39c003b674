"""What every generator shares: beam conditions, the calibration record, the generator protocol,
unweighting, the batch loop and the kinematic guard.

Every generator draws each event's beam energies from the run's nominal values and spreads,
generates in that event's centre-of-mass frame (z along the electron) and takes the particles to
the lab with the crossing angle (physics.md "Beams"). All randomness comes from the
``numpy.random.Generator`` passed in.

A generator is calibrated once per run block (``calibrate``: its cross-section inside the
generator cuts and, for the weighted QED processes, the weight ceiling used for unweighting),
then asked for a number of unweighted events (``generate``). Unweighting is unbiased: an event
whose weight exceeds the ceiling w_max is kept floor(w/w_max) times plus once more with
probability frac(w/w_max) (the copies get independent detector simulation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from ..events import TruthEvents
from ..kinematics import polar_angle
from ..physics import beam_four_momenta
from ..registry import RunBlock

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = [
    "BeamConditions",
    "Calibration",
    "Generator",
    "KinematicsError",
    "acceptance_calibration",
    "check_four_momentum",
    "collect",
    "sample_one_plus_cos2",
]

FloatArray = npt.NDArray[np.float64]

MUON_MASS = 0.1056583755
SPEED_OF_LIGHT_CM_NS = 29.9792458
_BATCH = 100_000
#: tolerance of the four-momentum check, GeV (float64 arithmetic on ~10 GeV sums)
FOUR_MOMENTUM_TOLERANCE_GEV = 1e-6


class KinematicsError(ValueError):
    """A generator was asked for events that violate energy-momentum conservation."""


@dataclass(frozen=True)
class BeamConditions:
    """A run block's nominal beam energies and energy spreads (GeV)."""

    e_her: float
    e_ler: float
    sigma_her: float
    sigma_ler: float
    label: str = ""

    @classmethod
    def from_block(cls, block: RunBlock) -> BeamConditions:
        return cls(block.e_her, block.e_ler, block.sigma_her, block.sigma_ler, block.name)

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

    def require_below_threshold(self, mass: float, what: str) -> None:
        """Refuse a final state of invariant mass ``mass`` (GeV) at or above this block's sqrt(s).

        The bound is the nominal sqrt(s) less five times the energy spread of sqrt(s), so that no
        event of the block, spread included, can fall below the threshold.
        """
        # s = 4 E_her E_ler cos^2(alpha): sigma(sqrt s) = 2 hypot(E_ler s_her, E_her s_ler) / sqrt s
        spread = 2.0 * np.hypot(self.sigma_her * self.e_ler, self.sigma_ler * self.e_her)
        spread /= self.sqrt_s
        limit = self.sqrt_s - 5.0 * spread
        if not mass < limit:
            where = f"run block {self.label}" if self.label else "this run block"
            raise KinematicsError(
                f"{what}: mass {mass:g} GeV is at or above the kinematic limit of {where} "
                f"(sqrt(s) = {self.sqrt_s:.4f} GeV, E_HER = {self.e_her:g}, E_LER = "
                f"{self.e_ler:g} GeV; limit {limit:.4f} GeV with the energy spread)"
            )


@dataclass(frozen=True)
class Calibration:
    """A generator's cross-section inside its cuts (pb) and its unweighting ceiling."""

    sigma_pb: float
    sigma_err_pb: float
    w_max: float = 0.0
    acceptance: float = 1.0


class Generator(Protocol):
    @property
    def name(self) -> str: ...

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

    >>> round(float(sample_one_plus_cos2(np.array([0.5]))[0]), 12)
    0.0
    """
    q = 4.0 - 8.0 * np.asarray(u, dtype=np.float64)
    root = np.sqrt(q * q / 4.0 + 1.0)
    return np.asarray(np.cbrt(-q / 2.0 + root) + np.cbrt(-q / 2.0 - root))


def directions(cos_t: FloatArray, phi: FloatArray) -> FloatArray:
    """Unit three-vectors ``(..., 3)`` from cos(theta) and phi."""
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def massive(direction: FloatArray, momentum: FloatArray, mass: float) -> FloatArray:
    """Four-momenta of particles of ``mass`` with ``momentum`` along ``direction``."""
    out = np.empty((*direction.shape[:-1], 4))
    out[..., 0] = np.sqrt(momentum**2 + mass**2)
    out[..., 1:] = momentum[..., None] * direction
    return out


def in_theta(lab: FloatArray, theta_deg: tuple[float, float]) -> npt.NDArray[np.bool_]:
    """Per particle: lab polar angle inside ``theta_deg`` (degrees, inclusive)."""
    theta = np.degrees(polar_angle(lab))
    return (theta >= theta_deg[0]) & (theta <= theta_deg[1])


def photons_accepted(lab: FloatArray, cuts: GeneratorCuts) -> npt.NDArray[np.bool_]:
    """Per photon: inside the ECL polar range of the cuts and above the energy cut."""
    inside = in_theta(lab, (cuts.theta_min_deg, cuts.theta_max_deg))
    return inside & (lab[..., 0] > cuts.photon_e_min_GeV)


def opening_cos(a: FloatArray, b: FloatArray) -> FloatArray:
    """Cosine of the opening angle between the three-momenta of ``a`` and ``b``."""
    na = np.linalg.norm(a[..., 1:], axis=-1)
    nb = np.linalg.norm(b[..., 1:], axis=-1)
    return np.asarray(np.sum(a[..., 1:] * b[..., 1:], axis=-1) / (na * nb))


def unweight(rng: np.random.Generator, weights: FloatArray, w_max: float) -> npt.NDArray[np.int64]:
    """Indices of kept events, repeated floor(w/w_max) times plus once with prob frac(w/w_max)."""
    ratio = weights / w_max
    copies = np.floor(ratio).astype(np.int64)
    copies += rng.random(len(ratio)) < (ratio - copies)
    return np.repeat(np.arange(len(ratio)), copies)


def acceptance_calibration(sigma_pb: float, passed: npt.NDArray[np.bool_]) -> Calibration:
    """Cross-section inside the cuts of a generator of known total ``sigma_pb`` whose
    calibration events passed the cuts as ``passed`` (binomial error)."""
    n = len(passed)
    fraction = passed.mean()
    return Calibration(
        sigma_pb * fraction,
        sigma_pb * math.sqrt(fraction * (1 - fraction) / n),
        acceptance=fraction,
    )


def collect(n: int, efficiency: float, batch: Callable[[int], TruthEvents]) -> TruthEvents:
    """The first ``n`` events of successive batches; ``batch(size)`` returns the kept events of
    ``size`` tries, and ``efficiency`` (kept per try, from the calibration) sizes the batches."""
    parts: list[TruthEvents] = []
    have = 0
    while have < n:
        size = int(min(_BATCH, max(1000, 1.1 * (n - have) / efficiency)))
        part = batch(size)
        parts.append(part)
        have += len(part)
    return TruthEvents.concatenate(parts).take(np.arange(n))


def check_four_momentum(events: TruthEvents) -> TruthEvents:
    """Return ``events`` unchanged if every event conserves four-momentum, else raise.

    The final state (photons and leptons) must sum to the event's beams (energy spread
    included) within :data:`FOUR_MOMENTUM_TOLERANCE_GEV`, and every particle must have
    non-negative energy and be on (or above) its mass shell.
    """
    if len(events) == 0:
        return events
    total = events.photons.sum(axis=1) + events.leptons.sum(axis=1)
    beams = events.p_electron + events.p_positron
    violation = np.max(np.abs(total - beams), axis=-1)
    particles = np.concatenate([events.photons, events.leptons], axis=1)
    p2 = particles[..., 0] ** 2 - np.sum(particles[..., 1:] ** 2, axis=-1)
    bad = (
        ~np.isfinite(violation)
        | (violation > FOUR_MOMENTUM_TOLERANCE_GEV)
        | np.any(particles[..., 0] < 0, axis=1)
        | np.any(p2 < -FOUR_MOMENTUM_TOLERANCE_GEV, axis=1)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise KinematicsError(
            f"{events.process}: {int(bad.sum())} of {len(events)} generated events violate "
            f"four-momentum conservation (first: event {i}, |sum p - p_beams| = "
            f"{float(violation[i]):.3g} GeV); none are written"
        )
    return events
