"""The compact candidate lists the processing pass writes for the score pass (issue 12).

The score pass fills ``M_gg x score`` for every variation. Instead of reading every raw ntuple a
second time and re-running the selection and the kinematic fits, it reads what the first pass
wrote for the candidates that passed the selection in any variation:

* the nominal candidates: the skims (``skims/<sample>/<chunk>.parquet``; fitted M_gg, truth,
  nominal weight and every feature);
* everything else: one *variation list* per chunk, ``skims/variations/<sample>/<chunk>.parquet``,
  with one row per candidate and variation, in the order the processor fills them: the
  weight-only variations of the nominal (column ``weight``; M_gg, truth and features are the
  nominal's) and the energy variations (``mgg`` as float64, ``truth_matched``, ``weight`` and the
  scorer's possible features as float32, which is what the scorer casts them to anyway);
* ``skims/variations/chunks.json``: every chunk of the pass (sample, period, input file, first
  entry, list name), in the order the Runner handed them to the executor, and the features the
  lists hold.

Only the features a model can use are kept: ``training.features`` and ``mgg`` (the hypothesis of
a parametrised net), or every float skim feature when ``training.select_top_features`` lets the
ranking choose. A model whose features the lists lack is scored the old way (a full pass).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from alps.config import TrainingConfig
from alps.contract import SKIM_CANDIDATE_FEATURES, SKIM_EVENT_FEATURES

from .filling import write_table

__all__ = [
    "CHUNKS_FILE",
    "VARIATION_DIR",
    "chunk_entry",
    "chunk_file_name",
    "energy_rows",
    "in_work_order",
    "list_features",
    "read_chunks",
    "weight_rows",
    "write_chunks",
    "write_variation_list",
]

#: the variation lists' folder under ``skims/`` (no sample is called so: samples are ``alp_*``,
#: process names and ``data``)
VARIATION_DIR = "variations"
#: the ordered chunk list of a processing pass, under ``skims/variations/``
CHUNKS_FILE = "chunks.json"


def list_features(training: TrainingConfig) -> tuple[str, ...]:
    """The feature columns the variation lists hold (besides ``mgg``, always stored)."""
    if training.select_top_features:
        names: Sequence[str] = SKIM_EVENT_FEATURES + SKIM_CANDIDATE_FEATURES
    else:
        names = training.features
    return tuple(n for n in dict.fromkeys(names) if n != "mgg")


def chunk_file_name(meta: Any) -> str:
    """``<file stem>_<entrystart>_<entrystop>.parquet``: the name of a chunk's skim and list."""
    stem = Path(str(meta["filename"])).stem
    return f"{stem}_{int(meta['entrystart']):09d}_{int(meta['entrystop']):09d}.parquet"


def chunk_entry(meta: Any) -> dict[str, Any]:
    """A chunk as ``chunks.json`` lists it."""
    return {
        "sample": str(meta["sample"]),
        "period": str(meta["period"]),
        "name": chunk_file_name(meta),
        "file": str(meta["filename"]),
        "entrystart": int(meta["entrystart"]),
    }


def in_work_order(
    chunks: list[dict[str, Any]], fileset: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The chunks in the order the coffea Runner hands them to its executor: dataset by dataset
    of the fileset, file by file, by first entry (the executor's outputs are merged in another
    order; the score pass merges its chunks exactly as the processing pass did only when it
    hands them over in this order)."""
    position = {
        path: (d, f)
        for d, dataset in enumerate(fileset.values())
        for f, path in enumerate(dataset["files"])
    }
    return sorted(chunks, key=lambda c: (*position[c["file"]], c["entrystart"]))


def energy_rows(
    variation: str,
    mgg: npt.NDArray[np.float64],
    truth: npt.NDArray[np.bool_],
    weight: npt.NDArray[np.float64],
    table: dict[str, npt.NDArray[np.float64]],
    features: Sequence[str],
) -> dict[str, np.ndarray]:
    """Rows of an energy variation: per candidate its fitted M_gg ``(m, 3)``, truth ``(m, 3)``,
    the event ``weight`` ``(m,)`` repeated for the three pairings, and the features (event-level
    ones repeated) as float32."""
    n = mgg.size
    out: dict[str, np.ndarray] = {
        "variation": np.full(n, variation),
        "mgg": mgg.ravel(),
        "truth_matched": truth.ravel(),
        "weight": np.repeat(weight, 3),
    }
    for name in features:
        values = table[name]
        flat = values.ravel() if values.ndim == 2 else np.repeat(values, 3)
        out[name] = flat.astype(np.float32)
    return out


def weight_rows(variation: str, weight: npt.NDArray[np.float64]) -> dict[str, np.ndarray]:
    """Rows of a weight-only variation of the nominal: the varied event weight per candidate."""
    return {"variation": np.full(3 * len(weight), variation), "weight": np.repeat(weight, 3)}


def write_variation_list(rows: list[dict[str, np.ndarray]], meta: Any, skim_dir: str) -> list[str]:
    """Write a chunk's variation rows to ``<skim_dir>/variations/<sample>/<chunk>.parquet``
    (atomically; nothing when no variation selected an event). Columns missing from a group of
    rows (features of weight-only rows) are null."""
    rows = [r for r in rows if len(r["weight"])]
    if not rows:
        return []
    import pyarrow as pa

    table = pa.concat_tables(
        [pa.table(r) for r in rows], promote_options="default"
    ).combine_chunks()
    target = Path(skim_dir) / VARIATION_DIR / str(meta["sample"]) / chunk_file_name(meta)
    return write_table(table, target, "the variation list")


def write_chunks(skim_dir: Path, chunks: list[dict[str, Any]], features: Sequence[str]) -> Path:
    """``skims/variations/chunks.json``: the pass's chunks in work order, the listed features."""
    path = skim_dir / VARIATION_DIR / CHUNKS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"features": list(features), "chunks": chunks}, indent=0))
    return path


def read_chunks(skim_dir: Path) -> tuple[list[dict[str, Any]], tuple[str, ...]] | None:
    """The chunk list and the listed features, or None when the pass wrote none."""
    try:
        data = json.loads((skim_dir / VARIATION_DIR / CHUNKS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return list(data["chunks"]), tuple(data["features"])
