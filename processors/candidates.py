"""Step 1 of the processor: the photon candidates of a chunk, as rectangular numpy arrays.

Clusters with E above 90 % of the pre-selection threshold (so that a varied energy can move a
cluster across it), polar angle inside the CDC acceptance and |t| inside the time window; the
five most energetic per event are kept (the variations re-select the leading three). MC energies
and angles are corrected to data (scale and smearing) when the calibration is given; the smearing
is a pure function of (seed, experiment, run, event, cluster position), so nothing depends on
chunking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import numpy.typing as npt

from alps.config import PreselectionConfig

from .columns import ChunkColumns
from .corrections import Corrections
from .kernels import gather_jagged, pool_candidates

__all__ = [
    "Candidates",
    "Jagged",
    "alp_flags",
    "as_numpy",
    "from_alp",
    "padded",
    "photon_candidates",
    "true_energy",
]

FloatArray = npt.NDArray[np.float64]

#: candidates kept per event before the variations re-select the leading three
TOP = 5
_FIELDS = ("E", "theta", "phi", "time", "errE", "errTheta", "errPhi")


def as_numpy(array: Any, dtype: type = np.float64) -> np.ndarray:
    """An awkward (or numpy) array as a numpy array of ``dtype``."""
    return np.asarray(ak.to_numpy(array), dtype=dtype)


def padded(array: Any, width: int, fill: float, dtype: type = np.float64) -> np.ndarray:
    """A jagged array as ``(n, width)``, clipped and padded with ``fill``."""
    return as_numpy(ak.fill_none(ak.pad_none(array, width, clip=True), fill), dtype)


@dataclass(frozen=True)
class Candidates:
    """Per-event ``(m, TOP)`` candidate arrays of the events in ``pool``: ``fields`` by name
    (``E`` is NaN in empty slots; ``region`` and ``mcIndex`` int64, the others float64)."""

    fields: dict[str, np.ndarray]
    names: tuple[str, ...]

    @classmethod
    def from_fields(cls, fields: dict[str, np.ndarray]) -> Candidates:
        return cls(fields, tuple(k for k in fields if k != "position"))

    @property
    def energy(self) -> FloatArray:
        return self.fields["E"]

    def take(self, rows: npt.NDArray[np.int64]) -> Candidates:
        """The candidates of a subset of events."""
        return Candidates.from_fields({k: v[rows] for k, v in self.fields.items()})


def photon_candidates(
    columns: ChunkColumns,
    pre: PreselectionConfig,
    corrections: Corrections | None,
    period: str,
    seed: int,
    trigger: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], dict[str, np.ndarray], FloatArray, FloatArray]:
    """The pool (the triggered events with three loose candidates, the only ones that can pass
    in any variation), its events' (up to) five leading photon candidates as ``(m, TOP)``
    arrays, MC corrected when ``corrections`` is given (pass None for data), and their beam
    four-momenta ``(m, 4)`` (E, px, py, pz) and E_cms ``(m,)``. Nothing is gathered or
    corrected for events outside the pool; one compiled pass
    (:func:`~processors.kernels.pool_candidates`)."""
    cl = columns.collections["cluster"]
    # the values as the file holds them (float32, int32): only the pool's candidates are
    # converted (exactly) to float64 and int64, not every cluster of the chunk
    flat = {name: cl.raw[name] for name in (*_FIELDS, "region", "mcIndex")}
    event = columns.event
    beams = (event["beam_E"], event["beam_px"], event["beam_py"], event["beam_pz"])
    pool, floats, ints, beam, e_cms = pool_candidates(
        cl.offsets, flat["E"], flat["theta"], flat["phi"], flat["time"], flat["errE"],
        flat["errTheta"], flat["errPhi"], flat["region"], flat["mcIndex"],
        np.asarray(trigger, dtype=np.bool_), beams, 0.9 * pre.photon_e_min_GeV,
        np.radians(pre.theta_min_deg), np.radians(pre.theta_max_deg), pre.time_window_ns, TOP,
    )  # fmt: skip
    out: dict[str, np.ndarray] = dict(zip(_FIELDS, floats, strict=True))
    out["region"], out["mcIndex"], out["position"] = ints
    if corrections is not None:
        valid = out["position"] >= 0
        keys = (
            columns.get("exp", np.int64)[pool, None],
            columns.get("run", np.int64)[pool, None],
            columns.get("event", np.int64)[pool, None],
            out["position"],
        )
        energy, theta, phi = corrections.correct_mc(
            period, out["region"], np.where(valid, out["E"], 1.0), out["theta"], out["phi"], keys,
            seed,
        )  # fmt: skip
        out["E"] = np.where(valid, energy, np.nan)
        out["theta"] = np.where(valid, theta, out["theta"])
        out["phi"] = np.where(valid, phi, out["phi"])
    finite = np.isfinite(out["E"][:, 2])  # a corrected energy is finite: kept for safety
    if finite.all():
        return pool, out, beam, e_cms
    return (pool[finite], {k: v[finite] for k, v in out.items()}, beam[finite], e_cms[finite])


@dataclass(frozen=True)
class Jagged:
    """A jagged per-event array as ``offsets`` (n + 1) and flat ``values``."""

    offsets: npt.NDArray[np.int64]
    values: np.ndarray

    @classmethod
    def of(cls, array: Any, dtype: type = np.float64) -> Jagged:
        counts = as_numpy(ak.num(array), np.int64)
        offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)])
        return cls(offsets, as_numpy(ak.flatten(array), dtype))

    def at(self, rows: npt.NDArray[np.int64], index: npt.NDArray[np.int64], fill: float) -> Any:
        """Values at ``(rows[i], index[i, j])``; ``fill`` outside an event's list."""
        return gather_jagged(self.offsets, self.values, rows, index, fill)


def true_energy(
    columns: ChunkColumns,
    pool: npt.NDArray[np.int64],
    fields: dict[str, np.ndarray],
    is_data: bool,
) -> FloatArray:
    """Energy of the true photon behind each candidate of the ``pool``'s events (the measured
    one where there is none)."""
    truth = columns.collections.get("mc_photon")
    if is_data or truth is None:
        return fields["E"]
    # gathered as the file holds them (float32), converted exactly by the where
    true = Jagged(truth.offsets, truth.raw["E"]).at(pool, fields["mcIndex"], np.nan)
    return np.where(np.isfinite(true), true, fields["E"])


def alp_flags(columns: ChunkColumns, is_data: bool) -> Jagged | None:
    """The chunk's ``mc_photon_fromALP`` flags; None for data or without MC truth. Read once
    per chunk, by :func:`from_alp` for every variation."""
    truth = columns.collections.get("mc_photon")
    if is_data or truth is None:
        return None
    return Jagged(truth.offsets, truth.values("fromALP", np.int64))


def from_alp(
    flags: Jagged | None,
    rows: npt.NDArray[np.int64],
    mc_index: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Whether each ``(rows, 3)`` candidate photon comes from the ALP decay (MC truth), from the
    chunk's :func:`alp_flags` (None: never)."""
    if flags is None:
        return np.zeros(mc_index.shape, dtype=bool)
    return np.asarray(flags.at(rows, mc_index, 0) > 0)
