"""Limits stage on synthetic histograms with known truth (limits.testing): pyhf agreement,
signal injection, expected-band coverage, coupling conversion, look-elsewhere and the outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyhf
import pytest

from alps.config import AnalysisConfig, load_config
from alps.histio import write_histograms
from limits.cls import asymptotic_upper_limit
from limits.coupling import coupling_limit, decay_geometry, decay_probability, mean_xsec
from limits.interpolation import ShapeModel
from limits.io import read_json
from limits.likelihood import compile_workspace, logpdf
from limits.mass_model import excluded_regions, is_excluded
from limits.pipeline import run_limits
from limits.scan import analyse_workspace
from limits.significance import count_upcrossings, gross_vitells
from limits.testing import make_histograms
from limits.toys import limit_coverage
from simulation.physics import MESON_MASSES, sigma_alp

INJECTION = (3.0, 2.0e-3)  # GeV, GeV^-1: about 70 prompt signal events in 0.445 fb^-1
WORKING_POINT = 0.5


def _config(**limits: object) -> AnalysisConfig:
    base = load_config()
    data = base.model_dump(mode="json")
    data["limits"].update(limits)
    return AnalysisConfig.model_validate(data)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AnalysisConfig]:
    """Synthetic histograms with a signal hidden at INJECTION, scanned over 2.5-3.5 GeV."""
    cfg = _config(masses={"start": 2.5, "stop": 3.5, "step": 0.05})
    hists, prov, _ = make_histograms(
        cfg,
        seed=7,
        signal_masses=[0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        events_per_mass=2000,
        injection=INJECTION,
    )
    path = write_histograms(
        tmp_path_factory.mktemp("synthetic") / "mgg_score.hist.zip", hists, prov
    )
    return path, cfg


@pytest.fixture(scope="module")
def limits_run(
    synthetic: tuple[Path, AnalysisConfig], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path, cfg = synthetic
    workdir = tmp_path_factory.mktemp("limits")
    run_limits(path, cfg, workdir, working_point=WORKING_POINT, progress=False)
    return workdir


def _workspace(workdir: Path, mass: float) -> dict:
    """The workspace the limits stage wrote for ``mass``."""
    return read_json(workdir / "workspaces" / f"m{round(mass * 1000)}.json")


def test_limits_json_follows_the_contract(
    limits_run: Path, synthetic: tuple[Path, AnalysisConfig]
) -> None:
    _, cfg = synthetic
    result = read_json(limits_run / "limits" / "limits.json")
    masses = np.asarray(result["masses_GeV"])
    np.testing.assert_allclose(masses, cfg.limits.masses.masses())
    n = len(masses)
    assert len(result["observed"]["xsec_pb"]) == n and len(result["observed"]["g_GeV-1"]) == n
    expected = np.asarray(result["expected"]["xsec_pb"], dtype=float)
    assert expected.shape == (n, 5)
    assert np.all(np.diff(expected, axis=1) > 0), "bands must be ordered -2 sigma < ... < +2 sigma"
    assert np.all(np.isfinite(result["observed"]["g_GeV-1"]))
    assert np.isfinite(result["global_significance"])
    assert result["luminosity_fb-1"] == pytest.approx(0.445)
    for mass in masses:
        assert (limits_run / "workspaces" / f"m{round(mass * 1000)}.json").exists()
    for png in ("xsec.png", "coupling.png", "significance.png"):
        assert (limits_run / "limits" / png).stat().st_size > 1000


def test_signal_injection_is_found_at_its_mass(limits_run: Path) -> None:
    """Largest local significance at the injected mass, fitted cross-section = injected one."""
    result = read_json(limits_run / "limits" / "limits.json")
    masses = np.asarray(result["masses_GeV"])
    z = np.asarray(result["local_significance"], dtype=float)
    i = int(np.nanargmax(z))
    m_inj, g_inj = INJECTION
    assert abs(masses[i] - m_inj) <= 0.05 + 1e-9, (masses[i], z[i])
    assert z[i] > 3.0
    j = int(np.argmin(abs(masses - m_inj)))
    # mu_hat x sigma_ref is sigma x P_decay; the injected ALPs are prompt and P_decay(g_ref) ~ 1
    assert decay_probability(decay_geometry(m_inj), 1e-3) > 0.99
    yield_fit = result["fitted_signal_yield"][j]
    assert result["fitted_signal_yield_error"][j] > 0
    # mu is sigma / sigma_ref: the fitted cross-section is mu_hat x sigma_ref
    sigma_ref = result["signal_reference_xsec_pb"][j]
    mres = analyse_workspace(read_json(limits_run / "workspaces" / f"m{round(m_inj * 1000)}.json"))
    xsec_fit = mres.discovery.mu_hat * sigma_ref
    xsec_err = mres.discovery.mu_hat_error * sigma_ref
    xsec_true = float(sigma_alp(m_inj, g_inj, 10.58))
    assert abs(xsec_fit - xsec_true) < 2.0 * xsec_err, (xsec_fit, xsec_err, xsec_true)
    assert yield_fit == pytest.approx(mres.discovery.mu_hat * mres.signal_per_mu, rel=1e-6)


def test_workspaces_are_standard_pyhf(limits_run: Path) -> None:
    """pyhf validates the JSON and its logpdf equals the compiled likelihood used for the scan."""
    spec = read_json(limits_run / "workspaces" / "m2800.json")
    ws = pyhf.Workspace(spec)
    model = ws.model()
    compiled = compile_workspace(spec)
    assert set(compiled.par_names) == set(model.config.par_order)
    main = np.asarray(ws.data(model, include_auxdata=False), dtype=float)
    np.testing.assert_array_equal(main, compiled.observed)
    rng = np.random.default_rng(3)
    for _ in range(5):
        ours = compiled.inits + rng.uniform(-0.5, 0.5, compiled.n_pars)
        ours = np.clip(ours, compiled.bounds[:, 0], compiled.bounds[:, 1])
        pars = np.zeros(len(model.config.suggested_init()))
        for i, name in enumerate(compiled.par_names):
            pars[model.config.par_slice(name)] = ours[i]
        data = np.concatenate([main, model.config.auxdata])
        ref = float(model.logpdf(pars, data)[0])
        mine = logpdf(ours, compiled, main, compiled.aux_nominal)
        assert mine == pytest.approx(ref, rel=1e-9, abs=1e-7)


@pytest.mark.parametrize("mass", [2.6, 3.0, 3.45])
def test_limits_agree_with_pyhf_upper_limits(limits_run: Path, mass: float) -> None:
    """Observed and expected limits equal pyhf.infer.intervals.upper_limits with a scan (1%)."""
    spec = _workspace(limits_run, mass)
    ours = asymptotic_upper_limit(compile_workspace(spec))
    pyhf.set_backend("numpy", "scipy")
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    values = [ours.observed, *ours.expected]
    scan = np.unique(np.concatenate([np.linspace(0.95 * v, 1.05 * v, 9) for v in values]))
    obs, exp = pyhf.infer.intervals.upper_limits.upper_limit(data, model, scan=scan, level=0.05)
    assert ours.observed == pytest.approx(float(obs), rel=0.01)
    np.testing.assert_allclose(ours.expected, np.asarray(exp, dtype=float), rtol=0.01)


def test_expected_band_coverage_of_background_only_toys(limits_run: Path) -> None:
    """About 95% (68%) of background-only toy limits fall inside the +-2 sigma (+-1 sigma) band."""
    for mass, seed in ((2.6, 11), (3.4, 12)):
        cov = limit_coverage(compile_workspace(_workspace(limits_run, mass)), n_toys=150, seed=seed)
        assert abs(cov.inside_2sigma - 0.954) < 3.0 * max(cov.inside_2sigma_error, 0.017), (
            cov.inside_2sigma
        )
        assert abs(cov.inside_1sigma - 0.683) < 3.0 * max(cov.inside_1sigma_error, 0.038), (
            cov.inside_1sigma
        )


def test_coupling_limit_inverts_the_cross_section() -> None:
    """sigma(g_UL) P_decay(g_UL) = sigma_UL; prompt regime g ~ sqrt(sigma); P_decay -> 0 for small g."""
    lumi, sqrt_s = {"2018": 445.0}, {"2018": 10.58}
    for mass in (0.3, 1.0, 5.0):
        geo = decay_geometry(mass)
        for xs in (0.05, 0.5, 5.0):
            g = coupling_limit(xs, geo, lumi, sqrt_s)
            assert mean_xsec(mass, g, lumi, sqrt_s) * decay_probability(geo, g) == pytest.approx(
                xs, rel=1e-6
            )
    geo = decay_geometry(5.0)
    g1, g4 = coupling_limit(0.1, geo, lumi, sqrt_s), coupling_limit(0.4, geo, lumi, sqrt_s)
    assert g4 / g1 == pytest.approx(2.0, rel=1e-3)
    light = decay_geometry(0.2)
    assert decay_probability(light, 1e-7) < 1e-3 < decay_probability(light, 1e-2)
    assert np.isnan(coupling_limit(float("nan"), geo, lumi, sqrt_s))


def test_excluded_regions_follow_the_meson_masses() -> None:
    cfg = load_config()
    regions = excluded_regions(cfg)
    for key, (lo, hi) in zip(cfg.limits.excluded_mesons, regions):
        assert lo < MESON_MASSES[key] < hi
        assert is_excluded(MESON_MASSES[key], regions)
    assert not is_excluded(3.0, regions)


def test_gross_vitells_global_significance() -> None:
    assert count_upcrossings([0, 1, 0, 1, 1, 0], 0.5) == 2
    assert count_upcrossings([1, 0, 1], 0.5, segments=[0, 0, 1]) == 2
    masses = np.arange(100) * 0.05
    z = np.zeros(100)
    z[[10, 30, 50, 70]] = 1.0
    z[50] = 4.0
    glob = gross_vitells(z, masses)
    assert glob.upcrossings == 4
    # p_global = P(chi2_1 > 16)/2 + 4 exp(-(16 - 0.5)/2)
    from scipy.stats import chi2, norm

    p = chi2.sf(16.0, 1) / 2 + 4 * np.exp(-(16.0 - 0.5) / 2)
    assert glob.p_global == pytest.approx(p, rel=1e-6)
    assert glob.z_global == pytest.approx(norm.isf(p), rel=1e-6)
    assert glob.z_global < 4.0


def test_missing_data_is_a_clear_error(
    synthetic: tuple[Path, AnalysisConfig], tmp_path: Path
) -> None:
    _path, cfg = synthetic
    hists, prov, _ = make_histograms(
        cfg, seed=1, signal_masses=[1.0, 3.0, 5.0], events_per_mass=200
    )
    h = hists["mgg"]
    keep = [d for d in h.axes["dataset"] if d != "data"]
    with warnings.catch_warnings():  # boost-histogram calls list selection experimental
        warnings.simplefilter("ignore", UserWarning)
        hists["mgg"] = h[{"dataset": [h.axes["dataset"].index(d) for d in keep]}]
    bad = write_histograms(tmp_path / "nodata.hist.zip", hists, prov)
    with pytest.raises(ValueError, match="data"):
        run_limits(bad, cfg, tmp_path / "out", working_point=WORKING_POINT, progress=False)


def test_interpolated_shape_follows_the_true_one(
    limits_run: Path, synthetic: tuple[Path, AnalysisConfig]
) -> None:
    """The synthetic peak has width sigma_m(m) and position 0.998 m: the shape interpolated in
    mass follows both between and at the simulated masses, and the interpolation predicts the
    masses left out of it (held-out pulls)."""
    _, cfg = synthetic
    model = ShapeModel.from_dict(read_json(limits_run / "shapes" / "shapes.json"))
    for mass in np.arange(0.6, 9.6, 0.35):
        true_sigma = float(cfg.histograms.resolution.sigma(mass))
        p = model.parameters(float(mass))
        assert p.sigma == pytest.approx(true_sigma, rel=0.08), mass
        assert abs(p.offset + 0.002 * mass) < 0.2 * true_sigma, mass
    validation = read_json(limits_run / "shapes" / "shapes.json")["validation"]["held_out"]
    pulls = np.concatenate([validation[k]["pulls"] for k in ("offset", "sigma", "efficiency")])
    assert len(pulls) >= 6
    assert np.sqrt(np.mean(pulls**2)) < 2.5 and np.max(np.abs(pulls)) < 4.0, pulls
