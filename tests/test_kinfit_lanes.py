"""The lanes kernel (:mod:`kinfit.lanes`, the standard fit's compiled loop since #12) against the
scalar kernel it replaced (:mod:`kinfit.kernel`, kept as the free-energy fit and as this
baseline), on simulated events and on every kind of flagged event.

Both kernels do the same arithmetic operation for operation, but the compiler may fuse a
different multiply and add into one FMA in vector code than in scalar code, so fitted values
agree to rounding, not always to the bit. Status codes, iteration counts and the values of
flagged events are equal exactly; fitted E, χ² and p-values within 1e-9 relative (χ² and p also
1e-12 absolute), θ and φ within 1e-9 of max(|angle|, 1 rad) (φ crosses 0, where a relative
difference means nothing); the fitted covariance within 1e-9 of the measured covariance's scale
(its entries are differences of nearly equal numbers where the fit constrains a quantity
strongly); pulls (order 1) within 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_kinfit_reference import (
    BEAM,
    _random_correlated_covariance,
    angles,
    smeared_sample,
    three_photon_events,
)

import kinfit
from kinfit.fit import _fit_three_photons_scalar
from kinfit.lanes import LANES, SUPER

TOL = 1e-9


def _assert_same(new: kinfit.KinFitResult, old: kinfit.KinFitResult, cov_in: np.ndarray) -> None:
    """``new`` equals ``old`` as the module docstring states; ``cov_in`` the input covariance."""
    np.testing.assert_array_equal(new.status, old.status)
    np.testing.assert_array_equal(new.iterations, old.iterations)
    np.testing.assert_array_equal(new.converged, old.converged)
    assert new.ndf == old.ndf == 4
    flagged = ~old.converged
    for name in ("E", "theta", "phi", "cov", "chi2", "pvalue", "pulls"):
        a, b = getattr(new, name), getattr(old, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_array_equal(a[flagged], b[flagged], err_msg=name)
    ok = old.converged
    np.testing.assert_allclose(new.E[ok], old.E[ok], rtol=TOL, atol=0.0)
    for name in ("theta", "phi"):  # relative to max(|angle|, 1 rad): φ crosses 0
        np.testing.assert_allclose(getattr(new, name)[ok], getattr(old, name)[ok], rtol=TOL,
                                   atol=TOL, err_msg=name)  # fmt: skip
    for name in ("chi2", "pvalue"):
        np.testing.assert_allclose(getattr(new, name)[ok], getattr(old, name)[ok], rtol=TOL,
                                   atol=1e-12, err_msg=name)  # fmt: skip
    full = cov_in if cov_in.ndim == 4 else kinfit.full_covariance(cov_in)
    var = np.abs(np.diagonal(full, axis1=-2, axis2=-1))
    scale = np.sqrt(var[..., :, None] * var[..., None, :])[ok]
    assert np.all(np.abs(new.cov[ok] - old.cov[ok]) <= TOL * scale)
    np.testing.assert_allclose(new.pulls[ok], old.pulls[ok], rtol=0.0, atol=TOL)


@pytest.fixture(scope="module")
def sample():
    return smeared_sample(seed=12, n=5003)  # not a multiple of LANES: a partial last block


def test_lanes_equal_the_scalar_kernel(sample) -> None:
    _, measured, cov, beam = sample
    new = kinfit.fit_three_photons(*measured, cov, beam)
    old = _fit_three_photons_scalar(*measured, cov, beam)
    assert new.converged.mean() > 0.99
    _assert_same(new, old, cov)


def test_lanes_equal_the_scalar_kernel_with_correlations(sample) -> None:
    _, measured, _, beam = sample
    full = _random_correlated_covariance(np.random.default_rng(5), measured[0])
    new = kinfit.fit_three_photons(*measured, full, beam)
    old = _fit_three_photons_scalar(*measured, full, beam)
    assert new.converged.mean() > 0.99
    _assert_same(new, old, full)


@pytest.mark.parametrize("max_iterations", [1, 2, 3, 20])
def test_lanes_equal_the_scalar_kernel_on_every_status(max_iterations: int) -> None:
    """Good events mixed with bad input, singular, unphysical and slowly converging ones, and
    angles beyond sincos's polynomial range (|φ| > 1e5, the libm fallback of the lanes); three
    times over, so that they span several calls of the lane functions (SUPER blocks each)."""
    events = [list(e) for e in _edge_events()] * 3
    assert len(events) > 2 * SUPER * LANES
    measured = [np.array([e[q] for e in events]) for q in range(3)]
    cov = np.array([e[3] for e in events])
    beam = np.array([e[4] for e in events])
    options = {"max_iterations": max_iterations}
    new = kinfit.fit_three_photons(*measured, cov, beam, **options)
    old = _fit_three_photons_scalar(*measured, cov, beam, **options)
    _assert_same(new, old, cov)
    if max_iterations == 20:
        assert set(np.unique(new.status)) == {0, 2, 3, 4}
    if max_iterations == 1:
        assert set(np.unique(new.status)) == {1, 2, 3}


def _edge_events():
    """(E, θ, φ, diagonal covariance, beam) rows: every status code of the fit."""
    _, (E, theta, phi), cov, beam = smeared_sample(seed=3, n=24)
    good = [(E[i], theta[i], phi[i], cov[i], beam[i]) for i in range(len(E))]

    def changed(i: int, q: int, index: tuple, value: float):
        row = [np.array(x, dtype=np.float64, copy=True) for x in good[i]]
        row[q][index] = value
        return tuple(row)

    bad = [
        changed(0, 0, (1,), np.nan), changed(1, 0, (2,), 0.0), changed(2, 0, (0,), -1.0),
        changed(3, 0, (0,), np.inf), changed(4, 1, (1,), -0.1), changed(5, 1, (1,), 3.2),
        changed(6, 2, (2,), np.nan), changed(7, 3, (1, 0), 0.0), changed(8, 3, (1, 2), -1e-6),
        changed(9, 3, (2, 1), np.nan), changed(10, 4, (3,), np.nan), changed(11, 4, (0,), 1.0),
        changed(12, 4, (0,), -11.0), changed(13, 2, (1,), np.inf),
    ]  # fmt: skip
    # the same event with every φ shifted by 2π·20000 (|φ| > 1e5: libm's sin and cos)
    far = changed(14, 2, (slice(None),), 0.0)
    far[2][:] = good[14][2] + 2 * np.pi * 20000
    assert np.all(np.abs(far[2]) > 1e5)
    # three collinear photons: D V Dᵀ singular
    e3 = np.array([3.0, 4.0, 4.0])
    sig = kinfit.diagonal_covariance(0.02 * e3, np.full(3, 4e-3), np.full(3, 4e-3))
    collinear = (e3, np.full(3, 1.0), np.full(3, 0.3), sig, BEAM)
    # energies that overshoot a beam at rest, one soft photon: fitted energy < 0
    soft = kinfit.diagonal_covariance(np.array([0.01, 0.01, 1.0]), np.full(3, 1e-3),
                                      np.full(3, 1e-3))  # fmt: skip
    unphysical = (np.array([6.0, 6.0, 0.3]), np.full(3, np.pi / 2), np.array([0.0, np.pi, 0.0]),
                  soft, np.array([10.0, 0.0, 0.0, 0.0]))  # fmt: skip
    # a badly mismeasured event needing more steps
    p = three_photon_events(np.random.default_rng(9), 1)
    e, t, f = (x[0] for x in angles(p))
    slow = (e * np.array([1.3, 0.8, 1.1]), t + 0.05, f - 0.04, kinfit.diagonal_covariance(
        0.02 * e, np.full(3, 4e-3), np.full(3, 4e-3)), BEAM)  # fmt: skip
    return good[14:] + bad + [far, collinear, unphysical, slow] + good[:14] + [collinear] * 3


def test_an_event_does_not_depend_on_its_lane(sample) -> None:
    """Each event fitted alone (lane 0 of a block of padding) and at every offset inside a block
    gives the same bits: the lanes do not mix, so results do not depend on chunking."""
    _, measured, cov, beam = sample
    m = SUPER * LANES + 2 * LANES + 3
    together = kinfit.fit_three_photons(*(x[:m] for x in measured), cov[:m], beam[:m])
    for shift in (*range(1, LANES), 3 * LANES + 5):
        idx = np.r_[np.zeros(shift, dtype=int), np.arange(m)]
        shifted = kinfit.fit_three_photons(*(x[idx] for x in measured), cov[idx], beam[idx])
        for name in ("E", "theta", "phi", "cov", "chi2", "pulls", "iterations", "status"):
            np.testing.assert_array_equal(getattr(shifted, name)[shift:], getattr(together, name))
    for i in range(0, m, 7):
        alone = kinfit.fit_three_photons(*(x[i : i + 1] for x in measured), cov[i : i + 1],
                                         beam[i : i + 1])  # fmt: skip
        for name in ("E", "theta", "phi", "cov", "chi2", "pulls"):
            np.testing.assert_array_equal(getattr(alone, name)[0], getattr(together, name)[i])


def test_free_energy_fit_keeps_the_scalar_kernel(sample) -> None:
    """The 3C fit runs the scalar kernel: one event's result is the same in any company."""
    _, measured, cov, beam = sample
    free = np.arange(40) % 3
    both = kinfit.fit_three_photons_free_energy(*(x[:40] for x in measured), cov[:40], beam[:40],
                                                free)  # fmt: skip
    one = kinfit.fit_three_photons_free_energy(*(x[7:8] for x in measured), cov[7:8], beam[7:8],
                                               free[7:8])  # fmt: skip
    assert both.ndf == 3 and both.converged.all()
    np.testing.assert_array_equal(one.E[0], both.E[7])
