"""Photon covariance helpers: cluster errors and resolution tables."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import kinfit


def test_diagonal_covariance_squares_the_errors() -> None:
    rng = np.random.default_rng(0)
    errE, errTheta, errPhi = rng.uniform(0.01, 0.1, (3, 5, 3))
    cov = kinfit.diagonal_covariance(errE, errTheta, errPhi)
    assert cov.shape == (5, 3, 3)
    np.testing.assert_array_equal(cov[..., 0], errE**2)
    np.testing.assert_array_equal(cov[..., 1], errTheta**2)
    np.testing.assert_array_equal(cov[..., 2], errPhi**2)


def test_full_covariance_is_diagonal() -> None:
    diag = np.arange(1.0, 19.0).reshape(2, 3, 3)
    full = kinfit.full_covariance(diag)
    assert full.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(np.diagonal(full, axis1=-2, axis2=-1), diag)
    np.testing.assert_array_equal(full - np.eye(3) * full, 0.0)


def _table() -> kinfit.ResolutionTable:
    # 4 regions x 2 theta bins x 3 energy bins, values encode their own indices
    region, tbin, ebin = np.meshgrid(np.arange(4), np.arange(2), np.arange(3), indexing="ij")
    code = 100 * region + 10 * tbin + ebin + 1.0
    return kinfit.ResolutionTable(
        energy_edges=[0.1, 0.5, 2.0, 10.0],
        theta_edges=[0.2, 1.5, 2.8],
        rel_energy=code * 1e-4,
        sigma_theta=code * 1e-6,
        sigma_phi=code * 2e-6,
    )


def test_table_lookup_bins_and_clamps() -> None:
    table = _table()
    E = np.array([0.05, 0.3, 1.0, 5.0, 50.0, np.nan])
    theta = np.array([0.1, 1.0, 2.0, 2.0, 3.0, 1.0])
    region = np.array([2, 1, 3, 0, 2, 7])  # 7 is no region: treated as the gap (0)
    got = table.lookup(E, theta, region)
    expect_code = np.array([201.0, 101.0, 312.0, 13.0, 213.0, 1.0])
    np.testing.assert_allclose(got[:, 0], expect_code * 1e-4)
    np.testing.assert_allclose(got[:, 1], expect_code * 1e-6)
    np.testing.assert_allclose(got[:, 2], expect_code * 2e-6)


def test_resolution_covariance_scales_with_energy() -> None:
    table = _table()
    E = np.array([[0.3, 1.0, 5.0]])
    theta = np.array([[1.0, 2.0, 2.0]])
    region = np.array([[1, 3, 2]])
    cov = kinfit.resolution_covariance(E, theta, region, table)
    sig = table.lookup(E, theta, region)
    np.testing.assert_allclose(cov[..., 0], (sig[..., 0] * E) ** 2)
    np.testing.assert_allclose(cov[..., 1:], sig[..., 1:] ** 2)
    full = kinfit.resolution_covariance(E, theta, region, table, full=True)
    np.testing.assert_array_equal(full, kinfit.full_covariance(cov))


def test_region_independent_table() -> None:
    table = kinfit.ResolutionTable(
        energy_edges=[0.0, 1.0, 11.0],
        rel_energy=[[[0.03, 0.02]]],
        sigma_theta=[[[6e-3, 4e-3]]],
        sigma_phi=[[[8e-3, 4e-3]]],
    )
    got = table.lookup(np.array([0.5, 3.0]), np.array([0.5, 2.5]), np.array([1, 3]))
    np.testing.assert_allclose(got, [[0.03, 6e-3, 8e-3], [0.02, 4e-3, 4e-3]])


def test_table_feeds_the_fit() -> None:
    """A covariance from the table works in the fit (shapes and units agree)."""
    from test_kinfit_reference import BEAM, angles, three_photon_events

    E, theta, phi = angles(three_photon_events(np.random.default_rng(4), 50))
    table = kinfit.ResolutionTable(
        energy_edges=[0.0, 11.0],
        rel_energy=[[[0.02]]],
        sigma_theta=[[[4e-3]]],
        sigma_phi=[[[4e-3]]],
    )
    cov = kinfit.resolution_covariance(E, theta, np.full(E.shape, 2), table)
    out = kinfit.fit_three_photons(E * 1.01, theta, phi, cov, np.tile(BEAM, (50, 1)))
    assert out.converged.all()


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("energy_edges", [1.0, 0.5], "increasing"),
        ("theta_edges", [0.0], "increasing"),
        ("rel_energy", [[[0.02]]], "shape"),
        ("sigma_theta", np.full((3, 1, 2), 1e-3), "shape"),
        ("sigma_phi", [[[-1e-3, 1e-3]]], "positive"),
        ("sigma_phi", [[[np.nan, 1e-3]]], "positive"),
    ],
)
def test_table_validation(field: str, value: object, match: str) -> None:
    kwargs = {
        "energy_edges": [0.0, 1.0, 11.0],
        "rel_energy": [[[0.03, 0.02]]],
        "sigma_theta": [[[6e-3, 4e-3]]],
        "sigma_phi": [[[8e-3, 4e-3]]],
    }
    kwargs[field] = value
    with pytest.raises(ValueError, match=match):
        kinfit.ResolutionTable(**kwargs)


def test_table_is_frozen_and_pickles() -> None:
    table = _table()
    with pytest.raises(ValueError, match="read-only"):
        table.rel_energy[0, 0, 0] = 1.0
    back = pickle.loads(pickle.dumps(table))
    np.testing.assert_array_equal(back.sigma_phi, table.sigma_phi)
