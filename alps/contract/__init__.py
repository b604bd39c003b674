"""The contracts between the stages, on the ground floor: this package imports no stage.

Sample naming (:mod:`.samples`), the table of systematic variations (:mod:`.variations`), the
histogram names and axes (:mod:`.histograms`), the skim columns (:mod:`.skims`), the production
manifest with sqrt(s) per run block (:mod:`.manifest`) and the scorer protocol
(:mod:`.scoring`). Every package may import it; it imports only ``alps.config`` at most
(enforced by import-linter, see ``pyproject.toml``).
"""

from __future__ import annotations

from .histograms import (
    CUTFLOW,
    FEATURE_BINNING,
    GENERATED,
    HISTOGRAM_FILES,
    MGG,
    MGG_SCORE,
    TRUTH_CLASSES,
    make_histograms,
)
from .manifest import MANIFEST_FILE, BlockFacts, Manifest, ManifestError, ManifestFile
from .samples import DATA_SAMPLE, SIGNAL_PREFIX, is_data, is_signal, signal_mass, signal_sample
from .scoring import ScorerLike
from .skims import SKIM_BOOKKEEPING, SKIM_CANDIDATE_FEATURES, SKIM_COLUMNS, SKIM_EVENT_FEATURES
from .variations import NOMINAL, VARIATIONS, Variation, variation_names

__all__ = [
    "CUTFLOW",
    "DATA_SAMPLE",
    "FEATURE_BINNING",
    "GENERATED",
    "HISTOGRAM_FILES",
    "MANIFEST_FILE",
    "MGG",
    "MGG_SCORE",
    "NOMINAL",
    "SIGNAL_PREFIX",
    "SKIM_BOOKKEEPING",
    "SKIM_CANDIDATE_FEATURES",
    "SKIM_COLUMNS",
    "SKIM_EVENT_FEATURES",
    "TRUTH_CLASSES",
    "VARIATIONS",
    "BlockFacts",
    "Manifest",
    "ManifestError",
    "ManifestFile",
    "ScorerLike",
    "Variation",
    "is_data",
    "is_signal",
    "make_histograms",
    "signal_mass",
    "signal_sample",
    "variation_names",
]
