"""A published limit on g_agg, read from a file the user supplies (``report.published_limits``).

The project ships no such data: the user names a CSV with two columns, the ALP mass in GeV and
the 95% CL upper limit on g_agg in GeV^-1 (for example the Belle II 2018 result, Phys. Rev. Lett.
125 (2020) 161806, digitised by the user). Lines starting with ``#`` and a header line whose
fields are not numbers are skipped; the report draws the curve over its own coupling limit.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OverlayError", "PublishedLimit", "read_published_limits"]


class OverlayError(ValueError):
    """The published-limit file cannot be used (it names the file and the line)."""


@dataclass(frozen=True)
class PublishedLimit:
    """A limit curve: masses [GeV], increasing, and upper limits on g_agg [GeV^-1]."""

    label: str
    masses_GeV: tuple[float, ...]
    g_GeV: tuple[float, ...]


def read_published_limits(path: str | Path, label: str = "published limit") -> PublishedLimit:
    """Read a ``mass_GeV, g_GeV-1`` CSV; raise :class:`OverlayError` naming the file and line.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = os.path.join(d, "l.csv")
    ...     _ = open(f, "w").write("mass_GeV,g_GeV-1\\n0.5,2e-3\\n1.0,1.5e-3\\n")
    ...     read_published_limits(f).g_GeV
    (0.002, 0.0015)
    """
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as exc:
        raise OverlayError(f"published-limit file {source}: cannot read it ({exc})") from exc
    points: list[tuple[float, float]] = []
    header_seen = False
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or cells[0].startswith("#"):
            continue
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if not points and not header_seen:
                header_seen = True  # the header line
                continue
            raise OverlayError(
                f"published-limit file {source}, line {number}: {row!r} is not two numbers"
            ) from None
        if len(values) != 2:
            raise OverlayError(
                f"published-limit file {source}, line {number}: expected 2 columns "
                f"(mass_GeV, g_GeV-1), found {len(values)}"
            )
        mass, g = values
        if not (math.isfinite(mass) and math.isfinite(g) and mass > 0 and g > 0):
            raise OverlayError(
                f"published-limit file {source}, line {number}: mass and g must be positive "
                f"and finite, got {mass}, {g}"
            )
        points.append((mass, g))
    if len(points) < 2:
        raise OverlayError(f"published-limit file {source}: needs at least two (mass, g) rows")
    points.sort()
    if any(a[0] == b[0] for a, b in itertools.pairwise(points)):
        raise OverlayError(f"published-limit file {source}: a mass appears twice")
    return PublishedLimit(label, tuple(p[0] for p in points), tuple(p[1] for p in points))
