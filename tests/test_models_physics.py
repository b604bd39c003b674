"""The selection's physics claims on a toy with the seed's structure (about a minute).

29 ALP masses 0.2–3.0 GeV in 0.1 GeV steps (4000 events each), six held out, with γγγ, γγ,
e+e-γ, μ+μ-γ and π0/η/η'γ backgrounds (``models.testing``); the seed's network
(10 × 30 LeakyReLU) with shortened training (30 BCE + 60 Punzi epochs) and the shipped Punzi
configuration (the mass-parametrised net, deployed at the candidate's M_γγ, with the shipped
default's ``training.loss_combination``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from alps.config import AnalysisConfig, load_config
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
                # the shipped default's loss (default.yaml), so this tests what ships
                "loss_combination": load_config(None).training.loss_combination,
            }
        }
    )
    train_models(work / "skims", config, work, progress=False)
    out = json.loads((work / "models" / "sensitivity.json").read_text())
    out["_working_point"] = json.loads((work / "models" / "working_point.json").read_text())
    return out


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
    """Issue #13's goal at the masses no selection was trained on, mass by mass (±10σ windows).

    (At the trained masses XGBoost stays ahead in the ±10σ window count by cutting the window's
    outer background on M_γγ; the core-window test below compares on equal footing.)
    """
    goal = trained["goal_vs_xgboost_best_cut"]["parametrised"]
    assert goal["held_out_no_worse"] == goal["held_out_masses"] == 6, goal


def test_parametrised_net_does_not_sculpt_the_mass_spectrum(trained: dict) -> None:
    """The selected background is no more peaked at the trained masses than before selection."""
    core = trained["background_core_fraction"]
    assert core["parametrised"] <= core["no_selection"] + 0.03, core


def test_no_worse_than_xgboost_in_the_core_windows(trained: dict) -> None:
    """The fair comparison (only the background under the peak, ±2σ_m): the chosen net is no
    worse than XGBoost at its best cut, on average over the trained and over the held-out masses,
    and XGBoost's lead at trained masses in the ±10σ count comes from outside the core."""
    fair = trained["fair_core_window"]
    assert fair["core_window_nsigma"] == 2.0
    mean = fair["mean_sigma_min_pb"]
    assert mean["parametrised"]["trained"] <= mean["xgboost"]["trained"], mean
    assert mean["parametrised"]["held_out"] <= mean["xgboost"]["held_out"], mean
    goal = fair["goal_vs_xgboost_best_cut"]["parametrised"]
    wide = trained["goal_vs_xgboost_best_cut"]["parametrised"]
    assert goal["trained_fraction_no_worse"] > wide["trained_fraction_no_worse"] + 0.3, (goal, wide)


def test_no_mass_significantly_worse_than_xgboost_in_the_core_windows(trained: dict) -> None:
    """Issue #13's goal mass by mass, in its honest form. Two selections of equal sensitivity
    are each strictly "no worse" at only about half of the masses, so the test is: in the core
    windows the net is worse than XGBoost at its best cut by more than two paired-bootstrap std
    at no mass, trained or held out, better on average at both (combined z < 0), and strictly no
    worse at more than half of the trained masses. (Strictly no worse at every held-out mass is
    tested in the ±10σ windows above; in the core windows the toy gives 5 of 6, the sixth
    within the statistical error.)"""
    fair = trained["fair_core_window"]
    sig = fair["no_worse_within_two_std"]["parametrised"]
    assert sig["trained_worse_by_2std"] == 0 and sig["held_out_worse_by_2std"] == 0, sig
    assert sig["trained_combined_z"] < 0 and sig["held_out_combined_z"] < 0, sig
    goal = fair["goal_vs_xgboost_best_cut"]["parametrised"]
    assert goal["trained_fraction_no_worse"] > 0.5, goal


def test_working_point_is_the_tightest_edge_of_the_plateau_and_cuts(trained: dict) -> None:
    """The net's scores saturate, so the σ_min curve is flat over the middle score edges; the
    chosen edge is the tightest on that plateau, and it removes most of the background while
    keeping most of the signal (the net does select)."""
    wp = trained["_working_point"]
    assert wp["cut"] == max(wp["plateau"]) and len(wp["plateau"]) >= 3, wp["plateau"]
    k = wp["score_edges"].index(wp["cut"])
    dist = wp["score_distribution"]["parametrised"]
    assert sum(dist["signal"][k:]) > 0.5 and sum(dist["background"][k:]) < 0.2, dist
    # and the score is saturated: little of either between the lowest and the chosen edge
    assert sum(dist["signal"][1:k]) < 0.1 and sum(dist["background"][1:k]) < 0.05, dist
