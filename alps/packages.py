"""Start-up check that the project's top-level packages are this distribution's own.

The repository layout is fixed by the design card: besides ``alps`` the distribution installs the
top-level packages ``simulation``, ``kinfit``, ``processors``, ``models`` and ``limits``. The name
``limits`` is also taken on PyPI (a rate-limiting library): when both are installed, or another
``limits`` comes first on ``sys.path``, ``import limits`` finds the wrong one and the failure
would surface deep inside a stage as an unrelated ImportError. :func:`check_top_level_packages`
finds each package's location *without importing it* (``importlib.util.find_spec``) and reports a
clash with the file it found, so ``alps`` can refuse to start with a clear message.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TOP_LEVEL_PACKAGES", "PackageClash", "check_top_level_packages", "package_clashes"]

#: the top-level packages this distribution installs beside ``alps`` (design.md, "The house")
TOP_LEVEL_PACKAGES = ("simulation", "kinfit", "processors", "models", "limits")


class PackageClash(RuntimeError):
    """A top-level package of this project resolves to another distribution's files."""


def _location(name: str, find_spec: Callable[[str], Any]) -> Path | None:
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve().parent if spec.origin else None


def package_clashes(
    names: Sequence[str] = TOP_LEVEL_PACKAGES,
    find_spec: Callable[[str], Any] = importlib.util.find_spec,
) -> list[str]:
    """One message per package that is missing or lies outside the directory holding ``alps``."""
    home = _location("alps", find_spec)
    if home is None:  # pragma: no cover - this module is part of alps
        return ["alps itself cannot be located"]
    root = home.parent
    problems = []
    for name in names:
        where = _location(name, find_spec)
        if where is None:
            problems.append(f"top-level package '{name}' of the alps distribution is not installed")
        elif where.parent != root:
            problems.append(
                f"'import {name}' finds {where}, not this project's {root / name}: another "
                f"distribution named '{name}' is installed or comes first on sys.path"
                + (" (PyPI's 'limits' is a rate limiter; uninstall it from this environment, or "
                   "install alps into an environment of its own)" if name == "limits" else "")
            )  # fmt: skip
    return problems


def check_top_level_packages(
    names: Sequence[str] = TOP_LEVEL_PACKAGES,
    find_spec: Callable[[str], Any] = importlib.util.find_spec,
) -> None:
    """Raise :class:`PackageClash` listing every clash (see :func:`package_clashes`)."""
    problems = package_clashes(names, find_spec)
    if problems:
        raise PackageClash("alps cannot start:\n  " + "\n  ".join(problems))
