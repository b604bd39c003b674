"""Typed, frozen analysis configuration, validated once at the edge.

The analysis YAML is loaded with :func:`load_config` into an :class:`AnalysisConfig`; every section
is a frozen pydantic model that forbids unknown fields, so a typo or a bad value is reported with
the dotted name of the field (``simulation.signal.events_per_mass: Input should be greater than
0``). The objects pickle, which is how the processor ships them to Dask workers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .processes import MC_BACKGROUNDS, NATURE_BACKGROUNDS, background_names

__all__ = [
    "AnalysisConfig",
    "ConfigError",
    "DetectorConfig",
    "GeneratorCuts",
    "HistogramConfig",
    "InjectionConfig",
    "KinfitConfig",
    "LimitsConfig",
    "MassGrid",
    "MassResolution",
    "NatureConfig",
    "PreselectionConfig",
    "ProcessingConfig",
    "ReportConfig",
    "SignalConfig",
    "SimulationConfig",
    "SystematicsConfig",
    "TrainingConfig",
    "config_hash",
    "default_config_path",
    "load_config",
]


def _check_processes(value: tuple[str, ...]) -> tuple[str, ...]:
    known = background_names()
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ValueError(f"unknown processes {unknown}; known: {list(known)}")
    return value


class ConfigError(ValueError):
    """A configuration file or value that cannot be used; the message names the field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MassGrid(_Frozen):
    """Masses in GeV: either an explicit list or a start/stop/step range (stop included)."""

    start: float | None = Field(default=None, gt=0)
    stop: float | None = Field(default=None, gt=0)
    step: float | None = Field(default=None, gt=0)
    values: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> MassGrid:
        has_range = None not in (self.start, self.stop, self.step)
        if has_range == (self.values is not None):
            raise ValueError("give either start/stop/step or values, not both or neither")
        if has_range and self.stop < self.start:  # type: ignore[operator]
            raise ValueError("stop must not be below start")
        if self.values is not None and any(v <= 0 for v in self.values):
            raise ValueError("masses must be positive")
        return self

    def masses(self) -> np.ndarray:
        """The grid as an array of GeV, rounded to the MeV."""
        if self.values is not None:
            return np.round(np.asarray(self.values, dtype=np.float64), 4)
        n = int(np.floor((self.stop - self.start) / self.step + 1e-6)) + 1  # type: ignore[operator]
        return np.round(self.start + self.step * np.arange(n), 4)  # type: ignore[operator]


class GeneratorCuts(_Frozen):
    """Generator-level phase-space cuts, lab frame; looser than any selection downstream."""

    theta_min_deg: float = Field(default=12.4, ge=0, le=90)
    theta_max_deg: float = Field(default=155.1, ge=90, le=180)
    photon_e_min_GeV: float = Field(default=0.08, gt=0)
    mumug_photon_e_min_GeV: float = Field(default=0.5, gt=0)
    lepton_photon_angle_min_deg: float = Field(default=10.0, ge=0, le=90)
    calibration_events: int = Field(default=100_000, ge=1000)
    collinear_angle_deg: float = Field(
        default=1.0, gt=0, lt=12.4, description="beyond-LO: photons closer to a beam are ISR's"
    )
    isr_x_min: float = Field(default=0.01, gt=0, lt=1, description="lowest ISR energy fraction")
    isr_x_max: float = Field(default=0.5, gt=0, le=1, description="highest ISR energy fraction")


class InjectionConfig(_Frozen):
    """A signal hidden in the pseudo-data."""

    mass_GeV: float = Field(gt=0)
    coupling_GeV: float = Field(gt=0, description="g_a_gamma_gamma in GeV^-1")


class SignalConfig(_Frozen):
    masses: MassGrid = MassGrid(start=0.175, stop=10.375, step=0.05)
    coupling_GeV: float = Field(default=1.0e-3, gt=0, description="reference g_agg in GeV^-1")
    events_per_mass: int = Field(default=5000, gt=0)


class NatureConfig(_Frozen):
    """What the pseudo-data contain and the MC does not know (docs/background_model.md).

    The numbers are *estimates*: they make data/MC checks, control regions and data-driven
    corrections find something, not measurements."""

    enabled: bool = True
    backgrounds: tuple[str, ...] = Field(
        default=NATURE_BACKGROUNDS,
        description="components added to the pseudo-data only",
    )
    background_level_scale: float = Field(
        default=1.1, gt=0, description="mean beam-background cluster rate / the registry's"
    )
    background_level_spread: float = Field(
        default=0.3, ge=0, le=2, description="run-to-run log-normal spread of that rate"
    )
    correlated_track_loss: float = Field(
        default=0.01, ge=0, le=1, description="P(both tracks lost together) / inefficiency"
    )

    @field_validator("backgrounds")
    @classmethod
    def _known_backgrounds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_processes(value)


class DataConfig(_Frozen):
    enabled: bool = True
    inject: InjectionConfig | None = None
    nature: NatureConfig = Field(default_factory=NatureConfig)


class DetectorConfig(_Frozen):
    """Fast ECL/CDC simulation parameters that physics.md marks as estimates."""

    merge_distance_cm: float = Field(default=5.4, ge=0)
    endcap_angle_scale: float = Field(default=1.5, gt=0)
    gap_resolution_scale: float = Field(default=2.0, gt=0)
    gap_energy_loss: float = Field(default=0.05, ge=0, lt=1)
    leakage_probability: float = Field(default=0.25, ge=0, le=1)
    leakage_mean: float = Field(default=0.015, ge=0, lt=0.5)
    time_constant_ns: float = Field(default=1.0, gt=0)
    time_floor_ns: float = Field(default=1.0, gt=0)
    background_time_window_ns: float = Field(default=200.0, gt=0)
    background_energy_GeV: float = Field(default=0.035, gt=0)
    background_tail_fraction: float = Field(default=0.1, ge=0, le=1)
    background_tail_energy_GeV: float = Field(default=0.12, gt=0)
    fake_track_rate: float = Field(default=0.05, ge=0)
    muon_cluster_GeV: float = Field(default=0.2, gt=0)


class SimulationConfig(_Frozen):
    backgrounds: tuple[str, ...] = MC_BACKGROUNDS
    mc_luminosity_factor: float = Field(default=1.0, gt=0)
    events_per_file: int = Field(default=250_000, gt=0)
    cuts: GeneratorCuts = GeneratorCuts()
    signal: SignalConfig = SignalConfig()
    data: DataConfig = Field(default_factory=DataConfig)
    detector: DetectorConfig = DetectorConfig()

    @field_validator("backgrounds")
    @classmethod
    def _known_backgrounds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_processes(value)

    @model_validator(mode="after")
    def _isr_range(self) -> SimulationConfig:
        if self.cuts.isr_x_max <= self.cuts.isr_x_min:
            raise ValueError("cuts.isr_x_max must be above cuts.isr_x_min")
        return self


class PreselectionConfig(_Frozen):
    """physics.md "Pre-selection (seed)"."""

    photon_e_min_GeV: float = Field(default=0.1, ge=0)
    theta_min_deg: float = Field(default=17.0, ge=0, le=90)
    theta_max_deg: float = Field(default=150.0, ge=90, le=180)
    time_window_ns: float = Field(default=200.0, gt=0)
    n_photons: Literal[3] = 3
    photon_multiplicity: Literal["at_least_three", "exactly_three"] = Field(
        default="at_least_three",
        description="events with three or more candidates (the three most energetic are used), "
        "or exactly three",
    )
    m3g_min_fraction: float = Field(default=0.8, gt=0)
    m3g_max_fraction: float = Field(default=1.05, gt=0)
    timing_nsigma: float = Field(default=3.0, gt=0)
    track_dr_max_cm: float = Field(default=1.0, gt=0)
    track_dz_max_cm: float = Field(default=3.0, gt=0)
    track_theta_min_deg: float = Field(default=17.0, ge=0)
    track_theta_max_deg: float = Field(default=150.0, le=180)


class KinfitConfig(_Frozen):
    max_iterations: int = Field(default=20, gt=0, le=1000)
    chi2_tolerance: float = Field(default=1e-4, gt=0)
    constraint_tolerance_GeV: float = Field(default=1e-7, gt=0)
    covariance: Literal["clusters", "calibration"] = "calibration"


class MassResolution(_Frozen):
    """sigma(M_gg) = p0 + p1 m + p2 m^2 in GeV after the kinematic fit: a fit to the central
    68% widths of truth-matched signal MC from 0.2 to 9 GeV (11 MeV at 0.2 GeV, 19 MeV at 9 GeV;
    before the fit it is 12 to 145 MeV)."""

    p0: float = Field(default=0.0107, gt=0)
    p1: float = 0.00227
    p2: float = -0.000151

    def sigma(self, mass: np.ndarray | float) -> np.ndarray:
        mass = np.asarray(mass, dtype=np.float64)
        return np.asarray(self.p0 + self.p1 * mass + self.p2 * mass**2)


class HistogramConfig(_Frozen):
    mass_min_GeV: float = Field(default=0.0, ge=0)
    mass_max_GeV: float = Field(default=10.6, gt=0)
    bin_width_sigma: float = Field(default=0.5, gt=0, description="bin width in units of sigma_m")
    score_edges: tuple[float, ...] = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
    resolution: MassResolution = MassResolution()

    @field_validator("score_edges")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) < 2 or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("score edges must be at least two increasing numbers")
        if value[0] < 0.0 or value[-1] > 1.0:
            raise ValueError(f"score edges must lie in [0, 1] (a score is a probability): {value}")
        return value


class SystematicsConfig(_Frozen):
    """Variations filled in the same pass as the nominal histograms."""

    energy_scale: float = Field(default=0.003, ge=0, description="relative photon energy scale")
    energy_resolution: float = Field(default=0.10, ge=0, description="relative resolution scale")
    trigger: bool = Field(default=True, description="fill trigger-efficiency up/down variations")
    luminosity: float = Field(default=0.0066, ge=0, description="relative uncertainty")


class ProcessingConfig(_Frozen):
    chunk_size: int = Field(default=200_000, gt=0)
    skip_bad_files: bool = False
    retries: int = Field(default=3, ge=0)


class TrainingConfig(_Frozen):
    features: tuple[str, ...] = (
        "E_high",
        "E_low",
        "u_high",
        "t_high",
        "sphericity",
        "fw_r2",
        "cleo_cone0",
        "theta_recoil",
        "chi2",
    )
    hidden_layers: int = Field(default=10, gt=0)
    width: int = Field(default=30, gt=0)
    activation: Literal["leaky_relu", "relu", "elu", "tanh", "silu"] = "leaky_relu"
    bce_epochs: int = Field(default=200, ge=0)
    bce_batch_size: int = Field(default=2048, gt=0)
    punzi_epochs: int = Field(default=500, ge=0)
    punzi_batch_size: int = Field(default=20_000, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    window_nsigma: float = Field(default=10.0, gt=0)
    punzi_a: float = Field(default=5.0, gt=0)
    punzi_b: float = Field(default=1.28, gt=0)
    held_out_masses: int = Field(default=22, ge=0)
    soft_cut_sharpness: float = Field(default=20.0, gt=0)
    soft_cut_sharpness_final: float | None = Field(
        default=None,
        gt=0,
        description="soft-cut sharpness at the last Punzi epoch (geometric ramp); none: constant",
    )
    max_background_candidates: int = Field(default=2_000_000, gt=0)
    working_point: float | None = Field(default=None, gt=0, lt=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    grid: dict[str, tuple[Any, ...]] = Field(default_factory=dict)
    xgboost_rounds: int = Field(default=300, gt=0)
    xgboost_depth: int = Field(default=6, gt=0)
    validation_fraction: float = Field(
        default=0.3, gt=0, lt=1, description="events kept apart to evaluate sigma_min"
    )
    soft_cut_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="score t of the soft cut inside the Punzi loss"
    )
    early_stopping_patience: int = Field(
        default=0, ge=0, description="Punzi epochs without validation gain before stopping; 0 off"
    )
    select_top_features: int = Field(
        default=0, ge=0, description="use the N top-ranked features instead of `features`; 0 off"
    )
    torch_threads: int = Field(
        default=1, ge=1, description="CPU threads for training (results reproducible per value)"
    )
    parametrised: bool = Field(
        default=True, description="deploy the mass-parametrised Punzi net (hypothesis mass input)"
    )
    compare_nets: bool = Field(
        default=True, description="also train the other net (plain/parametrised) for the tables"
    )
    training_hypothesis: Literal["window", "candidate"] = Field(
        default="window",
        description="parametrised net's hypothesis input in training: the window's mass, or the "
        "candidate's own M_gg as deployed",
    )
    loss_combination: Literal["mean", "log", "relative"] = Field(
        default="mean", description="per-mass sigma_min in the loss: mean, mean log, or relative"
    )
    lr_schedule: Literal["cosine", "plateau"] = "cosine"
    plateau_patience: int = Field(default=5, ge=1, description="epochs before halving the rate")
    bce_signal_fraction: float = Field(
        default=0.5, gt=0, lt=1, description="share of the signal in the BCE pre-training weight"
    )
    working_point_metric: Literal["mean", "log"] = Field(
        default="mean", description="choose the cut by the mean or the geometric mean of sigma_min"
    )
    working_point_tolerance: float = Field(
        default=0.005,
        ge=0,
        lt=1,
        description="score edges within this relative sigma_min of the best: take the tightest",
    )
    fair_window_nsigma: float = Field(
        default=2.0,
        gt=0,
        description="half-width (sigma_m) of the core window of the fair Punzi-vs-XGBoost table",
    )
    evaluation_folds: int = Field(
        default=0,
        ge=0,
        description="k-fold cross-validated evaluation (k >= 2): the selections are trained k "
        "times and every event is evaluated once, out of fold; 0: one validation split",
    )

    @field_validator("evaluation_folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("evaluation_folds must be 0 (one validation split) or at least 2")
        return value


class LimitsConfig(_Frozen):
    masses: MassGrid | None = Field(
        default=None, description="mass hypotheses; none: steps of mass_step_sigma x sigma_m"
    )
    mass_step_sigma: float = Field(default=0.5, gt=0, le=2)
    scan_range_GeV: tuple[float, float] = (0.2, 9.7)
    window_nsigma: float = Field(default=10.0, gt=0)
    efficiency_window_nsigma: float = Field(default=20.0, gt=0)
    excluded_mesons: tuple[Literal["pi0", "eta", "etaprime"], ...] = ("pi0", "eta", "etaprime")
    exclusion_nsigma: float = Field(default=5.0, ge=0)
    confidence_level: float = Field(default=0.95, gt=0, lt=1)
    background_polynomial_order: int = Field(
        default=3, ge=0, le=6, description="the order (fixed) or the highest order tried (ftest)"
    )
    background_order: Literal["fixed", "ftest"] = "ftest"
    background_fit: Literal["floating", "sidebands"] = "floating"
    sideband_nsigma: float = Field(default=3.0, gt=0, description="signal region half-width")
    trigger_uncertainty: float = Field(default=0.01, ge=0)
    efficiency_uncertainty: float = Field(default=0.03, ge=0)
    lee_method: Literal["gross-vitells", "toys"] = "gross-vitells"
    lee_toys: int = Field(default=200, ge=0)
    decay_volume: Literal["ecl"] = "ecl"


class ReportConfig(_Frozen):
    """What the HTML report shows (``alps report``)."""

    blind: bool = Field(
        default=False,
        description="hide the observed limits, the significances and the data in the signal "
        "windows (the scan range outside the meson vetoes, and scores above the working point)",
    )
    published_limits: Path | None = Field(
        default=None,
        description="CSV of mass_GeV, g_GeV-1 drawn over the coupling limit (user-supplied)",
    )
    published_label: str = Field(default="published limit", min_length=1)
    table_masses: tuple[float, ...] = Field(
        default=(0.2, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.5),
        description="masses [GeV] of the limits table (the nearest scanned mass is shown)",
    )


class AnalysisConfig(_Frozen):
    """The whole analysis; ``alps <stage>`` reads the parts it needs."""

    name: str = "alps"
    seed: int = Field(default=20260101, ge=0)
    run_slice: str = "2018"
    run_registry: Path | None = None
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    preselection: PreselectionConfig = PreselectionConfig()
    kinfit: KinfitConfig = KinfitConfig()
    histograms: HistogramConfig = HistogramConfig()
    systematics: SystematicsConfig = SystematicsConfig()
    processing: ProcessingConfig = ProcessingConfig()
    training: TrainingConfig = TrainingConfig()
    limits: LimitsConfig = LimitsConfig()
    report: ReportConfig = ReportConfig()

    @field_validator("run_slice", mode="before")
    @classmethod
    def _slice_text(cls, value: Any) -> Any:
        """``run_slice: 2018`` (a YAML integer) means the string; an empty slice is refused."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not value.replace(",", " ").strip():
            raise ValueError(
                f"run slice {value!r} selects nothing; name one, e.g. '2018', 'run1', 'all'"
            )
        return value

    def section_hash(self, *sections: str) -> str:
        """Content hash of the named top-level sections (all when none is named)."""
        data = self.model_dump(mode="json")
        chosen = {k: data[k] for k in sections} if sections else data
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def default_config_path() -> Path:
    """The analysis YAML shipped with the package (the embedded default slice)."""
    return Path(str(resources.files("alps") / "data" / "default.yaml"))


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, **overrides: Any) -> AnalysisConfig:
    """Load and validate an analysis YAML (the shipped default when ``path`` is None).

    ``overrides`` replace top-level fields before validation (the command line uses this).
    Raises :class:`ConfigError` naming every bad or unknown field. The checks of the fields
    together, against the run registry and physics, are :func:`alps.consistency.load_checked_config`
    (what the command line uses): they need the simulation, which this ground-floor module must
    not import.
    """
    source = Path(path) if path is not None else default_config_path()
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {source}: {exc}") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration {source} must be a mapping at the top level")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if raw.get("run_registry") is not None:
        registry = Path(raw["run_registry"])
        raw["run_registry"] = registry if registry.is_absolute() else source.parent / registry
    report = raw.get("report")
    if isinstance(report, dict) and report.get("published_limits") is not None:
        overlay = Path(report["published_limits"])
        report["published_limits"] = overlay if overlay.is_absolute() else source.parent / overlay
    try:
        return AnalysisConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(source))) from None


def config_hash(config: AnalysisConfig, *sections: str) -> str:
    """Short content hash of ``config`` (or of some of its sections), for provenance and caching."""
    return config.section_hash(*sections)
