"""Kinematic fit on simulated three-photon events with known Gaussian resolution (no radiation):
pulls, χ² probability, constraint closure, fitted covariance, and the documented behaviour on
flagged events."""

from __future__ import annotations

import inspect
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import stats
from test_kinfit_reference import BEAM, angles, smeared_sample, three_photon_events

import kinfit
from kinfit.batched import fit_three_photons_numpy
from kinfit.numerics import chi2_sf, sincos

N_EVENTS = 20_000


@pytest.fixture(scope="module")
def sample():
    return smeared_sample(seed=2024, n=N_EVENTS)


@pytest.fixture(scope="module")
def fitted(sample):
    _, measured, cov, beam = sample
    return kinfit.fit_three_photons(*measured, cov, beam)


def test_generator_is_exact() -> None:
    p = three_photon_events(np.random.default_rng(1), 1000)
    assert np.abs(p.sum(axis=1) - BEAM).max() < 1e-12
    assert np.abs(p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)).max() < 1e-12


def test_all_clean_events_converge(fitted) -> None:
    assert fitted.converged.all()
    assert (fitted.status == kinfit.FitStatus.OK).all()
    assert fitted.iterations.max() <= 5
    assert fitted.ndf == 4


def test_pulls_are_standard_normal(fitted) -> None:
    """The pulls of all nine measured quantities have mean 0 ± 0.05 and width 1 ± 0.05."""
    pulls = fitted.pulls.reshape(-1, 9)
    mean = pulls.mean(axis=0)
    width = pulls.std(axis=0, ddof=1)
    assert np.all(np.abs(mean) < 0.05), mean
    assert np.all(np.abs(width - 1.0) < 0.05), width


def test_chi2_probability_is_flat(fitted) -> None:
    result = stats.kstest(fitted.pvalue, "uniform")
    assert result.pvalue > 0.01, result
    np.testing.assert_allclose(fitted.pvalue, stats.chi2.sf(fitted.chi2, 4), rtol=1e-12, atol=0)


def test_fitted_momenta_sum_to_beam(sample, fitted) -> None:
    beam = sample[3]
    assert np.abs(fitted.four_momenta().sum(axis=1) - beam).max() < 1e-6


def test_fitted_covariance_covers_the_truth(sample, fitted) -> None:
    """(fitted − true) / σ_fitted has unit width: the fitted covariance is right, and smaller
    than the measured one."""
    truth, _, cov, _ = sample
    residual = np.stack([fitted.E, fitted.theta, fitted.phi], axis=-1) - np.stack(truth, axis=-1)
    sigma = np.sqrt(np.diagonal(fitted.cov, axis1=-2, axis2=-1))
    width = (residual / sigma).reshape(-1, 9).std(axis=0, ddof=1)
    assert np.all(np.abs(width - 1.0) < 0.05), width
    assert np.all(np.diagonal(fitted.cov, axis1=-2, axis2=-1) < cov)
    np.testing.assert_array_equal(fitted.cov, np.swapaxes(fitted.cov, -1, -2))


def test_fit_improves_the_resolution(sample, fitted) -> None:
    truth, measured, _, _ = sample
    before = np.std(measured[0] - truth[0])
    after = np.std(fitted.E - truth[0])
    assert after < 0.8 * before


def test_numpy_implementation_agrees(sample, fitted) -> None:
    _, measured, cov, beam = sample
    ref = fit_three_photons_numpy(*(m[:3000] for m in measured), cov[:3000], beam[:3000])
    for name in ("E", "theta", "phi", "cov", "chi2", "pvalue", "pulls"):
        np.testing.assert_allclose(
            getattr(ref, name), getattr(fitted, name)[:3000], rtol=1e-9, atol=1e-12, err_msg=name
        )
    np.testing.assert_array_equal(ref.status, fitted.status[:3000])
    np.testing.assert_array_equal(ref.iterations, fitted.iterations[:3000])


def test_full_and_diagonal_covariance_agree(sample) -> None:
    _, measured, cov, beam = sample
    args = [m[:500] for m in measured]
    diag = kinfit.fit_three_photons(*args, cov[:500], beam[:500])
    full = kinfit.fit_three_photons(*args, kinfit.full_covariance(cov[:500]), beam[:500])
    for name in ("E", "theta", "phi", "cov", "chi2", "pulls"):
        np.testing.assert_array_equal(getattr(diag, name), getattr(full, name), err_msg=name)


def test_correlated_covariance_is_used(sample) -> None:
    """A correlation between E and θ changes the fit, and the result stays symmetric."""
    _, measured, cov, beam = sample
    args = [m[:200] for m in measured]
    full = kinfit.full_covariance(cov[:200])
    rho = 0.4 * np.sqrt(full[..., 0, 0] * full[..., 1, 1])
    full[..., 0, 1] = full[..., 1, 0] = rho
    plain = kinfit.fit_three_photons(*args, cov[:200], beam[:200])
    corr = kinfit.fit_three_photons(*args, full, beam[:200])
    assert corr.converged.all()
    assert np.abs(corr.E - plain.E).max() > 1e-6
    np.testing.assert_array_equal(corr.cov, np.swapaxes(corr.cov, -1, -2))


def test_non_contiguous_and_float32_inputs(sample) -> None:
    _, measured, cov, beam = sample
    m = 300
    ref = kinfit.fit_three_photons(*(x[:m] for x in measured), cov[:m], beam[:m])
    # every other event of a doubled array, Fortran order, reversed photon order
    doubled = [np.repeat(x[:m], 2, axis=0)[::2] for x in (*measured, cov, beam)]
    assert not doubled[0].flags.c_contiguous
    fortran = [np.asfortranarray(x) for x in doubled]
    for args in (doubled, fortran):
        out = kinfit.fit_three_photons(*args)
        np.testing.assert_array_equal(out.E, ref.E)
        np.testing.assert_array_equal(out.cov, ref.cov)
    rev = kinfit.fit_three_photons(*(x[:m, ::-1] for x in measured), cov[:m, ::-1], beam[:m])
    np.testing.assert_allclose(rev.E[:, ::-1], ref.E, rtol=1e-12)
    single = kinfit.fit_three_photons(
        *(x[:m].astype(np.float32) for x in measured), cov[:m], beam[:m]
    )
    assert single.converged.all()


def test_result_pickles(fitted) -> None:
    back = pickle.loads(pickle.dumps(fitted))
    assert isinstance(back, kinfit.KinFitResult)
    for name in ("E", "theta", "phi", "cov", "chi2", "pvalue", "iterations", "status", "pulls"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fitted, name))
    assert back.ndf == fitted.ndf
    assert len(back) == N_EVENTS


def test_threads_give_the_same_result(sample, fitted) -> None:
    """The compiled loop releases the GIL (Dask's threaded workers): chunks fitted in threads
    equal the single call."""
    _, measured, cov, beam = sample
    args = (*measured, cov, beam)
    halves = [tuple(x[s] for x in args) for s in (slice(0, 10_000), slice(10_000, None))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda a: kinfit.fit_three_photons(*a), halves))
    for name in ("E", "cov", "chi2", "status"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(p, name) for p in parts]), getattr(fitted, name)
        )


def test_output_types(fitted) -> None:
    n = N_EVENTS
    assert fitted.E.shape == fitted.theta.shape == fitted.phi.shape == (n, 3)
    assert fitted.cov.shape == (n, 3, 3, 3)
    assert fitted.pulls.shape == (n, 3, 3)
    assert fitted.status.dtype == np.int8
    assert fitted.iterations.dtype == np.int32
    assert fitted.converged.dtype == np.bool_
    assert isinstance(fitted.ndf, int)


def test_empty_input() -> None:
    empty = np.empty((0, 3))
    out = kinfit.fit_three_photons(empty, empty, empty, np.empty((0, 3, 3)), np.empty((0, 4)))
    assert len(out) == 0
    assert out.cov.shape == (0, 3, 3, 3)


def test_shape_errors_raise() -> None:
    e = np.ones((2, 3))
    beam = np.tile(BEAM, (2, 1))
    with pytest.raises(ValueError, match="cov"):
        kinfit.fit_three_photons(e, e, e, np.ones((2, 3)), beam)
    with pytest.raises(ValueError, match="beam"):
        kinfit.fit_three_photons(e, e, e, np.ones((2, 3, 3)), beam[:, :3])
    with pytest.raises(ValueError, match="theta"):
        kinfit.fit_three_photons(e, e[:1], e, np.ones((2, 3, 3)), beam)
    with pytest.raises(ValueError, match="max_iterations"):
        kinfit.fit_three_photons(e, e, e, np.ones((2, 3, 3)), beam, max_iterations=0)
    with pytest.raises(ValueError, match="free_photon"):
        kinfit.fit_three_photons_free_energy(e, e, e, np.ones((2, 3, 3)), beam, [0, 3])


def test_defaults_match_the_configuration() -> None:
    from alps.config import KinfitConfig

    cfg = KinfitConfig()
    params = inspect.signature(kinfit.fit_three_photons).parameters
    assert params["max_iterations"].default == cfg.max_iterations
    assert params["chi2_tolerance"].default == cfg.chi2_tolerance
    assert params["constraint_tolerance"].default == cfg.constraint_tolerance_GeV


# ---- flagged events -----------------------------------------------------------------------------


def _one_good_event():
    _, measured, cov, beam = smeared_sample(seed=7, n=1)
    return [x.copy() for x in measured], cov.copy(), beam.copy()


def _assert_flagged(out, i: int, code: int, measured, cov) -> None:
    assert out.status[i] == code
    assert not out.converged[i]
    assert out.chi2[i] == np.inf
    assert out.pvalue[i] == 0.0
    assert np.all(out.pulls[i] == 0.0)
    for got, x in zip((out.E, out.theta, out.phi), measured):
        np.testing.assert_array_equal(got[i], np.nan_to_num(x[i], nan=0.0, posinf=0.0, neginf=0.0))
    full = cov if cov.ndim == 4 else kinfit.full_covariance(cov)
    np.testing.assert_array_equal(
        out.cov[i], np.nan_to_num(full[i], nan=0.0, posinf=0.0, neginf=0.0)
    )


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda m, c, b: m[0].__setitem__((0, 1), np.nan), id="nan-energy"),
        pytest.param(lambda m, c, b: m[0].__setitem__((0, 2), 0.0), id="zero-energy"),
        pytest.param(lambda m, c, b: m[0].__setitem__((0, 0), -1.0), id="negative-energy"),
        pytest.param(lambda m, c, b: m[0].__setitem__((0, 0), np.inf), id="inf-energy"),
        pytest.param(lambda m, c, b: m[1].__setitem__((0, 1), -0.1), id="theta-below-0"),
        pytest.param(lambda m, c, b: m[1].__setitem__((0, 1), 3.2), id="theta-above-pi"),
        pytest.param(lambda m, c, b: m[2].__setitem__((0, 2), np.nan), id="nan-phi"),
        pytest.param(lambda m, c, b: c.__setitem__((0, 1, 0), 0.0), id="zero-variance"),
        pytest.param(lambda m, c, b: c.__setitem__((0, 1, 2), -1e-6), id="negative-variance"),
        pytest.param(lambda m, c, b: c.__setitem__((0, 2, 1), np.nan), id="nan-variance"),
        pytest.param(lambda m, c, b: b.__setitem__((0, 3), np.nan), id="nan-beam"),
        pytest.param(lambda m, c, b: b.__setitem__((0, 0), 1.0), id="spacelike-beam"),
        pytest.param(lambda m, c, b: b.__setitem__((0, 0), -11.0), id="negative-beam-energy"),
    ],
)
def test_bad_input_is_flagged(corrupt) -> None:
    measured, cov, beam = _one_good_event()
    good = [np.concatenate([x, x]) for x in measured]
    corrupt(measured, cov, beam)
    args = [np.concatenate([x, g[:1]]) for x, g in zip(measured, good)]
    cov2 = np.concatenate([cov, cov])
    cov2[1] = smeared_sample(seed=7, n=1)[2][0]
    beam2 = np.concatenate([beam, np.tile(BEAM, (1, 1))])
    out = kinfit.fit_three_photons(*args, cov2, beam2)
    _assert_flagged(out, 0, kinfit.FitStatus.BAD_INPUT, args, cov2)
    assert out.iterations[0] == 0
    assert out.status[1] == kinfit.FitStatus.OK  # the neighbour is unaffected
    ref = fit_three_photons_numpy(*args, cov2, beam2)
    np.testing.assert_array_equal(ref.status, out.status)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda c: c.__setitem__((0, 0, 0, 1), 2 * c[0, 0, 0, 1] + 1e-3), id="asym"),
        pytest.param(lambda c: c.__setitem__((0, 1, slice(None), slice(None)), 1e-4), id="rank1"),
        pytest.param(
            lambda c: c.__setitem__((0, 2, slice(1, 3), slice(1, 3)), [[1e-5, 2e-5], [2e-5, 1e-5]]),
            id="indefinite",
        ),
    ],
)
def test_bad_full_covariance_is_flagged(corrupt) -> None:
    measured, cov, beam = _one_good_event()
    full = kinfit.full_covariance(cov)
    corrupt(full)
    out = kinfit.fit_three_photons(*measured, full, beam)
    _assert_flagged(out, 0, kinfit.FitStatus.BAD_INPUT, measured, full)
    np.testing.assert_array_equal(fit_three_photons_numpy(*measured, full, beam).status, out.status)


def test_collinear_photons_are_singular() -> None:
    """Three photons along one direction: D V Dᵀ has rank 3."""
    E = np.array([[3.0, 4.0, 4.0]])
    theta = np.full((1, 3), 1.0)
    phi = np.full((1, 3), 0.3)
    cov = kinfit.diagonal_covariance(0.02 * E, np.full((1, 3), 4e-3), np.full((1, 3), 4e-3))
    out = kinfit.fit_three_photons(E, theta, phi, cov, np.tile(BEAM, (1, 1)))
    _assert_flagged(out, 0, kinfit.FitStatus.SINGULAR, (E, theta, phi), cov)


def test_back_to_back_photons_fit() -> None:
    """Two photons exactly back to back in the beam frame and a soft third photon (a γγ event
    with an extra cluster) is not degenerate for four constraints: it fits, or is flagged."""
    rng = np.random.default_rng(3)
    p = three_photon_events(rng, 1)
    # replace by a nearly two-body event: photon 3 soft and collinear with photon 1
    E, theta, phi = angles(p)
    E[0] = [5.2, 5.0, 0.3]
    theta[0] = [1.2, np.pi - 1.2, 1.2]
    phi[0] = [0.5, 0.5 + np.pi, 0.5]
    cov = kinfit.diagonal_covariance(0.02 * E, np.full((1, 3), 4e-3), np.full((1, 3), 4e-3))
    out = kinfit.fit_three_photons(E, theta, phi, cov, np.tile(BEAM, (1, 1)))
    assert out.status[0] in set(kinfit.FitStatus)
    assert np.isfinite(out.E).all() and np.isfinite(out.cov).all()


def test_too_few_iterations_is_not_converged(sample) -> None:
    _, measured, cov, beam = sample
    args = [m[:100] for m in measured]
    out = kinfit.fit_three_photons(*args, cov[:100], beam[:100], max_iterations=1)
    assert np.all(out.status == kinfit.FitStatus.NOT_CONVERGED)
    assert np.all(out.iterations == 1)
    _assert_flagged(out, 0, kinfit.FitStatus.NOT_CONVERGED, args, cov[:100])
    ref = fit_three_photons_numpy(*args, cov[:100], beam[:100], max_iterations=1)
    np.testing.assert_array_equal(ref.status, out.status)


def test_negative_fitted_energy_is_unphysical() -> None:
    """A soft photon and energies that overshoot the beam: the constraints push the soft
    photon's energy below zero."""
    beam = np.array([[10.0, 0.0, 0.0, 0.0]])
    E = np.array([[6.0, 6.0, 0.3]])
    theta = np.full((1, 3), np.pi / 2)
    phi = np.array([[0.0, np.pi, 0.0]])
    cov = kinfit.diagonal_covariance(
        np.array([[0.01, 0.01, 1.0]]), np.full((1, 3), 1e-3), np.full((1, 3), 1e-3)
    )
    out = kinfit.fit_three_photons(E, theta, phi, cov, beam)
    _assert_flagged(out, 0, kinfit.FitStatus.UNPHYSICAL, (E, theta, phi), cov)
    np.testing.assert_array_equal(fit_three_photons_numpy(E, theta, phi, cov, beam).status, 4)


# ---- free-energy variant ------------------------------------------------------------------------


def test_free_energy_ignores_a_wrong_energy(sample) -> None:
    """With one photon's energy off by −30% (leakage), the 3C fit with that energy free still
    gives unit pulls for the other eight quantities, a flat p-value for ndf = 3 and a fitted
    energy that covers the true one."""
    truth, measured, cov, beam = sample
    n = 10_000
    rng = np.random.default_rng(5)
    free = rng.integers(0, 3, n)
    rows = np.arange(n)
    E = measured[0][:n].copy()
    E[rows, free] *= 0.7
    out = kinfit.fit_three_photons_free_energy(
        E, measured[1][:n], measured[2][:n], cov[:n], beam[:n], free
    )
    assert out.converged.all()
    assert out.ndf == 3
    assert np.all(out.pulls[rows, free, 0] == 0.0)
    measured_mask = np.ones((n, 3, 3), dtype=bool)
    measured_mask[rows, free, 0] = False
    for q in range(3):
        pulls = out.pulls[..., q][measured_mask[..., q]]
        assert abs(pulls.mean()) < 0.05
        assert abs(pulls.std(ddof=1) - 1.0) < 0.05
    assert stats.kstest(out.pvalue, "uniform").pvalue > 0.01
    np.testing.assert_allclose(out.pvalue, stats.chi2.sf(out.chi2, 3), rtol=1e-12, atol=1e-300)
    z_pull = (out.E[rows, free] - truth[0][rows, free]) / np.sqrt(out.cov[rows, free, 0, 0])
    assert abs(z_pull.mean()) < 0.05
    assert abs(z_pull.std(ddof=1) - 1.0) < 0.05
    assert np.abs(out.four_momenta().sum(axis=1) - beam[:n]).max() < 1e-6
    # the 4C fit is pulled by the wrong energy: bad χ²
    four_c = kinfit.fit_three_photons(E, measured[1][:n], measured[2][:n], cov[:n], beam[:n])
    assert np.median(four_c.pvalue) < 0.01


def test_free_energy_with_unusable_measured_energy() -> None:
    """The free photon's measured energy may be NaN or zero: it is only a starting value."""
    _, measured, cov, beam = smeared_sample(seed=8, n=2)
    E = measured[0].copy()
    E[0, 1] = np.nan
    E[1, 1] = 0.0
    cov = cov.copy()
    cov[:, 1, 0] = np.nan  # its energy variance is ignored too
    out = kinfit.fit_three_photons_free_energy(E, measured[1], measured[2], cov, beam, [1, 1])
    assert out.converged.all()
    ref = kinfit.fit_three_photons_free_energy(
        measured[0], measured[1], measured[2], np.nan_to_num(cov, nan=1.0), beam, [1, 1]
    )
    np.testing.assert_allclose(out.E, ref.E, rtol=1e-7)  # other start, same tolerance
    assert np.isfinite(out.cov).all()


# ---- numerical helpers --------------------------------------------------------------------------


def test_status_codes_match_the_kernel() -> None:
    from kinfit import kernel

    for status in kinfit.FitStatus:
        assert getattr(kernel, f"STATUS_{status.name}") == status


def test_sincos_matches_libm() -> None:
    x = np.concatenate(
        [
            np.random.default_rng(0).uniform(-50.0, 50.0, 100_000),
            np.arange(-8, 9) * np.pi / 4,
            [0.0, -0.0, 1e-300, 2e5, -3e6],
        ]
    )
    s, c = np.array([sincos(v) for v in x]).T
    np.testing.assert_allclose(s, np.sin(x), rtol=0, atol=4.5e-16)
    np.testing.assert_allclose(c, np.cos(x), rtol=0, atol=4.5e-16)
    assert all(np.isnan(sincos(v)).all() for v in (np.nan, np.inf, -np.inf))


@pytest.mark.parametrize("ndf", [3, 4])
def test_chi2_survival_function(ndf: int) -> None:
    x = np.concatenate([[0.0], np.geomspace(1e-8, 300, 200)])
    ours = np.array([chi2_sf(v, ndf) for v in x])
    np.testing.assert_allclose(ours, stats.chi2.sf(x, ndf), rtol=1e-12, atol=1e-300)
    assert chi2_sf(np.inf, ndf) == 0.0
