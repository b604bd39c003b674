"""Why the deployed Punzi net loses to XGBoost at some masses of a run (issue #13), with numbers.

Reads a work directory after ``alps train`` (its skims and ``models/punzi.pt``, ``xgboost.json``),
rebuilds the same validation split (``training`` section of ``--config``), scores it with both
selections and prints, per mass band (trained masses inside the search range):

- the fair comparison in the core windows m ± k σ_m (``training.fair_window_nsigma``): the net at
  the run's working point, at the best single cut for the core-window mean, and with a per-mass
  cut (chosen on the mass itself: optimistic; or on its four nearest trained neighbours without
  it: an honest mass-dependent working point), against XGBoost at its best cut; the count of
  masses significantly worse (z > 2, paired bootstrap) and the combined z for each;
- the score distributions of signal and background inside the core windows;
- the M_γγ sculpting: the share of the kept background of each ±N σ_m window that lies in its
  central fifth (0.2 for a flat spectrum; ``models.evaluate.background_core_fraction``);
- the mass-grid modulation: the background pass rate of each selection against the distance of
  the candidate's M_γγ to the nearest signal mass (in σ_m), for candidates nearest a trained and
  nearest a held-out mass (:func:`grid_pass_rates`; a selection that learned the grid of trained
  masses passes background near them more often than between them: on the default sample's
  0.25 GeV grid XGBoost does so above ~6 GeV, where the recoil photon fixes M_γγ within ~σ_m);
- the weight each band has in the seed's loss (mean σ_min in the ±N σ_m windows: a mass counts in
  proportion to its σ_min) against the mean-log combination (every mass alike).

Run: ``python -P docs/selection_diagnosis.py WORKDIR --config alps/data/full-2018.yaml [--json OUT]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from alps.config import load_config
from models.evaluate import background_core_fraction, core_window_table, per_mass_difference_std
from models.io import load_punzi, load_xgboost
from models.net import state_from_numpy
from models.param import with_hypothesis
from models.pipeline import load_training_sample, search_mask
from models.punzi import sigma_min
from models.train import net_scores
from models.working_point import CutScan, scan_cuts, scan_sigma_min
from models.xgb import xgboost_scores

__all__ = ["BANDS", "GRID_EDGES", "diagnose", "grid_pass_rates", "neighbour_cuts"]

#: mass bands (GeV) the summary is given in (trained masses inside the search range only); the
#: losers of the full-grid run lie in the middle one
BANDS: tuple[tuple[float, float], ...] = ((0.0, 1.5), (1.5, 6.0), (6.0, 9.6))


#: distance bins (in σ_m) of M_γγ to the nearest signal mass for :func:`grid_pass_rates`
GRID_EDGES: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 6.0, np.inf)


def grid_pass_rates(
    mgg: np.ndarray,
    weight: np.ndarray,
    passed: np.ndarray,
    grid: np.ndarray,
    sigma: np.ndarray,
    near_held_out: np.ndarray,
    band: tuple[float, float],
    edges: tuple[float, ...] = GRID_EDGES,
) -> dict[str, list[float]]:
    """Weighted pass rate of the background rows given (``mgg`` in ``band``) per bin of
    |M_γγ − nearest ``grid`` mass| / ``sigma`` (σ_m at M_γγ), for rows whose nearest mass is
    trained and held out (``near_held_out[k]`` flags grid mass k). NaN where a bin is empty.

    >>> r = grid_pass_rates(np.array([1.0, 1.5, 1.01]), np.ones(3), np.array([True, False, True]),
    ...                     np.array([1.0, 2.0]), np.full(3, 0.01), np.array([False, True]),
    ...                     (0.5, 2.5), (0.0, 2.0, np.inf))
    >>> r["trained"]
    [1.0, 0.0]
    """
    mgg = np.asarray(mgg, dtype=np.float64)
    k = np.argmin(np.abs(mgg[:, None] - np.asarray(grid)[None, :]), axis=1)
    dist = np.abs(mgg - grid[k]) / sigma
    inside = (mgg >= band[0]) & (mgg < band[1])
    out: dict[str, list[float]] = {}
    for label, held in (("trained", False), ("held_out", True)):
        rates = []
        for lo, hi in itertools.pairwise(edges):
            r = inside & (near_held_out[k] == held) & (dist >= lo) & (dist < hi)
            total = weight[r].sum()
            rates.append(float(weight[r & passed].sum() / total) if total > 0 else float("nan"))
        out[label] = rates
    return out


def neighbour_cuts(scan: CutScan, rows: np.ndarray, usable: np.ndarray, k: int = 4) -> np.ndarray:
    """Per-mass cut chosen without the mass itself: the cut among ``rows`` (scan row indices) with
    the lowest summed σ_min over the ``k`` nearest ``usable`` masses other than it."""
    idx = np.flatnonzero(usable)
    out = np.empty(scan.sigma.shape[1], dtype=np.int64)
    for j in range(scan.sigma.shape[1]):
        others = idx[idx != j]
        near = others[np.argsort(np.abs(others - j), kind="stable")[:k]]
        out[j] = rows[int(np.argmin(scan.sigma[np.ix_(rows, near)].sum(axis=1)))]
    return out


def _z(diff: np.ndarray, std: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, diff / np.where(std > 0, std, 1.0), 0.0)


def _summary(z: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    zm = z[mask & np.isfinite(z)]
    return {
        "worse_by_2std": int((zm > 2).sum()),
        "better_by_2std": int((zm < -2).sum()),
        "no_worse": float((zm <= 0).mean()) if len(zm) else float("nan"),
        "combined_z": float(zm.sum() / np.sqrt(len(zm))) if len(zm) else float("nan"),
        "masses": len(zm),
    }


def diagnose(
    workdir: Path,
    config: Any,
    replicas: int = 100,
    bands: tuple[tuple[float, float], ...] = BANDS,
) -> dict[str, Any]:
    """Every figure of the module docstring, as a dict (also printed as ``name: value`` lines).

    With ``training.evaluation_folds`` k the deployed models are fold 0's, so fold 0's events
    (which they never saw) are the validation split."""
    tc = config.training
    ab = (tc.punzi_a, tc.punzi_b)
    fold = (0, int(tc.evaluation_folds)) if tc.evaluation_folds else None
    sample = load_training_sample(
        workdir / "skims", config, features=list(tc.features), validation_fold=fold
    )
    masses, lumi = sample.masses, sample.luminosity_pb
    valid = sample.evaluation_set()
    spec, state, features, meta = load_punzi(workdir / "models")
    if tuple(features) != tuple(tc.features):
        raise ValueError(f"net features {features} differ from the config's {tc.features}")
    net = state_from_numpy(spec, state)
    hyp = meta.get("hypothesis_input")
    x = valid.features
    if hyp is not None:
        x = with_hypothesis(x, np.clip(valid.mgg, *hyp["range_GeV"]))
    s_net = net_scores(net, x).astype(np.float64)
    booster, _, _ = load_xgboost(workdir / "models" / "xgboost.json")
    s_xgb = xgboost_scores(booster, valid.features).astype(np.float64)
    wp = json.loads((workdir / "models" / "working_point.json").read_text())
    cut0 = float(wp["cut"])
    edges = np.asarray(config.histograms.score_edges, dtype=np.float64)

    held = masses.held_out
    trained = ~held & search_mask(masses.masses, config)
    m = masses.masses
    sig_rows = valid.trained_signal(masses)
    core = core_window_table(valid, masses, tc.window_nsigma, tc.fair_window_nsigma)
    scan_n = scan_sigma_min(core, s_net, lumi, scan_cuts(s_net[sig_rows], [*edges[:-1], cut0]), *ab)
    scan_x = scan_sigma_min(core, s_xgb, lumi, scan_cuts(s_xgb[sig_rows]), *ab)
    ix = int(np.argmin(scan_x.mean_sigma(trained)))
    x_cut = float(scan_x.cuts[ix])
    x_sigma = scan_x.sigma[ix]
    x_pass = s_xgb >= x_cut
    eff0, bkg0 = core.yields(np.ones(len(valid)))
    none = sigma_min(eff0, bkg0, lumi, *ab)
    out: dict[str, Any] = {
        "luminosity_pb": lumi,
        "masses_GeV": m.tolist(),
        "held_out": held.tolist(),
        "working_point": cut0,
        "xgboost_core_cut": x_cut,
        "bands": [list(b) for b in bands],
    }

    # --- the net at one cut, several cuts ------------------------------------------------------
    edge_rows = np.array([scan_n.at(e) for e in edges[:-1]])
    i_best = int(np.argmin(scan_n.mean_sigma(trained)))
    i_best_edge = edge_rows[int(np.argmin(scan_n.mean_sigma(trained)[edge_rows]))]
    options: dict[str, np.ndarray] = {
        f"net_at_working_point_{cut0:g}": np.full(len(m), scan_n.at(cut0)),
        "net_best_single_cut_core": np.full(len(m), i_best),
        "net_best_single_edge_core": np.full(len(m), i_best_edge),
        "net_per_mass_edge_same_events": edge_rows[np.argmin(scan_n.sigma[edge_rows], axis=0)],
        "net_per_mass_edge_from_neighbours": neighbour_cuts(scan_n, edge_rows, trained | held),
        "net_per_mass_any_cut_from_neighbours": neighbour_cuts(
            scan_n, np.arange(len(scan_n.cuts)), trained | held
        ),
    }
    std_cache: dict[int, np.ndarray] = {}

    def std_for(rows: np.ndarray) -> np.ndarray:
        res = np.empty(len(m))
        for r in np.unique(rows):
            if int(r) not in std_cache:
                std_cache[int(r)] = per_mass_difference_std(
                    core, s_net >= scan_n.cuts[r], x_pass, lumi, *ab, replicas=replicas,
                    seed=int(config.seed),
                )  # fmt: skip
            res[rows == r] = std_cache[int(r)][rows == r]
        return res

    out["options"] = {}
    for name, rows in options.items():
        sig = scan_n.sigma[rows, np.arange(len(m))]
        z = _z(sig - x_sigma, std_for(rows))
        entry: dict[str, Any] = {
            "cuts": scan_n.cuts[rows].tolist(),
            "sigma_min_pb": sig.tolist(),
            "z": z.tolist(),
            "mean_trained_pb": float(sig[trained].mean()),
            "mean_held_out_pb": float(sig[held].mean()),
            "trained": _summary(z, trained),
            "held_out": _summary(z, held),
        }
        for lo, hi in bands:
            band = trained & (m >= lo) & (m < hi)
            entry[f"band_{lo:g}_{hi:g}"] = {
                **_summary(z, band),
                "mean_pb": float(sig[band].mean()),
                "xgboost_mean_pb": float(x_sigma[band].mean()),
                "none_mean_pb": float(none[band].mean()),
                "median_cut": float(np.median(scan_n.cuts[rows][band])),
            }
        out["options"][name] = entry
        t, h = entry["trained"], entry["held_out"]
        print(
            f"{name}: trained mean {entry['mean_trained_pb']:.4g} pb, worse>2sd {t['worse_by_2std']}"
            f"/{t['masses']}, better {t['better_by_2std']}, no worse {t['no_worse']:.0%}, "
            f"z {t['combined_z']:+.2f}; held-out {entry['mean_held_out_pb']:.4g} pb, worse "
            f"{h['worse_by_2std']}/{h['masses']}, z {h['combined_z']:+.2f}"
        )
        for lo, hi in bands:
            b = entry[f"band_{lo:g}_{hi:g}"]
            print(
                f"  band {lo:g}-{hi:g} GeV ({b['masses']}): net {b['mean_pb']:.4g} xgb "
                f"{b['xgboost_mean_pb']:.4g} none {b['none_mean_pb']:.4g} pb; worse "
                f"{b['worse_by_2std']}, better {b['better_by_2std']}, z {b['combined_z']:+.2f}, "
                f"median cut {b['median_cut']:.3g}"
            )

    # --- score distributions in the core windows, per band ---------------------------------------
    dist_edges = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0 + 1e-9])
    sig_w = np.zeros(len(valid))
    sig_w[core.signal_rows] = core.signal_weight
    out["score_distribution"] = {"edges": dist_edges.tolist()}
    for label, s in (("net", s_net), ("xgboost", s_xgb)):
        k = np.clip(np.searchsorted(dist_edges, s, side="right") - 1, 0, len(dist_edges) - 2)
        per: dict[str, Any] = {}
        for lo, hi in bands:
            band = np.flatnonzero(trained & (m >= lo) & (m < hi))
            sel_s = valid.is_signal & np.isin(valid.mass_index, band)
            bk = np.zeros(len(valid), dtype=bool)
            for j in band:
                bk[core.background_rows[core.lo[j] : core.hi[j]]] = True
            hs = np.bincount(k[sel_s], sig_w[sel_s], len(dist_edges) - 1)
            hb = np.bincount(k[bk], valid.weight[bk], len(dist_edges) - 1)
            per[f"{lo:g}_{hi:g}"] = {
                "signal": (hs / hs.sum()).tolist(),
                "background": (hb / hb.sum()).tolist(),
            }
            print(
                f"{label}_scores band {lo:g}-{hi:g}: signal "
                + " ".join(f"{v:.3f}" for v in hs / hs.sum())
                + " | background "
                + " ".join(f"{v:.3f}" for v in hb / hb.sum())
            )
        out["score_distribution"][label] = per

    # --- M_γγ sculpting on the grid ----------------------------------------------------------------
    out["background_core_fraction"] = {}
    for label, passed in (
        ("xgboost", x_pass),
        ("net", s_net >= cut0),
        ("none", np.ones(len(valid), dtype=bool)),
    ):
        per_band = {}
        for lo, hi in bands:
            band = trained & (m >= lo) & (m < hi)
            per_band[f"{lo:g}_{hi:g}"] = background_core_fraction(valid, passed, masses, band)
        per_band["all"] = background_core_fraction(valid, passed, masses, trained)
        out["background_core_fraction"][label] = per_band
        print(
            f"background_core_fraction_{label}: "
            + " ".join(f"{k} {v:.3f}" for k, v in per_band.items())
        )

    # --- the mass-grid modulation of the background pass rate ------------------------------------
    bkg = ~valid.is_signal
    sigma_at = np.asarray(config.histograms.resolution.sigma(valid.mgg[bkg]), dtype=np.float64)
    out["grid_pass_rates"] = {"edges_sigma": [float(e) for e in GRID_EDGES]}
    for label, passed in (("xgboost", x_pass), ("net", s_net >= cut0)):
        per_band = {}
        for lo, hi in bands:
            r = grid_pass_rates(
                valid.mgg[bkg], valid.weight[bkg], passed[bkg], m, sigma_at, held, (lo, hi)
            )
            per_band[f"{lo:g}_{hi:g}"] = r
            print(
                f"grid_pass_rate_{label} band {lo:g}-{hi:g} (|M - nearest mass| in sigma_m "
                f"{', '.join(f'{a:g}' for a in GRID_EDGES[:-1])}+): trained "
                + " ".join(f"{v:.3f}" for v in r["trained"])
                + " | held-out "
                + " ".join(f"{v:.3f}" for v in r["held_out"])
            )
        out["grid_pass_rates"][label] = per_band

    # --- the weight of each band in the loss ---------------------------------------------------
    wide = valid.window_table(masses)
    scan_w = scan_sigma_min(wide, s_net, lumi, np.array([cut0]), *ab)
    s_wide = scan_w.sigma[0]
    e_w, b_w = wide.yields(np.ones(len(valid)))
    s_wide_none = sigma_min(e_w, b_w, lumi, *ab)
    out["loss_weight"] = {}
    for lo, hi in bands:
        band = trained & (m >= lo) & (m < hi)
        entry2 = {
            "count_share": float(band.sum() / trained.sum()),
            "mean_loss_share_net": float(s_wide[band].sum() / s_wide[trained].sum()),
            "mean_loss_share_none": float(s_wide_none[band].sum() / s_wide_none[trained].sum()),
            "wide_sigma_net_pb": float(s_wide[band].mean()),
            "wide_sigma_none_pb": float(s_wide_none[band].mean()),
            "core_over_wide_none": float((none[band] / s_wide_none[band]).mean()),
        }
        out["loss_weight"][f"{lo:g}_{hi:g}"] = entry2
        print(
            f"loss_weight band {lo:g}-{hi:g}: count share {entry2['count_share']:.3f}, share of the "
            f"mean loss (net) {entry2['mean_loss_share_net']:.3f} (no selection "
            f"{entry2['mean_loss_share_none']:.3f}); ±N σ_m σ_min net {entry2['wide_sigma_net_pb']:.3g}"
            f" none {entry2['wide_sigma_none_pb']:.3g} pb; core/wide (none) "
            f"{entry2['core_over_wide_none']:.3f}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="an alps work directory after `alps train`")
    parser.add_argument("--config", type=Path, default=None, help="the run's analysis YAML")
    parser.add_argument("--replicas", type=int, default=100, help="bootstrap replicas")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument(
        "--bands",
        default=None,
        help="band edges in GeV, comma-separated (default: "
        + ",".join(f"{b[0]:g}" for b in BANDS)
        + f",{BANDS[-1][1]:g})",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    bands = BANDS
    if args.bands:
        e = [float(v) for v in args.bands.split(",")]
        bands = tuple(itertools.pairwise(e))
    out = diagnose(args.workdir, load_config(args.config), args.replicas, bands)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
