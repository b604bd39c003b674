"""The run registry: per run block, the conditions that run-dependent simulation uses.

A registry is a CSV table (one row per block of runs with stable conditions) shipped with the
package (``simulation/data/run_registry.csv``, built by :mod:`simulation.registry_table`). Each row
gives the experiment, run range, run period, integrated luminosity, beam energies and spreads, the
beam-background level, the calorimeter resolution scale, the track-finding inefficiency and the
trigger turn-ons the MC uses, plus the "true" detector of the pseudo-data (``data_*`` columns),
which the analysis must never read: calibration has to find it.

A slice of the registry is chosen with one string (:meth:`RunRegistry.select`):

``"2018"``, ``"run1"``, ``"all"``
    named samples (experiment 3; experiments 7-26; everything);
``"exp=12"``, ``"exp=7..12"``, ``"period=2020a"``, ``"runs=100..900"``
    filters, which combine with commas (``"exp=12,runs=100..900"``);
``"lumi=10"``
    the first 10 fb^-1 (in registry order) of what the other terms selected; the last block is
    cut to a shorter run range with proportionally less luminosity. Asking for more than the
    other terms select is an error (``"2018,lumi=0.6"``: the 2018 slice holds 0.445 fb^-1).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["RunBlock", "RunRegistry", "default_registry_path", "load_registry"]

_NAMED = {"2018": "exp=3", "run1": "exp=7..999", "all": ""}


@dataclass(frozen=True)
class RunBlock:
    """One block of runs with common conditions; energies in GeV, luminosity in pb^-1."""

    exp: int
    run_lo: int
    run_hi: int
    period: str
    lumi_pb: float
    e_her: float
    e_ler: float
    sigma_her: float
    sigma_ler: float
    bkg_clusters: float
    ecl_res_scale: float
    trk_ineff: float
    trg_esum_threshold: float
    trg_esum_width: float
    trg_ncl_threshold: float
    trg_ncl_width: float
    data_energy_scale: float
    data_res_scale: float
    data_trg_esum_shift: float

    @property
    def name(self) -> str:
        """A stable label, ``e0003_r00000-00999``."""
        return f"e{self.exp:04d}_r{self.run_lo:05d}-{self.run_hi:05d}"

    @property
    def n_runs(self) -> int:
        return self.run_hi - self.run_lo + 1

    def as_dict(self) -> dict[str, float | int | str]:
        return dataclasses.asdict(self)


_FIELDS = [f.name for f in dataclasses.fields(RunBlock)]
_INT_FIELDS = {"exp", "run_lo", "run_hi"}


def _parse_row(row: dict[str, str], where: str) -> RunBlock:
    missing = [f for f in _FIELDS if f not in row]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}")
    values: dict[str, float | int | str] = {}
    for field in _FIELDS:
        text = row[field].strip()
        try:
            if field in _INT_FIELDS:
                values[field] = int(text)
            elif field == "period":
                values[field] = text
            else:
                values[field] = float(text)
        except ValueError:
            raise ValueError(f"{where}: column {field!r} has bad value {text!r}") from None
    block = RunBlock(**values)  # type: ignore[arg-type]
    if block.run_hi < block.run_lo or block.lumi_pb <= 0 or block.e_her <= 0 or block.e_ler <= 0:
        raise ValueError(f"{where}: inconsistent run range, luminosity or beam energy")
    return block


def _parse_range(text: str, name: str) -> tuple[float, float]:
    lo, sep, hi = text.partition("..")
    try:
        low = float(lo)
        high = float(hi) if sep else low
    except ValueError:
        raise ValueError(f"slice term {name}={text!r}: expected a number or lo..hi") from None
    return low, high


class RunRegistry(Sequence[RunBlock]):
    """An ordered, immutable collection of :class:`RunBlock`."""

    def __init__(self, blocks: Sequence[RunBlock]):
        self._blocks = tuple(blocks)

    def __len__(self) -> int:
        return len(self._blocks)

    def __getitem__(self, index):
        return self._blocks[index]

    def __iter__(self) -> Iterator[RunBlock]:
        return iter(self._blocks)

    @property
    def lumi_pb(self) -> float:
        """Total integrated luminosity in pb^-1."""
        return sum(b.lumi_pb for b in self._blocks)

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.period for b in self._blocks))

    def select(self, spec: str) -> RunRegistry:
        """The blocks a slice string selects (grammar in the module docstring)."""
        if not spec.replace(",", " ").strip():
            raise ValueError(f"run slice {spec!r} selects nothing; name one, e.g. '2018' or 'all'")
        spec = _NAMED.get(spec.strip(), spec.strip())
        blocks = list(self._blocks)
        lumi_limit: float | None = None
        for term in filter(None, (t.strip() for t in spec.split(","))):
            if term in _NAMED:
                sub = self.select(term)
                blocks = [b for b in blocks if b in sub._blocks]
                continue
            key, sep, value = term.partition("=")
            if not sep:
                raise ValueError(f"run slice term {term!r}: expected key=value or a named slice")
            key = key.strip()
            if key == "exp":
                lo, hi = _parse_range(value, key)
                blocks = [b for b in blocks if lo <= b.exp <= hi]
            elif key == "runs":
                lo, hi = _parse_range(value, key)
                blocks = [
                    _clip_runs(b, int(lo), int(hi))
                    for b in blocks
                    if b.run_hi >= lo and b.run_lo <= hi
                ]
            elif key == "period":
                blocks = [b for b in blocks if b.period == value.strip()]
            elif key == "lumi":
                lumi_limit, _ = _parse_range(value, key)
                if lumi_limit <= 0:
                    raise ValueError("run slice lumi=... must be positive (fb^-1)")
            else:
                raise ValueError(
                    f"run slice term {term!r}: unknown key {key!r} (exp, runs, period, lumi)"
                )
        if lumi_limit is not None:
            held = sum(b.lumi_pb for b in blocks)
            if blocks and lumi_limit * 1000.0 > held * (1 + 1e-9):
                # a sample smaller than asked for would be mislabelled, not just smaller
                raise ValueError(
                    f"run slice {spec!r} asks for {lumi_limit:g} fb^-1, but the runs it selects "
                    f"hold {held / 1000.0:.4g} fb^-1; ask for less, or widen the slice (e.g. "
                    f"'lumi={lumi_limit:g}' alone takes the runs in registry order)"
                )
            blocks = _first_lumi(blocks, lumi_limit * 1000.0)
        if not blocks:
            raise ValueError(f"run slice {spec!r} selects no runs")
        return RunRegistry(blocks)

    def write_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_FIELDS, lineterminator="\n")
            writer.writeheader()
            for block in self._blocks:
                row = block.as_dict()
                writer.writerow({k: _fmt(v) for k, v in row.items()})


def _fmt(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _clip_runs(block: RunBlock, lo: int, hi: int) -> RunBlock:
    new_lo, new_hi = max(block.run_lo, lo), min(block.run_hi, hi)
    if (new_lo, new_hi) == (block.run_lo, block.run_hi):
        return block
    fraction = (new_hi - new_lo + 1) / block.n_runs
    return dataclasses.replace(
        block, run_lo=new_lo, run_hi=new_hi, lumi_pb=block.lumi_pb * fraction
    )


def _first_lumi(blocks: list[RunBlock], limit_pb: float) -> list[RunBlock]:
    chosen: list[RunBlock] = []
    total = 0.0
    for block in blocks:
        if total + block.lumi_pb <= limit_pb * (1 + 1e-9):
            chosen.append(block)
            total += block.lumi_pb
            continue
        remaining = limit_pb - total
        n_runs = max(1, round(block.n_runs * remaining / block.lumi_pb))
        chosen.append(
            dataclasses.replace(
                block,
                run_hi=block.run_lo + n_runs - 1,
                lumi_pb=remaining,
            )
        )
        break
    return chosen


def default_registry_path() -> Path:
    return Path(str(resources.files("simulation") / "data" / "run_registry.csv"))


def load_registry(path: str | Path | None = None) -> RunRegistry:
    """Read a registry CSV (the shipped default when ``path`` is None)."""
    source = Path(path) if path is not None else default_registry_path()
    try:
        with open(source, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise ValueError(f"cannot read run registry {source}: {exc}") from exc
    if not rows:
        raise ValueError(f"run registry {source} has no rows")
    return RunRegistry([_parse_row(row, f"{source}:{i + 2}") for i, row in enumerate(rows)])
