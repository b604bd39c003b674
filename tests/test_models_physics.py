"""The selection's physics claims on a toy with the seed's structure (about a minute).

29 ALP masses 0.2–3.0 GeV in 0.1 GeV steps (4000 events each), six held out, with γγγ, γγ,
e+e-γ, μ+μ-γ and π0/η/η'γ backgrounds (``models.testing``); the seed's network
(10 × 30 LeakyReLU) with shortened training (30 BCE + 60 Punzi epochs) and the shipped Punzi
configuration (the mass-parametrised net, deployed at the candidate's M_γγ).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from alps.config import AnalysisConfig
from models import train_models
from models.testing import write_toy_skims


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("physics")
    write_toy_skims(
        work / "skims",
        np.round(np.arange(0.2, 3.01, 0.1), 3),
        4000,
        {
            "ggg": 60000,
            "gg": 20000,
            "eeg": 20000,
            "mumug": 5000,
            "pi0g": 5000,
            "etag": 5000,
            "etapg": 5000,
        },
        seed=3,
    )
    config = AnalysisConfig.model_validate(
        {
            "training": {
                "bce_epochs": 30,
                "punzi_epochs": 60,
                "held_out_masses": 6,
                "compare_nets": False,
            }
        }
    )
    train_models(work / "skims", config, work, progress=False)
    return json.loads((work / "models" / "sensitivity.json").read_text())


def test_held_out_masses_within_ten_percent_of_their_neighbours(trained: dict) -> None:
    rows = trained["generalisation"]
    assert len(rows) == 6
    for row in rows:
        assert abs(row["ratio"] - 1) <= 0.10, row


def test_punzi_net_at_least_as_good_as_xgboost_at_its_best_cut(trained: dict) -> None:
    assert trained["chosen"] == "parametrised"
    mean = trained["mean_sigma_min_pb"]["parametrised"]
    xgb = trained["mean_sigma_min_pb"]["xgboost"]
    # over every mass of the scan (the trained and the unseen ones) and over the unseen ones
    assert mean["all"] <= xgb["all"]
    assert mean["held_out"] <= xgb["held_out"]
    # and the selection is worth having: well below σ_min without any selection
    assert mean["all"] < 0.8 * trained["mean_sigma_min_pb"]["no_selection"]["all"]


def test_no_worse_than_xgboost_at_every_held_out_mass(trained: dict) -> None:
    """Issue #13's goal at the masses no selection was trained on, mass by mass.

    (At the trained masses XGBoost stays ahead on this toy too, by 0-50%: see README.md,
    "The selection"; that part of the goal is not met and not asserted.)
    """
    goal = trained["goal_vs_xgboost_best_cut"]["parametrised"]
    assert goal["held_out_no_worse"] == goal["held_out_masses"] == 6, goal


def test_parametrised_net_does_not_sculpt_the_mass_spectrum(trained: dict) -> None:
    """The selected background is no more peaked at the trained masses than before selection."""
    core = trained["background_core_fraction"]
    assert core["parametrised"] <= core["no_selection"] + 0.03, core
