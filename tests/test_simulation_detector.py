"""Detector-level validation: resolution pulls, acceptance, merging, displacement, tracks and
trigger turn-ons."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import ndtr

from alps.config import DetectorConfig, GeneratorCuts
from simulation.detector import DetectorConditions, simulate
from simulation.events import TruthEvents
from simulation.generators import AlpGenerator, BeamConditions
from simulation.geometry import REGION_BARREL, ecl_region
from simulation.resolution import energy_resolution, phi_resolution, theta_resolution

NOMINAL = BeamConditions(7.004, 4.002, 5.13e-3, 2.375e-3)
PERFECT = DetectorConditions(1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.08, 0.1, 0.015)
GAUSSIAN = DetectorConfig(leakage_probability=0.0, merge_distance_cm=0.0, fake_track_rate=0.0)


def _single_photons(rng: np.random.Generator, n: int, energy: np.ndarray) -> TruthEvents:
    cos_t = rng.uniform(np.cos(np.radians(120)), np.cos(np.radians(40)), n)
    phi = rng.uniform(-np.pi, np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    p = np.stack(
        [energy, energy * sin_t * np.cos(phi), energy * sin_t * np.sin(phi), energy * cos_t], -1
    )
    beam = np.zeros((n, 4))
    return TruthEvents.prompt("ggg", beam, beam, p[:, None, :])


@pytest.mark.parametrize("scale", [1.0, 1.1])
def test_barrel_photon_pulls_have_unit_width(scale: float) -> None:
    rng = np.random.default_rng(1)
    n = 100_000
    energy = rng.uniform(0.2, 6.0, n)
    truth = _single_photons(rng, n, energy)
    cond = DetectorConditions(1.0, scale, scale, 0.0, 0.0, 1.0, 0.08, 0.1, 0.015)
    reco = simulate(truth, cond, GAUSSIAN, rng)
    assert np.all(reco.cluster_counts == 1)
    c = reco.clusters
    theta_true = np.arctan2(
        np.hypot(truth.photons[:, 0, 1], truth.photons[:, 0, 2]), truth.photons[:, 0, 3]
    )
    phi_true = np.arctan2(truth.photons[:, 0, 2], truth.photons[:, 0, 1])
    region = ecl_region(theta_true)
    assert np.all(region == REGION_BARREL)
    pulls = {
        "E": (c["E"] - energy) / (energy_resolution(energy, region) * scale * energy),
        "theta": (c["theta"] - theta_true) / (theta_resolution(energy, region) * scale),
        "phi": (np.angle(np.exp(1j * (c["phi"] - phi_true))))
        / (phi_resolution(energy, region) * scale),
        # against the stored errors: the model at the measured energy
        "errE": (c["E"] - energy) / c["errE"],
    }
    for name, pull in pulls.items():
        assert abs(np.mean(pull)) < 0.02, name
        assert np.std(pull) == pytest.approx(1.0, abs=0.02), name


def test_leakage_gives_a_low_side_tail() -> None:
    rng = np.random.default_rng(2)
    n = 50_000
    energy = np.full(n, 2.0)
    reco = simulate(
        _single_photons(rng, n, energy), PERFECT, DetectorConfig(merge_distance_cm=0.0), rng
    )
    pull = (reco.clusters["E"] - energy) / (energy_resolution(energy, REGION_BARREL) * energy)
    assert np.mean(pull < -3) > 10 * np.mean(pull > 3)


def test_energy_scale_shifts_the_measured_energy() -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    energy = np.full(n, 3.0)
    shifted = DetectorConditions(1.01, 1.0, 1.0, 0.0, 0.0, 1.0, 0.08, 0.1, 0.015)
    reco = simulate(_single_photons(rng, n, energy), shifted, GAUSSIAN, rng)
    assert np.mean(reco.clusters["E"]) / 3.0 == pytest.approx(1.01, abs=0.001)
    # the stored error is the nominal model: reconstruction does not know the true detector
    np.testing.assert_allclose(
        reco.clusters["errE"],
        energy_resolution(reco.clusters["E"], REGION_BARREL) * reco.clusters["E"],
        rtol=1e-6,
    )


def _signal(mass: float, coupling: float, n: int, seed: int) -> TruthEvents:
    generator = AlpGenerator(mass, coupling)
    cuts = GeneratorCuts()
    return generator.generate(
        np.random.default_rng(seed), NOMINAL, n, cuts, generator.calibrate(None, NOMINAL, cuts)
    )  # type: ignore[arg-type]


def test_merged_cluster_fraction_rises_as_the_mass_falls() -> None:
    fractions = []
    for mass in (0.03, 0.06, 0.1, 0.2, 0.5):
        truth = _signal(mass, 1e-3, 20_000, 4)
        reco = simulate(truth, PERFECT, DetectorConfig(), np.random.default_rng(5))
        fractions.append(float(np.mean(reco.n_merged > 0)))
    assert all(a >= b for a, b in itertools.pairwise(fractions))
    assert fractions[0] > 0.8  # very asymmetric decays still give two clusters
    assert fractions[-1] < 0.01


def test_displaced_decays_give_wrong_directions_and_invisible_alps() -> None:
    prompt = _signal(0.2, 1e-3, 20_000, 6)
    displaced = _signal(0.2, 1e-5, 20_000, 6)  # mean decay length about 1.3 m
    det = DetectorConfig(merge_distance_cm=0.0)
    counts = {}
    for name, truth in (("prompt", prompt), ("displaced", displaced)):
        reco = simulate(truth, PERFECT, det, np.random.default_rng(7))
        counts[name] = float(np.mean(reco.cluster_counts))
    assert counts["displaced"] < counts["prompt"] - 0.3
    # photons of a decay far from the IP: reconstructed from the IP, their direction is off by
    # about the decay opening angle times r/R, far more than the angular resolution
    offsets = {}
    for name, truth in (("prompt", prompt), ("displaced", displaced)):
        reco = simulate(truth, PERFECT, det, np.random.default_rng(8))
        mc_index = reco.clusters["mcIndex"]
        event = np.repeat(np.arange(len(truth)), reco.cluster_counts)
        k = mc_index.clip(0)
        p = truth.photons[event, k]
        true_theta = np.arctan2(np.hypot(p[:, 1], p[:, 2]), p[:, 3])
        chosen = (mc_index > 0) & (truth.decay_r[event] > 50.0 if name == "displaced" else True)
        offsets[name] = float(np.median(np.abs(reco.clusters["theta"] - true_theta)[chosen]))
    assert offsets["displaced"] > 3 * offsets["prompt"]


def test_tracks_follow_acceptance_inefficiency_and_forced_loss() -> None:
    rng = np.random.default_rng(9)
    n = 100_000
    cos_t = rng.uniform(-0.8, 0.9, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    p = 3.0
    sin_t = np.sqrt(1 - cos_t**2)
    lep = np.stack([np.full(n, p), p * sin_t * np.cos(phi), p * sin_t * np.sin(phi), p * cos_t], -1)
    beam = np.zeros((n, 4))
    truth = TruthEvents.prompt("mumug", beam, beam, np.zeros((n, 0, 4)), lep[:, None], (13,))
    cond = DetectorConditions(1.0, 1.0, 1.0, 0.0, 0.05, 1.0, 0.08, 0.1, 0.015)
    det = DetectorConfig(fake_track_rate=0.0)
    reco = simulate(truth, cond, det, rng)
    theta = np.degrees(np.arccos(cos_t))
    inside = (theta > 17) & (theta < 150)
    found = reco.track_counts == 1
    assert not np.any(found & ~inside)
    assert np.mean(found[inside]) == pytest.approx(0.95, abs=0.003)
    assert np.all(reco.tracks["charge"] == -1)  # mu- (PDG 13) has charge -1
    pt_true = p * sin_t[found]
    pt = np.hypot(reco.tracks["px"], reco.tracks["py"])
    rel = np.hypot(0.0011 * pt_true, 0.0025)
    assert np.std((pt - pt_true) / (rel * pt_true)) == pytest.approx(1.0, abs=0.03)
    lost = simulate(truth, cond, det, rng, force_track_loss=True)
    assert lost.track_counts.sum() == 0


def test_trigger_turn_on_follows_the_error_function() -> None:
    rng = np.random.default_rng(10)
    n = 200_000
    energy = rng.uniform(0.5, 1.6, n)
    cond = DetectorConditions(1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.08, 0.1, 0.015)
    reco = simulate(_single_photons(rng, n, energy), cond, GAUSSIAN, rng)
    e = reco.clusters["E"]
    bins = np.linspace(0.8, 1.2, 9)
    centre = 0.5 * (bins[1:] + bins[:-1])
    index = np.digitize(e, bins) - 1
    measured = np.array([reco.trg_esum[index == i].mean() for i in range(len(centre))])
    # the trigger sums energies with 5% resolution: the expected turn-on folds that in
    width = np.hypot(0.08, 0.05 * centre)
    np.testing.assert_allclose(measured, ndtr((centre - 1.0) / width), atol=0.03)
    # a single photon never fires the two-cluster line
    assert not reco.trg_ncl.any()


def test_data_hides_truth() -> None:
    truth = _signal(1.0, 1e-3, 1000, 11)
    reco = simulate(truth, PERFECT, DetectorConfig(), np.random.default_rng(12), data=True)
    assert np.all(reco.clusters["mcIndex"] == -1)


def test_beam_background_level() -> None:
    rng = np.random.default_rng(13)
    n = 50_000
    truth = _single_photons(rng, n, np.full(n, 3.0))
    cond = DetectorConditions(1.0, 1.0, 1.0, 3.0, 0.0, 1.0, 0.08, 0.1, 0.015)
    reco = simulate(truth, cond, DetectorConfig(), rng)
    background = reco.clusters["mcIndex"] == -1
    assert background.sum() / n == pytest.approx(3.0, rel=0.02)
    assert np.median(reco.clusters["E"][background]) < 0.1
    assert np.all(np.abs(reco.clusters["time"][background]) <= 200.0)
