"""The score pass: ``M_gg x score`` for every variation from the compact lists of the first pass.

The processing pass (:func:`processors.run.run_processing`) wrote, per chunk, the skim of the
nominal candidates and a variation list (:mod:`processors.score_lists`), and the ordered chunk
list. This pass scores those candidates chunk by chunk (on the Dask workers) and fills the
``mgg_score`` histogram of each chunk in the order the processor fills it; the chunks' histograms
are then merged by the same executor, in the same order and with the same tree reduction as the
processing pass, so the result equals, bit for bit, what re-running the processor with the scorer
gives (``tests/test_score_pass.py``). The other histograms of ``mgg_score.hist.zip`` are those of
``mgg.hist.zip``: the scorer does not change them.

It reads the selected candidates only (a few per mille of the events, with the columns the
scorer and the fill need), not the raw ntuples, and fits nothing.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import AnalysisConfig
from alps.contract import MGG, MGG_SCORE, NOMINAL, ScorerLike, make_histograms
from alps.histio import provenance, read_histograms, read_provenance, write_histograms

from .binning import mass_edges
from .score_lists import VARIATION_DIR, read_chunks
from .windowed import TREE_REDUCTION, WindowedDaskExecutor

__all__ = ["ScoreListsUnavailable", "ScoringResult", "assemble", "run_scoring", "score_chunk"]


class ScoreListsUnavailable(RuntimeError):
    """The processing pass left no usable lists for this scorer (the message says why)."""


@dataclass(frozen=True)
class ScoringResult:
    histogram_file: Path
    #: chunks of the processing pass that were scored
    chunks: int
    skipped: tuple[dict[str, Any], ...] = ()


#: the key of the chunk outputs' category-order histogram
ORDER = "category_order"


def _order_histogram() -> Any:
    """Category axes only, grown like ``mgg_score``'s: merged by the same executor, its axes give
    the category order that merging the dense histograms would have given."""
    import hist

    return hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.StrCategory([], growth=True, name="period"),
        hist.axis.StrCategory([NOMINAL], growth=True, name="variation"),
        storage=hist.storage.Double(),
    )


@functools.cache
def _template(mass_edges: tuple[float, ...], score_edges: tuple[float, ...]) -> Any:
    """An empty ``mgg_score`` of the contract (copied for each chunk)."""
    return make_histograms(mass_edges, score_edges)[MGG_SCORE]


def _fill(
    hists: tuple[Any, Any],
    where: dict[str, str],
    variation: str,
    mgg: np.ndarray,
    truth: np.ndarray,
    weight: np.ndarray,
    scores: np.ndarray,
) -> None:
    """The same fill as ``processors.filling.fill_main`` (labels, clipped scores), one truth
    class at a time (the entries of a bin, all of one class, are added in the same order), and
    the category-order record."""
    score = np.clip(scores, 0.0, 1.0 - 1e-9)
    for label, rows in (("matched", truth), ("unmatched", ~truth)):
        if rows.any():
            hists[0].fill(
                **where, variation=variation, truth=label, mgg=mgg[rows], score=score[rows],
                weight=weight[rows],
            )  # fmt: skip
    hists[1].fill(**{k: [v] for k, v in where.items()}, variation=[variation], weight=[0.0])


def _scores(scorer: ScorerLike, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The scorer on the features in its order (float32, as the scorer casts them)."""
    matrix = np.stack([np.asarray(columns[n], np.float32) for n in scorer.features], axis=1)
    return np.asarray(scorer(matrix), dtype=np.float64).ravel()


def score_chunk(
    chunk: dict[str, Any],
    *,
    skim_dir: str,
    scorer: ScorerLike,
    mass_edges: tuple[float, ...],
    score_edges: tuple[float, ...],
) -> dict[str, Any]:
    """``mgg_score`` of one chunk (its nominal skim, then its variation list's rows grouped by
    variation in file order: the processor's fill order) as ``{"mgg_score": {(dataset, period):
    hist}, "category_order": ...}``: a chunk fills one dataset and period, and merging per
    (dataset, period) adds small histograms instead of growing a dense one chunk by chunk (the
    values are the same: a histogram without the key holds zeros there, and 0 + x = x)."""
    import pyarrow.parquet as pq

    hists = (copy.deepcopy(_template(mass_edges, score_edges)), _order_histogram())
    where = {"dataset": chunk["sample"], "period": chunk["period"]}
    features = [f for f in scorer.features if f != "mgg"]
    root = Path(skim_dir)
    nominal: dict[str, np.ndarray] | None = None
    nominal_scores = np.zeros(0)
    skim = root / chunk["sample"] / chunk["name"]
    if skim.exists():
        table = pq.read_table(skim, columns=["mgg", "truth_matched", "weight", *features])
        nominal = {name: table[name].to_numpy() for name in table.column_names}
        nominal_scores = _scores(scorer, nominal)
        _fill(
            hists, where, NOMINAL, nominal["mgg"], nominal["truth_matched"], nominal["weight"],
            nominal_scores,
        )  # fmt: skip
    varied = root / VARIATION_DIR / chunk["sample"] / chunk["name"]
    if not varied.exists():
        return _chunk_output(hists, where)
    table = pq.read_table(
        varied, columns=["variation", "mgg", "truth_matched", "weight", *features]
    )
    names = table["variation"].to_numpy(zero_copy_only=False)
    for name in dict.fromkeys(names):  # in the order the processor filled them
        rows = table.filter(names == name)
        weight = rows["weight"].to_numpy()
        if rows["mgg"].null_count == len(rows):  # a weight variation of the nominal
            if nominal is None:
                raise ScoreListsUnavailable(f"{varied}: weight rows {name!r} without a skim")
            _fill(
                hists, where, str(name), nominal["mgg"], nominal["truth_matched"], weight,
                nominal_scores,
            )  # fmt: skip
            continue
        columns = {n: rows[n].to_numpy() for n in rows.column_names if n != "variation"}
        _fill(
            hists, where, str(name), columns["mgg"], columns["truth_matched"], weight,
            _scores(scorer, columns),
        )  # fmt: skip
    return _chunk_output(hists, where)


def score_batch(chunks: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The chunks of one first-level merge task of the processing pass, scored and merged as
    that task merged them (coffea's ``_reduce``: the last output, then the others in order):
    one Dask task and one transfer instead of nine."""
    from coffea.processor import accumulate

    outputs = [score_chunk(chunk, **kwargs) for chunk in chunks]
    if len(outputs) == 1:
        return outputs[0]
    last = outputs.pop()
    merged: dict[str, Any] = accumulate(outputs, last)
    return merged


def _chunk_output(hists: tuple[Any, Any], where: dict[str, str]) -> dict[str, Any]:
    filled = len(hists[0].axes["dataset"]) > 0
    key = (where["dataset"], where["period"])
    return {MGG_SCORE: {key: hists[0]} if filled else {}, ORDER: hists[1]}


def assemble(parts: dict[tuple[str, str], Any], order: Any, template: Any) -> Any:
    """The dense ``mgg_score``: ``template``'s axes with the category order of ``order``, each
    (dataset, period) block copied from its merged part (no arithmetic)."""
    import hist

    axes = []
    for axis in template.axes:
        if axis.name in ("dataset", "period", "variation"):
            axes.append(
                hist.axis.StrCategory(
                    list(order.axes[axis.name]), growth=True, name=axis.name, label=axis.label
                )
            )
        else:
            axes.append(axis)
    out = hist.Hist(*axes, storage=hist.storage.Weight())
    view = out.view(flow=True)
    dataset, period, variation = (out.axes[n] for n in ("dataset", "period", "variation"))
    for (d, p), part in parts.items():
        source = part.view(flow=True)
        for j, v in enumerate(part.axes["variation"]):
            view[dataset.index(d), period.index(p), variation.index(v)] = source[0, 0, j]
    return out


def run_scoring(
    config: AnalysisConfig,
    workdir: str | Path,
    *,
    scorer: ScorerLike,
    model_dir: str | Path | None = None,
    client: Any = None,
    progress: bool = True,
) -> ScoringResult:
    """``histograms/mgg_score.hist.zip`` from ``histograms/mgg.hist.zip`` and the compact lists
    of the processing pass. Raises :class:`ScoreListsUnavailable` when the pass wrote no lists
    or the lists lack one of the scorer's features (the caller then scores by a full pass)."""
    from coffea import processor

    workdir = Path(workdir)
    skim_dir = workdir / "skims"
    listed = read_chunks(skim_dir)
    if listed is None:
        raise ScoreListsUnavailable(f"no {skim_dir / VARIATION_DIR}/chunks.json")
    chunks, features = listed
    missing = [f for f in scorer.features if f != "mgg" and f not in features]
    if missing:
        raise ScoreListsUnavailable(
            f"the variation lists lack the scorer's features {missing} (they hold {list(features)})"
        )
    source = workdir / "histograms" / "mgg.hist.zip"
    histograms = read_histograms(source)
    record = read_provenance(source)

    edges = tuple(float(e) for e in mass_edges(config.histograms))
    function = functools.partial(
        score_chunk,
        skim_dir=str(skim_dir),
        scorer=scorer,
        mass_edges=edges,
        score_edges=tuple(config.histograms.score_edges),
    )
    executor: Any
    items: list[Any] = chunks
    if client is not None:
        # the processing pass's Dask executor merged its chunks by a tree of TREE_REDUCTION: a
        # task here scores the chunks of one first-level merge and merges them the same way
        executor = WindowedDaskExecutor(
            client=client, retries=config.processing.retries, status=progress,
            treereduction=TREE_REDUCTION, desc="Scoring", unit="batch",
        )  # fmt: skip
        if len(chunks) > 1:
            function = functools.partial(score_batch, **function.keywords)
            items = [chunks[i : i + TREE_REDUCTION] for i in range(0, len(chunks), TREE_REDUCTION)]
    else:
        executor = processor.IterativeExecutor(status=progress, desc="Scoring", unit="chunk")
    template = make_histograms(edges, config.histograms.score_edges)[MGG_SCORE]
    if chunks:
        merged, _ = executor(items, function, None)
        scored = assemble(merged[MGG_SCORE], merged[ORDER], template)
    else:
        scored = template
    histograms[MGG] = scored
    extra = {k: v for k, v in record.items() if k not in ("config", "inputs", "versions")}
    extra.pop("git_revision", None)
    out = provenance(config=config.model_dump(mode="json"), inputs=(), checksums=False, **extra)
    out.update(
        inputs=record.get("inputs", []),
        model=str(model_dir) if model_dir else None,
        scored_from=f"{skim_dir} (the processing pass's skims and variation lists)",
    )
    path = write_histograms(workdir / "histograms" / "mgg_score.hist.zip", histograms, out)
    return ScoringResult(path, len(chunks), tuple(record.get("skipped") or ()))
