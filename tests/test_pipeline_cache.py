"""The stage cache on a chain of small fake stages: what re-runs for each change, records that
are written last and never removed, refusals when an upstream stage is not up to date, and the
code version (a hash of the modules a stage imports)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alps import codeversion
from alps.cache import CacheView, Stage, StageError, run_stages
from alps.config import AnalysisConfig, load_config
from alps.records import read_record


@dataclass
class Ctx:
    config: AnalysisConfig
    workdir: Path
    messages: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def echo(self, text: str) -> None:
        self.messages.append(text)


def _writer(name: str, content: Callable[[Ctx], str]) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        ctx.calls.append(name)
        out = ctx.workdir / name / "out.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(content(ctx))

    return run


def _reads(upstream: str) -> Callable[[Any, CacheView], dict[str, str | None]]:
    return lambda ctx, view: dict(view.outputs_of(upstream))


def _outputs(name: str) -> Callable[[Path], list[str]]:
    return lambda workdir: [f"{name}/out.txt"]


def _chain() -> dict[str, Stage]:
    """a (reads seed and the MC settings) -> b (reads a's file, training settings; writes a
    value that depends only on the parity of a's) -> c (reads b's file and limits settings)."""

    def a(ctx: Ctx) -> str:
        return f"{ctx.config.seed} {ctx.config.simulation.signal.events_per_mass}"

    def b(ctx: Ctx) -> str:
        seed = int((ctx.workdir / "a" / "out.txt").read_text().split()[0])
        return f"{seed % 2} {ctx.config.training.bce_epochs}"

    def c(ctx: Ctx) -> str:
        return (ctx.workdir / "b" / "out.txt").read_text() + str(ctx.config.limits.window_nsigma)

    return {
        "a": Stage("a", ("seed", "simulation.signal"), (), (), ("a/out.txt",), _outputs("a"),
                   _writer("a", a)),
        "b": Stage("b", ("training",), (), ("a",), ("b/out.txt",), _outputs("b"), _writer("b", b),
                   _reads("a")),
        "c": Stage("c", ("limits",), (), ("b",), ("c/out.txt",), _outputs("c"), _writer("c", c),
                   _reads("b")),
    }  # fmt: skip


def _change(config: AnalysisConfig, section: str, **values: Any) -> AnalysisConfig:
    part = getattr(config, section).model_copy(update=values)
    return config.model_copy(update={section: part})


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    context = Ctx(load_config(), tmp_path / "work")
    assert run_stages(context, _chain(), ["a", "b", "c"]) == dict.fromkeys("abc", "ran")
    context.calls.clear()
    return context


def test_nothing_changed_skips_every_stage(ctx: Ctx) -> None:
    assert run_stages(ctx, _chain(), ["a", "b", "c"]) == dict.fromkeys("abc", "skipped")
    assert ctx.calls == []


def test_a_setting_reruns_only_the_stages_that_read_it(ctx: Ctx) -> None:
    ctx.config = _change(ctx.config, "limits", window_nsigma=7.0)
    assert run_stages(ctx, _chain(), ["a", "b", "c"]) == {
        "a": "skipped",
        "b": "skipped",
        "c": "ran",
    }
    ctx.config = _change(ctx.config, "training", bce_epochs=3)
    assert run_stages(ctx, _chain(), ["a", "b", "c"]) == {"a": "skipped", "b": "ran", "c": "ran"}
    assert "configuration changed: training.bce_epochs" in "\n".join(ctx.messages)


def test_a_stage_whose_output_did_not_change_does_not_rerun_the_next(ctx: Ctx) -> None:
    """b's output depends on the parity of the seed: a new seed of the same parity re-runs a and
    b (whose input changed) but not c, since b wrote the same content."""
    ctx.config = ctx.config.model_copy(update={"seed": ctx.config.seed + 2})
    assert run_stages(ctx, _chain(), ["a", "b", "c"]) == {"a": "ran", "b": "ran", "c": "skipped"}
    ctx.config = ctx.config.model_copy(update={"seed": ctx.config.seed + 1})
    assert run_stages(ctx, _chain(), ["a", "b", "c"]) == dict.fromkeys("abc", "ran")


def test_a_changed_or_missing_output_reruns_its_stage(ctx: Ctx) -> None:
    (ctx.workdir / "b" / "out.txt").write_text("edited by hand")
    assert run_stages(ctx, _chain(), ["a", "b", "c"]) == {
        "a": "skipped",
        "b": "ran",
        "c": "skipped",
    }
    (ctx.workdir / "a" / "out.txt").unlink()
    assert run_stages(ctx, _chain(), ["a", "b", "c"])["a"] == "ran"
    assert any("outputs missing: a/out.txt" in m for m in ctx.messages)


def test_a_failed_stage_keeps_its_previous_record_and_reruns_next_time(ctx: Ctx) -> None:
    before = (ctx.workdir / ".alps" / "b.json").read_bytes()
    stages = _chain()

    def fail(context: Ctx) -> None:
        (context.workdir / "b" / "out.txt").write_text("half written")
        raise RuntimeError("disk full")

    broken = {**stages, "b": Stage("b", ("training",), (), ("a",), ("b/out.txt",),
                                   _outputs("b"), fail, _reads("a"))}  # fmt: skip
    ctx.config = _change(ctx.config, "training", bce_epochs=3)
    with pytest.raises(RuntimeError, match="disk full"):
        run_stages(ctx, broken, ["a", "b", "c"])
    assert (ctx.workdir / ".alps" / "b.json").read_bytes() == before
    assert not list((ctx.workdir / ".alps").glob("*.tmp"))
    assert run_stages(ctx, stages, ["a", "b", "c"])["b"] == "ran"


def test_a_single_stage_refuses_upstream_outputs_of_another_configuration(ctx: Ctx) -> None:
    records = {n: (ctx.workdir / ".alps" / f"{n}.json").read_bytes() for n in "abc"}
    ctx.config = ctx.config.model_copy(update={"seed": ctx.config.seed + 1})
    with pytest.raises(StageError, match=r"stage 'a'.*configuration changed: seed.*run `alps a`"):
        run_stages(ctx, _chain(), ["c"])
    assert ctx.calls == []
    assert {n: (ctx.workdir / ".alps" / f"{n}.json").read_bytes() for n in "abc"} == records


def test_a_single_stage_needs_its_upstream_to_have_run(tmp_path: Path) -> None:
    context = Ctx(load_config(), tmp_path)
    with pytest.raises(StageError, match=r"stage 'a'.*has not run"):
        run_stages(context, _chain(), ["b"])


def test_force_reruns_from_that_stage_on(ctx: Ctx) -> None:
    assert run_stages(ctx, _chain(), ["a", "b", "c"], force="b") == {
        "a": "skipped",
        "b": "ran",
        "c": "ran",
    }
    with pytest.raises(StageError, match="--force 'x'"):
        run_stages(ctx, _chain(), ["a", "b", "c"], force="x")


def test_record_holds_key_parts_and_output_digests(ctx: Ctx) -> None:
    record = read_record(ctx.workdir, "b")
    assert record is not None
    assert set(record["parts"]) == {"config", "code", "inputs"}
    assert record["parts"]["inputs"] == read_record(ctx.workdir, "a")["outputs"]  # type: ignore[index]
    assert list(record["outputs"]) == ["b/out.txt"]
    digests = json.loads((ctx.workdir / ".alps" / "digests.json").read_text())
    assert digests["b/out.txt"][2] == record["outputs"]["b/out.txt"]


# -- the code version -------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake project: ``zzstage.run`` imports ``zzstage.kernel`` (inside a function too) and
    ``zzshared``; ``zzother`` is not imported."""
    (tmp_path / "zzstage").mkdir()
    (tmp_path / "zzstage" / "__init__.py").write_text("")
    (tmp_path / "zzstage" / "run.py").write_text(
        "import numpy\nfrom . import kernel\n\ndef go():\n    from zzshared import tool\n"
    )
    (tmp_path / "zzstage" / "kernel.py").write_text("X = 1\n")
    (tmp_path / "zzshared").mkdir()
    (tmp_path / "zzshared" / "__init__.py").write_text("")
    (tmp_path / "zzshared" / "tool.py").write_text("Y = 1\n")
    (tmp_path / "zzother.py").write_text("Z = 1\n")
    (tmp_path / "README.md").write_text("readme\n")
    monkeypatch.setattr(codeversion, "_ROOT", tmp_path)
    codeversion.code_version.cache_clear()
    yield tmp_path
    codeversion.code_version.cache_clear()


def _version(entries: tuple[str, ...]) -> dict[str, object]:
    codeversion.code_version.cache_clear()
    return codeversion.code_version(entries)


def test_code_version_follows_the_modules_a_stage_imports(project: Path) -> None:
    modules, external = codeversion.project_modules(["zzstage.run"])
    assert set(modules) == {"zzstage", "zzstage.run", "zzstage.kernel", "zzshared", "zzshared.tool"}
    assert external == {"numpy"}
    first = _version(("zzstage.run",))
    assert "numpy" in first["packages"]  # type: ignore[operator]
    (project / "README.md").write_text("edited\n")
    (project / "zzother.py").write_text("Z = 2\n")
    assert _version(("zzstage.run",)) == first
    (project / "zzshared" / "tool.py").write_text("Y = 2\n")
    assert _version(("zzstage.run",)) != first


def test_a_code_change_reruns_the_stage_and_says_why(project: Path, tmp_path: Path) -> None:
    stages = _chain()
    stages["b"] = Stage("b", ("training",), ("zzstage.run",), ("a",), ("b/out.txt",),
                        _outputs("b"), stages["b"].run, _reads("a"))  # fmt: skip
    context = Ctx(load_config(), tmp_path / "work")
    run_stages(context, stages, ["a", "b", "c"])
    assert run_stages(context, stages, ["a", "b", "c"]) == dict.fromkeys("abc", "skipped")
    (project / "zzstage" / "kernel.py").write_text("X = 2\n")
    codeversion.code_version.cache_clear()
    assert run_stages(context, stages, ["a", "b", "c"]) == {
        "a": "skipped",
        "b": "ran",
        "c": "skipped",  # b wrote the same file
    }
    assert any("(its code changed)" in m for m in context.messages)


def test_the_report_reruns_when_any_record_it_reads_changes(tmp_path: Path) -> None:
    """The report is keyed on the outputs of every stage that has run (soft dependencies)."""
    from alps.pipeline import _report_inputs

    stages = _chain()
    stages["report"] = Stage("report", ("*",), (), ("a",), ("report/out.txt",),
                             _outputs("report"), _writer("report", lambda c: "report"),
                             _report_inputs, soft_depends=("b", "c"))  # fmt: skip
    ctx = Ctx(load_config(), tmp_path / "work")
    run_stages(ctx, stages, ["a", "b", "c", "report"])
    ctx.config = _change(ctx.config, "limits", window_nsigma=7.0)
    assert run_stages(ctx, stages, ["a", "b", "c", "report"])["report"] == "ran"
    assert run_stages(ctx, stages, ["report"]) == {"report": "skipped"}
    (ctx.workdir / "c" / "out.txt").write_text("edited")
    with pytest.raises(StageError, match=r"stage 'c'.*outputs changed since it ran"):
        run_stages(ctx, stages, ["report"])
    assert run_stages(ctx, stages, ["c"]) == {"c": "ran"}  # the same content again
    assert run_stages(ctx, stages, ["report"]) == {"report": "skipped"}
    ctx.config = _change(ctx.config, "limits", window_nsigma=8.0)
    assert run_stages(ctx, stages, ["c"]) == {"c": "ran"}
    assert run_stages(ctx, stages, ["report"]) == {"report": "ran"}
