"""The columns of the per-candidate parquet skims (``skims/<dataset>/*.parquet``) that the
selection stage reads: one row per diphoton candidate (three per selected event).

Event-level features are repeated for the three pairings of an event.
"""

from __future__ import annotations

__all__ = ["SKIM_BOOKKEEPING", "SKIM_CANDIDATE_FEATURES", "SKIM_COLUMNS", "SKIM_EVENT_FEATURES"]

#: identity, truth and weight of each candidate
SKIM_BOOKKEEPING = (
    "dataset", "period", "exp", "run", "event", "pair", "is_signal", "mc_ma", "truth_matched",
    "weight",
)  # fmt: skip
#: event-level features (after the kinematic fit)
SKIM_EVENT_FEATURES = (
    "E_high", "E_mid", "E_low", "u_high", "u_mid", "u_low", "t_high", "t_mid", "t_low",
    "cos_high", "cos_mid", "cos_low", "sphericity", "fw_r2", "thrust",
    *(f"cleo_cone{k}" for k in range(9)), "chi2", "fit_pvalue", "E_extra", "n_extra", "time_spread",
)  # fmt: skip
#: candidate-level features (one value per pairing)
SKIM_CANDIDATE_FEATURES = (
    "mgg", "mgg_raw", "E_recoil", "theta_recoil", "cos_helicity", "pair_asymmetry",
)  # fmt: skip
#: every column, in file order (``score`` follows when the skims are written with a model)
SKIM_COLUMNS = SKIM_BOOKKEEPING + SKIM_EVENT_FEATURES + SKIM_CANDIDATE_FEATURES
