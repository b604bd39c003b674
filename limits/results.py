"""The result of the limits stage and its ``limits/limits.json`` form (design.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from limits.coupling import DecayGeometry, coupling_limit
from limits.mass_model import MassModelInfo
from limits.scan import MassResult
from limits.significance import GlobalSignificance

__all__ = ["LimitsResult", "mass_record"]

Band = tuple[float, float, float, float, float]


def _opt(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _opt_band(v: Sequence[float] | None) -> Band | None:
    if v is None:
        return None
    vals = [float(x) for x in v]
    return None if not all(np.isfinite(vals)) else tuple(vals)  # type: ignore[return-value]


def mass_record(
    info: MassModelInfo,
    geometry: DecayGeometry,
    result: MassResult,
    luminosity_pb: Mapping[str, float],
    sqrt_s: Mapping[str, float],
) -> dict[str, Any]:
    """One mass's entries of :class:`LimitsResult` (cross-sections in pb, couplings in GeV^-1);
    limits, significance and fitted signal are None where the fits failed (``status``)."""
    ref = info.sigma_ref_pb
    out: dict[str, Any] = {
        "status": result.status,
        "sigma_ref": ref,
        "efficiency": info.efficiency,
        "systematics": info.systematics,
        "background_order": info.background_order,
        "sideband_p": info.sideband_p_value,
    }
    spur = result.spurious
    out["spurious"] = None if spur is None else spur.signal
    out["spurious_ratio"] = None if spur is None else spur.ratio_to_data_error
    if result.limit is None or result.discovery is None:
        return out
    disc = result.discovery
    obs = result.limit.observed * ref
    exp = [v * ref for v in result.limit.expected]
    out.update(
        xsec_obs=obs,
        xsec_exp=exp,
        g_obs=coupling_limit(obs, geometry, luminosity_pb, sqrt_s),
        g_exp=[coupling_limit(v, geometry, luminosity_pb, sqrt_s) for v in exp],
        z=disc.z,
        p=disc.p0,
        xsec_fit=disc.mu_hat * ref,
        xsec_fit_err=disc.mu_hat_error * ref,
        yield_err=disc.mu_hat_error * result.signal_per_mu,
    )
    out["yield"] = disc.mu_hat * result.signal_per_mu
    return out


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
    fitted_xsec_pb: tuple[float | None, ...]
    fitted_xsec_pb_error: tuple[float | None, ...]
    fit_status: tuple[str | None, ...]
    background_order: tuple[int | None, ...]
    sideband_p_value: tuple[float | None, ...]
    spurious_signal: tuple[float | None, ...]
    spurious_signal_ratio: tuple[float | None, ...]
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
            return tuple(_opt(by_mass[m].get(key)) if m in by_mass else None for m in masses)

        def status(m: float) -> str | None:
            if m in by_mass:
                return str(by_mass[m]["status"])
            return "excluded" if any(lo < m < hi for lo, hi in excluded) else "no window"

        def band(key: str) -> tuple[Band | None, ...]:
            return tuple(_opt_band(by_mass[m].get(key)) if m in by_mass else None for m in masses)

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
            fitted_xsec_pb=col("xsec_fit"),
            fitted_xsec_pb_error=col("xsec_fit_err"),
            fit_status=tuple(status(m) for m in masses),
            background_order=tuple(
                int(by_mass[m]["background_order"]) if m in by_mass else None for m in masses
            ),
            sideband_p_value=col("sideband_p"),
            spurious_signal=col("spurious"),
            spurious_signal_ratio=col("spurious_ratio"),
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
            "fitted_xsec_pb": list(self.fitted_xsec_pb),
            "fitted_xsec_pb_error": list(self.fitted_xsec_pb_error),
            "fit_status": list(self.fit_status),
            "background_polynomial_order": list(self.background_order),
            "sideband_fit_p_value": list(self.sideband_p_value),
            "spurious_signal_events": list(self.spurious_signal),
            "spurious_signal_over_data_error": list(self.spurious_signal_ratio),
            "signal_reference_xsec_pb": list(self.sigma_ref_pb),
            "efficiency": list(self.efficiency),
            "look_elsewhere": asdict(self.global_significance),
            "timings_s": self.timings_s,
        }
