"""The coffea processor of the search: pre-selection, kinematic fit, candidates, features,
histograms with every systematic variation, and per-candidate skims (physics.md "Pre-selection",
"Kinematic fit"; design.md "Histograms are the contract").

Per chunk, ``process()`` chains pure steps:

1. :func:`~processors.candidates.photon_candidates`: the five leading photon candidates (clusters
   with E > 90 MeV, inside the CDC acceptance, |t| < 200 ns), MC corrected to data;
2. for the nominal energies and each energy variation of the contract's table, together (one
   compiled pass of cuts, one fit call), :func:`~processors.reconstruction.reconstruct` selects
   the leading three above 100 MeV, applies the named cuts (``trigger`` (``trg_esum``),
   ``three_photons``, ``m3g`` (0.8 < M_3gamma / E_cms < 1.05), ``timing`` (the three cluster
   times agree within ``timing_nsigma`` of their resolution), ``no_good_track`` (no track with
   |d_r| < 1 cm, |d_z| < 3 cm inside the CDC acceptance), ``fit_converged``), fits the three
   photons to the event's beam four-momentum and returns a frozen
   :class:`~processors.reconstruction.Reconstruction` per set;
3. :mod:`processors.variations` makes the varied energies and weights, one function per
   systematic;
4. :mod:`processors.filling` fills the histograms (the weight variations re-fill the nominal
   reconstruction; a chunk's fills are gathered and summed at once,
   :class:`~processors.filling.ChunkFills`, into the chunk's bin sums,
   :class:`~processors.filling.HistogramSums`, which coffea merges and :meth:`postprocess`
   makes into the ``hist.Hist`` objects) and the skim rows. Data fill only the nominal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from coffea import processor

from alps.config import AnalysisConfig
from alps.contract import CUTFLOW, NOMINAL, ScorerLike, make_histograms

from .candidates import Candidates, alp_flags, photon_candidates, true_energy
from .columns import ChunkColumns, chunk_tree, read_chunk
from .corrections import Corrections
from .filling import (
    ChunkFills,
    ChunkInfo,
    HistogramSums,
    fill_cutflow,
    fill_generated,
    fill_main,
    fill_monitoring,
    layouts,
    per_candidate,
    skim_rows,
    write_skims,
)
from .integrity import RANGE_CHECKS, count_out_of_range
from .kernels import count_good_tracks, segment_sum
from .memory import collect_if_grown
from .opening import unmap_all
from .reading import ChunkReadError, is_read_error, skipped_chunk
from .reconstruction import CUTS, EventInputs, FitSettings, Reconstruction, reconstruct
from .score_lists import (
    chunk_entry,
    energy_rows,
    list_features,
    weight_rows,
    write_variation_list,
)
from .variations import (
    ENERGY_SHIFTS,
    EVENT_WEIGHTS,
    VariationInputs,
    filled_variations,
    nominal_weight,
)

__all__ = [
    "CUTS",
    "HISTOGRAM_SUMS",
    "ALPProcessor",
    "ChunkReadError",
    "ProcessorSettings",
    "score_candidates",
]

#: the key of a chunk's :class:`~processors.filling.HistogramSums` in its output (``postprocess``
#: turns the merged sums into the ``hist.Hist`` objects, one key per histogram)
HISTOGRAM_SUMS = "histogram_sums"
#: (mass edges, score edges) -> the empty histograms (never filled: templates) and their
#: direct-fill layouts, made once per process (:meth:`ALPProcessor._fills`)
_TEMPLATES: dict[tuple[Any, Any], tuple[dict[str, Any], dict[str, Any]]] = {}

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProcessorSettings:
    """Everything a worker needs, as values (Dask pickles it to the workers): the configuration,
    the mass binning, the calibration, the photon time resolution sigma_t(E) = hypot(constant /
    E, floor) in ns, the selection scorer (None: no score axis) and where skims go."""

    config: AnalysisConfig
    mass_edges: tuple[float, ...]
    time_resolution_ns: tuple[float, float]
    corrections: Corrections | None = None
    scorer: ScorerLike | None = None
    skim_dir: str | None = None

    def fit_settings(self) -> FitSettings:
        return FitSettings(
            self.config.preselection, self.config.kinfit, *self.time_resolution_ns,
            corrections=self.corrections,
        )  # fmt: skip


def score_candidates(scorer: ScorerLike, reco: Reconstruction) -> FloatArray:
    """Selection scores per candidate, with the features laid out as in the skims (event-level
    features repeated for the three pairings)."""
    columns = reco.table()
    matrix = np.stack([per_candidate(columns[name]) for name in scorer.features], axis=1)
    return np.asarray(scorer(matrix), dtype=np.float64).reshape(reco.mgg.shape)


def _no_good_track(
    columns: ChunkColumns, config: AnalysisConfig, rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """For the events ``rows``: no track with small impact parameters inside the CDC
    acceptance."""
    pre = config.preselection
    trk = columns.collections["track"]
    px, py, pz, dr, dz = (trk.raw[k] for k in ("px", "py", "pz", "dr", "dz"))
    good = count_good_tracks(
        trk.offsets, px, py, pz, dr, dz, pre.track_dr_max_cm, pre.track_dz_max_cm,
        np.radians(pre.track_theta_min_deg), np.radians(pre.track_theta_max_deg), rows,
    )  # fmt: skip
    return good == 0


def _checked_values(columns: ChunkColumns) -> dict[str, np.ndarray]:
    """The flat values (as the file holds them) of the branches :data:`RANGE_CHECKS` tests."""
    values = {}
    for branch, _ in RANGE_CHECKS.values():
        prefix, _, name = branch.partition("_")
        if prefix in columns.collections:
            values[branch] = columns.collections[prefix].raw[name]
        else:
            values[branch] = columns.event[branch]
    return values


class ALPProcessor(processor.ProcessorABC):
    """Per-chunk processing of ALP ntuples into histograms and skims."""

    def __init__(self, settings: ProcessorSettings):
        self.settings = settings

    def _edges(self) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
        settings = self.settings
        score = settings.config.histograms.score_edges if settings.scorer is not None else None
        return settings.mass_edges, None if score is None else tuple(score)

    def _fills(self) -> ChunkFills:
        """A chunk's fills (the empty histograms and their layouts are made once per process
        and binning: coffea unpickles the processor for every chunk)."""
        edges = self._edges()
        known = _TEMPLATES.get(edges)
        if known is None:
            empty = make_histograms(*edges)
            known = _TEMPLATES[edges] = (empty, layouts(empty))
        return ChunkFills(known[1], known[0])

    def process(self, events: Any) -> dict[str, Any]:
        """Histograms and skims of one chunk. Only reading and computing are guarded: a read
        error is skipped (``skip_bad_files``) or named; the skims are written outside the guard,
        so an output error fails the stage with the output's name."""
        collect_if_grown()  # the earlier chunks' reference cycles (processors.memory)
        try:
            columns = self._read(events)
            sums, skims, varied = self._process(columns, ChunkInfo.from_metadata(events.metadata))
        except Exception as exc:
            if not is_read_error(exc):
                raise
            skipped = skipped_chunk(exc, events.metadata, self.settings.config)
            return {
                HISTOGRAM_SUMS: HistogramSums([CUTFLOW]), "skipped": [skipped], "skims": [],
                "chunks": [chunk_entry(events.metadata)],
            }  # fmt: skip
        out: dict[str, Any] = {HISTOGRAM_SUMS: sums}
        out["skipped"] = []
        counts = count_out_of_range(_checked_values(columns))
        out["out_of_range"] = {str(events.metadata["filename"]): counts} if counts else {}
        skim_dir = self.settings.skim_dir
        out["skims"] = write_skims(skims, events.metadata, skim_dir) if skim_dir else []
        if skim_dir:  # the score pass reads these instead of the ntuples (processors.score_lists)
            out["skims"] += write_variation_list(varied, events.metadata, skim_dir)
        out["chunks"] = [chunk_entry(events.metadata)]
        return out

    def _read(self, events: Any) -> ChunkColumns:
        """The chunk's branches, read in one pass (:mod:`processors.columns`)."""
        meta = events.metadata
        try:
            with chunk_tree(events) as tree:
                return read_chunk(
                    tree, int(meta["entrystart"]), int(meta["entrystop"]), bool(meta["is_data"])
                )
        finally:
            unmap_all()  # the file's pages out of this worker's resident memory

    def _process(
        self, events: ChunkColumns, chunk: ChunkInfo
    ) -> tuple[HistogramSums, list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
        settings = self.settings
        scorer = settings.scorer
        inputs, vary, trigger = self._inputs(events, chunk)
        fills = self._fills()  # summed at once at the end of the chunk
        fill_generated(fills, chunk, vary.weight)
        nominal = nominal_weight(vary)
        rows = filled_variations(chunk.is_data, settings.config.systematics)
        skims: list[dict[str, np.ndarray]] = []
        fit_settings = settings.fit_settings()
        varied: list[dict[str, np.ndarray]] = []  # the score pass's variation lists
        listed = list_features(settings.config.training) if settings.skim_dir else None
        sets = [r for r in rows if r.acts_on != "weight"]
        assert sets[0].name == NOMINAL  # reconstruct keeps the first set's cuts: the cutflow
        energies = [
            ENERGY_SHIFTS[r.systematic](vary, r.direction)
            if r.acts_on == "energy"
            else inputs.candidates.energy
            for r in sets
        ]
        # a varied energy fills only M_gg (and the score and the score pass's variation lists,
        # which need the features)
        full = [r.name == NOMINAL or scorer is not None or listed is not None for r in sets]
        recos = reconstruct(events, inputs, energies, fit_settings, features=full)
        for row, reco in zip(sets, recos, strict=True):
            if row.name == NOMINAL:
                fill_cutflow(fills, chunk, reco.cuts, vary.weight, nominal, inputs.pool, trigger)
            if not reco.any:
                continue
            truth = reco.matched if not chunk.is_data else np.zeros_like(reco.mgg, dtype=bool)
            scores = score_candidates(scorer, reco) if scorer is not None else None
            fill_main(fills, chunk, row.name, reco, truth, nominal[reco.selected], scores)
            if row.name != NOMINAL:
                if listed is not None:
                    w = nominal[reco.selected]
                    varied.append(energy_rows(row.name, reco.mgg, truth, w, reco.table(), listed))
                continue
            for weighted in (r for r in rows if r.acts_on == "weight"):
                w = EVENT_WEIGHTS[weighted.systematic](vary, weighted.direction)[reco.selected]
                fill_main(fills, chunk, weighted.name, reco, truth, w, scores)
                if listed is not None:
                    varied.append(weight_rows(weighted.name, w))
            fill_monitoring(fills, chunk, reco, nominal[reco.selected], truth)
            if settings.skim_dir is not None:  # the skims' rows only where they are written
                skims.append(skim_rows(events, chunk, reco, nominal[reco.selected], truth, scores))
        return fills.flush(), skims, varied

    def _inputs(
        self, events: ChunkColumns, chunk: ChunkInfo
    ) -> tuple[EventInputs, VariationInputs, npt.NDArray[np.bool_]]:
        """The pool's candidates and beams, what the variations act on, and the trigger bit."""
        cfg = self.settings.config
        corrections = None if chunk.is_data else self.settings.corrections
        trigger = events.get("trg_esum", bool)
        # only triggered events with three loose candidates can pass in any variation: the
        # variations work on that pool, the cutflow counts the rest as failing
        pool, fields, beam, e_cms = photon_candidates(
            events, cfg.preselection, corrections, chunk.period, cfg.seed, trigger
        )
        cands = Candidates.from_fields(fields)
        inputs = EventInputs(
            pool, cands, beam, e_cms, _no_good_track(events, cfg, pool),
            len(events), chunk.period, chunk.is_data, alp_flags(events, chunk.is_data),
        )  # fmt: skip
        weight = events.get("weight")
        if chunk.weight_scale != 1.0:  # MC re-normalised to the files processed (bookkeeping)
            weight = weight * chunk.weight_scale
        # the cluster energy sum only enters the trigger scale factor of the calibration
        clusters = events.collections["cluster"]
        esum = segment_sum(clusters.offsets, clusters.raw["E"]) if corrections is not None else None
        vary = VariationInputs(
            weight, esum, cands.energy, true_energy(events, pool, fields, chunk.is_data),
            chunk.period, corrections, cfg.systematics,
        )  # fmt: skip
        return inputs, vary, trigger

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        """The merged output with the histograms as ``hist.Hist`` objects, one key per
        histogram (in ``make_histograms``'s order), instead of the merged sums."""
        sums = accumulator.pop(HISTOGRAM_SUMS, None)
        if sums is None:
            return accumulator
        return {**sums.histograms(make_histograms(*self._edges())), **accumulator}
