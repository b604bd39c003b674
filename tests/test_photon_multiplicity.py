"""preselection.photon_multiplicity: three or more candidates (the three most energetic used,
the default) or exactly three."""

from __future__ import annotations

import numpy as np
import pytest

from alps.config import ConfigError, PreselectionConfig, load_config
from processors.kernels import select_for_fit


def _selected(energy: np.ndarray, exactly: bool) -> tuple[np.ndarray, dict[int, list[int]]]:
    """three_photons per event, and the leading three's columns of each event that has them
    (the mass and timing windows opened so that only the multiplicity decides)."""
    m, k = energy.shape
    zeros = np.zeros((m, k))
    cuts, _, rows, order = select_for_fit(
        energy[None], zeros, zeros, zeros, np.ones(m), np.ones(m, bool), 0.1, exactly,
        -1.0, np.inf, 1.0, 0.5, 0.1, np.inf,
    )  # fmt: skip
    return cuts[0], {int(r): o.tolist() for r, o in zip(rows, order, strict=True)}


def test_exactly_three_rejects_events_with_a_fourth_candidate_above_threshold() -> None:
    nan = np.nan
    energy = np.array(
        [
            [3.0, 2.0, 1.0, nan, nan],  # three
            [3.0, 2.0, 1.0, 0.5, nan],  # four
            [3.0, 2.0, 1.0, 0.095, nan],  # a fourth below the 0.1 GeV threshold: three
            [3.0, 2.0, nan, nan, nan],  # two
            [0.5, 4.0, 2.0, 1.0, 0.2],  # five, unordered
        ]
    )
    at_least, order = _selected(energy, False)
    exactly, order_exact = _selected(energy, True)
    assert at_least.tolist() == [True, True, True, False, True]
    assert exactly.tolist() == [True, False, True, False, False]
    # the same three most energetic candidates either way
    assert all(order[i] == order_exact[i] for i in order_exact)
    assert order[4] == [1, 2, 3]


def test_the_option_is_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert PreselectionConfig().photon_multiplicity == "at_least_three"
    path = tmp_path / "c.yaml"
    path.write_text("preselection:\n  photon_multiplicity: four\n")
    with pytest.raises(ConfigError, match=r"preselection\.photon_multiplicity"):
        load_config(path)
