"""Checks of a validated configuration against physics and against itself.

Each field of :class:`~alps.config.AnalysisConfig` is valid on its own (pydantic); this module
refuses the combinations that are valid by type but physically impossible or inconsistent, each
with the dotted name of the field to change:

* ``simulation.signal.masses`` and ``simulation.data.inject.mass_GeV`` inside (0, sqrt(s)) for
  every run block of the slice: the ALP recoils against a photon, so m_a < sqrt(s) (physics.md
  "Signal": p_a = (s - m_a^2) / (2 sqrt(s)) > 0; Dolan et al., JHEP 1712 (2017) 094);
* ``run_slice`` / ``run_registry``: the slice selects at least one run block;
* ``limits.masses`` (or, when unset, the ends of ``limits.scan_range_GeV`` that the resolution
  grid reaches): inside the simulated signal grid (the signal shape is interpolated between
  simulated masses, never extrapolated);
* ``limits.window_nsigma``, ``limits.efficiency_window_nsigma``, ``training.window_nsigma``: a
  window m +- N sigma_m(m) narrower than the M_gamma_gamma spectrum at every mass;
* ``histograms.resolution``: sigma_m(m) > 0 over the spectrum;
* ``limits.scan_range_GeV``: increasing and inside the spectrum;
* ``training.working_point``: one of the inner ``histograms.score_edges``;
* ``report.published_limits``: a readable CSV of (mass_GeV, g_GeV-1) rows (:mod:`alps.overlay`).

A background list without the dominant e+e- -> gamma gamma gamma is allowed but said, as a
:class:`ConfigWarning`.

:func:`load_checked_config` is :func:`alps.config.load_config` followed by these checks; the
command line loads every configuration with it. (The checks read the run registry and the beam
kinematics of :mod:`simulation`, which the ground-floor :mod:`alps.config` must not import.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .config import AnalysisConfig, ConfigError, default_config_path, load_config
from .overlay import OverlayError, read_published_limits

__all__ = ["ConfigWarning", "config_problems", "config_warnings", "load_checked_config"]

#: relative tolerance when a mass is compared with a grid end (masses are rounded to 0.1 MeV)
_MASS_TOLERANCE_GeV = 1e-6


class ConfigWarning(UserWarning):
    """A configuration that can be run but probably is not what was meant."""


def _sqrt_s_per_block(config: AnalysisConfig) -> list[tuple[str, float]]:
    """(block name, nominal sqrt(s) in GeV) for each run block of the slice."""
    from simulation.generators import BeamConditions
    from simulation.registry import load_registry  # the simulation loads only when checking

    registry = load_registry(config.run_registry).select(config.run_slice)
    return [(block.name, BeamConditions.from_block(block).sqrt_s) for block in registry]


def _kinematic_problems(
    config: AnalysisConfig, blocks: list[tuple[str, float]]
) -> Iterable[tuple[str, str]]:
    name, sqrt_s = min(blocks, key=lambda item: item[1])
    masses = config.simulation.signal.masses.masses()
    above = masses[masses >= sqrt_s]
    if above.size:
        yield (
            "simulation.signal.masses",
            f"{_list(above)} GeV at or above the kinematic limit m_a < sqrt(s) = {sqrt_s:.4f} GeV "
            f"of run block {name} (e+e- -> gamma a needs a recoil photon)",
        )
    inject = config.simulation.data.inject
    if config.simulation.data.enabled and inject is not None and inject.mass_GeV >= sqrt_s:
        yield (
            "simulation.data.inject.mass_GeV",
            f"{inject.mass_GeV} GeV is at or above the kinematic limit m_a < sqrt(s) = "
            f"{sqrt_s:.4f} GeV of run block {name}",
        )


def _grid_problems(config: AnalysisConfig) -> Iterable[tuple[str, str]]:
    hcfg, lcfg = config.histograms, config.limits
    signal = config.simulation.signal.masses.masses()
    if lcfg.masses is not None:
        field, limits = "limits.masses", lcfg.masses.masses()
    else:  # the resolution grid lies inside the scan range and reaches its ends
        field, limits = "limits.scan_range_GeV", np.asarray(lcfg.scan_range_GeV, dtype=float)
    lo, hi = float(signal.min()), float(signal.max())
    outside = limits[(limits < lo - _MASS_TOLERANCE_GeV) | (limits > hi + _MASS_TOLERANCE_GeV)]
    if outside.size:
        yield (
            field,
            f"scan masses {_list(outside)} GeV outside the simulated signal grid [{lo}, {hi}] GeV "
            "(simulation.signal.masses): the signal shape has no simulated neighbour there to "
            "interpolate from",
        )
    low, high = hcfg.mass_min_GeV, hcfg.mass_max_GeV
    if low >= high:
        yield ("histograms.mass_max_GeV", f"{high} must be above mass_min_GeV = {low}")
        return
    scan = lcfg.scan_range_GeV
    if not low <= scan[0] < scan[1] <= high:
        yield (
            "limits.scan_range_GeV",
            f"{list(scan)} must be increasing and inside the M_gamma_gamma spectrum "
            f"[{low}, {high}] GeV (histograms.mass_min_GeV, mass_max_GeV)",
        )
    spectrum = np.linspace(low, high, 1001)
    sigma = hcfg.resolution.sigma(spectrum)
    if np.any(sigma <= 0):
        where = float(spectrum[np.argmax(sigma <= 0)])
        yield (
            "histograms.resolution",
            f"sigma_m(m) = p0 + p1 m + p2 m^2 is not positive at m = {where:.3f} GeV",
        )
        return
    every = np.concatenate([signal, limits])
    for field, nsigma in (
        ("limits.window_nsigma", lcfg.window_nsigma),
        ("limits.efficiency_window_nsigma", lcfg.efficiency_window_nsigma),
        ("training.window_nsigma", config.training.window_nsigma),
    ):
        width = 2.0 * nsigma * hcfg.resolution.sigma(every)
        if np.any(width > high - low):
            at = float(every[np.argmax(width)])
            yield (
                field,
                f"the window +-{nsigma} sigma_m is {float(width.max()):.3f} GeV wide at "
                f"m = {at} GeV, wider than the M_gamma_gamma spectrum [{low}, {high}] GeV",
            )


def _selection_problems(config: AnalysisConfig) -> Iterable[tuple[str, str]]:
    point = config.training.working_point
    inner = [e for e in config.histograms.score_edges if 0.0 < e < 1.0]
    if point is not None and not any(abs(point - e) < 1e-12 for e in inner):
        yield (
            "training.working_point",
            f"{point} is not a score-bin edge; the histograms are binned in score, so a "
            f"working point must be one of histograms.score_edges {inner}",
        )


def config_problems(config: AnalysisConfig) -> list[tuple[str, str]]:
    """Every (dotted field, message) that makes ``config`` impossible or inconsistent."""
    problems: list[tuple[str, str]] = []
    try:
        blocks = _sqrt_s_per_block(config)
    except ValueError as exc:
        field = "run_registry" if "registry" in str(exc) else "run_slice"
        problems.append((field, str(exc)))
    else:
        problems.extend(_kinematic_problems(config, blocks))
    problems.extend(_grid_problems(config))
    problems.extend(_selection_problems(config))
    problems.extend(_report_problems(config))
    return problems


def _report_problems(config: AnalysisConfig) -> Iterable[tuple[str, str]]:
    """``report.published_limits``: a readable CSV of (mass_GeV, g_GeV-1) rows."""
    path = config.report.published_limits
    if path is not None:
        try:
            read_published_limits(path, config.report.published_label)
        except OverlayError as exc:
            yield "report.published_limits", str(exc)


def config_warnings(config: AnalysisConfig) -> None:
    """Say (as :class:`ConfigWarning`) what is allowed but probably not meant."""
    if "ggg" not in config.simulation.backgrounds:
        warnings.warn(
            "simulation.backgrounds leaves out ggg, the dominant background (e+e- -> gamma "
            "gamma gamma): the MC will not describe the data",
            ConfigWarning,
            stacklevel=3,  # the caller of load_checked_config
        )


def _list(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:5])
    return f"[{shown}{', ...' if values.size > 5 else ''}]"


def load_checked_config(path: str | Path | None = None, **overrides: Any) -> AnalysisConfig:
    """:func:`alps.config.load_config`, then :func:`config_problems` (raised as one
    :class:`~alps.config.ConfigError` naming every field) and :func:`config_warnings`."""
    config = load_config(path, **overrides)
    problems = config_problems(config)
    if problems:
        source = Path(path) if path is not None else default_config_path()
        lines = [f"invalid configuration in {source}:"]
        lines += [f"  {where}: {message}" for where, message in problems]
        raise ConfigError("\n".join(lines))
    config_warnings(config)
    return config
