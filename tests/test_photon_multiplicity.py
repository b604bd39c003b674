"""preselection.photon_multiplicity: three or more candidates (the three most energetic used,
the default) or exactly three."""

from __future__ import annotations

import numpy as np
import pytest

from alps.config import ConfigError, PreselectionConfig, load_config
from processors.kernels import leading_three


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
    at_least, order = leading_three(energy, 0.1, False)
    exactly, order_exact = leading_three(energy, 0.1, True)
    assert at_least.tolist() == [True, True, True, False, True]
    assert exactly.tolist() == [True, False, True, False, False]
    # the same three most energetic candidates either way
    np.testing.assert_array_equal(order, order_exact)
    assert order[4].tolist() == [1, 2, 3]


def test_the_option_is_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert PreselectionConfig().photon_multiplicity == "at_least_three"
    path = tmp_path / "c.yaml"
    path.write_text("preselection:\n  photon_multiplicity: four\n")
    with pytest.raises(ConfigError, match=r"preselection\.photon_multiplicity"):
        load_config(path)
