"""The look-elsewhere correction on the resolution grid: toy scans against Gross-Vitells (#18).

On one set of histograms (an ``alps run`` work directory with ``--workdir``, else the synthetic
file of :mod:`limits.testing` that ``benchmarks/limits.py`` scans), the scan masses of the
configuration (steps of sigma_m / 2 over [0.2, 9.7] GeV outside the meson vetoes: 1112 masses on
the default) are built as in the limits stage, and background-only toy scans are drawn around the
stitched mu = 0 fits (:func:`limits.toys.scan_toys`, what ``limits.lee_method: toys`` runs). Each
toy is analysed like the data: one signed local Z per mass. Printed, one ``name: value unit``
line per figure:

- the mean number of upcrossings of q0 = 0.5 per toy scan against the count on the observed scan
  (Gross & Vitells, Eur. Phys. J. C 70 (2010) 525, their Sec. 3: either estimates <N(u0)>);
- the tail of the toys' largest local Z, P(Z_max >= c) for c = 1.5 ... 3.5, against the
  Gross-Vitells formula p = P(chi2_1 > c^2) / 2 + <N(u0)> exp(-(c^2 - u0) / 2) (their Eq. 2) with
  the toys' mean <N(u0)>, each with its binomial error;
- for the observed largest excess: the local p, the global p from the toys (the fraction of toys
  reaching it), from Gross-Vitells with the observed and with the toys' upcrossings, and the
  trials factors p_global / p_local.

The toys cost one discovery fit per mass and toy; ``--quick`` scans only the masses in
[4.0, 5.0] GeV of the synthetic file with 20 toys (under a minute on 2 cores).

Run: ``python -P benchmarks/lee.py [--quick] [--workdir alps-output --toys 100]``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, LocalCluster
from scipy.special import ndtr

from alps.config import AnalysisConfig, load_config
from limits.cls import HypothesisTester
from limits.grid import scan_masses
from limits.inputs import project_histograms
from limits.interpolation import ShapeModel
from limits.io import read_json, read_spectra
from limits.likelihood import compile_workspace
from limits.mass_model import excluded_regions
from limits.mass_points import build_mass_points
from limits.signal_model import build_shape_model
from limits.significance import count_upcrossings, discovery, global_from_toys, gross_vitells
from limits.testing import make_histograms
from limits.toys import null_spectrum, scan_toys

SIGNAL_MASSES = [0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
REFERENCE_LEVEL = 0.5
THRESHOLDS = (1.5, 2.0, 2.5, 3.0, 3.5)


def _observed_z(specs: list[dict[str, Any]]) -> list[float]:
    out = []
    for spec in specs:
        model = compile_workspace(spec)
        out.append(discovery(HypothesisTester(model, model.observed, model.aux_nominal)).z)
    return out


def _inputs(args: argparse.Namespace, cfg: AnalysisConfig) -> tuple[Any, ShapeModel, str]:
    if args.workdir is not None:
        work = Path(args.workdir)
        limits = read_json(work / "limits" / "limits.json")
        spectra = read_spectra(work / "histograms" / "mgg_score.hist.zip", limits["working_point"])
        shapes = ShapeModel.from_dict(read_json(work / "shapes" / "shapes.json"))
        return spectra, shapes, f"workdir {work}"
    hists, prov, _ = make_histograms(cfg, seed=5, signal_masses=SIGNAL_MASSES, events_per_mass=2000)
    spectra = project_histograms(hists, prov, working_point=0.5)
    return spectra, build_shape_model(spectra, cfg), "synthetic (limits.testing, seed 5)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4-5 GeV, 20 toys, synthetic")
    parser.add_argument("--workdir", default=None, help="an alps run's work directory")
    parser.add_argument("--config", default=None, help="its configuration (default: shipped)")
    parser.add_argument("--toys", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n_toys = args.toys or (20 if args.quick else 100)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    cfg = load_config(args.config)
    spectra, shapes, source = _inputs(args, cfg)
    masses = np.asarray(scan_masses(cfg))
    if args.quick:
        masses = masses[(masses >= 4.0) & (masses <= 5.0)]
    regions = excluded_regions(cfg)
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=":0", processes=True
        ) as cluster,
        Client(cluster) as client,
    ):
        t0 = time.perf_counter()
        points = build_mass_points(masses, spectra, shapes, cfg, client=client)
        specs = [p.spec for p in points]
        windows = [list(p.window_bins) for p in points]
        ok = [p.mass for p in points]
        batch = max(1, len(specs) // (4 * args.workers))
        chunks = [specs[i : i + batch] for i in range(0, len(specs), batch)]
        z_obs = np.concatenate(
            [f.result() for f in client.map(_observed_z, chunks, pure=False)]
        ).astype(float)
        t_build = time.perf_counter() - t0
        null = null_spectrum(specs, windows, len(spectra.edges) - 1)
        t0 = time.perf_counter()
        toys = scan_toys(specs, windows, null, n_toys, args.seed, client=client)
        t_toys = time.perf_counter() - t0

    segment = np.cumsum(
        [0] + [int(any(a < lo < b for lo, _ in regions)) for a, b in itertools.pairwise(ok)]
    )
    z_max = np.array([t[0] for t in toys])
    n_up = np.array(
        [count_upcrossings(np.maximum(t[1], 0.0) ** 2, REFERENCE_LEVEL, segment) for t in toys]
    )
    mean_up = float(n_up.mean())
    print(f"source: {source}")
    print(f"masses_scanned: {len(ok)} masses")
    print(f"toys: {n_toys} toy scans")
    print(f"build_and_observed_scan_{args.workers}workers: {t_build:.1f} s")
    print(f"toy_scan_{args.workers}workers: {t_toys / n_toys:.2f} s per toy")
    print(f"upcrossings_toys_mean: {mean_up:.1f} +- {n_up.std(ddof=1) / np.sqrt(n_toys):.1f}")
    gv_obs = gross_vitells(z_obs, ok, segment, reference_level=REFERENCE_LEVEL)
    print(f"upcrossings_observed: {gv_obs.upcrossings:.0f}")
    for c in THRESHOLDS:
        frac = float(np.mean(z_max >= c))
        err = float(np.sqrt(max(frac * (1 - frac), 1.0 / n_toys) / n_toys))
        gv = min(1.0, float(ndtr(-c)) + mean_up * float(np.exp(-(c * c - REFERENCE_LEVEL) / 2)))
        print(f"p_zmax_ge_{c:.1f}_toys: {frac:.3f} +- {err:.3f}")
        print(f"p_zmax_ge_{c:.1f}_gross_vitells: {gv:.3f}")
    gv_toymean = gross_vitells(
        z_obs, ok, segment, reference_level=REFERENCE_LEVEL, upcrossings=mean_up
    )
    by_toys = global_from_toys(z_obs, ok, z_max)
    k = int(np.sum(z_max >= by_toys.z_local_max))
    print(f"observed_z_local_max: {gv_obs.z_local_max:.2f} sigma at {gv_obs.mass_at_max:.4f} GeV")
    print(f"observed_p_local: {gv_obs.p_local:.2e}")
    print(f"observed_p_global_toys: {by_toys.p_global:.3f} ({k}/{n_toys} toys)")
    print(f"observed_p_global_gross_vitells_observed_upcrossings: {gv_obs.p_global:.3f}")
    print(f"observed_p_global_gross_vitells_toy_upcrossings: {gv_toymean.p_global:.3f}")
    for name, g in (("toys", by_toys), ("gross_vitells", gv_obs)):
        trials = g.p_global / g.p_local if g.p_local > 0 else float("nan")
        print(f"trials_factor_{name}: {trials:.1f}")
        print(f"observed_z_global_{name}: {g.z_global:.2f} sigma")


if __name__ == "__main__":
    main()
