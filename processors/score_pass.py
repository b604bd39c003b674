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

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import AnalysisConfig
from alps.contract import MGG, MGG_SCORE, NOMINAL, ScorerLike, make_histograms
from alps.histio import (
    SlabHistogram,
    provenance,
    read_histograms,
    read_provenance,
    write_histograms,
)

from .binning import flow_index, mass_edges
from .score_lists import VARIATION_DIR, read_chunks
from .windowed import TREE_REDUCTION, WindowedDaskExecutor

__all__ = [
    "ScoreListsUnavailable",
    "ScoringResult",
    "assemble",
    "assemble_slabs",
    "run_scoring",
    "score_chunk",
]


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
    """An empty ``mgg_score`` of the contract (its axes give the bins of :class:`_Binning`)."""
    return make_histograms(mass_edges, score_edges)[MGG_SCORE]


@dataclass(frozen=True)
class _Binning:
    """The (truth, mgg, score) bins of ``mgg_score`` with its flow bins, as boost-histogram
    numbers them (:func:`processors.binning.flow_index`)."""

    shape: tuple[int, int, int]
    truth: tuple[int, int]  # the flow indices of "matched", "unmatched"
    mass_edges: np.ndarray
    score_edges: np.ndarray
    flow: tuple[tuple[bool, bool], tuple[bool, bool]]  # (underflow, overflow) of mgg, score

    @staticmethod
    @functools.cache
    def of(mass_edges: tuple[float, ...], score_edges: tuple[float, ...]) -> _Binning:
        template = _template(mass_edges, score_edges)
        shape = template.view(flow=True).shape[3:]
        truth = template.axes["truth"]
        mgg, score = template.axes["mgg"], template.axes["score"]
        return _Binning(
            shape=tuple(int(n) for n in shape),  # type: ignore[arg-type]
            truth=(int(truth.index("matched")), int(truth.index("unmatched"))),
            mass_edges=np.asarray(mgg.edges, dtype=np.float64),
            score_edges=np.asarray(score.edges, dtype=np.float64),
            flow=(
                (bool(mgg.traits.underflow), bool(mgg.traits.overflow)),
                (bool(score.traits.underflow), bool(score.traits.overflow)),
            ),
        )

    def flat(
        self, truth: np.ndarray, mgg: np.ndarray, score: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The flat (truth, mgg, score) bin of each entry (entries without a bin: dropped)."""
        t = np.where(truth, self.truth[0], self.truth[1])
        m, keep_m = flow_index(self.mass_edges, mgg, self.flow[0])
        s, keep_s = flow_index(self.score_edges, score, self.flow[1])
        keep = keep_m & keep_s
        if not keep.all():
            t, m, s = t[keep], m[keep], s[keep]
        return np.ravel_multi_index((t, m, s), self.shape), keep


def _fill(
    part: dict[str, np.ndarray],
    binning: _Binning,
    variation: str,
    mgg: np.ndarray,
    truth: np.ndarray,
    weight: np.ndarray,
    scores: np.ndarray,
) -> None:
    """The fill of ``processors.filling.fill_main`` (clipped scores) into ``part[variation]``,
    ``(2, truth, mgg, score)``: summed weights and squared weights per bin. ``np.bincount``
    adds each bin's entries in their order from 0.0, as boost-histogram's fill does, so the sums
    are the same to the bit; no histogram object, no category lookup, no growth per fill."""
    if len(mgg) == 0:
        return
    if variation in part:
        raise ValueError(f"variation {variation!r} filled twice in one chunk")
    score = np.clip(scores, 0.0, 1.0 - 1e-9)
    bins, keep = binning.flat(truth, mgg, score)
    w = weight if keep.all() else weight[keep]
    size = int(np.prod(binning.shape))
    out = np.empty((2, *binning.shape))
    out[0] = np.bincount(bins, weights=w, minlength=size).reshape(binning.shape)
    out[1] = np.bincount(bins, weights=w * w, minlength=size).reshape(binning.shape)
    part[variation] = out


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
    {variation: sums}}, "category_order": ...}`` (``sums``: :func:`_fill`'s arrays): a chunk
    fills one dataset and period, and merging per (dataset, period, variation) adds arrays
    instead of growing a dense histogram chunk by chunk (the values are the same: a histogram
    without the key holds zeros there, and 0 + x = x)."""
    import pyarrow.parquet as pq

    binning = _Binning.of(mass_edges, score_edges)
    part: dict[str, np.ndarray] = {}
    filled: list[str] = []  # the variations in fill order (the category-order record)
    where = {"dataset": chunk["sample"], "period": chunk["period"]}

    def fill(variation: str, *arrays: np.ndarray) -> None:
        _fill(part, binning, variation, *arrays)
        filled.append(variation)

    features = [f for f in scorer.features if f != "mgg"]
    root = Path(skim_dir)
    nominal: dict[str, np.ndarray] | None = None
    nominal_scores = np.zeros(0)
    skim = root / chunk["sample"] / chunk["name"]
    if skim.exists():
        table = pq.read_table(skim, columns=["mgg", "truth_matched", "weight", *features])
        nominal = {name: table[name].to_numpy() for name in table.column_names}
        nominal_scores = _scores(scorer, nominal)
        fill(NOMINAL, nominal["mgg"], nominal["truth_matched"], nominal["weight"], nominal_scores)
    varied = root / VARIATION_DIR / chunk["sample"] / chunk["name"]
    if not varied.exists():
        return _chunk_output(part, filled, where)
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
            fill(str(name), nominal["mgg"], nominal["truth_matched"], weight, nominal_scores)
            continue
        columns = {n: rows[n].to_numpy() for n in rows.column_names if n != "variation"}
        fill(str(name), columns["mgg"], columns["truth_matched"], weight, _scores(scorer, columns))
    return _chunk_output(part, filled, where)


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


def _chunk_output(
    part: dict[str, np.ndarray], filled: list[str], where: dict[str, str]
) -> dict[str, Any]:
    """The chunk's sums and its category-order record: one fill of every variation in fill
    order (a growing axis adds the categories of one fill in their order of appearance, as it
    does over one fill per variation)."""
    order = _order_histogram()
    if filled:
        n = len(filled)
        order.fill(
            dataset=[where["dataset"]] * n, period=[where["period"]] * n, variation=filled,
            weight=np.zeros(n),
        )  # fmt: skip
    key = (where["dataset"], where["period"])
    return {MGG_SCORE: {key: part} if part else {}, ORDER: order}


def _dense_axes(order: Any, template: Any, datasets: list[str] | None = None) -> list[Any]:
    """``template``'s axes with the category order of ``order`` (``datasets``: these only)."""
    import hist

    axes = []
    for axis in template.axes:
        if axis.name in ("dataset", "period", "variation"):
            categories = list(order.axes[axis.name])
            if axis.name == "dataset" and datasets is not None:
                categories = datasets
            axes.append(
                hist.axis.StrCategory(categories, growth=True, name=axis.name, label=axis.label)
            )
        else:
            axes.append(axis)
    return axes


def assemble_slabs(
    parts: dict[tuple[str, str], dict[str, np.ndarray]], order: Any, template: Any
) -> SlabHistogram:
    """:func:`assemble`'s histogram, written one dataset at a time (``alps.histio``): the client
    holds the merged parts and one dataset's bins, not the dense histogram beside them (which
    grows with the datasets and run periods: 0.35 GB at 41 masses and 3 periods)."""
    datasets = [str(d) for d in order.axes["dataset"]]
    if not datasets:
        raise ValueError("no dataset to assemble")

    def slab(i: int) -> dict[str, np.ndarray]:
        view = assemble(parts, order, template, datasets=[datasets[i]]).view(flow=True)[0]
        return {"values": view["value"], "variances": view["variance"]}

    first = assemble(parts, order, template, datasets=datasets[:1])
    return SlabHistogram(first, tuple(datasets), slab)


def assemble(
    parts: dict[tuple[str, str], dict[str, np.ndarray]],
    order: Any,
    template: Any,
    *,
    datasets: list[str] | None = None,
) -> Any:
    """The dense ``mgg_score``: ``template``'s axes with the category order of ``order``, each
    (dataset, period, variation) block copied from its merged part (no arithmetic);
    ``datasets``: these datasets only."""
    import hist

    out = hist.Hist(*_dense_axes(order, template, datasets), storage=hist.storage.Weight())
    view = out.view(flow=True)
    value, variance = view["value"], view["variance"]  # plain float64 views of the storage
    dataset, period, variation = (out.axes[n] for n in ("dataset", "period", "variation"))
    wanted = {str(d) for d in dataset}
    for (d, p), part in parts.items():
        if d not in wanted:  # another dataset than those asked for
            continue
        i, j = dataset.index(d), period.index(p)
        for v, sums in part.items():
            k = variation.index(v)
            value[i, j, k] = sums[0]
            variance[i, j, k] = sums[1]
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
    hists = read_histograms(source)
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
    scored: Any
    if chunks:
        merged, _ = executor(items, function, None)
        order = merged[ORDER]
        if len(order.axes["dataset"]):
            scored = assemble_slabs(merged[MGG_SCORE], order, template)
        else:
            scored = assemble(merged[MGG_SCORE], order, template)
    else:
        scored = template
    histograms: dict[str, Any] = {**hists, MGG: scored}
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
