"""Data-driven corrections read from the calibration stage's correctionlib file.

The file (``calibration/corrections.json``, a correctionlib CorrectionSet) holds:

``photon_energy_scale`` (period: str, region: int, energy: real) -> E_data / E_MC
    the photon energy scale of data relative to MC, from e+e- -> mu+mu- gamma;
``photon_energy_resolution`` (sample: "data" | "mc", period, region, energy) -> sigma_E / E
    the measured relative resolution; ``photon_theta_resolution`` and ``photon_phi_resolution``
    likewise, in rad;
``trigger_efficiency`` (sample, period, esum: real, variation: "nominal" | "up" | "down")
    the efficiency of ``trg_esum`` measured with ``trg_ncl`` as reference.

MC energies are shifted by the scale, and energies and angles smeared by
sqrt(sigma_data^2 - sigma_MC^2), each with a Gaussian number
that is a pure function of (seed, experiment, run, event, cluster position), so the corrected
energies are the same whatever the chunking or the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Corrections", "hashed_normal"]

FloatArray = npt.NDArray[np.float64]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA 2014): a bijective 64-bit mixer."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def hashed_normal(seed: int, *keys: npt.ArrayLike) -> FloatArray:
    """Standard normal numbers that are a deterministic function of integer keys (broadcast).

    Counter-based: no state, so any subset of events gets the same numbers it would get in any
    other chunking. Box-Muller on two 53-bit uniforms from chained SplitMix64 hashes.
    """
    arrays = np.broadcast_arrays(*[np.asarray(k).astype(np.int64).view(np.uint64) for k in keys])
    with np.errstate(over="ignore"):
        h = _splitmix64(np.full(arrays[0].shape, np.uint64(seed)))
        for a in arrays:
            h = _splitmix64(h ^ a)
        h2 = _splitmix64(h ^ np.uint64(0x5DEECE66D))
    u1 = ((h >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    u2 = (h2 >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.asarray(np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))


@dataclass(frozen=True)
class Corrections:
    """A correctionlib set, kept as its JSON text (so it pickles) and evaluated lazily."""

    json_text: str
    source: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_file(cls, path: str | Path) -> Corrections:
        path = Path(path)
        return cls(path.read_text(), str(path))

    def __getstate__(self) -> dict[str, Any]:
        return {"json_text": self.json_text, "source": self.source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "json_text", state["json_text"])
        object.__setattr__(self, "source", state["source"])
        object.__setattr__(self, "_cache", {})

    @cached_property
    def _set(self) -> Any:
        import correctionlib

        return correctionlib.CorrectionSet.from_string(self.json_text)

    def _evaluate(self, name: str, *args: Any) -> FloatArray:
        shape = np.broadcast_shapes(*[np.shape(a) for a in args if not isinstance(a, str)])
        flat = [a if isinstance(a, str) else np.broadcast_to(a, shape).ravel() for a in args]
        return np.asarray(self._set[name].evaluate(*flat), dtype=np.float64).reshape(shape)

    def energy_scale(self, period: str, region: npt.ArrayLike, energy: npt.ArrayLike) -> FloatArray:
        return self._evaluate(
            "photon_energy_scale",
            period,
            np.asarray(region, dtype=np.int64),
            np.asarray(energy, dtype=np.float64),
        )

    def resolution(
        self,
        sample: str,
        period: str,
        region: npt.ArrayLike,
        energy: npt.ArrayLike,
        quantity: str = "energy",
    ) -> FloatArray:
        """sigma_E/E (``quantity="energy"``) or sigma_theta, sigma_phi in rad."""
        return self._evaluate(
            f"photon_{quantity}_resolution",
            sample,
            period,
            np.asarray(region, dtype=np.int64),
            np.asarray(energy, dtype=np.float64),
        )

    def trigger_efficiency(
        self, sample: str, period: str, esum: npt.ArrayLike, variation: str = "nominal"
    ) -> FloatArray:
        return self._evaluate(
            "trigger_efficiency", sample, period, np.asarray(esum, dtype=np.float64), variation
        )

    def trigger_scale_factor(
        self, period: str, esum: npt.ArrayLike, variation: str = "nominal"
    ) -> FloatArray:
        """Data over MC trigger efficiency (variation applies to the data efficiency)."""
        mc = self.trigger_efficiency("mc", period, esum)
        data = self.trigger_efficiency("data", period, esum, variation)
        return np.where(mc > 0, data / np.where(mc > 0, mc, 1.0), 1.0)

    def extra_smearing(
        self, period: str, region: npt.ArrayLike, energy: npt.ArrayLike, quantity: str
    ) -> FloatArray:
        """sqrt(sigma_data^2 - sigma_MC^2), zero where MC is already worse."""
        sigma_data = self.resolution("data", period, region, energy, quantity)
        sigma_mc = self.resolution("mc", period, region, energy, quantity)
        return np.sqrt(np.clip(sigma_data**2 - sigma_mc**2, 0.0, None))

    def correct_mc(
        self,
        period: str,
        region: npt.ArrayLike,
        energy: FloatArray,
        theta: FloatArray,
        phi: FloatArray,
        keys: tuple[npt.ArrayLike, ...],
        seed: int,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """MC photons shifted to the data energy scale and smeared to the data resolution."""
        scale = self.energy_scale(period, region, energy)
        e = (
            energy
            * scale
            * (
                1.0
                + self.extra_smearing(period, region, energy, "energy")
                * hashed_normal(seed, *keys, 0)
            )
        )
        t = theta + self.extra_smearing(period, region, energy, "theta") * hashed_normal(
            seed, *keys, 1
        )
        p = phi + self.extra_smearing(period, region, energy, "phi") * hashed_normal(seed, *keys, 2)
        return (
            np.asarray(e),
            np.clip(t, 1e-4, np.pi - 1e-4),
            np.remainder(p + np.pi, 2.0 * np.pi) - np.pi,
        )
