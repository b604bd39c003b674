"""The score pass from the processing pass's compact lists equals re-running the processor with
the scorer, bit for bit (issue 12); a model the lists cannot serve is refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from alps.config import (
    AnalysisConfig,
    DataConfig,
    KinfitConfig,
    MassGrid,
    ProcessingConfig,
    SignalConfig,
    SimulationConfig,
)
from alps.histio import read_histograms, read_provenance
from models.net import NetSpec, build_net, state_to_numpy
from models.scorer import Scorer
from processors.run import run_processing
from processors.score_lists import VARIATION_DIR, read_chunks
from processors.score_pass import ScoreListsUnavailable, run_scoring
from processors.testing import write_fixed_calibration
from simulation.production import generate_samples

FEATURES = ("E_high", "E_low", "u_high", "t_high", "sphericity", "chi2", "mgg")


def score_config() -> AnalysisConfig:
    return AnalysisConfig(
        run_slice="2018,lumi=0.003",
        kinfit=KinfitConfig(covariance="calibration"),
        processing=ProcessingConfig(chunk_size=1200),
        simulation=SimulationConfig(
            backgrounds=("ggg", "gg", "pi0gg"),
            signal=SignalConfig(masses=MassGrid(values=(1.0, 6.0)), events_per_mass=600),
            data=DataConfig(enabled=True),
            events_per_file=2500,
            cuts={"calibration_events": 5000},  # type: ignore[arg-type]
        ),
    )


def net_scorer(features: tuple[str, ...] = FEATURES) -> Scorer:
    """A Punzi-net scorer with seeded random weights and a normalisation that spreads the scores
    over (0, 1): what matters here is that the same candidates get the same scores."""
    spec = NetSpec(n_inputs=len(features), hidden_layers=3, width=16, activation="leaky_relu")
    net = build_net(spec, seed=5)
    mean = np.array([4.0, 0.5, 20.0, 20.0, 0.2, 5.0, 3.0][: len(features)], np.float32)
    std = np.array([1.0, 0.5, 10.0, 10.0, 0.2, 5.0, 3.0][: len(features)], np.float32)
    net.set_normalisation(mean, std)
    return Scorer(spec, state_to_numpy(net), features)


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("score")
    generate_samples(score_config(), workdir, progress=False)
    write_fixed_calibration(workdir)
    run_processing(score_config(), workdir, progress=False)
    return workdir


def _old_and_new(workdir: Path, scorer: Scorer, client: object = None) -> tuple[dict, dict]:
    """The scored histograms of a full second processor pass, then of the score pass."""
    config = score_config()
    old = run_processing(config, workdir, scorer=scorer, client=client, progress=False)
    kept = workdir / "old.hist.zip"
    shutil.copy(old.histogram_file, kept)
    new = run_scoring(config, workdir, scorer=scorer, client=client, progress=False)
    return read_histograms(kept), read_histograms(new.histogram_file)


def _assert_identical(old: dict, new: dict) -> None:
    assert list(old) != [] and sorted(old) == sorted(new)
    for name, h in old.items():
        other = new[name]
        for axis, axis_new in zip(h.axes, other.axes):
            assert list(axis) == list(axis_new), f"{name}: axis {axis.name}"
        assert np.array_equal(h.values(flow=True), other.values(flow=True)), name
        assert np.array_equal(h.variances(flow=True), other.variances(flow=True)), name
        assert h == other, name


def test_lists_hold_what_the_score_pass_needs(processed: Path) -> None:
    listed = read_chunks(processed / "skims")
    assert listed is not None
    chunks, features = listed
    assert len(chunks) >= 5  # several files, several chunks each
    assert set(FEATURES) - {"mgg"} <= set(features)
    files = sorted((processed / "skims" / VARIATION_DIR).glob("*/*.parquet"))
    assert files and sorted((processed / "skims").glob("data/*.parquet"))
    table = pq.read_table(files[0])
    variations = set(table["variation"].to_pylist())
    assert {"escale_up", "trigger_up"} <= variations
    assert "nominal" not in variations  # the nominal is read from the skims
    assert table.schema.field("E_high").type == "float"  # float32: what the scorer reads


def test_score_pass_equals_a_second_processor_pass(processed: Path) -> None:
    old, new = _old_and_new(processed, net_scorer())
    _assert_identical(old, new)
    mgg = new["mgg"]
    assert mgg.axes["score"].size > 1
    assert set(mgg.axes["variation"]) >= {"nominal", "escale_up", "eres_down", "trigger_up"}
    # the scores are spread: the test would notice a candidate scored at another value
    per_score = mgg[{"variation": "nominal"}].project("score").values()
    assert np.count_nonzero(per_score) >= 3
    record = read_provenance(processed / "histograms" / "mgg_score.hist.zip")
    assert "variation lists" in record["scored_from"]


def test_a_model_the_lists_cannot_serve_is_refused(processed: Path) -> None:
    scorer = net_scorer(("E_high", "E_mid", "mgg"))  # E_mid: not a training.features column
    with pytest.raises(ScoreListsUnavailable, match="E_mid"):
        run_scoring(score_config(), processed, scorer=scorer, progress=False)


@pytest.mark.slow
def test_score_pass_equals_a_second_pass_on_dask(processed: Path) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        run_processing(score_config(), processed, client=client, progress=False)
        old, new = _old_and_new(processed, net_scorer(), client)
    _assert_identical(old, new)
