"""The histograms the processor fills: the contract with every later stage (design.md).

``mgg`` (and ``mgg_score`` when a model is given) has the axes dataset, period, variation, truth,
mgg [, score]; the others monitor the reconstruction (cutflow, generated weights, kinematic-fit
pulls and chi2, the mass resolution of signal, feature distributions)
(the trigger turn-on is measured in the calibration pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hist

from .variations import NOMINAL

__all__ = [
    "CUTFLOW",
    "FEATURE_BINNING",
    "GENERATED",
    "HISTOGRAM_FILES",
    "MGG",
    "MGG_SCORE",
    "TRUTH_CLASSES",
    "make_histograms",
]

#: the main histograms' names (``mgg_score`` has the score axis as well)
MGG, MGG_SCORE = "mgg", "mgg_score"
#: weighted events after each cut, and the generated weight per dataset and period
CUTFLOW, GENERATED = "cutflow", "generated"
#: the process stage's file (no model) and the score stage's (with a model), under histograms/
HISTOGRAM_FILES = {"process": "mgg.hist.zip", "score": "mgg_score.hist.zip"}
#: categories of the truth axis: both photons of the pairing from the ALP, or not
TRUTH_CLASSES = ("matched", "unmatched")

#: features monitored for data/MC comparisons: name -> (bins, low, high); every input of the
#: default net (``training.features``) is among them (u, t in GeV^2: 2u = E^2 (1 + cos theta*))
FEATURE_BINNING = {
    "E_high": (40, 3.0, 6.0),
    "E_mid": (40, 0.0, 5.5),
    "E_low": (40, 0.0, 3.0),
    "u_high": (40, 0.0, 30.0),
    "t_high": (40, 0.0, 30.0),
    "theta_recoil": (40, 0.2, 2.7),
    "E_recoil": (50, 0.0, 5.5),
    "chi2": (40, 0.0, 40.0),
    "sphericity": (40, 0.0, 1.0),
    "fw_r2": (40, 0.0, 1.0),
    "thrust": (40, 0.6, 1.0),
    "cleo_cone0": (40, 0.0, 1.0),
    "cos_helicity": (20, 0.0, 1.0),
    "E_extra": (40, 0.0, 1.0),
}


def _categories() -> list[hist.axis.StrCategory]:
    return [
        hist.axis.StrCategory([], growth=True, name="dataset", label="Dataset"),
        hist.axis.StrCategory([], growth=True, name="period", label="Run period"),
    ]


def make_histograms(
    mass_edges: Sequence[float], score_edges: Sequence[float] | None
) -> dict[str, hist.Hist]:
    """Empty histograms of one chunk (category axes grow as they are filled)."""
    mass_axis = hist.axis.Variable(mass_edges, name="mgg", label=r"$M_{\gamma\gamma}$ [GeV]")
    main_axes: list[Any] = [
        *_categories(),
        hist.axis.StrCategory([NOMINAL], growth=True, name="variation", label="Variation"),
        hist.axis.StrCategory(list(TRUTH_CLASSES), name="truth", label="Truth match"),
        mass_axis,
    ]
    out = {MGG: hist.Hist(*main_axes, storage=hist.storage.Weight())}
    if score_edges is not None:
        # no flow bins where nothing can land (issue 12): the truth classes are the two of
        # TRUTH_CLASSES, and the scores, clipped to [0, 1), fall below the first score edge
        # only when it is above 0 and above the last only when it is below 1 (a NaN score is
        # not filled). With the default edges [0, ..., 1] the dense histogram is 2/3 x 8/10
        # of its size with flow bins, every filled bin the same.
        edges = [float(e) for e in score_edges]
        out[MGG_SCORE] = hist.Hist(
            *main_axes[:3],
            hist.axis.StrCategory(list(TRUTH_CLASSES), name="truth", label="Truth match", overflow=False),
            mass_axis,
            hist.axis.Variable(
                edges, name="score", label="Selection score", underflow=edges[0] > 0.0,
                overflow=edges[-1] < 1.0,
            ),
            storage=hist.storage.Weight(),
        )  # fmt: skip
    out[CUTFLOW] = hist.Hist(
        *_categories(),
        hist.axis.StrCategory([], growth=True, name="cut", label="Cut"),
        storage=hist.storage.Weight(),
    )
    out[GENERATED] = hist.Hist(*_categories(), storage=hist.storage.Weight())
    out["kinfit_pull"] = hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.StrCategory(["E", "theta", "phi"], name="quantity"),
        hist.axis.Regular(60, -6.0, 6.0, name="pull", label="Pull"),
        storage=hist.storage.Weight(),
    )
    out["kinfit_chi2"] = hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.Regular(60, 0.0, 30.0, name="chi2", label=r"$\chi^2$"),
        hist.axis.Regular(20, 0.0, 1.0, name="pvalue", label="p-value"),
        storage=hist.storage.Weight(),
    )
    out["mass_resolution"] = hist.Hist(
        hist.axis.StrCategory([], growth=True, name="dataset"),
        hist.axis.StrCategory(["raw", "fit"], name="kind"),
        hist.axis.Regular(400, -0.2, 0.2, name="residual", label=r"$M_{\gamma\gamma}/m_a - 1$"),
        storage=hist.storage.Weight(),
    )
    for name, (bins, lo, hi) in FEATURE_BINNING.items():
        out[f"feature_{name}"] = hist.Hist(
            *_categories(),
            hist.axis.Regular(bins, lo, hi, name="value", label=name),
            storage=hist.storage.Weight(),
        )
    return out
