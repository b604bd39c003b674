"""Packaging (#16): runtime dependencies are ranges pinned exactly in constraints.txt, and every
declared dependency is imported by the package (or says in pyproject.toml why it stays)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("alps", "simulation", "kinfit", "processors", "models", "limits")
#: distribution name -> import name, where they differ
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "pyyaml": "yaml",
    "xgboost-cpu": "xgboost",
    "numba-stats": "numba_stats",
    "dask-jobqueue": "dask_jobqueue",
}
#: declared but not imported, with the reason written in pyproject.toml
NOT_IMPORTED = {"pyhf"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower())


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[_normal(name)] = version
    return pins


def test_dependencies_are_ranges_that_the_constraints_satisfy() -> None:
    pins = _pins()
    for text in _project()["dependencies"]:  # type: ignore[attr-defined]
        requirement = Requirement(text)
        assert "==" not in str(requirement.specifier), f"{text}: a range, not a pin"
        assert any(s.operator == ">=" for s in requirement.specifier), f"{text}: a lower bound"
        version = pins.get(_normal(requirement.name))
        assert version is not None, f"{requirement.name} has no pin in constraints.txt"
        assert requirement.specifier.contains(Version(version), prereleases=True), text


def test_every_declared_dependency_is_imported_or_explained() -> None:
    sources = "\n".join(
        p.read_text() for package in PACKAGES for p in (ROOT / package).rglob("*.py")
    )
    unused = []
    for text in _project()["dependencies"]:  # type: ignore[attr-defined]
        name = _normal(Requirement(text).name)
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if not re.search(rf"^\s*(import|from) {module}\b", sources, re.MULTILINE):
            unused.append(name)
    assert sorted(unused) == sorted(NOT_IMPORTED)
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in NOT_IMPORTED:
        assert re.search(rf"#\s+{name}:", pyproject), f"pyproject.toml says why {name} stays"
