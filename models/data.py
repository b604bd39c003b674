"""Reading the processor's skims into a :class:`~models.sample.SelectionSample` (I/O edge).

Skims are ``<skim_dir>/<dataset>/*.parquet``, one row per candidate, plus ``summary.json`` with the
generated weight and events of every dataset and the data luminosity. The files are streamed in
record batches (``pyarrow.parquet.ParquetFile.iter_batches``, only the needed columns), so memory
holds one batch of a file plus what is kept:

* every truth-matched signal candidate (the signal samples are small: ≤ 205 masses × 5000
  events), unmatched signal candidates are dropped (see ``models/sample.py``);
* background candidates of a random subset of *events*, keep fraction
  p = min(1, ``max_background_candidates`` / background rows in the skims) from the parquet
  footers, with weights multiplied by 1/p (unbiased for every window sum). "data" is never read.

Which events are kept, and which go to the validation split (fraction
``TrainingConfig.validation_fraction``), is decided by a hash of (dataset, exp, run, event) and the
analysis seed, not by a random stream: the sample is the same whatever the file order, the batch
size or the number of Dask workers, and the three pairings of an event stay together. With a Dask
client the files are read as parallel tasks.

k-fold evaluation (``training.evaluation_folds``, issue #13) reads the skims once:
:func:`read_selection_skims` keeps every kept candidate with its split number u (the same event
hash), :meth:`SkimRead.fold_labels` gives each candidate's fold, and :meth:`SkimRead.sample`
builds any fold's training and validation splits in memory, identical to what
:func:`load_selection_sample` with that ``validation_fold`` gives from the files.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from alps.contract import signal_mass
from alps.tasks import map_tasks

from .sample import Candidates, MassPoints, SelectionSample, choose_held_out
from .windows import efficiency_weights, mass_windows

__all__ = [
    "SkimRead",
    "event_uniform",
    "feature_columns",
    "load_selection_sample",
    "read_selection_skims",
    "read_summary",
    "skim_files",
]

_BOOKKEEPING = ("exp", "run", "event", "truth_matched", "is_signal", "mc_ma", "weight", "mgg")
#: float columns that are never selection features (mass, truth, weights)
_NOT_FEATURES = frozenset({"mc_ma", "weight", "mgg", "mgg_raw"})
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return x ^ (x >> np.uint64(31))


def event_uniform(
    dataset: str, exp: np.ndarray, run: np.ndarray, event: np.ndarray, salt: int
) -> np.ndarray:
    """A uniform number in [0, 1) per event, fixed by (dataset, exp, run, event, salt).

    >>> u = event_uniform("ggg", np.array([7]), np.array([1]), np.array([42]), 1)
    >>> bool(0 <= u[0] < 1)
    True
    """
    with np.errstate(over="ignore"):
        key = np.asarray(event).astype(np.uint64)
        key = _splitmix64(key ^ (np.asarray(run).astype(np.uint64) << np.uint64(32)))
        key = _splitmix64(key ^ (np.asarray(exp).astype(np.uint64) << np.uint64(48)))
        key = _splitmix64(key ^ np.uint64(zlib.crc32(dataset.encode()) ^ (salt & 0xFFFFFFFF)))
        key = _splitmix64(key ^ np.uint64((salt >> 32) & 0xFFFFFFFF))
    return (key >> np.uint64(11)).astype(np.float64) * 2.0**-53


def read_summary(skim_dir: Path) -> dict[str, dict[str, Any]]:
    """``summary.json``: per dataset generated weight, generated events, ALP mass, luminosity."""
    path = Path(skim_dir) / "summary.json"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise FileNotFoundError(f"no skim summary {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of dataset -> facts")
    return data


def skim_files(skim_dir: Path) -> dict[str, list[Path]]:
    """Parquet files per dataset directory, sorted; "data" is left out."""
    out = {}
    for sub in sorted(Path(skim_dir).iterdir()):
        if sub.is_dir() and sub.name != "data":
            files = sorted(sub.glob("*.parquet"))
            if files:
                out[sub.name] = files
    if not out:
        raise FileNotFoundError(f"no parquet skims under {skim_dir}/<dataset>/")
    return out


def _is_float(t: pa.DataType) -> bool:
    return bool(pa.types.is_floating(t))


def feature_columns(files: Sequence[Path]) -> tuple[str, ...]:
    """Float columns present in every file, except mass, weight and truth columns."""
    common: list[str] | None = None
    for f in files:
        schema = pq.read_schema(f)
        names = [n for n in schema.names if _is_float(schema.field(n).type)]
        common = names if common is None else [n for n in common if n in names]
    return tuple(n for n in (common or []) if n not in _NOT_FEATURES)


def _read_file(
    path: Path,
    dataset: str,
    signal: bool,
    features: tuple[str, ...],
    keep_fraction: float,
    seed: int,
    batch_rows: int,
) -> dict[str, np.ndarray]:
    """Kept candidates of one file: features, mgg, weight, split number u (one Dask task)."""
    columns = list(dict.fromkeys(_BOOKKEEPING + features))
    parts: dict[str, list[np.ndarray]] = {"x": [], "mgg": [], "weight": [], "u": []}
    handle = pq.ParquetFile(path)
    for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
        cols = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in columns}
        if signal:
            keep = cols["truth_matched"].astype(bool) & cols["is_signal"].astype(bool)
        elif keep_fraction < 1.0:
            u = event_uniform(dataset, cols["exp"], cols["run"], cols["event"], seed)
            keep = u < keep_fraction
        else:
            keep = np.ones(len(cols["mgg"]), dtype=bool)
        rows = np.flatnonzero(keep)
        parts["u"].append(
            event_uniform(
                dataset, cols["exp"][rows], cols["run"][rows], cols["event"][rows], seed + 1
            )
        )
        parts["mgg"].append(cols["mgg"][rows].astype(np.float64))
        parts["weight"].append(cols["weight"][rows].astype(np.float64))
        parts["x"].append(
            np.stack([cols[n][rows].astype(np.float32) for n in features], axis=1)
            if features
            else np.zeros((len(rows), 0), np.float32)
        )
    if not parts["mgg"]:
        return {
            "x": np.zeros((0, len(features)), np.float32),
            "mgg": np.zeros(0),
            "weight": np.zeros(0),
            "u": np.zeros(0),
        }
    return {k: np.concatenate(v) for k, v in parts.items()}


def _signal_mass(name: str, facts: dict[str, Any]) -> float | None:
    mass = float(facts.get("mc_ma") or 0.0)
    if mass > 0:
        return round(mass, 4)
    named = signal_mass(name)
    return None if named is None else round(named, 4)


def _luminosity(summary: dict[str, dict[str, Any]]) -> float:
    values = [float(v["luminosity_pb"]) for v in summary.values() if "luminosity_pb" in v]
    if "data" in summary and "luminosity_pb" in summary["data"]:
        lumi = float(summary["data"]["luminosity_pb"])
    elif values:
        lumi = values[0]
    else:
        raise ValueError("summary.json gives no luminosity_pb")
    if any(abs(v - lumi) > 1e-6 * lumi for v in values):
        raise ValueError(f"summary.json: datasets disagree on luminosity_pb: {sorted(set(values))}")
    if lumi <= 0:
        raise ValueError("summary.json: luminosity_pb must be positive")
    return lumi


def _valid_range(
    validation_fraction: float, validation_fold: tuple[int, int] | None
) -> tuple[tuple[float, float], float]:
    """The split numbers u of the validation split, and its fraction of the events."""
    if validation_fold is None:
        return (0.0, validation_fraction), validation_fraction
    i, k = validation_fold
    if not (k >= 2 and 0 <= i < k):
        raise ValueError(f"validation_fold (i, k) needs k >= 2 and 0 <= i < k, got {i, k}")
    return (i / k, (i + 1) / k), 1.0 / k


@dataclass(frozen=True)
class SkimRead:
    """The skims read once: every kept candidate of every file with its split number u.

    ``tasks``: (file, dataset, is signal) per file, ``results``: that file's arrays (``x``
    features in ``names`` order, ``mgg``, ``weight`` as stored, ``u``); the rest is what the
    splits' weights need (:meth:`sample`).
    """

    tasks: tuple[tuple[Path, str, bool], ...]
    results: tuple[dict[str, np.ndarray], ...]
    names: tuple[str, ...]
    points: MassPoints
    index_of: dict[str, int]
    counts_only: np.ndarray
    gen_w: np.ndarray
    gen_n: np.ndarray
    keep: float
    luminosity_pb: float
    info: dict[str, Any]

    def with_features(self, names: Sequence[str]) -> SkimRead:
        """The same candidates with only the named feature columns (in that order)."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"features {missing} are not in the skims; available: {self.names}")
        cols = [self.names.index(n) for n in names]
        results = tuple({**r, "x": np.ascontiguousarray(r["x"][:, cols])} for r in self.results)
        return replace(self, results=results, names=tuple(names))

    def fold_labels(self, k: int) -> np.ndarray:
        """The cross-validation fold (0 … k − 1) of every candidate, files in ``tasks`` order:
        fold i holds the events with i/k ≤ u < (i + 1)/k (:meth:`sample`'s validation split)."""
        if k < 2:
            raise ValueError(f"fold_labels needs k >= 2, got {k}")
        u = np.concatenate([r["u"] for r in self.results]) if self.results else np.zeros(0)
        label = np.full(len(u), -1, dtype=np.int64)
        for i in range(k):
            label[(u >= i / k) & (u < (i + 1) / k)] = i
        return label

    def sample(
        self,
        validation_fraction: float = 0.3,
        validation_fold: tuple[int, int] | None = None,
    ) -> SelectionSample:
        """Training and validation candidates of one split, weights scaled by its fractions:
        the validation split is u < ``validation_fraction``, or with ``validation_fold`` = (i, k)
        the i-th of k equal folds (``validation_fraction`` then ignored)."""
        valid_range, fraction = _valid_range(validation_fraction, validation_fold)
        lo, hi = self.points.window_lo, self.points.window_hi
        pieces: dict[str, list[list[np.ndarray]]] = {"train": [], "valid": []}
        for (_, dataset, signal), res in zip(self.tasks, self.results):
            j = self.index_of.get(dataset, -1)
            valid = (res["u"] >= valid_range[0]) & (res["u"] < valid_range[1])
            for split, rows, frac in (
                ("train", ~valid, 1 - fraction),
                ("valid", valid, fraction),
            ):
                mgg, w = res["mgg"][rows], res["weight"][rows]
                idx = np.full(len(mgg), j, dtype=np.int32)
                if signal:
                    if self.counts_only[j]:
                        w, denom = np.ones_like(w), self.gen_n * frac
                    else:
                        denom = self.gen_w * frac
                    w = efficiency_weights(mgg, idx, w, denom, lo, hi)
                else:
                    w = w / (self.keep * frac)
                pieces[split].append([res["x"][rows], mgg, w, idx])

        def _stack(parts: list[list[np.ndarray]]) -> Candidates:
            return Candidates(
                np.concatenate([p[0] for p in parts]),
                self.names,
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
                np.concatenate([p[3] for p in parts]),
            )

        info = {**self.info, "validation_fraction": fraction}
        if validation_fold is not None:
            info["validation_fold"] = list(validation_fold)
        return SelectionSample(
            _stack(pieces["train"]), _stack(pieces["valid"]), self.points, self.luminosity_pb, info
        )


def read_selection_skims(
    skim_dir: Path,
    *,
    window_nsigma: float,
    resolution: Any,
    held_out_masses: int,
    max_background_candidates: int,
    seed: int,
    features: Sequence[str] | None = None,
    client: Any = None,
    progress: bool = False,
    batch_rows: int = 262_144,
) -> SkimRead:
    """Stream the skims once into memory (the module docstring); :meth:`SkimRead.sample` then
    cuts any split or cross-validation fold without reading again.

    ``resolution`` has ``sigma(m)`` (GeV; ``HistogramConfig.resolution``); ``features`` defaults to
    every float feature column found in all files (the ranking needs them all).
    """
    skim_dir = Path(skim_dir)
    summary = read_summary(skim_dir)
    files = skim_files(skim_dir)
    missing = sorted(set(files) - set(summary))
    if missing:
        raise KeyError(f"datasets {missing} have skims but no entry in {skim_dir}/summary.json")
    lumi = _luminosity(summary)
    mass_of = {d: _signal_mass(d, summary[d]) for d in files}
    signal_sets = [d for d in files if mass_of[d] is not None]
    background_sets = [d for d in files if mass_of[d] is None]
    if not signal_sets or not background_sets:
        raise ValueError(
            f"{skim_dir}: need signal (alp_m*) and background skims, found {list(files)}"
        )
    all_files = [f for d in files for f in files[d]]
    names = tuple(features) if features is not None else feature_columns(all_files)
    n_bkg_rows = sum(pq.ParquetFile(f).metadata.num_rows for d in background_sets for f in files[d])
    keep = min(1.0, max_background_candidates / n_bkg_rows) if n_bkg_rows else 1.0

    signal_mass = {d: m for d, m in mass_of.items() if m is not None}
    masses = np.array(sorted(set(signal_mass.values())), dtype=np.float64)
    index_of = {d: int(np.searchsorted(masses, m)) for d, m in signal_mass.items()}
    gen_w = np.zeros(len(masses))
    gen_n = np.zeros(len(masses))
    counts_only = np.zeros(len(masses), dtype=bool)
    for d in signal_sets:
        j = index_of[d]
        gw = float(summary[d].get("generated_weight", 0.0))
        gen_w[j] += gw
        gen_n[j] += float(summary[d]["generated_events"])
        counts_only[j] |= gw <= 0

    tasks = [(f, d, d in index_of) for d in files for f in files[d]]
    args = (names, keep, seed, batch_rows)
    results = map_tasks(
        _read_file, [(*task, *args) for task in tasks], client=client, progress=progress,
        desc="read skims",
    )  # fmt: skip

    lo, hi = mass_windows(masses, resolution.sigma(masses), window_nsigma)
    points = MassPoints(
        masses,
        lo,
        hi,
        choose_held_out(len(masses), held_out_masses),
        tuple(sorted(signal_sets, key=lambda d: index_of[d])),
    )
    info = {
        "skim_dir": str(skim_dir),
        "files": [str(f) for f in all_files],
        "background_rows": int(n_bkg_rows),
        "background_keep_fraction": keep,
        "validation_fraction": None,  # set by SkimRead.sample (keeps the provenance's key order)
        "signal_definition": "truth-matched candidates; unmatched signal candidates dropped",
        "split_and_sampling": "hash of (dataset, exp, run, event) with the analysis seed",
        "seed": seed,
    }
    return SkimRead(
        tuple(tasks),
        tuple(results),
        names,
        points,
        index_of,
        counts_only,
        gen_w,
        gen_n,
        keep,
        lumi,
        info,
    )


def load_selection_sample(
    skim_dir: Path,
    *,
    window_nsigma: float,
    resolution: Any,
    held_out_masses: int,
    max_background_candidates: int,
    validation_fraction: float,
    seed: int,
    features: Sequence[str] | None = None,
    client: Any = None,
    progress: bool = False,
    batch_rows: int = 262_144,
    validation_fold: tuple[int, int] | None = None,
) -> SelectionSample:
    """Stream the skims into training and validation candidates (see the module docstring):
    :func:`read_selection_skims`, then :meth:`SkimRead.sample` of one split.

    ``validation_fold`` = (i, k): k-fold cross-validation, the validation split is the i-th of k
    equal event folds (the events whose split number u lies in [i/k, (i+1)/k); the default split
    is u < ``validation_fraction``, which is then ignored), so the k folds' validation splits
    are disjoint and together hold every event once. To cut several folds, read once with
    :func:`read_selection_skims` instead.
    """
    _valid_range(validation_fraction, validation_fold)  # a bad fold fails before the read
    read = read_selection_skims(
        skim_dir,
        window_nsigma=window_nsigma,
        resolution=resolution,
        held_out_masses=held_out_masses,
        max_background_candidates=max_background_candidates,
        seed=seed,
        features=features,
        client=client,
        progress=progress,
        batch_rows=batch_rows,
    )
    return read.sample(validation_fraction, validation_fold)
