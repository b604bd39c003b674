"""The report (#16, #17.5): tables instead of JSON dumps, blinding, the published-limit overlay,
the labels (sigma x P_decay, units, experiment), the kinematic-fit chi2 calibration, and the
start-up check of the top-level packages."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import hist
import numpy as np
import pytest

from alps.config import AnalysisConfig, load_config
from alps.consistency import config_problems
from alps.contract import FEATURE_BINNING
from alps.fitcheck import chi2_calibration
from alps.overlay import OverlayError, read_published_limits
from alps.packages import package_clashes
from alps.plots import FEATURE_LABELS, plot_data_mc
from alps.report import _limits, _table, blinded_windows, limits_table
from limits.mass_model import excluded_regions
from limits.plots import XSEC_LABEL

ROOT = Path(__file__).resolve().parents[1]


def _limits_json(masses: list[float]) -> dict[str, object]:
    n = len(masses)
    return {
        "masses_GeV": masses,
        "observed": {"xsec_pb": [0.123456] * n, "g_GeV-1": [7.654321e-4] * n},
        "expected": {
            "xsec_pb": [[0.05, 0.07, 0.1, 0.14, 0.2]] * n,
            "g_GeV-1": [[5e-4, 6e-4, 7e-4, 8e-4, 9e-4]] * n,
        },
        "local_significance": [2.468] * n,
        "global_significance": 0.97531,
        "luminosity_fb-1": 0.03,
        "excluded_mass_regions_GeV": [[0.12, 0.15]],
        "working_point": 0.5,
        "fit_status": ["ok"] * n,
    }


def _config(**report: object) -> AnalysisConfig:
    return load_config().model_copy(
        update={"report": load_config().report.model_copy(update=report)}
    )


def _workdir(tmp_path: Path, masses: list[float]) -> Path:
    (tmp_path / "limits").mkdir(parents=True)
    (tmp_path / "limits" / "limits.json").write_text(json.dumps(_limits_json(masses)))
    return tmp_path


def _decoded_images(page: str) -> list[bytes]:
    return [
        base64.b64decode(data) for data in page.split('src="data:image/png;base64,')[1:] if data
    ]


# -- tables ------------------------------------------------------------------------------------


def test_table_formats_numbers_and_escapes_text() -> None:
    html = _table(["a<b", "x"], [["<i>", 0.123456789], ["nan", float("nan")]])
    assert "<th>a&lt;b</th>" in html and '<td class="t">&lt;i&gt;</td>' in html
    assert "<td>0.1235</td>" in html and "<td>nan</td>" in html
    assert html.count("<tr>") == 3


def test_limits_table_picks_the_nearest_scanned_masses_once() -> None:
    limits = _limits_json([0.5, 1.0, 1.5, 2.0])
    header, rows = limits_table(limits, [0.45, 0.55, 1.9, 7.0], blind=False)
    assert [r[0] for r in rows] == ["0.500", "2.000"]  # 0.45 and 0.55 -> 0.5; 1.9 and 7 -> 2.0
    assert "obs. g [GeV^-1]" in header and "local Z" in header
    assert rows[0][1] == "0.1 (0.07, 0.14)"  # median (-1 sigma, +1 sigma)
    assert rows[0][4] == pytest.approx(7.654321e-4)
    limits["expected"]["xsec_pb"][0] = None  # type: ignore[index]  # 0.5 GeV inside a veto
    _, rows = limits_table(limits, [0.45], blind=True)
    assert [r[0] for r in rows] == ["1.000"] and len(rows[0]) == 4


def test_report_limits_section_is_tables_and_embedded_figures(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path, [0.5, 1.0, 2.0])
    page = _limits(workdir, workdir / "report", _config())
    assert "<pre>" not in page  # no raw JSON dump
    assert 'meson vetoes [GeV]</td><td class="t">0.120-0.150' in page
    assert "excluded mass regions" not in page
    images = _decoded_images(page)
    assert len(images) >= 3 and all(i.startswith(b"\x89PNG") for i in images)
    for name in ("limits_xsec", "limits_coupling", "limits_significance"):
        assert (workdir / "report" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert 'href="limits_xsec.pdf"' in page


# -- labels --------------------------------------------------------------------------------------


def test_the_cross_section_plot_says_sigma_times_p_decay(tmp_path: Path) -> None:
    assert "P_\\mathrm{decay}" in XSEC_LABEL
    source = (ROOT / "limits" / "pipeline.py").read_text()
    assert "ylabel=XSEC_LABEL" in source  # the limits stage's own xsec.png
    page = _limits(_workdir(tmp_path, [1.0, 2.0]), tmp_path / "report", _config())
    assert "sigma(e+e- -&gt; gamma a) x P_decay" in page
    assert "exp. sigma x P_decay [pb]" in page


def test_every_net_input_has_a_labelled_data_mc_histogram() -> None:
    inputs = AnalysisConfig().training.features
    assert set(inputs) <= set(FEATURE_BINNING)
    for name in FEATURE_BINNING:
        assert "[" in FEATURE_LABELS[name] and "]" in FEATURE_LABELS[name], name  # a unit


# -- blinding ------------------------------------------------------------------------------------


def test_blinded_windows_are_the_scan_range_outside_the_vetoes() -> None:
    config = load_config()
    windows = blinded_windows(config)
    lo, hi = config.limits.scan_range_GeV
    assert windows[0][0] == lo and windows[-1][1] == hi
    for v_lo, v_hi in excluded_regions(config):
        if lo < v_lo < hi:
            assert all(not (w_lo < 0.5 * (v_lo + v_hi) < w_hi) for w_lo, w_hi in windows)


def test_blinding_hides_observed_limits_and_significance(tmp_path: Path) -> None:
    workdir = _workdir(tmp_path, [0.5, 1.0, 2.0])
    page = _limits(workdir, workdir / "report", _config(blind=True))
    for hidden in ("0.1235", "0.0007654", "2.468", "0.9753", "obs. g", "local Z"):
        assert hidden not in page, hidden
    assert "blinded" in page.lower()
    assert not (workdir / "report" / "limits_significance.png").exists()
    unblinded = _limits(workdir, workdir / "report", _config(blind=False))
    for shown in ("0.1235", "0.0007654", "2.468"):
        assert shown in unblinded, shown


def test_blinding_hides_the_data_in_the_signal_windows(tmp_path: Path) -> None:
    axis = hist.axis.Regular(10, 0.0, 10.0)
    data, background = (
        hist.Hist(axis, storage=hist.storage.Weight()),
        hist.Hist(axis, storage=hist.storage.Weight()),
    )
    data.fill(np.arange(10) + 0.5, weight=np.full(10, 100.0))
    background.fill(np.arange(10) + 0.5, weight=np.full(10, 90.0))
    full = plot_data_mc(data, {"ggg": background}, tmp_path / "a.png", xlabel="x [GeV]", per="GeV")
    blind = plot_data_mc(data, {"ggg": background}, tmp_path / "b.png", xlabel="x [GeV]",
                         per="GeV", blind=[(2.0, 6.0)])  # fmt: skip
    assert full["data"] == 1000.0 and blind["data"] == 600.0  # bins 2-6 hidden
    assert blind["mc"] == 540.0 and full["ndf"] - blind["ndf"] == 4
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")


# -- published-limit overlay --------------------------------------------------------------------


def test_published_limits_are_read_from_a_user_csv(tmp_path: Path) -> None:
    path = tmp_path / "published.csv"
    path.write_text("# digitised by hand\nmass_GeV,g_GeV-1\n1.0, 1.5e-3\n0.5,2e-3\n\n2.0,1e-3\n")
    curve = read_published_limits(path, "Belle II 2018")
    assert curve.masses_GeV == (0.5, 1.0, 2.0) and curve.g_GeV == (2e-3, 1.5e-3, 1e-3)
    assert curve.label == "Belle II 2018"
    path.write_text("mass_GeV,g\n0.5,2e-3\n1.0,abc\n")
    with pytest.raises(OverlayError, match="line 3"):
        read_published_limits(path)
    path.write_text("0.5,-2e-3\n1.0,1e-3\n")
    with pytest.raises(OverlayError, match="positive"):
        read_published_limits(path)


def test_overlay_is_validated_with_the_configuration_and_drawn(tmp_path: Path) -> None:
    missing = _config(published_limits=tmp_path / "nowhere.csv")
    assert [f for f, _ in config_problems(missing)] == ["report.published_limits"]
    csv = tmp_path / "published.csv"
    csv.write_text("0.2,3e-3\n5.0,1e-3\n")
    config = _config(published_limits=csv, published_label="my published curve")
    assert config_problems(config) == []
    workdir = _workdir(tmp_path / "w", [0.5, 1.0, 2.0])
    page = _limits(workdir, workdir / "report", config)
    assert "overlay: my published curve" in page


def test_relative_overlay_path_is_relative_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "curve.csv").write_text("0.2,3e-3\n5.0,1e-3\n")
    yaml_file = tmp_path / "analysis.yaml"
    yaml_file.write_text("report:\n  published_limits: curve.csv\n  blind: true\n")
    config = load_config(yaml_file)
    assert config.report.published_limits == tmp_path / "curve.csv" and config.report.blind


# -- chi2 calibration ----------------------------------------------------------------------------


def _chi2_hist(samples: dict[str, np.ndarray]) -> hist.Hist:
    h = hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.Regular(60, 0.0, 30.0, name="chi2"),
        hist.axis.Regular(20, 0.0, 1.0, name="pvalue"),
        storage=hist.storage.Weight(),
    )
    from scipy import stats

    for name, chi2 in samples.items():
        h.fill(dataset=name, chi2=chi2, pvalue=stats.chi2.sf(chi2, 4))
    return h


def test_chi2_calibration_recovers_chi2_with_4_dof_and_sees_a_miscalibration() -> None:
    rng = np.random.default_rng(20261203)
    calibrated = rng.chisquare(4, 400_000)
    h = _chi2_hist({"ggg": calibrated, "data": 1.15 * rng.chisquare(4, 400_000)})
    rows = {r["group"]: r for r in chi2_calibration(h, {"MC": ["ggg"], "data": ["data"]})}
    assert rows["MC"]["median_chi2"] == pytest.approx(3.357, abs=0.02)
    assert rows["MC"]["fraction_p_below_0.01"] == pytest.approx(0.01, abs=0.001)
    assert rows["MC"]["events"] == 400_000  # the overflow (chi2 > 30) counted
    assert rows["data"]["median_chi2"] == pytest.approx(1.15 * 3.357, abs=0.03)
    assert rows["data"]["fraction_p_below_0.01"] > 0.015
    assert rows["MC"]["expected_median_chi2"] == pytest.approx(3.3567, abs=1e-3)


# -- the top-level package clash -----------------------------------------------------------------


def test_clash_check_names_a_foreign_limits_package(tmp_path: Path) -> None:
    foreign = tmp_path / "site" / "limits"
    real = __import__("importlib").util.find_spec

    def find_spec(name: str) -> object:
        if name == "limits":
            return SimpleNamespace(submodule_search_locations=[str(foreign)], origin=None)
        return real(name)

    problems = package_clashes(find_spec=find_spec)
    assert len(problems) == 1 and "rate limiter" in problems[0] and str(foreign) in problems[0]
    assert package_clashes() == []  # this checkout's own packages


def test_alps_refuses_to_start_when_another_limits_comes_first(tmp_path: Path) -> None:
    (tmp_path / "limits").mkdir()
    (tmp_path / "limits" / "__init__.py").write_text("RATE = 1\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "alps.cli", "report", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "alps cannot start" in proc.stderr and str(tmp_path / "limits") in proc.stderr
    assert not (tmp_path / "work").exists()
