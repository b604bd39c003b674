"""The result of the limits stage and its ``limits/limits.json`` form (design.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from limits.significance import GlobalSignificance

__all__ = ["LimitsResult"]

Band = tuple[float, float, float, float, float]


def _opt(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _opt_band(v: Sequence[float] | None) -> Band | None:
    if v is None:
        return None
    vals = [float(x) for x in v]
    return None if not all(np.isfinite(vals)) else tuple(vals)  # type: ignore[return-value]


@dataclass(frozen=True)
class LimitsResult:
    """Limits and significances at every scan mass (None where not analysed or excluded).

    Cross-sections in pb (sigma(e+e- -> gamma a) x P_decay, i.e. for ALPs that decay inside the
    ECL), couplings in GeV^-1; bands ordered (-2, -1, median, +1, +2 sigma)."""

    masses_GeV: tuple[float, ...]
    observed_xsec_pb: tuple[float | None, ...]
    expected_xsec_pb: tuple[Band | None, ...]
    observed_g: tuple[float | None, ...]
    expected_g: tuple[Band | None, ...]
    local_significance: tuple[float | None, ...]
    local_p_value: tuple[float | None, ...]
    fitted_signal_yield: tuple[float | None, ...]
    fitted_signal_yield_error: tuple[float | None, ...]
    sigma_ref_pb: tuple[float | None, ...]
    efficiency: tuple[float | None, ...]
    global_significance: GlobalSignificance
    excluded_regions_GeV: tuple[tuple[float, float], ...]
    luminosity_fb: float
    working_point: float | None
    confidence_level: float
    provenance: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def assemble(
        cls,
        *,
        masses: Sequence[float],
        by_mass: Mapping[float, Mapping[str, Any]],
        global_significance: GlobalSignificance,
        excluded: Sequence[tuple[float, float]],
        luminosity_fb: float,
        working_point: float | None,
        confidence_level: float,
        provenance: dict[str, Any],
        timings_s: dict[str, float],
    ) -> LimitsResult:
        def col(key: str) -> tuple[float | None, ...]:
            return tuple(_opt(by_mass[m][key]) if m in by_mass else None for m in masses)

        def band(key: str) -> tuple[Band | None, ...]:
            return tuple(_opt_band(by_mass[m][key]) if m in by_mass else None for m in masses)

        return cls(
            masses_GeV=tuple(float(m) for m in masses),
            observed_xsec_pb=col("xsec_obs"),
            expected_xsec_pb=band("xsec_exp"),
            observed_g=col("g_obs"),
            expected_g=band("g_exp"),
            local_significance=col("z"),
            local_p_value=col("p"),
            fitted_signal_yield=col("yield"),
            fitted_signal_yield_error=col("yield_err"),
            sigma_ref_pb=col("sigma_ref"),
            efficiency=col("efficiency"),
            global_significance=global_significance,
            excluded_regions_GeV=tuple((float(a), float(b)) for a, b in excluded),
            luminosity_fb=float(luminosity_fb),
            working_point=working_point,
            confidence_level=confidence_level,
            provenance=dict(provenance),
            timings_s=dict(timings_s),
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The design.md ``limits/limits.json`` layout, plus documented extra keys."""
        return {
            "masses_GeV": list(self.masses_GeV),
            "observed": {"xsec_pb": list(self.observed_xsec_pb), "g_GeV-1": list(self.observed_g)},
            "expected": {
                "xsec_pb": [None if b is None else list(b) for b in self.expected_xsec_pb],
                "g_GeV-1": [None if b is None else list(b) for b in self.expected_g],
            },
            "local_significance": list(self.local_significance),
            "global_significance": self.global_significance.z_global,
            "excluded_mass_regions_GeV": [list(r) for r in self.excluded_regions_GeV],
            "luminosity_fb-1": self.luminosity_fb,
            "provenance": self.provenance,
            # extras (not in the design.md minimum): everything a reader needs to interpret them
            "confidence_level": self.confidence_level,
            "working_point": self.working_point,
            "local_p_value": list(self.local_p_value),
            "fitted_signal_yield": list(self.fitted_signal_yield),
            "fitted_signal_yield_error": list(self.fitted_signal_yield_error),
            "signal_reference_xsec_pb": list(self.sigma_ref_pb),
            "efficiency": list(self.efficiency),
            "look_elsewhere": asdict(self.global_significance),
            "timings_s": self.timings_s,
        }
