"""`alps run` end to end on a tiny slice (0.03 fb^-1, twelve signal masses, short training): the
report and limits exist and are finite, a second run skips every stage, and changing only the
working point or the luminosity uncertainty re-runs only what depends on it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alps.config import load_config
from limits.mass_model import excluded_regions, is_excluded

STAGES = ("generate", "calibrate", "process", "train", "score", "shapes", "limits", "report")

TINY = """\
name: tiny
seed: 7
run_slice: "lumi=0.03"
simulation:
  signal:
    masses: {values: [0.3, 0.8, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.2]}
    events_per_mass: 600
training:
  bce_epochs: 4
  punzi_epochs: 6
  held_out_masses: 2
  xgboost_rounds: 30
limits:
  masses: {start: 0.3, stop: 9.6, step: 0.05}   # inside the simulated grid (0.3-10.2)
"""


def _alps(*args: str | Path) -> str:
    """Run the installed command line; returns its combined output (fails the test on error)."""
    exe = Path(sys.executable).with_name("alps")
    proc = subprocess.run(
        [str(exe), *map(str, args), "--quiet", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def _outcomes(output: str) -> dict[str, str]:
    ran = set(re.findall(r"^\[(\w+)\] done in", output, re.MULTILINE))
    skipped = set(re.findall(r"^\[(\w+)\] up to date, skipped", output, re.MULTILINE))
    return {s: "ran" if s in ran else "skipped" if s in skipped else "absent" for s in STAGES}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("e2e")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    workdir = root / "out"
    return config, workdir, _alps("run", "--config", config, "--workdir", workdir)


def test_first_run_runs_every_stage_and_writes_report_and_limits(
    tiny_run: tuple[Path, Path, str],
) -> None:
    config, workdir, output = tiny_run
    assert set(_outcomes(output).values()) == {"ran"}, output[-3000:]
    html = (workdir / "report" / "index.html").read_text()
    for section in (
        "Cutflow",
        "Data and MC",
        "Kinematic fit",
        "Calibration",
        "Trigger efficiency",
        "Punzi net",
        "Signal shapes and limits",
        "Provenance",
    ):
        assert section.lower() in html.lower(), section
    for img in re.findall(r'src="([^"]+\.png)"', html):
        assert (workdir / "report" / img).stat().st_size > 1000, img

    result = json.loads((workdir / "limits" / "limits.json").read_text())
    cfg = load_config(config)
    regions = excluded_regions(cfg)
    masses = np.asarray(result["masses_GeV"])
    np.testing.assert_allclose(masses, cfg.limits.masses.masses())
    outside = np.array([not is_excluded(m, regions) for m in masses])
    assert outside.sum() > 150
    for key in ("xsec_pb", "g_GeV-1"):
        obs = result["observed"][key]
        exp = result["expected"][key]
        for m, o, e, free in zip(masses, obs, exp, outside):
            if free:
                assert o is not None and np.isfinite(o) and o > 0, (key, m, o)
                assert e is not None and np.all(np.isfinite(e)) and np.all(np.diff(e) > 0), (
                    key,
                    m,
                    e,
                )
            else:
                assert o is None and e is None, (key, m)
    z = [v for v, free in zip(result["local_significance"], outside) if free]
    assert np.all(np.isfinite(z))
    assert np.isfinite(result["global_significance"])
    assert result["luminosity_fb-1"] == pytest.approx(0.03, rel=0.2)


def test_second_run_skips_every_stage(tiny_run: tuple[Path, Path, str]) -> None:
    config, workdir, _ = tiny_run
    before = (workdir / "limits" / "limits.json").stat().st_mtime_ns
    output = _alps("run", "--config", config, "--workdir", workdir)
    assert set(_outcomes(output).values()) == {"skipped"}, output[-3000:]
    assert (workdir / "limits" / "limits.json").stat().st_mtime_ns == before


def test_changing_the_working_point_reruns_only_what_depends_on_it(
    tiny_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, workdir, _ = tiny_run
    histograms = workdir / "histograms" / "mgg_score.hist.zip"
    stamp = histograms.stat().st_mtime_ns
    changed = tmp_path / "wp.yaml"
    changed.write_text(
        config.read_text().replace(
            "  xgboost_rounds: 30\n", "  xgboost_rounds: 30\n  working_point: 0.3\n"
        )
    )
    outcome = _outcomes(_alps("run", "--config", changed, "--workdir", workdir))
    assert outcome == {
        **dict.fromkeys(("generate", "calibrate", "process", "train", "score"), "skipped"),
        **dict.fromkeys(("shapes", "limits", "report"), "ran"),
    }
    assert histograms.stat().st_mtime_ns == stamp, "the events must not be touched"
    result = json.loads((workdir / "limits" / "limits.json").read_text())
    assert result["working_point"] == pytest.approx(0.3)

    # a systematic that the limits take from the configuration: only limits and report re-run
    lumi = tmp_path / "lumi.yaml"
    lumi.write_text(changed.read_text() + "systematics:\n  luminosity: 0.02\n")
    outcome = _outcomes(_alps("run", "--config", lumi, "--workdir", workdir))
    assert [s for s, v in outcome.items() if v == "ran"] == ["limits", "report"], outcome
    assert histograms.stat().st_mtime_ns == stamp
