"""``models.train_models`` end to end on toy skims: files, working point, grid on Dask."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alps.config import AnalysisConfig
from models import load_scorer, train_models
from models.testing import write_toy_skims

TINY = {
    "hidden_layers": 3,
    "width": 12,
    "bce_epochs": 2,
    "punzi_epochs": 3,
    "bce_batch_size": 1024,
    "punzi_batch_size": 5000,
    "held_out_masses": 2,
    "xgboost_rounds": 20,
    "xgboost_depth": 3,
}


@pytest.fixture(scope="module")
def skims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "skims"
    write_toy_skims(path, (0.5, 1.0, 1.5, 2.0, 2.5, 3.0), 400, 1000, seed=4)
    return path


def test_train_models_writes_every_output(skims: Path, tmp_path: Path) -> None:
    config = AnalysisConfig.model_validate({"training": TINY})
    result = train_models(skims, config, tmp_path, progress=False)
    model_dir = tmp_path / "models"
    for name in (
        "punzi.pt",
        "punzi.json",
        "punzi_plain.pt",
        "punzi_plain.json",
        "xgboost.json",
        "ranking.json",
        "working_point.json",
        "sensitivity.json",
        "sensitivity.md",
        "sensitivity.png",
        "ranking.png",
        "working_point.png",
        "training.png",
    ):
        assert (model_dir / name).stat().st_size > 0, name
    assert not (model_dir / "grid.json").exists()

    wp = json.loads((model_dir / "working_point.json").read_text())
    edges = list(config.histograms.score_edges)
    assert wp["cut"] in edges[:-1] and edges[wp["first_score_bin_kept"]] == wp["cut"]
    assert wp["best_mean_sigma_min_pb_unbinned"] <= wp["mean_sigma_min_pb"]
    assert wp["model"] == "parametrised"
    curve = wp["curves"]["parametrised"]
    assert len(curve["cuts"]) == len(curve["mean_sigma_min_pb"]) > 100
    assert min(x for x in curve["mean_sigma_min_pb"] if x is not None) == pytest.approx(
        wp["best_mean_sigma_min_pb_unbinned"]
    )

    sens = json.loads((model_dir / "sensitivity.json").read_text())
    assert sens["masses_GeV"] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert sum(sens["held_out"]) == 2 and not sens["held_out"][0]
    assert sens["chosen"] == "parametrised"
    for name in ("punzi", "parametrised", "parametrised_at_hypothesis"):
        assert all(s > 0 for s in sens[name]["sigma_min_pb"]), name
    assert set(sens["goal_vs_xgboost_best_cut"]) == {"punzi", "parametrised"}
    assert set(sens["per_mass_cuts"]) == {"punzi", "parametrised", "xgboost"}
    for gain in sens["per_mass_cuts"].values():
        # the best cut per mass is never worse than the fixed one (both are scanned)
        assert 0 <= gain["mean_gain_score_edges"] <= gain["mean_gain_any_cut"] < 1
    for name in ("xgboost", "cut_based"):
        # null where a selection keeps no signal of a mass (σ_min infinite)
        sigma = sens[name]["sigma_min_pb"]
        assert len(sigma) == 6 and all(s is None or s > 0 for s in sigma)
    assert len(sens["generalisation"]) == 2
    # masses 0.5-3 GeV all lie in the search range: the working point's mean is the trained one
    assert all(sens["in_search_range"])
    assert sens["mean_sigma_min_pb"]["parametrised"]["trained"] == pytest.approx(
        wp["mean_sigma_min_pb"]
    )

    ranking = json.loads((model_dir / "ranking.json").read_text())
    assert ranking["selected"] == list(config.training.features)
    assert {"name", "rank", "gain", "permutation", "permutation_std"} <= set(ranking["features"][0])

    meta = json.loads((model_dir / "punzi.json").read_text())
    assert meta["provenance"]["inputs"][0]["sha256"]
    assert meta["provenance"]["sample"]["validation_fraction"] == 0.3
    assert result.features == config.training.features
    assert meta["hypothesis_input"]["column"] == "mgg"
    assert meta["hypothesis_input"]["range_GeV"] == [0.5, 3.0]
    scorer = load_scorer(model_dir)
    assert scorer.features == (*config.training.features, "mgg")


def test_grid_search_runs_on_dask_and_keeps_the_best(skims: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    config = AnalysisConfig.model_validate(
        {"training": {**TINY, "grid": {"width": [6, 12]}, "select_top_features": 5}}
    )
    with (
        distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        result = train_models(skims, config, tmp_path, client=client, progress=False)
    grid = json.loads((tmp_path / "models" / "grid.json").read_text())["points"]
    assert [p["width"] for p in grid] == [6, 12]
    best = min(grid, key=lambda p: p["mean_sigma_min_pb"])
    assert best["best"]
    assert result.punzi.spec.width == best["width"]
    assert len(result.features) == 5 and result.features == result.ranking.top(5)
    assert (tmp_path / "models" / "grid.png").exists()


def test_cross_validated_evaluation_uses_every_event_once(
    skims: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``training.evaluation_folds: 3`` (issue #13): the selections are trained three times and
    every event is evaluated once, out of fold; the deployed net is fold 0's. Without a
    selection the pooled efficiency and background are those of the whole sample."""
    import numpy as np

    import models.data
    from alps.config import MassResolution
    from models import load_selection_sample

    training = {**TINY, "evaluation_folds": 3, "compare_nets": False}
    config = AnalysisConfig.model_validate({"training": training})
    reads: list[str] = []
    original = models.data._read_file

    def counted(path: Path, *args: object) -> dict[str, np.ndarray]:
        reads.append(str(path))
        return original(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(models.data, "_read_file", counted)
    train_models(skims, config, tmp_path, progress=False)
    # three folds, the skims read once (issue #13): every file exactly once
    files = sorted(str(f) for f in skims.glob("*/*.parquet"))
    assert sorted(reads) == files
    sens = json.loads((tmp_path / "models" / "sensitivity.json").read_text())
    assert sens["evaluation_folds"] == 3 and sens["evaluated_on"].startswith("3-fold")
    meta = json.loads((tmp_path / "models" / "punzi.json").read_text())
    assert meta["provenance"]["sample"]["validation_fold"] == [0, 3]
    wp = json.loads((tmp_path / "models" / "working_point.json").read_text())
    assert "3-fold cross-validated" in wp["rule"]

    whole = load_selection_sample(
        skims,
        window_nsigma=config.training.window_nsigma,
        resolution=MassResolution(),
        held_out_masses=2,
        max_background_candidates=config.training.max_background_candidates,
        validation_fraction=0.3,
        seed=int(config.seed),
    )
    lo, hi = whole.masses.window_lo, whole.masses.window_hi
    eff = np.zeros(len(lo))
    bkg = np.zeros(len(lo))
    for part, frac in ((whole.train, 0.7), (whole.valid, 0.3)):
        sig = part.is_signal
        eff += np.bincount(part.mass_index[sig], part.weight[sig] * frac, len(lo))
        for j in range(len(lo)):
            inside = ~sig & (part.mgg >= lo[j]) & (part.mgg <= hi[j])
            bkg[j] += part.weight[inside].sum() * frac
    np.testing.assert_allclose(sens["no_selection"]["efficiency"], eff, rtol=1e-9)
    np.testing.assert_allclose(sens["no_selection"]["background"], bkg, rtol=1e-9)
    assert all(s > 0 for s in sens["parametrised"]["sigma_min_pb"])
    with pytest.raises(ValueError, match="evaluation_folds"):
        AnalysisConfig.model_validate({"training": {"evaluation_folds": 1}})
