"""Property tests of the kinematic fit on random and pathological inputs: it never raises, every
output is finite (χ² is +inf exactly when flagged) and the flags follow kinfit.FitStatus."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_kinfit_reference import BEAM, smeared_sample

import kinfit
from kinfit.batched import fit_three_photons_numpy

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

#: any float64, NaN and infinities included
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
#: plausible magnitudes with the awkward values mixed in
mixed_float = st.one_of(
    st.floats(-20.0, 20.0),
    st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, 1e300, np.pi, -np.pi]),
    any_float,
)


def _arrays(n: int, shape: tuple[int, ...], elements: st.SearchStrategy[float]):
    return hnp.arrays(np.float64, (n, *shape), elements=elements)


@st.composite
def random_inputs(draw: st.DrawFn):
    """Arbitrary arrays: mostly garbage, sometimes fittable by accident."""
    n = draw(st.integers(1, 6))
    elements = draw(st.sampled_from([mixed_float, st.floats(0.0, 12.0), any_float]))
    E = draw(_arrays(n, (3,), elements))
    theta = draw(_arrays(n, (3,), st.one_of(st.floats(0.0, np.pi), mixed_float)))
    phi = draw(_arrays(n, (3,), mixed_float))
    if draw(st.booleans()):
        cov = draw(_arrays(n, (3, 3), st.one_of(st.floats(1e-8, 1.0), mixed_float)))
    else:
        cov = draw(_arrays(n, (3, 3, 3), st.one_of(st.floats(-1e-3, 1e-2), mixed_float)))
    beam = draw(_arrays(n, (4,), st.one_of(st.sampled_from(list(BEAM)), mixed_float)))
    return E, theta, phi, cov, beam


#: realistic events with one field of one event corrupted
_BASE = smeared_sample(seed=99, n=8)


@st.composite
def corrupted_events(draw: st.DrawFn):
    _, measured, cov, beam = _BASE
    E, theta, phi = (x.copy() for x in measured)
    cov = cov.copy() if draw(st.booleans()) else kinfit.full_covariance(cov)
    beam = beam.copy()
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from([E, theta, phi, cov, beam]))
        index = tuple(draw(st.integers(0, s - 1)) for s in target.shape)
        target[index] = draw(mixed_float)
    return E, theta, phi, cov, beam


def _check_contract(args, out: kinfit.KinFitResult, max_iterations: int = 20) -> None:
    E, theta, phi, cov, beam = args
    n = len(E)
    for name in ("E", "theta", "phi", "cov", "pvalue", "pulls"):
        assert np.isfinite(getattr(out, name)).all(), name
    codes = {int(c) for c in kinfit.FitStatus}
    assert set(np.unique(out.status).tolist()) <= codes
    ok = out.status == kinfit.FitStatus.OK
    np.testing.assert_array_equal(out.converged, ok)
    assert np.isfinite(out.chi2[ok]).all() and (out.chi2[ok] >= 0).all()
    assert np.all(out.chi2[~ok] == np.inf)
    assert np.all((out.pvalue >= 0) & (out.pvalue <= 1))
    assert np.all(out.pvalue[~ok] == 0)
    assert np.all(out.pulls[~ok] == 0)
    assert np.all((out.iterations >= 0) & (out.iterations <= max_iterations))
    # non-finite input anywhere in an event -> bad input, with no iteration
    full = cov if cov.ndim == 4 else kinfit.full_covariance(cov)
    finite = (
        np.isfinite(E).all(1)
        & np.isfinite(theta).all(1)
        & np.isfinite(phi).all(1)
        & np.isfinite(full.reshape(n, -1)).all(1)
        & np.isfinite(beam).all(1)
    )
    assert np.all(out.status[~finite] == kinfit.FitStatus.BAD_INPUT)
    bad = out.status == kinfit.FitStatus.BAD_INPUT
    assert np.all(out.iterations[bad] == 0)
    # flagged events return the measured values, non-finite ones as 0
    clean = np.nan_to_num
    for got, x in zip((out.E, out.theta, out.phi), (E, theta, phi)):
        np.testing.assert_array_equal(got[~ok], clean(x[~ok], nan=0.0, posinf=0.0, neginf=0.0))
    np.testing.assert_array_equal(out.cov[~ok], clean(full[~ok], nan=0.0, posinf=0.0, neginf=0.0))
    # fitted events meet the constraints and shrink the variances
    if ok.any():
        p = out.four_momenta()[ok].sum(axis=1)
        scale = np.abs(out.E[ok]).sum(axis=1, keepdims=True)
        assert np.all(np.abs(p - beam[ok]) <= 1e-7 + 1e-13 * scale)
        diag_in = np.diagonal(full[ok], axis1=-2, axis2=-1)
        diag_out = np.diagonal(out.cov[ok], axis1=-2, axis2=-1)
        assert np.all(diag_out <= diag_in * (1 + 1e-9))


@SETTINGS
@given(random_inputs())
def test_random_inputs_never_raise(args) -> None:
    out = kinfit.fit_three_photons(*args)
    _check_contract(args, out)


@SETTINGS
@given(corrupted_events(), st.integers(1, 20))
def test_corrupted_events_follow_the_contract(args, max_iterations: int) -> None:
    out = kinfit.fit_three_photons(*args, max_iterations=max_iterations)
    _check_contract(args, out, max_iterations)


@SETTINGS
@given(corrupted_events())
def test_numpy_reference_flags_the_same_bad_inputs(args) -> None:
    out = kinfit.fit_three_photons(*args)
    ref = fit_three_photons_numpy(*args)
    _check_contract(args, ref)
    bad = out.status == kinfit.FitStatus.BAD_INPUT
    np.testing.assert_array_equal(ref.status == kinfit.FitStatus.BAD_INPUT, bad)
    both = out.converged & ref.converged
    np.testing.assert_allclose(ref.E[both], out.E[both], rtol=1e-8)


@SETTINGS
@given(corrupted_events(), st.lists(st.integers(0, 2), min_size=8, max_size=8))
def test_free_energy_variant_follows_the_contract(args, free) -> None:
    out = kinfit.fit_three_photons_free_energy(*args, free)
    E, beam = args[0], args[4]
    for name in ("E", "theta", "phi", "cov", "pvalue", "pulls"):
        assert np.isfinite(getattr(out, name)).all(), name
    ok = out.converged
    assert np.all(out.chi2[~ok] == np.inf) and np.isfinite(out.chi2[ok]).all()
    assert np.all(out.pulls[np.arange(len(E)), free, 0] == 0.0)
    assert np.all(~np.isfinite(beam).all(1) <= (out.status == kinfit.FitStatus.BAD_INPUT))
