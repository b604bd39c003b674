"""The production manifest (``ntuples/manifest.json``), read once into typed, frozen objects.

The generate stage writes, per file, its sample, run period, run block, events and luminosity,
and per run block its period, luminosity and nominal sqrt(s): later stages take the beam energy
from here instead of re-reading the run registry.

>>> m = Manifest.from_dict({
...     "run_slice": "2018", "luminosity_pb": {"2018": 2.0},
...     "blocks": {"b1": {"period": "2018", "luminosity_pb": 1.0, "sqrt_s_GeV": 10.5},
...                "b2": {"period": "2018", "luminosity_pb": 1.0, "sqrt_s_GeV": 10.6}},
...     "files": [{"path": "ggg/a.root", "sample": "ggg", "period": "2018", "block": "b1",
...                "events": 10, "luminosity_pb": 1.0, "skipped": False}]})
>>> round(m.sqrt_s_GeV()["2018"], 6), m.events
(10.55, 10)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_FILE", "BlockFacts", "Manifest", "ManifestError", "ManifestFile"]

#: where the generate stage writes it, relative to the work directory
MANIFEST_FILE = "ntuples/manifest.json"


class ManifestError(ValueError):
    """A manifest that lacks a field or holds a bad value; the message names both."""


@dataclass(frozen=True)
class ManifestFile:
    """One ntuple: ``path`` relative to ``ntuples/``."""

    path: str
    sample: str
    period: str
    block: str
    events: int
    luminosity_pb: float
    skipped: bool = False
    #: SHA-256 of the file as generated (verified before calibration and processing)
    sha256: str | None = None


@dataclass(frozen=True)
class BlockFacts:
    """A run block of the production: its period, luminosity (pb^-1) and nominal sqrt(s) (GeV)."""

    period: str
    luminosity_pb: float
    sqrt_s_GeV: float


@dataclass(frozen=True)
class Manifest:
    """What the generate stage produced."""

    run_slice: str
    luminosity_pb: Mapping[str, float]
    blocks: Mapping[str, BlockFacts]
    files: tuple[ManifestFile, ...]
    #: where it was read from (error messages name it)
    source: str = field(default="manifest", compare=False)

    @property
    def events(self) -> int:
        return sum(f.events for f in self.files)

    def sqrt_s_GeV(self) -> dict[str, float]:
        """Luminosity-weighted nominal sqrt(s) per run period (GeV)."""
        sums: dict[str, list[float]] = {}
        for block in self.blocks.values():
            total = sums.setdefault(block.period, [0.0, 0.0])
            total[0] += block.luminosity_pb * block.sqrt_s_GeV
            total[1] += block.luminosity_pb
        return {p: s / w for p, (s, w) in sums.items() if w > 0}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_slice": self.run_slice,
            "luminosity_pb": dict(self.luminosity_pb),
            "blocks": {k: vars(v).copy() for k, v in self.blocks.items()},
            "files": [vars(f).copy() for f in self.files],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "manifest") -> Manifest:
        """Validate a manifest mapping; a missing or bad field raises :class:`ManifestError`."""

        def need(node: Mapping[str, Any], key: str, where: str) -> Any:
            if key not in node:
                raise ManifestError(
                    f"{source}: {where}{key} is missing (re-run `alps generate` to rewrite it)"
                )
            return node[key]

        try:
            blocks = {
                str(name): BlockFacts(
                    str(need(b, "period", f"blocks.{name}.")),
                    float(need(b, "luminosity_pb", f"blocks.{name}.")),
                    float(need(b, "sqrt_s_GeV", f"blocks.{name}.")),
                )
                for name, b in need(data, "blocks", "").items()
            }
            files = tuple(
                ManifestFile(
                    path=str(need(f, "path", f"files[{i}].")),
                    sample=str(need(f, "sample", f"files[{i}].")),
                    period=str(need(f, "period", f"files[{i}].")),
                    block=str(need(f, "block", f"files[{i}].")),
                    events=int(need(f, "events", f"files[{i}].")),
                    luminosity_pb=float(need(f, "luminosity_pb", f"files[{i}].")),
                    skipped=bool(f.get("skipped", False)),
                    sha256=None if f.get("sha256") is None else str(f["sha256"]),
                )
                for i, f in enumerate(need(data, "files", ""))
            )
            lumi = {str(k): float(v) for k, v in need(data, "luminosity_pb", "").items()}
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"{source}: malformed manifest: {exc}") from exc
        unknown = sorted({f.block for f in files} - set(blocks))
        if unknown:
            raise ManifestError(f"{source}: files name run blocks {unknown} missing from blocks")
        return cls(str(data.get("run_slice", "")), lumi, blocks, files, source)

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Read ``ntuples/manifest.json``."""
        path = Path(path)
        if not path.exists():
            raise ManifestError(f"{path} not found: run `alps generate` first")
        return cls.from_dict(json.loads(path.read_text()), source=str(path))
