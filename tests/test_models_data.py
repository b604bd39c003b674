"""Reading skims: signal definition, efficiency normalisation, splitting and down-sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from alps.config import MassResolution
from models import load_selection_sample
from models.data import read_selection_skims
from models.testing import write_toy_skims

MASSES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)
EVENTS = 600


@pytest.fixture(scope="module")
def skims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("skims")
    write_toy_skims(path, MASSES, EVENTS, 1500, seed=5, files_per_dataset=2)
    # a "data" directory must be ignored by the training
    (path / "data").mkdir()
    pq.write_table(
        pq.read_table(next((path / "ggg").glob("*.parquet"))), path / "data" / "x.parquet"
    )
    return path


def _load(path: Path, **kw: object):
    args = {
        "window_nsigma": 10.0,
        "resolution": MassResolution(),
        "held_out_masses": 2,
        "max_background_candidates": 10**9,
        "validation_fraction": 0.3,
        "seed": 42,
    }
    args.update(kw)
    return load_selection_sample(path, **args)  # type: ignore[arg-type]


def _all_rows(path: Path) -> dict[str, np.ndarray]:
    tables = [pq.read_table(f) for f in sorted(path.glob("*/*.parquet")) if f.parent.name != "data"]
    cols = {}
    for name in ("dataset", "truth_matched", "is_signal", "mgg", "weight", "mc_ma"):
        cols[name] = np.concatenate([t.column(name).to_numpy(zero_copy_only=False) for t in tables])
    return cols


def test_signal_is_truth_matched_and_efficiency_normalised(skims: Path) -> None:
    sample = _load(skims)
    rows = _all_rows(skims)
    n_matched = int(np.sum(rows["truth_matched"] & rows["is_signal"]))
    n_sig = int(sample.train.is_signal.sum() + sample.valid.is_signal.sum())
    assert n_sig == n_matched  # unmatched signal candidates are dropped, matched all kept
    n_bkg = int((~sample.train.is_signal).sum() + (~sample.valid.is_signal).sum())
    assert n_bkg == int(np.sum(~rows["is_signal"] & (rows["dataset"] != "data")))
    np.testing.assert_allclose(sample.masses.masses, MASSES)
    summary = json.loads((skims / "summary.json").read_text())
    lo, hi = sample.masses.window_lo, sample.masses.window_hi
    for j, m in enumerate(MASSES):
        sel = rows["truth_matched"] & (np.abs(rows["mc_ma"] - m) < 1e-9)
        inside = sel & (rows["mgg"] >= lo[j]) & (rows["mgg"] <= hi[j])
        facts = summary[f"alp_m{round(m * 1000)}"]
        direct = rows["weight"][inside].sum() / facts["generated_weight"]
        # each split estimates the full efficiency; together (weighted by fraction) exactly
        e_tr = sample.train.weight[sample.train.mass_index == j].sum()
        e_va = sample.valid.weight[sample.valid.mass_index == j].sum()
        assert 0.7 * e_tr + 0.3 * e_va == pytest.approx(direct, rel=1e-9)
        assert e_va == pytest.approx(direct, rel=0.25)
    assert sample.luminosity_pb == 445.0
    assert sample.masses.held_out.sum() == 2


def test_split_is_by_event_and_near_requested_fraction(skims: Path) -> None:
    sample = _load(skims)
    for c in (sample.train, sample.valid):
        assert (~c.is_signal).sum() % 3 == 0  # the toy's events have three pairings each
    frac = len(sample.valid) / (len(sample.train) + len(sample.valid))
    assert frac == pytest.approx(0.3, abs=0.03)


def test_sample_does_not_depend_on_batch_size_or_dask(skims: Path) -> None:
    a = _load(skims)
    b = _load(skims, batch_rows=997)
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        c = _load(skims, client=client)
    for other in (b, c):
        for split in ("train", "valid"):
            x, y = getattr(a, split), getattr(other, split)
            np.testing.assert_array_equal(x.features, y.features)
            np.testing.assert_array_equal(x.weight, y.weight)
            np.testing.assert_array_equal(x.mass_index, y.mass_index)


def test_validation_folds_are_disjoint_and_cover_every_event(skims: Path) -> None:
    """k-fold evaluation (issue #13): the k validation splits hold every candidate once, each
    fold's weights estimate the whole sample (about 1/k of the events, weights × k), and a
    fold's training split is the other folds."""
    whole = _load(skims)
    n = len(whole.train) + len(whole.valid)
    folds = [_load(skims, validation_fold=(i, 3)) for i in range(3)]
    assert sum(len(f.valid) for f in folds) == n
    assert all(len(f.train) + len(f.valid) == n for f in folds)
    mgg = np.sort(np.concatenate([f.valid.mgg for f in folds]))
    np.testing.assert_array_equal(mgg, np.sort(np.concatenate([whole.train.mgg, whole.valid.mgg])))
    # the pooled efficiency and background equal the whole sample's (every event once)
    pooled = np.concatenate([f.valid.weight for f in folds]) / 3
    index = np.concatenate([f.valid.mass_index for f in folds])
    ref_w = np.concatenate([whole.train.weight * 0.7, whole.valid.weight * 0.3])
    ref_i = np.concatenate([whole.train.mass_index, whole.valid.mass_index])
    for j in range(-1, len(MASSES)):
        assert pooled[index == j].sum() == pytest.approx(ref_w[ref_i == j].sum(), rel=1e-9)
    for f in folds:
        assert 0.25 < len(f.valid) / n < 0.42
        assert f.info["validation_fraction"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="validation_fold"):
        _load(skims, validation_fold=(3, 3))


def test_background_down_sampling_keeps_events_and_compensates_weights(skims: Path) -> None:
    full = _load(skims)
    small = _load(skims, max_background_candidates=6000)
    frac = small.info["background_keep_fraction"]
    assert 0 < frac < 1
    n_full = (~full.train.is_signal).sum() + (~full.valid.is_signal).sum()
    n_small = (~small.train.is_signal).sum() + (~small.valid.is_signal).sum()
    assert n_small == pytest.approx(frac * n_full, rel=0.1)
    assert n_small % 3 == 0
    w_full = full.train.weight[~full.train.is_signal].sum()
    w_small = small.train.weight[~small.train.is_signal].sum()
    assert w_small == pytest.approx(w_full, rel=0.1)
    # signal is never down-sampled
    assert small.train.is_signal.sum() == full.train.is_signal.sum()


def test_missing_summary_entry_is_named(skims: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "skims"
    shutil.copytree(skims, copy)
    summary = json.loads((copy / "summary.json").read_text())
    del summary["etag"]
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(KeyError, match="etag"):
        _load(copy)


def test_read_once_folds_equal_the_per_fold_reads(skims: Path) -> None:
    """Issue #13: the skims read once (``read_selection_skims``) give every cross-validation
    fold's splits, and the default split, identical to reading the files for that fold; the
    fold labels are the folds' validation splits."""
    read = read_selection_skims(
        skims,
        window_nsigma=10.0,
        resolution=MassResolution(),
        held_out_masses=2,
        max_background_candidates=6000,
        seed=42,
    )
    for fold in (None, (0, 3), (1, 3), (2, 3), (4, 5)):
        mine = read.sample(0.3, fold)
        ref = _load(skims, max_background_candidates=6000, validation_fold=fold)
        assert mine.info == ref.info
        np.testing.assert_array_equal(mine.masses.window_lo, ref.masses.window_lo)
        np.testing.assert_array_equal(mine.masses.held_out, ref.masses.held_out)
        for split in ("train", "valid"):
            x, y = getattr(mine, split), getattr(ref, split)
            assert x.feature_names == y.feature_names
            for name in ("features", "mgg", "weight", "mass_index"):
                np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
    labels = read.fold_labels(3)
    assert set(np.unique(labels)) == {0, 1, 2}
    mgg = np.concatenate([r["mgg"] for r in read.results])
    for i in range(3):
        valid = read.sample(0.3, (i, 3)).valid
        np.testing.assert_array_equal(np.sort(mgg[labels == i]), np.sort(valid.mgg))
    # a feature subset cut after the read equals reading only those columns
    names = read.names[:3]
    sub = read.with_features(names).sample(0.3, (1, 3))
    ref = _load(skims, max_background_candidates=6000, validation_fold=(1, 3), features=names)
    np.testing.assert_array_equal(sub.train.features, ref.train.features)
    np.testing.assert_array_equal(sub.valid.features, ref.valid.features)
    with pytest.raises(ValueError, match="validation_fold"):
        read.sample(0.3, (3, 3))
    with pytest.raises(KeyError, match="not in the skims"):
        read.with_features(["nope"])
