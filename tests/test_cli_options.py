"""Command-line options are validated before any stage starts: a bad option leaves every record
and output as it was, and a failed command leaves no new work directory."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from alps.cli import _context, main
from alps.config import load_config


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A work directory with records and outputs of finished stages."""
    work = tmp_path / "work"
    for name in ("generate", "shapes", "limits"):
        (work / ".alps").mkdir(parents=True, exist_ok=True)
        (work / ".alps" / f"{name}.json").write_text(json.dumps({"key": name}))
    (work / "shapes").mkdir()
    (work / "shapes" / "shapes.json").write_text("{}")
    return work


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["limits", "--cluster", "typo"], "no profile 'typo'"),
        (["run", "--cluster", "typo"], "no profile 'typo'"),
        (["run", "--force", "typo"], "'typo' is not one of"),
        (["limits", "--working-point", "1.5"], "--working-point"),
        (["report", "--cluster", "local"], "No such option '--cluster'"),
        (["report", "--workers", "2"], "No such option '--workers'"),
        (["limits", "--slice", "exp=999"], "selects no runs"),
    ],
)
def test_a_bad_option_fails_before_any_stage_and_leaves_every_record(
    workdir: Path, args: list[str], message: str
) -> None:
    before = _snapshot(workdir)
    code, output = _invoke(*args, "--workdir", str(workdir))
    assert code != 0
    assert message in output
    assert "[shapes]" not in output and "[limits]" not in output
    assert _snapshot(workdir) == before


@pytest.mark.parametrize(
    "args",
    [
        ["limits", "--cluster", "typo"],
        ["limits"],  # refused: the stages it reads from have not run
        ["report"],
        ["train", "--slice", "exp=999"],
    ],
)
def test_a_failed_command_leaves_no_new_work_directory(tmp_path: Path, args: list[str]) -> None:
    work = tmp_path / "new"
    code, output = _invoke(*args, "--workdir", str(work), "--quiet")
    assert code != 0, output
    assert not work.exists()


def test_single_stage_refusal_names_the_missing_stage(tmp_path: Path) -> None:
    code, output = _invoke("limits", "--workdir", str(tmp_path / "w"))
    assert code != 0
    assert "stage 'generate'" in output and "has not run" in output


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level = root.level
    yield root
    root.setLevel(level)


def test_verbose_turns_on_logging(tmp_path: Path, root_logger: logging.Logger) -> None:
    root_logger.setLevel(logging.WARNING)
    _context(None, tmp_path, None, None, quiet=False, verbose=True)
    assert root_logger.getEffectiveLevel() == logging.INFO


def test_no_progress_bars_when_not_writing_to_a_terminal(tmp_path: Path) -> None:
    """Under pytest stderr is not a terminal: progress bars would write carriage-return junk."""
    ctx = _context(None, tmp_path, None, None, quiet=False, verbose=False)
    assert ctx.progress is False
    assert not tmp_path.joinpath("alps-output").exists()


def test_limits_working_point_option_reruns_the_limits_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`alps limits --working-point` runs the shapes (if their inputs changed), the limits and the
    report, with the working point in the configuration the stages are keyed on."""
    import alps.cli

    calls: list[tuple[list[str], str | None, float | None]] = []

    def record(ctx: object, names: list[str], *, force: str | None = None) -> dict[str, str]:
        calls.append((names, force, ctx.config.training.working_point))  # type: ignore[attr-defined]
        return {}

    monkeypatch.setattr(alps.cli, "run_stages", record)
    code, output = _invoke("limits", "--working-point", "0.5", "--workdir", str(tmp_path))
    assert code == 0, output
    assert calls == [(["shapes", "limits", "report"], "limits", 0.5)]


def test_report_names_the_working_point_of_the_limits(tmp_path: Path) -> None:
    from alps.report import _limits

    (tmp_path / "limits").mkdir()
    limits = {
        "masses_GeV": [1.0],
        "observed": {"g_GeV-1": [1e-3], "xsec_pb": [0.1]},
        "expected": {
            "g_GeV-1": [[5e-4, 7e-4, 1e-3, 1.4e-3, 2e-3]],
            "xsec_pb": [[0.05, 0.07, 0.1, 0.14, 0.2]],
        },
        "local_significance": [0.5],
        "global_significance": 0.0,
        "luminosity_fb-1": 0.1,
        "excluded_mass_regions_GeV": [],
        "working_point": 0.5,
    }
    (tmp_path / "limits" / "limits.json").write_text(json.dumps(limits))
    html = _limits(tmp_path, tmp_path / "report", load_config())
    assert "working point (score cut) of these limits</td><td>0.5</td>" in html
