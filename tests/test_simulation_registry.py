"""The process registry and the kinematic guard: one table names every process, and no
generator emits an event that violates four-momentum conservation or a mass above sqrt(s)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alps.config import AnalysisConfig, ConfigError, GeneratorCuts, load_config
from alps.plots import BACKGROUND_LABELS
from alps.processes import (
    MC_BACKGROUNDS,
    NATURE_BACKGROUNDS,
    PROCESS_CODES,
    PROCESSES,
    background_names,
    get_process,
)
from simulation.generators import (
    AlpGenerator,
    BeamConditions,
    Calibration,
    KinematicsError,
    check_four_momentum,
)
from simulation.production import plan_production
from simulation.registry import load_registry

NOMINAL = BeamConditions(7.004, 4.002, 5.13e-3, 2.375e-3, "e0003_r00000-00999")


def test_registry_is_the_one_table() -> None:
    names = [p.name for p in PROCESSES]
    assert len(set(names)) == len(names)
    assert sorted(PROCESS_CODES.values()) == list(range(len(PROCESSES)))
    # the codes of the first ten processes are those of files already written
    assert [PROCESS_CODES[n] for n in ("alp", "ggg", "gg", "eeg", "mumug")] == [0, 1, 2, 3, 10]
    assert set(MC_BACKGROUNDS) | set(NATURE_BACKGROUNDS) == set(background_names())
    assert not set(MC_BACKGROUNDS) & set(NATURE_BACKGROUNDS)
    assert set(BACKGROUND_LABELS) == set(names)
    assert get_process("alp_m1175").code == 0
    assert AnalysisConfig().simulation.backgrounds == MC_BACKGROUNDS
    assert AnalysisConfig().simulation.data.nature.backgrounds == NATURE_BACKGROUNDS


def test_config_rejects_unknown_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.yaml"
    path.write_text("simulation:\n  backgrounds: [ggg, gggg]\n")
    with pytest.raises(ConfigError, match=r"simulation\.backgrounds.*gggg"):
        load_config(path)
    path.write_text("simulation:\n  data:\n    nature:\n      backgrounds: [nope]\n")
    with pytest.raises(ConfigError, match=r"simulation\.data\.nature\.backgrounds.*nope"):
        load_config(path)


def test_alp_mass_above_sqrt_s_is_refused_naming_mass_and_block() -> None:
    cuts = GeneratorCuts()
    generator = AlpGenerator(11.5, 1e-3)
    rng = np.random.default_rng(1)
    with pytest.raises(KinematicsError, match=r"11\.5 GeV.*e0003_r00000-00999.*10\.579"):
        generator.calibrate(rng, NOMINAL, cuts)
    with pytest.raises(KinematicsError, match=r"11\.5 GeV"):
        generator.generate(rng, NOMINAL, 10, cuts, Calibration(1.0, 0.0))
    # just below the threshold (less than five beam-energy spreads) is refused too
    with pytest.raises(KinematicsError):
        AlpGenerator(NOMINAL.sqrt_s - 0.01, 1e-3).calibrate(rng, NOMINAL, cuts)
    assert AlpGenerator(10.375, 1e-3).calibrate(rng, NOMINAL, cuts).sigma_pb > 0


def test_planning_a_mass_above_sqrt_s_names_the_field() -> None:
    config = AnalysisConfig(
        run_slice="2018,lumi=0.001",
        simulation={"backgrounds": ("ggg",), "signal": {"masses": {"values": [11.5]}}},
    )
    with pytest.raises(KinematicsError, match=r"simulation\.signal\.masses: mass 11\.5 GeV.*e0003"):
        plan_production(config, samples=["alp_m11500"])
    config = AnalysisConfig(
        run_slice="2018,lumi=0.001",
        simulation={
            "backgrounds": ("ggg",),
            "signal": {"masses": {"values": [1.0]}},
            "data": {"inject": {"mass_GeV": 10.6, "coupling_GeV": 1e-3}},
        },
    )
    with pytest.raises(KinematicsError, match=r"simulation\.data\.inject\.mass_GeV"):
        plan_production(config, samples=["data"])


def test_every_run_block_is_checked() -> None:
    # a mass allowed by the nominal beams but not by the lowest-energy block of the registry
    registry = load_registry()
    lowest = min(registry, key=lambda b: BeamConditions.from_block(b).sqrt_s)
    beams = BeamConditions.from_block(lowest)
    with pytest.raises(KinematicsError, match=lowest.name):
        beams.require_below_threshold(beams.sqrt_s - 0.001, "simulation.signal.masses")


def test_events_that_violate_four_momentum_are_refused() -> None:
    cuts = GeneratorCuts(calibration_events=2000)
    generator = AlpGenerator(1.0, 1e-3)
    rng = np.random.default_rng(2)
    events = generator.generate(rng, NOMINAL, 50, cuts, generator.calibrate(rng, NOMINAL, cuts))
    assert check_four_momentum(events) is events
    photons = events.photons.copy()
    photons[7, 0, 0] += 1e-3  # one photon 1 MeV too energetic
    with pytest.raises(KinematicsError, match=r"alp: 1 of 50 .*event 7"):
        check_four_momentum(replace(events, photons=photons))
    photons = events.photons.copy()
    photons[3, 1] = np.nan
    with pytest.raises(KinematicsError, match="event 3"):
        check_four_momentum(replace(events, photons=photons))
