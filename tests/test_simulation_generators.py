"""Generator-level validation: cross-sections against formulas and physics.md, angular
distributions, lifetimes and four-momentum conservation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from alps.config import GeneratorCuts
from alps.processes import background_names
from simulation.generators import (
    AlpGenerator,
    BeamConditions,
    DiphotonGenerator,
    background_generator,
    sample_one_plus_cos2,
)
from simulation.kinematics import CollisionFrame, dot, polar_angle
from simulation.matrix_elements import (
    E2,
    eikonal_factor,
    me2_bhabha,
    me2_bhabha_gamma,
    me2_ee_to_mumu,
    me2_mumu_gamma,
)
from simulation.physics import (
    ALPHA,
    GEV2_TO_PB,
    alp_decay_length,
    alp_momentum_cms,
    alp_width,
    sigma_alp,
)

NOMINAL = BeamConditions(7.004, 4.002, 5.13e-3, 2.375e-3)


@pytest.mark.parametrize(
    ("mass", "expected_pb"),
    [(0.2, 0.118), (1.0, 0.115), (3.0, 0.092), (5.0, 0.056), (9.0, 0.0025)],
)
def test_alp_cross_section_matches_physics_md(mass: float, expected_pb: float) -> None:
    # physics.md quotes these at sqrt(s) = 10.58 GeV and g = 1e-3 GeV^-1, to 2-3 digits
    assert sigma_alp(mass, 1e-3, 10.58) == pytest.approx(expected_pb, rel=0.02)


def test_alp_cross_section_scales_with_coupling_squared() -> None:
    assert sigma_alp(1.0, 2e-3, 10.58) == pytest.approx(4 * sigma_alp(1.0, 1e-3, 10.58), rel=1e-12)
    assert sigma_alp(11.0, 1e-3, 10.58) == 0.0


@pytest.mark.parametrize(("coupling", "expected_cm"), [(1e-3, 0.013), (1e-4, 1.3), (1e-5, 130.0)])
def test_alp_decay_length_matches_physics_md(coupling: float, expected_cm: float) -> None:
    # m_a = 0.2 GeV: 0.13 mm, 13 mm, 1.3 m
    length = alp_decay_length(0.2, coupling, alp_momentum_cms(0.2, 10.58))
    assert length == pytest.approx(expected_cm, rel=0.03)


def test_alp_width_formula() -> None:
    assert alp_width(1.0, 1e-3) == pytest.approx(1e-6 / (64 * np.pi), rel=1e-12)


def _ggg_sigma(lo: float, hi: float, e_min: float, n: int = 300_000) -> tuple[float, float]:
    """Cross-section of gamma gamma gamma with all photons inside [lo, hi] degrees (lab) above
    e_min, from the weighted generator (generated inside looser cuts)."""
    cuts = GeneratorCuts(theta_min_deg=12.4, theta_max_deg=155.1, photon_e_min_GeV=0.1)
    generator = background_generator("ggg", cuts)
    rng = np.random.default_rng(7)
    beams = BeamConditions(7.004, 4.002, 0.0, 0.0)
    _, _, lab, weights = generator.weighted(rng, beams, n, cuts)  # type: ignore[attr-defined]
    theta = np.degrees(polar_angle(lab))
    inside = np.all((theta > lo) & (theta < hi) & (lab[..., 0] > e_min), axis=1)
    w = np.where(inside, weights, 0.0)
    return float(w.mean()), float(w.std() / np.sqrt(n))


@pytest.mark.parametrize(
    ("lo", "hi", "e_min", "expected_pb"),
    [(17.0, 150.0, 0.5, 72.0), (12.4, 155.1, 0.1, 186.0), (32.2, 128.7, 1.0, 14.7)],
)
def test_three_photon_cross_section_matches_physics_md(
    lo: float, hi: float, e_min: float, expected_pb: float
) -> None:
    sigma, error = _ggg_sigma(lo, hi, e_min)
    assert error < 0.007 * sigma  # the 2% tolerance is then at least 3 sigma
    assert sigma == pytest.approx(expected_pb, rel=0.02)


def test_diphoton_cross_section_matches_physics_md() -> None:
    # physics.md: both photons inside 17-150 degrees (lab): 2.54 nb
    generator = DiphotonGenerator()
    rng = np.random.default_rng(3)
    n = 400_000
    p_e, p_p = BeamConditions(7.004, 4.002, 0.0, 0.0).draw(rng, n)
    lab = generator.momenta_at(rng, p_e, p_p)
    theta = np.degrees(polar_angle(lab))
    fraction = np.all((theta > 17.0) & (theta < 150.0), axis=1).mean()
    sigma = generator.sigma_range(NOMINAL.sqrt_s**2) * fraction
    assert sigma / 1000.0 == pytest.approx(2.54, rel=0.02)


def test_born_mumu_integrates_to_point_cross_section() -> None:
    # sigma(ee -> mumu) = 4 pi alpha^2 / (3 s) in the massless limit
    s = 10.58**2
    cos_t = np.linspace(-1, 1, 200_001)
    t = -s / 2 * (1 - cos_t)
    dsigma = me2_ee_to_mumu(np.full_like(t, s), t) / (64 * np.pi**2 * s) * 2 * np.pi
    sigma = np.trapezoid(dsigma, cos_t)
    assert sigma == pytest.approx(4 * np.pi * ALPHA**2 / (3 * s), rel=1e-6)


def _soft_configuration(omega: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """e-(+z) e+(-z) -> l- l+ gamma with a photon of energy omega; leptons of the Born
    configuration rescaled to conserve momentum."""
    rs = 10.58
    cos_l, phi_l = 0.3, 0.4
    n_l = np.array(
        [np.sqrt(1 - cos_l**2) * np.cos(phi_l), np.sqrt(1 - cos_l**2) * np.sin(phi_l), cos_l]
    )
    n_k = np.array([0.6, -0.48, 0.64])
    n_k /= np.linalg.norm(n_k)
    k = np.concatenate([[omega], omega * n_k])
    # massless leptons balancing the photon: solve for their energies along +/- n_l after recoil
    q_total = np.array([rs, 0, 0, 0]) - k
    # boost-free construction: put the pair in its rest frame along n_l, then boost with q_total
    m_pair = np.sqrt(q_total[0] ** 2 - np.sum(q_total[1:] ** 2))
    from simulation.kinematics import boost

    l_minus = boost(np.concatenate([[m_pair / 2], m_pair / 2 * n_l]), q_total[1:] / q_total[0])
    l_plus = q_total - l_minus
    return np.stack([l_minus, l_plus, k])[None], np.array([rs]), l_minus, l_plus


@pytest.mark.parametrize(
    ("me2", "born"),
    [(me2_mumu_gamma, me2_ee_to_mumu), (me2_bhabha_gamma, me2_bhabha)],
)
def test_radiative_matrix_elements_have_the_soft_photon_limit(me2, born) -> None:  # type: ignore[no-untyped-def]
    # |M(l l gamma)|^2 -> |M_Born|^2 e^2 (-J.J) as omega -> 0 (Yennie-Frautschi-Suura)
    ratios = []
    for omega in (1e-2, 1e-3, 1e-4):
        k, rs, l_minus, l_plus = _soft_configuration(omega)
        half = rs[0] / 2
        p_minus = np.array([half, 0, 0, half])
        p_plus = np.array([half, 0, 0, -half])
        s = rs[0] ** 2
        t = dot(p_minus - l_minus, p_minus - l_minus)
        legs = np.stack([p_minus, p_plus, l_minus, l_plus])[None]
        soft = born(np.array([s]), np.array([t])) * E2 * eikonal_factor(legs, k[:, 2])
        ratios.append(float(me2(np.ascontiguousarray(k), rs)[0] / soft[0]))
    assert abs(ratios[-1] - 1.0) < 1e-3
    assert abs(ratios[-1] - 1.0) < abs(ratios[0] - 1.0) + 1e-12


def test_one_plus_cos2_sampler() -> None:
    cos_t = sample_one_plus_cos2(np.random.default_rng(1).random(200_000))

    def cdf(c: np.ndarray) -> np.ndarray:
        return (c + c**3 / 3 + 4 / 3) / (8 / 3)

    assert stats.kstest(cos_t, cdf).pvalue > 0.01


def _cms_polar_cosine(events, index: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    frame = CollisionFrame(events.p_electron, events.p_positron)
    cms = frame.from_lab(events.photons)
    p = cms[:, index]
    return np.asarray(p[:, 3] / np.linalg.norm(p[:, 1:], axis=-1))


def test_signal_production_angle_is_one_plus_cos2_in_the_cms() -> None:
    generator = AlpGenerator(2.0, 1e-3)
    cuts = GeneratorCuts()
    events = generator.generate(
        np.random.default_rng(5), NOMINAL, 100_000, cuts, generator.calibrate(None, NOMINAL, cuts)
    )  # type: ignore[arg-type]
    recoil_cos = _cms_polar_cosine(events, 0)
    assert stats.kstest(-recoil_cos, lambda c: (c + c**3 / 3 + 4 / 3) / (8 / 3)).pvalue > 0.01
    # the recoil photon's CM energy is (s - m^2)/(2 sqrt s)
    frame = CollisionFrame(events.p_electron, events.p_positron)
    energy = frame.from_lab(events.photons)[:, 0, 0]
    expected = (frame.s - 4.0) / (2 * frame.sqrt_s)
    np.testing.assert_allclose(energy, expected, rtol=1e-10)


def test_signal_decay_is_isotropic_and_lifetime_exponential() -> None:
    mass, coupling = 0.2, 1e-4
    generator = AlpGenerator(mass, coupling)
    cuts = GeneratorCuts()
    events = generator.generate(
        np.random.default_rng(6), NOMINAL, 100_000, cuts, generator.calibrate(None, NOMINAL, cuts)
    )  # type: ignore[arg-type]
    alp = events.photons[:, 1] + events.photons[:, 2]
    p = np.linalg.norm(alp[:, 1:], axis=-1)
    np.testing.assert_allclose(np.sqrt(dot(alp, alp)), mass, rtol=1e-9)
    flight = np.linalg.norm(events.photon_vertex[:, 1], axis=-1)
    scaled = flight / alp_decay_length(mass, coupling, p)
    assert np.mean(scaled) == pytest.approx(1.0, abs=0.01)
    assert stats.kstest(scaled, "expon").pvalue > 0.01
    # decay photon direction in the ALP rest frame is isotropic
    from simulation.kinematics import boost

    rest = boost(events.photons[:, 1], -alp[:, 1:] / alp[:, :1])
    cos_rest = np.sum(rest[:, 1:] * alp[:, 1:], axis=-1) / (
        np.linalg.norm(rest[:, 1:], axis=-1) * p
    )
    assert stats.kstest(cos_rest, stats.uniform(-1, 2).cdf).pvalue > 0.01


@pytest.mark.parametrize("name", background_names())
def test_generators_conserve_four_momentum(name: str) -> None:
    cuts = GeneratorCuts(calibration_events=20_000)
    generator = background_generator(name, cuts)
    rng = np.random.default_rng(11)
    calibration = generator.calibrate(rng, NOMINAL, cuts)
    events = generator.generate(rng, NOMINAL, 2000, cuts, calibration)
    assert len(events) == 2000
    total = events.photons.sum(axis=1) + events.leptons.sum(axis=1)
    np.testing.assert_allclose(total, events.p_electron + events.p_positron, atol=1e-9)
    assert calibration.sigma_pb > 0 and calibration.sigma_err_pb < 0.05 * calibration.sigma_pb


def test_weighted_unweighting_is_unbiased() -> None:
    # the mean photon energy of unweighted events equals the weighted mean of weighted ones
    cuts = GeneratorCuts()
    generator = background_generator("ggg", cuts)
    rng = np.random.default_rng(4)
    calibration = generator.calibrate(rng, NOMINAL, cuts)
    _, _, lab, weights = generator.weighted(rng, NOMINAL, 200_000, cuts)  # type: ignore[attr-defined]
    weighted_mean = np.sum(weights * lab[:, :, 0].min(axis=1)) / weights.sum()
    events = generator.generate(rng, NOMINAL, 100_000, cuts, calibration)
    unweighted = events.photons[:, :, 0].min(axis=1)
    error = unweighted.std() / np.sqrt(len(unweighted))
    assert abs(unweighted.mean() - weighted_mean) < 4 * error + 0.002


def test_cross_section_sample_uses_physics_units() -> None:
    # alpha g^2/24 in GeV^-2 at m -> 0 times the pb conversion
    assert sigma_alp(1e-6, 1e-3, 1e6) == pytest.approx(ALPHA * 1e-6 / 24 * GEV2_TO_PB, rel=1e-9)
