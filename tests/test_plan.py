"""``alps plan``: what a run would cost, without running it (issue 12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from alps.cli import main
from alps.config import load_config
from alps.pipeline import STAGES
from alps.plan import MEASURED, _chunks, _merge_tasks, _training_events, plan_run


def _figures(output: str) -> dict[str, float]:
    head = output.splitlines()[0]
    numbers = {
        key: float(value.replace(",", ""))
        for value, key in re.findall(r"([\d.,]+) (fb\^-1|files|events|chunks|mass points)", head)
    }
    return numbers


def test_chunking_and_tree_reduction_counts() -> None:
    assert _chunks(250_000, 200_000) == 1 and _chunks(500_000, 200_000) == 2
    assert _chunks(10, 200_000) == 1
    assert _merge_tasks(1) == 0 and _merge_tasks(8) == 1 and _merge_tasks(9) == 3  # 2 + 1
    assert _merge_tasks(30_000) == 3750 + 469 + 59 + 8 + 1


def test_plan_of_the_default_slice(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    figures = _figures(result.output)
    assert figures["fb^-1"] == pytest.approx(0.445, rel=1e-3)
    assert 3.3e6 < figures["events"] < 3.45e6  # the generation makes 3 362 944 (6000 per mass)
    assert figures["files"] >= 200 and figures["chunks"] >= figures["files"]
    for stage in STAGES:
        assert re.search(rf"^{stage}\s+[\d,]+\s", result.output, re.M), stage
    assert not (tmp_path / "w").exists()  # nothing was run or written


@pytest.mark.slow
def test_plan_of_run1_scales_with_the_luminosity(tmp_path: Path) -> None:
    default = plan_run(load_config(None))
    run1 = plan_run(load_config(None, run_slice="run1"))
    assert run1.luminosity_fb == pytest.approx(426.9, rel=1e-3)
    assert 2.9e9 < run1.events < 3.1e9
    ratio = run1.events / default.events
    by_stage = {s.stage: s for s in run1.stages}
    base = {s.stage: s for s in default.stages}
    # per-event stages: a fixed part plus a marginal cost per event; training learns from at
    # most training.max_background_candidates candidates, then only reads; the report is fixed
    costs = MEASURED["stages"]
    for plan in (default, run1):
        process = next(s for s in plan.stages if s.stage == "process")
        expected = costs["process"]["fixed"] + costs["process"]["per_event"] * plan.events
        assert process.core_hours * 3600 == pytest.approx(expected)
    assert by_stage["process"].core_hours / base["process"].core_hours > 0.4 * ratio
    train = costs["train"]
    learned = 2_000_000 / train["background_rows_per_event"]
    folds = max(1, load_config(None).training.evaluation_folds)  # k-fold: k trainings
    assert by_stage["train"].core_hours * 3600 == pytest.approx(
        folds * (train["fixed"] + train["per_event"] * learned
                 + train["read_per_event"] * (run1.events - learned))
    )  # fmt: skip
    assert by_stage["report"].core_hours == base["report"].core_hours
    assert by_stage["process"].tasks > run1.chunks > 10_000
    result = CliRunner().invoke(main, ["plan", "--slice", "run1", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert _figures(result.output)["events"] == run1.events


def test_costs_from_a_benchmark_file(tmp_path: Path) -> None:
    stages = {
        name: {"wall_s": 10.0, "disk_B": 1000.0}
        for name in (
            "generate",
            "calibrate",
            "process",
            "train",
            "score",
            "shapes",
            "limits",
            "report",
        )
    }
    payload = {
        "benchmark": "benchmarks/scale.py", "date": "2026-12-03", "workers": 2,
        "results": [{"lumi_fb": 0.1, "events": 1_000_000, "masses": 10, "stages": stages}],
    }  # fmt: skip
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(payload))
    plan = plan_run(load_config(None), path)
    process = next(s for s in plan.stages if s.stage == "process")
    assert process.core_hours == pytest.approx(20.0 / 1e6 * plan.events / 3600)
    assert str(path) in plan.source


def test_training_learns_from_a_capped_sample() -> None:
    costs = {"background_rows_per_event": 0.1}
    assert _training_events(5000, costs, 1000) == (5000, 0)
    assert _training_events(20_000, costs, 1000) == (10_000, 10_000)
    assert _training_events(20_000, {}, 1000) == (20_000, 0)


def test_marginal_costs_from_two_luminosities(tmp_path: Path) -> None:
    def point(lumi: float, events: int, cpu: float) -> dict[str, object]:
        stages = {name: {"wall_s": 1.0, "cpu_s": cpu, "disk_B": events * 10.0}
                  for name in STAGES}  # fmt: skip
        return {"lumi_fb": lumi, "events": events, "masses": 100, "signal_masses": 10,
                "stages": stages}  # fmt: skip

    payload = {"benchmark": "benchmarks/scale.py", "date": "2026-12-03", "workers": 2,
               "results": [point(0.1, 1_000_000, 15.0), point(0.4, 4_000_000, 30.0)]}  # fmt: skip
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(payload))
    plan = plan_run(load_config(None), path)
    process = next(s for s in plan.stages if s.stage == "process")
    # 15 s of CPU for 3 M more events: 5 us per event on top of 10 s fixed
    assert process.core_hours == pytest.approx((10.0 + 5e-6 * plan.events) / 3600)
    assert process.disk_bytes == pytest.approx(10.0 * plan.events)
    shapes = next(s for s in plan.stages if s.stage == "shapes")
    assert shapes.core_hours == pytest.approx(30.0 / 10 * 41 / 3600)
