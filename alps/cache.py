"""The cache of the stage chain: when a stage is up to date, and running the stages that are not.

A stage is up to date when its record (:mod:`alps.records`) was made under the key it would get
now, and every file it wrote is still there with the content it wrote. The key hashes

- the configuration the stage reads (dotted sections; ``-a.b`` leaves a field out),
- its code version (:func:`alps.codeversion.code_version` of its entry modules),
- the digests of what it reads: files written by the stages before it (taken from their records,
  which were checked first), or values derived from them (e.g. the signal part of a histogram file).

So a stage re-runs exactly when something it reads changed, and a stage that re-ran with an
identical result does not make the stages after it re-run. Stages that a command does not run but
reads from must be up to date too, or the command refuses to run, saying why: a command never
runs on outputs made from another configuration, other code or other inputs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .codeversion import code_version
from .config import AnalysisConfig
from .records import FileDigests, digest_json, read_record, write_record

__all__ = ["CacheView", "Stage", "StageError", "config_sections", "evaluate", "run_stages"]


class StageError(RuntimeError):
    """A stage cannot run: an upstream stage is missing or out of date, or an output is missing."""


class Context(Protocol):
    config: AnalysisConfig
    workdir: Path

    @property
    def echo(self) -> Callable[[str], None]: ...


@dataclass
class CacheView:
    """What a stage's ``inputs`` function sees: file digests and the (checked) upstream records."""

    workdir: Path
    digests: FileDigests
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def outputs_of(self, stage: str, under: str = "") -> dict[str, str]:
        """The files an upstream stage wrote (relative path -> sha256), optionally in a folder."""
        outputs: dict[str, str] = self.records.get(stage, {}).get("outputs", {})
        return {p: d for p, d in outputs.items() if p.startswith(under)}


def _no_inputs(ctx: Any, view: CacheView) -> dict[str, str | None]:
    return {}


@dataclass(frozen=True)
class Stage:
    """A cached step of the chain.

    ``inputs(ctx, view)`` gives the digests of what the stage reads; ``outputs(workdir)`` lists
    the files it wrote (relative paths, after it ran); ``required`` are files it must leave.
    ``run(ctx)`` may return a mapping of facts to keep in the record (e.g. skipped files).
    """

    name: str
    sections: tuple[str, ...]
    code: tuple[str, ...]
    depends: tuple[str, ...]
    required: tuple[str, ...]
    outputs: Callable[[Path], Iterable[str]]
    run: Callable[[Any], Mapping[str, Any] | None]
    inputs: Callable[[Any, CacheView], dict[str, str | None]] = _no_inputs
    description: str = ""
    command: str = ""
    #: stages read when they have run, without being required
    soft_depends: tuple[str, ...] = ()


def config_sections(config: AnalysisConfig, sections: Iterable[str]) -> dict[str, Any]:
    """The named dotted sections of the configuration (``*``: all of it; ``-a.b`` drops a field)."""
    data = json.loads(config.model_dump_json())
    sections = tuple(sections)
    if "*" in sections:
        return {"*": data}
    chosen: dict[str, Any] = {}
    for section in sections:
        if not section.startswith("-"):
            node: Any = data
            for part in section.split("."):
                node = node[part]
            chosen[section] = node
    for section in sections:
        if section.startswith("-"):
            *parents, leaf = section[1:].split(".")
            for key, node in chosen.items():
                if section[1:].startswith(key + "."):
                    for part in parents[len(key.split(".")) :]:
                        node = node[part]
                    node.pop(leaf, None)
    return chosen


@dataclass(frozen=True)
class Evaluation:
    key: str
    parts: dict[str, Any]
    record: dict[str, Any] | None
    #: why the stage is not up to date (empty: it is)
    reasons: tuple[str, ...]


def _leaf_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{k}" if prefix and prefix != "*" else str(k)
            out += _leaf_differences(old.get(k), new.get(k), name)
        return out
    return [] if old == new else [prefix or "(all)"]


def _few(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _reasons(parts: dict[str, Any], record: dict[str, Any], view: CacheView) -> list[str]:
    reasons = []
    old = record.get("parts", {})
    config = _leaf_differences(old.get("config", {}), parts["config"])
    if config:
        reasons.append(f"configuration changed: {_few(config)}")
    if old.get("code", {}).get("sources") != parts["code"]["sources"]:
        reasons.append("its code changed")
    packages = _leaf_differences(old.get("code", {}).get("packages", {}), parts["code"]["packages"])
    if packages:
        reasons.append(f"package versions changed: {_few(packages)}")
    inputs = _leaf_differences(old.get("inputs", {}), parts["inputs"])
    if inputs:
        reasons.append(f"inputs changed: {_few(inputs)}")
    return reasons or ["its key changed"]


def evaluate(stage: Stage, ctx: Context, view: CacheView) -> Evaluation:
    """The stage's key now, its record, and why it is not up to date (if it is not)."""
    parts = {
        "config": config_sections(ctx.config, stage.sections),
        "code": code_version(stage.code),
        "inputs": stage.inputs(ctx, view),
    }
    key = digest_json({"stage": stage.name, **parts})
    record = read_record(ctx.workdir, stage.name)
    if record is None:
        return Evaluation(key, parts, None, ("it has not run",))
    if record["key"] != key:
        return Evaluation(key, parts, record, tuple(_reasons(parts, record, view)))
    outputs: dict[str, str] = record.get("outputs", {})
    now = view.digests.many(outputs)
    missing = [p for p, d in now.items() if d is None]
    changed = [p for p, d in now.items() if d is not None and d != outputs[p]]
    reasons = []
    if missing:
        reasons.append(f"outputs missing: {_few(missing)}")
    if changed:
        reasons.append(f"outputs changed since it ran: {_few(changed)}")
    return Evaluation(key, parts, record, tuple(reasons))


def _chain(stages: Mapping[str, Stage], requested: Collection[str]) -> list[str]:
    """The requested stages and every stage they read from, in the chain's order."""
    needed = set(requested)
    for name in reversed(list(stages)):
        if name in needed:
            needed.update(stages[name].depends + stages[name].soft_depends)
    return [name for name in stages if name in needed]


def run_stages(
    ctx: Context,
    stages: Mapping[str, Stage],
    requested: Sequence[str],
    *,
    force: str | None = None,
) -> dict[str, str]:
    """Run the requested stages that are not up to date (``force``: that stage and every later
    requested one run anyway); the stages they read from must be up to date. Returns each
    requested stage's outcome, "ran" or "skipped"."""
    if force is not None and force not in requested:
        raise StageError(f"--force {force!r}: not a stage of this command ({', '.join(requested)})")
    order = _chain(stages, requested)
    hard = {d for name in order for d in stages[name].depends}
    view = CacheView(ctx.workdir, FileDigests(ctx.workdir))
    outcome: dict[str, str] = {}
    forced = False
    try:
        for name in order:
            stage = stages[name]
            forced = forced or name == force
            evaluation = evaluate(stage, ctx, view)
            if name not in requested:
                if evaluation.record is None and name not in hard:
                    continue  # a soft dependency that has not run
                if evaluation.reasons:
                    command = stage.command or f"alps {name}"
                    raise StageError(
                        f"{', '.join(requested)} reads the outputs of stage {name!r}, which are "
                        f"not up to date in {ctx.workdir} for this configuration "
                        f"({'; '.join(evaluation.reasons)}): run `{command}` or `alps run` "
                        "with this configuration first"
                    )
                assert evaluation.record is not None
                view.records[name] = evaluation.record
                continue
            if not forced and not evaluation.reasons:
                ctx.echo(f"[{name}] up to date, skipped")
                view.records[name] = evaluation.record or {}
                outcome[name] = "skipped"
                continue
            why = "forced" if forced else "; ".join(evaluation.reasons)
            ctx.echo(f"[{name}] {stage.description or 'running'} ({why})")
            view.records[name] = _run_one(stage, ctx, view, evaluation)
            outcome[name] = "ran"
    finally:
        view.digests.save()
    return outcome


def _run_one(stage: Stage, ctx: Context, view: CacheView, evaluation: Evaluation) -> dict[str, Any]:
    start = time.perf_counter()
    facts = stage.run(ctx)
    elapsed = time.perf_counter() - start
    missing = [p for p in stage.required if not (ctx.workdir / p).exists()]
    if missing:
        raise StageError(f"stage {stage.name!r} finished without writing {', '.join(missing)}")
    view.digests.refresh()  # digests the stage remembered itself (e.g. the generated ntuples)
    outputs = view.digests.many(stage.outputs(ctx.workdir))
    record = {
        "stage": stage.name,
        "key": evaluation.key,
        "parts": evaluation.parts,
        "outputs": {p: d for p, d in outputs.items() if d is not None},
        "facts": dict(facts or {}),
        "seconds": round(elapsed, 2),
        "finished": time.time(),
    }
    write_record(ctx.workdir, stage.name, record)
    ctx.echo(f"[{stage.name}] done in {elapsed:.1f} s")
    return record
