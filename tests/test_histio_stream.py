"""Histogram files read one dataset at a time (issue 12: the client's memory).

``mgg_score`` grows with the run periods; the limits, the shapes cache and the report read it
one dataset at a time (:func:`alps.histio.iter_categories`). What they compute must equal what
reading the whole histogram gives, to the bit.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import hist
import numpy as np
import pytest

from alps.config import AnalysisConfig, load_config
from alps.histio import (
    SlabHistogram,
    iter_categories,
    read_histograms,
    signal_digest,
    write_histograms,
)
from limits.inputs import project_histograms
from limits.io import read_spectra
from limits.testing import make_histograms

PERIODS = {"2018": 445.0, "2019a": 300.0, "2019b": 255.0}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    data = load_config().model_dump(mode="json")
    data["histograms"]["bin_width_sigma"] = 5.0  # coarse M_gg bins: a small, fast file
    hists, prov, _ = make_histograms(
        AnalysisConfig.model_validate(data), seed=5, signal_masses=[0.5, 2.0, 6.0], events_per_mass=400,
        luminosity_pb=PERIODS, background_per_pb=20.0,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("stream") / "mgg_score.hist.zip"
    write_histograms(path, hists, prov)
    return path, hists, prov


def test_each_category_is_the_stored_slab(stored: tuple[Path, dict, dict]) -> None:
    path, _, _ = stored
    full = read_histograms(path, ["mgg"])["mgg"]
    assert list(full.axes["period"]) == list(PERIODS)
    seen = []
    for dataset, one in iter_categories(path, "mgg"):
        seen.append(dataset)
        assert list(one.axes["dataset"]) == [dataset]
        assert one.axes[1:] == full.axes[1:]
        a, b = full[{"dataset": dataset}].view(flow=True), one[{"dataset": dataset}].view(flow=True)
        assert np.array_equal(a["value"], b["value"]) and np.array_equal(
            a["variance"], b["variance"]
        )
    assert seen == list(full.axes["dataset"])
    only = [d for d in seen if d.startswith("alp_m")][1:]
    assert [d for d, _ in iter_categories(path, "mgg", only=only)] == only


@pytest.mark.parametrize("working_point", [None, 0.5, 0.9])
def test_read_spectra_equals_the_whole_projection(
    stored: tuple[Path, dict, dict], working_point: float | None
) -> None:
    path, _, prov = stored
    whole = project_histograms(
        read_histograms(path, ["mgg", "generated"]), prov, working_point=working_point
    )
    streamed = read_spectra(path, working_point)
    assert streamed.datasets == whole.datasets and streamed.variations == whole.variations
    assert streamed.values.flags.c_contiguous and streamed.values.dtype == np.float64
    assert np.array_equal(streamed.values, whole.values)  # the same sums, to the bit
    assert np.array_equal(streamed.variances, whole.variances)
    assert np.array_equal(streamed.edges, whole.edges)
    assert streamed.generated == whole.generated and streamed.working_point == whole.working_point
    assert streamed.luminosity_pb == pytest.approx(PERIODS)


def test_a_histogram_without_dataset_first_is_refused(stored: tuple[Path, dict, dict]) -> None:
    path, _, _ = stored
    with pytest.raises(ValueError, match="first axis"):
        next(iter_categories(path, "mgg", axis="period"))


def test_truncated_array_is_an_error(stored: tuple[Path, dict, dict], tmp_path: Path) -> None:
    path, _, _ = stored
    cut = tmp_path / "cut.hist.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(cut, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "mgg_storage_values.npy":
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="ends before"):
        list(iter_categories(cut, "mgg"))


def test_signal_digest_follows_the_signal_only(
    stored: tuple[Path, dict, dict], tmp_path: Path
) -> None:
    path, hists, prov = stored
    digest = signal_digest(path)
    assert digest == signal_digest(path)

    def variant(change: str) -> str:
        copy = {name: h.copy() for name, h in hists.items()}
        dataset = next(d for d in copy["mgg"].axes["dataset"] if d.startswith(change))
        view = copy["mgg"].view(flow=False)
        index = list(copy["mgg"].axes["dataset"]).index(dataset)
        view["value"][index, 0, 0, 0, 10, -1] += 1.0
        out = tmp_path / f"{change}.hist.zip"
        write_histograms(out, copy, prov)
        return signal_digest(out)

    assert variant("alp_m") != digest  # a signal bin: the shapes must be fitted again
    assert variant("data") == digest  # the pseudo-data: the shapes stay


def test_a_slab_histogram_writes_the_whole_histograms_file(
    stored: tuple[Path, dict, dict], tmp_path: Path
) -> None:
    _, hists, prov = stored
    full = hists["mgg"]
    datasets = [str(d) for d in full.axes["dataset"]]
    view = full.view(flow=True)
    d_axis = full.axes["dataset"]

    def dense(names: list[str]) -> hist.Hist:
        """``full`` with these datasets, on a dataset axis without flow bins (as the score
        pass makes it)."""
        out = hist.Hist(
            hist.axis.StrCategory(names, growth=True, name=d_axis.name, label=d_axis.label),
            *full.axes[1:],
            storage=hist.storage.Weight(),
        )
        out.view(flow=True)[...] = view[: len(names)]
        return out

    first = dense(datasets[:1])
    lazy = SlabHistogram(
        first,
        tuple(datasets),
        lambda i: {"values": view["value"][i], "variances": view["variance"][i]},
    )
    whole, out = tmp_path / "whole.hist.zip", tmp_path / "slabs.hist.zip"
    write_histograms(whole, {**hists, "mgg": dense(datasets)}, prov)
    write_histograms(out, {**hists, "mgg": lazy}, prov)
    with zipfile.ZipFile(whole) as a, zipfile.ZipFile(out) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for member in a.namelist():
            assert a.read(member) == b.read(member), member  # the same bytes, header included
    bad = SlabHistogram(first, lazy.categories, lambda i: {"values": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        write_histograms(tmp_path / "bad.hist.zip", {"mgg": bad}, prov)
