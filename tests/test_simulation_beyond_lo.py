"""Backgrounds beyond the LO MC and the pseudo-data's "nature" (docs/background_model.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from alps.config import AnalysisConfig, GeneratorCuts, NatureConfig
from simulation.generators import (
    BeamConditions,
    Calibration,
    CollinearRadiator,
    background_generator,
)
from simulation.generators.beyond_lo import ELECTRON_MASS
from simulation.kinematics import CollisionFrame, mass, polar_angle
from simulation.physics import ALPHA, beam_four_momenta
from simulation.production import _effective, _run_background_factor, plan_production

NOMINAL = BeamConditions(7.004, 4.002, 5.13e-3, 2.375e-3)


def _splitting(x: float) -> float:
    return (1.0 + (1.0 - x) ** 2) / x


def test_radiator_weights_integrate_to_the_splitting_function() -> None:
    radiator = CollinearRadiator(0.01, 0.5, math.radians(1.0))
    rng = np.random.default_rng(5)
    p_e, p_p = NOMINAL.draw(rng, 400_000)
    q_e, q_p, photon, weight = radiator.radiate(rng, p_e, p_p)
    # energy-momentum: the reduced beams and the photon make the original beams
    np.testing.assert_allclose(q_e + q_p + photon, p_e + p_p, atol=1e-12)
    # the photon goes along one beam: lost in the beam pipe, far outside the ECL (12.4 deg)
    theta = np.degrees(polar_angle(photon))
    assert np.all((theta < 2.5) | (theta > 177.5))
    # mean weight = 2 (alpha/2pi) L int_{x_min}^{x_max} (1 + (1-x)^2)/x dx
    log = 2.0 * math.log(math.radians(1.0) * NOMINAL.sqrt_s / 2.0 / ELECTRON_MASS)
    expected = 2.0 * ALPHA / (2.0 * math.pi) * log * integrate.quad(_splitting, 0.01, 0.5)[0]
    assert weight.mean() == pytest.approx(expected, rel=5e-3)
    # the unitarity partner gives up the probability of x > x_min
    full = 2.0 * ALPHA / (2.0 * math.pi) * log * integrate.quad(_splitting, 0.01, 1.0)[0]
    assert radiator.emission_probability(NOMINAL.sqrt_s) == pytest.approx(full, rel=1e-3)


def test_gg_isr_cross_section_is_the_radiator_convolution() -> None:
    # with cuts that keep every photon, sigma(gg_isr) = int dP(x) sigma_gg(s (1 - x))
    cuts = GeneratorCuts(theta_min_deg=0.0, theta_max_deg=180.0, photon_e_min_GeV=1e-3,
                         calibration_events=200_000)  # fmt: skip
    generator = background_generator("gg_isr", cuts)
    calibration = generator.calibrate(np.random.default_rng(6), NOMINAL, cuts)
    lo = background_generator("gg", cuts)
    sigma_lo = float(lo.sigma_range(NOMINAL.sqrt_s**2))  # type: ignore[attr-defined]
    log = 2.0 * math.log(math.radians(1.0) * NOMINAL.sqrt_s / 2.0 / ELECTRON_MASS)
    convolution = integrate.quad(lambda x: _splitting(x) / (1.0 - x), 0.01, 0.5)[0]
    expected = sigma_lo * 2.0 * ALPHA / (2.0 * math.pi) * log * convolution
    assert calibration.sigma_pb == pytest.approx(
        expected, abs=4 * calibration.sigma_err_pb + 0.005 * expected
    )


def test_gg_isr_photon_pair_recoils_against_the_lost_photon() -> None:
    cuts = GeneratorCuts(calibration_events=20_000)
    generator = background_generator("gg_isr", cuts)
    rng = np.random.default_rng(7)
    events = generator.generate(rng, NOMINAL, 3000, cuts, generator.calibrate(rng, NOMINAL, cuts))
    pair = events.photons[:, 0] + events.photons[:, 1]
    isr = events.photons[:, 2]
    s = CollisionFrame(events.p_electron, events.p_positron).s
    # M(pair)^2 = s (1 - x) with x the photon's fraction of the beam it came from
    beam = np.where(isr[:, 3:4] > 0, events.p_electron, events.p_positron)
    fraction = isr[:, 0] / beam[:, 0]
    np.testing.assert_allclose(mass(pair) ** 2, s * (1.0 - fraction), rtol=1e-9)
    assert fraction.min() >= 0.01 and fraction.max() <= 0.5


def test_ggg_lost_has_exactly_one_photon_lost_away_from_the_beams() -> None:
    cuts = GeneratorCuts(calibration_events=20_000)
    generator = background_generator("ggg_lost", cuts)
    rng = np.random.default_rng(8)
    calibration = generator.calibrate(rng, NOMINAL, cuts)
    events = generator.generate(rng, NOMINAL, 4000, cuts, calibration)
    theta = np.degrees(polar_angle(events.photons))
    inside = (theta >= 12.4) & (theta <= 155.1) & (events.photons[..., 0] > cuts.photon_e_min_GeV)
    assert np.all(inside.sum(axis=1) == 2)
    lost = events.photons[~inside]
    beam_e, beam_p = beam_four_momenta(1.0, 1.0)
    to_beam = np.degrees(np.minimum(
        np.arccos(np.clip(lost[:, 1:] @ beam_e[1:] / np.linalg.norm(lost[:, 1:], axis=1), -1, 1)),
        np.arccos(np.clip(lost[:, 1:] @ beam_p[1:] / np.linalg.norm(lost[:, 1:], axis=1), -1, 1)),
    ))  # fmt: skip
    assert to_beam.min() >= 1.0
    # the massless matrix element peaks along the beams: more lost photons at 1-3 deg than 7-9
    assert np.sum(to_beam < 3.0) > 2 * np.sum((to_beam > 7.0) & (to_beam < 9.0))
    assert calibration.sigma_pb > 0


def _config(nature: bool) -> AnalysisConfig:
    return AnalysisConfig(
        run_slice="2018,lumi=0.002",
        simulation={
            "backgrounds": ("gg", "eeg"),
            "signal": {"masses": {"values": [1.0]}, "events_per_mass": 10},
            "cuts": {"calibration_events": 5000},
            "data": {"nature": {"enabled": nature}},
        },
    )


def test_pseudo_data_carry_nature_and_the_mc_does_not() -> None:
    config = _config(nature=True)
    tasks = plan_production(config)
    assert {t.sample for t in tasks if not t.data} == {"gg", "eeg", "alp_m1000"}
    data = {s.process: s for t in tasks if t.data for s in t.shares}
    assert {"gg", "gg_isr", "ggg_lost"} <= set(data)
    block = next(t.block for t in tasks if t.data)
    nature = config.simulation.data.nature
    # correlated track loss: nature's P(both lost) = ineff^2 + c ineff, the MC's ineff^2
    calibration = Calibration(100.0, 1.0)
    mc_sigma, forced = _effective("eeg", calibration, block)
    data_sigma, _ = _effective("eeg_isr", calibration, block, nature)
    ineff = block.trk_ineff
    assert forced and mc_sigma == pytest.approx(100.0 * ineff**2, rel=1e-12)
    assert data_sigma == pytest.approx(100.0 * (ineff**2 + nature.correlated_track_loss * ineff))
    # unitarity: nature's gamma gamma gives up the collinear-ISR emission probability
    generator = background_generator("gg_isr", config.simulation.cuts)
    p_emit = generator.emission_probability(BeamConditions.from_block(block))  # type: ignore[attr-defined]
    assert 0.1 < p_emit < 0.3
    mc_gg = next(t for t in tasks if t.sample == "gg").shares[0]
    assert data["gg"].sigma_effective_pb == pytest.approx(
        mc_gg.sigma_effective_pb * (1.0 - p_emit), rel=1e-9
    )
    plain = {s.process for t in plan_production(_config(nature=False)) if t.data for s in t.shares}
    assert plain == {"gg"}  # eeg: no event expected in 2 pb^-1 without nature's track loss


def test_nature_background_level_varies_by_run_and_is_the_same_for_a_run() -> None:
    nature = NatureConfig(background_level_spread=0.3)
    runs = np.arange(2000)
    factor = _run_background_factor(7, 3, runs, nature)
    assert factor.mean() == pytest.approx(1.0, abs=0.03)
    assert np.std(np.log(factor)) == pytest.approx(0.3, rel=0.06)
    again = _run_background_factor(7, 3, np.array([5, 1999, 5]), nature)
    assert again[0] == again[2] == factor[5] and again[1] == factor[1999]
    assert not np.allclose(_run_background_factor(7, 4, runs, nature), factor)
    flat = _run_background_factor(7, 3, runs, NatureConfig(background_level_spread=0.0))
    assert np.all(flat == 1.0)
