"""The report's background composition per M_gg range, on hand-made histograms."""

from __future__ import annotations

import hist
import numpy as np
import pytest

from alps.composition import composition


def _mgg() -> hist.Hist:
    h = hist.Hist(
        hist.axis.StrCategory(["data", "ggg", "gg", "alp_m1000"], name="dataset"),
        hist.axis.StrCategory(["nominal", "escale_up"], name="variation"),
        hist.axis.Regular(100, 0.0, 10.0, name="mass"),
        storage=hist.storage.Weight(),
    )
    centers = h.axes["mass"].centers
    h.fill(dataset="ggg", variation="nominal", mass=centers, weight=np.full(100, 20.0))
    h.fill(dataset="gg", variation="nominal", mass=centers[centers < 1.0], weight=30.0)
    h.fill(dataset="alp_m1000", variation="nominal", mass=[1.0], weight=1e6)
    h.fill(dataset="ggg", variation="escale_up", mass=centers, weight=1e6)
    counts = np.where(centers < 1.0, 50.0, 20.0) * np.where(centers > 4.0, 1.5, 1.0)
    h.fill(dataset="data", variation="nominal", mass=centers, weight=counts)
    return h


def test_composition_counts_shares_and_data_over_mc_per_range() -> None:
    rows = composition(_mgg(), ranges=((0.2, 1.0), (1.0, 4.0), (4.0, 9.7)), rebin=1)
    low, mid, high = rows
    # bins whose centres lie in [0.2, 1.0): 0.25 ... 0.95, eight of them
    assert low["yields"] == {"ggg": pytest.approx(160.0), "gg": pytest.approx(240.0)}
    assert low["share"]["gg"] == pytest.approx(0.6) and low["data_over_mc"] == pytest.approx(1.0)
    assert low["chi2"] == pytest.approx(0.0) and low["ndf"] == 8
    assert mid["mc"] == pytest.approx(30 * 20.0) and mid["yields"]["gg"] == 0.0
    # the signal and the other variations are not background
    assert "alp_m1000" not in mid["yields"]
    # 57 bins, each (30 - 20)^2 / (20 + 20^2): the MC statistical variance counts
    assert high["data_over_mc"] == pytest.approx(1.5)
    assert high["chi2"] == pytest.approx(57 * 100 / 420) and high["ndf"] == 57
    scaled = composition(_mgg(), ranges=((0.2, 1.0),), rebin=1, scale={"gg": 0.5})[0]
    assert scaled["yields"]["gg"] == pytest.approx(120.0)
