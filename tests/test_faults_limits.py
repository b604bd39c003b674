"""Fault suite, after processing (#19.2): the limits use the luminosity of the files processed,
list what processing skipped in limits.json, and the report and later stages' logs say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alps.config import AnalysisConfig, load_config
from alps.histio import write_histograms
from alps.pipeline import RunContext, echo_skipped_inputs
from alps.report import processed_inputs
from limits.io import read_spectra
from limits.pipeline import _processing_bookkeeping, run_limits
from limits.testing import make_histograms

SKIPPED = [{"file": "/w/ntuples/data/data_e0003_r00367-00517_0002.root", "error": "sha256 ..."}]


def _config() -> AnalysisConfig:
    data = load_config().model_dump(mode="json")
    data["limits"]["masses"] = {"values": [2.0, 3.0, 6.0]}
    data["limits"]["lee_method"] = "gross-vitells"
    return AnalysisConfig.model_validate(data)


def _histograms(workdir: Path, config: AnalysisConfig, fraction: float) -> Path:
    """Synthetic histograms whose provenance says that processing read ``fraction`` of the
    planned 445 pb^-1."""
    hists, prov, _ = make_histograms(
        config, seed=11, signal_masses=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], events_per_mass=1500
    )
    if fraction < 1.0:
        prov = dict(
            prov,
            luminosity_pb={"2018": 445.0 * fraction},
            planned_luminosity_pb={"2018": 445.0},
            skipped=SKIPPED,
        )
    write_histograms(workdir / "histograms" / "mgg.hist.zip", hists, prov)
    return write_histograms(workdir / "histograms" / "mgg_score.hist.zip", hists, prov)


def _limits(workdir: Path, config: AnalysisConfig, fraction: float) -> dict:
    path = _histograms(workdir, config, fraction)
    run_limits(path, config, workdir, working_point=0.5, progress=False)
    result: dict = json.loads((workdir / "limits" / "limits.json").read_text())
    return result


@pytest.fixture(scope="module")
def limits_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    config = _config()
    full = _limits(tmp_path_factory.mktemp("full"), config, 1.0)
    workdir = tmp_path_factory.mktemp("skipped")
    return full, _limits(workdir, config, 0.8), workdir


@pytest.fixture(scope="module")
def skipped_histograms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _histograms(tmp_path_factory.mktemp("histograms"), _config(), 0.8)


def test_the_limits_read_the_processed_luminosity_and_the_skip_list(
    skipped_histograms: Path,
) -> None:
    path = skipped_histograms
    assert read_spectra(path, 0.5).luminosity_total_pb == pytest.approx(356.0, rel=1e-12)
    bookkeeping = _processing_bookkeeping(path)  # what limits.json's provenance holds
    assert bookkeeping["skipped"] == SKIPPED
    assert bookkeeping["planned_luminosity_pb"] == {"2018": 445.0}


@pytest.mark.slow
def test_limits_follow_the_processed_luminosity(limits_pair: tuple[dict, dict, Path]) -> None:
    """One of five data files skipped: L x 0.8, so the cross-section limits are 1/0.8 of the
    full-luminosity ones on the same spectra (signal yield = L x efficiency x sigma) and the
    coupling limits 1/sqrt(0.8) (sigma ~ g^2; physics.md "Signal")."""
    full, skipped, _ = limits_pair
    assert skipped["luminosity_fb-1"] == pytest.approx(0.8 * full["luminosity_fb-1"], rel=1e-12)
    for a, b in zip(full["observed"]["xsec_pb"], skipped["observed"]["xsec_pb"]):
        assert b / a == pytest.approx(1 / 0.8, rel=2e-3)
    for a, b in zip(full["expected"]["g_GeV-1"], skipped["expected"]["g_GeV-1"]):
        assert b[2] / a[2] == pytest.approx(0.8**-0.5, rel=2e-3)


@pytest.mark.slow
def test_limits_json_lists_what_processing_skipped(limits_pair: tuple[dict, dict, Path]) -> None:
    full, skipped, _ = limits_pair
    assert skipped["provenance"]["processing"]["skipped"] == SKIPPED
    assert skipped["provenance"]["processing"]["planned_luminosity_pb"] == {"2018": 445.0}
    assert not full["provenance"]["processing"]["skipped"]


def test_report_and_later_logs_name_the_skipped_files(skipped_histograms: Path) -> None:
    overview = processed_inputs(skipped_histograms)
    assert "Processed luminosity 0.356 of 0.445 fb<sup>-1</sup>" in overview
    assert SKIPPED[0]["file"] in overview
    lines: list[str] = []
    workdir = skipped_histograms.parents[1]
    echo_skipped_inputs(RunContext(_config(), workdir, echo=lines.append), "limits")
    assert lines == [
        f"[limits] 1 input(s) skipped in processing (mgg.hist.zip); luminosity 356 of 445 pb^-1: "
        f"{SKIPPED[0]['file']}"
    ]
