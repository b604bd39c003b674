"""The code version of a stage: a hash of the project modules it imports, and the versions of
the third-party distributions they import.

Each stage names its entry modules (``processors.run``, ``limits``, ...). The modules they import
are followed through the source (every ``import`` statement, also inside functions, read with
:mod:`ast`; nothing is executed) as long as they belong to this project, and the content of each
is hashed. So an edit of the kinematic fit re-runs processing but not the limits, an edit of the
README or of the command line re-runs nothing, and the same holds for an installed wheel, which
has no git checkout. Third-party packages are keyed by their installed version (a new pyhf
re-runs the limits). The package version and git revision are not used: they change with every
commit, whatever it touches.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = ["code_version", "project_modules"]

#: third-party packages that schedule or show progress and change no result
_NOT_RESULTS = frozenset({"distributed", "tqdm"})

#: the folder that holds the project's top-level packages (a checkout or site-packages)
_ROOT = Path(__file__).resolve().parent.parent


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def _is_project(top: str) -> bool:
    if not ((_ROOT / top / "__init__.py").is_file() or (_ROOT / f"{top}.py").is_file()):
        return False
    return set(_distributions().get(top, [])) <= {"alps"}


def _module_file(name: str) -> Path | None:
    base = _ROOT.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, path: Path) -> Iterable[str]:
    """Absolute names of the modules a module's source imports (also ``from pkg import mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def project_modules(entries: Iterable[str]) -> tuple[dict[str, Path], set[str]]:
    """The project modules reachable from ``entries`` (name -> file) and the third-party
    top-level packages they import."""
    found: dict[str, Path] = {}
    external: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        top = name.partition(".")[0]
        if not _is_project(top):
            if top and top not in sys.stdlib_module_names and top not in _NOT_RESULTS:
                external.add(top)
            continue
        path = _module_file(name)
        if path is None:
            continue  # ``from pkg import function``: not a module
        found[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run too
        todo.extend(_imports(name, path))
    return found, external


@cache
def code_version(entries: tuple[str, ...]) -> dict[str, object]:
    """``{"sources": hash of the modules' content, "packages": {distribution: version}}``."""
    modules, external = project_modules(entries)
    sha = hashlib.sha256()
    for name in sorted(modules):
        sha.update(name.encode() + b"\0" + modules[name].read_bytes() + b"\0")
    versions: dict[str, str] = {}
    for top in sorted(external):
        for dist in _distributions().get(top, []):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
    return {"sources": sha.hexdigest()[:20], "packages": versions}
