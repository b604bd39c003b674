"""Selection for the ALP → γγ search: Punzi net, XGBoost baseline, feature ranking, working point.

Abudinen et al., Eur. Phys. J. C 82 (2022) 121; Punzi, arXiv:physics/0308063. The pipeline calls
:func:`train_models` (skims → model files, working point, σ_min table) and :func:`load_scorer`
(model files → a picklable scorer for the processor's workers).
"""

from __future__ import annotations

from .cuts import RectangularCuts, optimise_cuts
from .data import event_uniform, feature_columns, load_selection_sample, read_summary, skim_files
from .evaluate import SelectionSigma, Sensitivity, deployed_scores, goal_check, scan_at_hypothesis
from .grid import GridPoint, GridResult, evaluate_config, expand_grid, grid_search
from .io import load_punzi, load_xgboost, save_punzi, save_xgboost, write_json
from .net import NetSpec, ScoreNet, build_net, resolve_device
from .param import HypothesisPairs, hypothesis_pairs, with_hypothesis
from .pipeline import TrainingResult, train_models
from .punzi import (
    combine_sigma,
    grouped_sum,
    punzi_loss,
    punzi_loss_indexed,
    s_min,
    sigma_min,
    sigma_min_torch,
    soft_cut,
)
from .ranking import FeatureImportance, Ranking, rank_features
from .sample import Candidates, MassPoints, SelectionSample, choose_held_out, training_weights
from .scorer import Scorer, XGBoostScorer, load_scorer
from .train import PunziFit, TrainingHistory, net_scores, train_punzi_net
from .windows import WindowTable, efficiency_weights, indexed_scan, mass_windows
from .working_point import (
    CutScan,
    WorkingPoint,
    bootstrap_difference,
    choose_working_point,
    scan_cuts,
    scan_sigma_min,
)
from .xgb import gain_importance, train_xgboost, xgboost_scores

__all__ = [
    "Candidates",
    "CutScan",
    "FeatureImportance",
    "GridPoint",
    "GridResult",
    "HypothesisPairs",
    "MassPoints",
    "NetSpec",
    "PunziFit",
    "Ranking",
    "RectangularCuts",
    "ScoreNet",
    "Scorer",
    "SelectionSample",
    "SelectionSigma",
    "Sensitivity",
    "TrainingHistory",
    "TrainingResult",
    "WindowTable",
    "WorkingPoint",
    "XGBoostScorer",
    "bootstrap_difference",
    "build_net",
    "choose_held_out",
    "choose_working_point",
    "combine_sigma",
    "deployed_scores",
    "efficiency_weights",
    "evaluate_config",
    "event_uniform",
    "expand_grid",
    "feature_columns",
    "gain_importance",
    "goal_check",
    "grid_search",
    "grouped_sum",
    "hypothesis_pairs",
    "indexed_scan",
    "load_punzi",
    "load_scorer",
    "load_selection_sample",
    "load_xgboost",
    "mass_windows",
    "net_scores",
    "optimise_cuts",
    "punzi_loss",
    "punzi_loss_indexed",
    "rank_features",
    "read_summary",
    "resolve_device",
    "s_min",
    "save_punzi",
    "save_xgboost",
    "scan_at_hypothesis",
    "scan_cuts",
    "scan_sigma_min",
    "sigma_min",
    "sigma_min_torch",
    "skim_files",
    "soft_cut",
    "train_models",
    "train_punzi_net",
    "train_xgboost",
    "training_weights",
    "with_hypothesis",
    "write_json",
    "xgboost_scores",
]
