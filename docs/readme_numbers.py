"""The README's physics numbers, read from an ``alps run`` work directory (issue 17.5).

Prints, one ``name: value unit`` line per figure, then a Markdown paragraph to paste:

- the diphoton-mass resolution of truth-matched signal before and after the kinematic fit at the
  simulated masses next to 0.2, 1, 3, 5 and 9 GeV (both neighbours of 3 GeV): half the central
  68% interval of M_gg / m_a - 1 times m_a, from the ``mass_resolution`` histogram of
  ``histograms/mgg.hist.zip``, exactly as the report's ``mass_resolution.png`` computes it;
- the expected (median) and observed 95% CL limits on g_agg at the scan masses nearest to
  0.3, 1, 3, 5 and 9 GeV, from ``limits/limits.json``;
- the largest local significance, where it is, its global significance and the upcrossings;
- the working point, the luminosity and the scan size;
- the pseudo-data over the MC and the chi2/ndf per M_gg range (``report/composition.json``);
- the expected limits per mass range against the 1e-3 GeV^-1 level of the Belle II 2018 result
  (Phys. Rev. Lett. 125 (2020) 161806, physics.md "The search"): the median, smallest and largest
  ratio g_expected / 1e-3 over the scan masses of each range.

Run: ``python docs/readme_numbers.py --workdir alps-output``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from alps.histio import read_histograms
from alps.plots import resolution_widths

#: masses (GeV) at which the README quotes the resolution and the limits
RESOLUTION_MASSES = (0.2, 1.0, 3.0, 5.0, 9.0)
LIMIT_MASSES = (0.3, 1.0, 3.0, 5.0, 9.0)
#: mass ranges (GeV) of the comparison with the 2018 result
RANGES = ((0.2, 1.0), (1.0, 4.0), (4.0, 7.0), (7.0, 9.7))
BELLE2_2018_LEVEL = 1.0e-3  # GeV^-1, physics.md


def resolution_table(workdir: Path) -> list[dict[str, float]]:
    """m_a, raw and fitted widths (MeV) for every simulated mass (:func:`alps.plots.resolution_widths`)."""
    h = read_histograms(workdir / "histograms" / "mgg.hist.zip", names=["mass_resolution"])[
        "mass_resolution"
    ]
    return resolution_widths(h)


def _pick_resolution(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    masses = np.array([r["mass_GeV"] for r in rows])
    picked: list[int] = []
    for target in RESOLUTION_MASSES:
        below, above = masses[masses <= target], masses[masses >= target]
        near = {int(np.argmin(abs(masses - target)))}
        if target == 3.0 and len(below) and len(above):
            near = {
                int(np.argmin(abs(masses - below.max()))),
                int(np.argmin(abs(masses - above.min()))),
            }
        picked += sorted(i for i in near if i not in picked)
    return [rows[i] for i in picked]


def numbers(workdir: Path) -> dict[str, Any]:
    limits = json.loads((workdir / "limits" / "limits.json").read_text())
    masses = np.asarray(limits["masses_GeV"])
    exp = np.array([np.nan if e is None else e[2] for e in limits["expected"]["g_GeV-1"]])
    obs = np.array([np.nan if o is None else o for o in limits["observed"]["g_GeV-1"]])
    free = np.isfinite(exp)
    at = []
    for target in LIMIT_MASSES:
        i = int(np.nanargmin(np.where(free, abs(masses - target), np.nan)))
        at.append(
            {"mass_GeV": float(masses[i]), "expected": float(exp[i]), "observed": float(obs[i])}
        )
    ranges = []
    for lo, hi in RANGES:
        inside = free & (masses >= lo) & (masses < hi)
        ratio = exp[inside] / BELLE2_2018_LEVEL
        ranges.append(
            {
                "range_GeV": (lo, hi),
                "median": float(np.median(ratio)),
                "min": float(ratio.min()),
                "max": float(ratio.max()),
                "observed_median": float(np.nanmedian(obs[inside] / BELLE2_2018_LEVEL)),
            }
        )
    lee = limits["look_elsewhere"]
    composition = json.loads((workdir / "report" / "composition.json").read_text())
    return {
        "datamc": [
            {k: row[k] for k in ("range_GeV", "data_over_mc", "chi2", "ndf")} for row in composition
        ],
        "resolution": _pick_resolution(resolution_table(workdir)),
        "limits": at,
        "ranges": ranges,
        "lee": lee,
        "working_point": limits["working_point"],
        "luminosity_fb": limits["luminosity_fb-1"],
        "scan_masses": int(free.sum()),
    }


def _sci(x: float) -> str:
    exponent = int(np.floor(np.log10(x)))
    return f"{x / 10**exponent:.2g} × 10^{exponent}"


def markdown(n: dict[str, Any]) -> str:
    res = ", ".join(
        f"{r['sigma_raw_MeV']:.1f} → {r['sigma_fit_MeV']:.1f} MeV at {r['mass_GeV']:g} GeV"
        for r in n["resolution"]
    )
    lim = ", ".join(
        f"{_sci(r['expected'])} ({_sci(r['observed'])}) at {r['mass_GeV']:.3g} GeV"
        for r in n["limits"]
    )
    cmp_ = "; ".join(
        f"{lo:g}–{hi:g} GeV: {r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})"
        for r in n["ranges"]
        for lo, hi in [r["range_GeV"]]
    )
    lee = n["lee"]
    datamc = "; ".join(
        f"{r['range_GeV'][0]:g}–{r['range_GeV'][1]:g} GeV: data/MC {r['data_over_mc']:.3f}, "
        f"χ²/ndf {r['chi2']:.0f}/{r['ndf']}"
        for r in n["datamc"]
    )
    return (
        f"Pseudo-data against the LO MC (report/composition.json): {datamc}. "
        f"Mass resolution of truth-matched signal, half the central 68% of M_γγ, before → after "
        f"the kinematic fit: {res}. Expected (observed) 95% CL limits on g_aγγ in GeV^-1: {lim}. "
        f"Expected limit / 10^-3 GeV^-1 (the level of the Belle II 2018 result), median (range) "
        f"over the scan masses: {cmp_}. Largest local excess {lee['z_local_max']:.1f}σ at "
        f"{lee['mass_at_max']:.4g} GeV, {lee['z_global']:.1f}σ globally (Gross–Vitells, "
        f"{lee['upcrossings']:.0f} upcrossings of q0 = {lee['reference_level']}); "
        f"{n['scan_masses']} scan masses; working point {n['working_point']}; "
        f"{n['luminosity_fb']:.3f} fb^-1."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="alps-output", type=Path)
    args = parser.parse_args()
    n = numbers(args.workdir)
    for r in n["resolution"]:
        m = f"{r['mass_GeV']:g}"
        print(f"resolution_raw_{m}GeV: {r['sigma_raw_MeV']:.1f} MeV")
        print(f"resolution_fit_{m}GeV: {r['sigma_fit_MeV']:.1f} MeV")
    for r in n["limits"]:
        m = f"{r['mass_GeV']:.4g}"
        print(f"g_expected_{m}GeV: {r['expected']:.3e} GeV^-1")
        print(f"g_observed_{m}GeV: {r['observed']:.3e} GeV^-1")
    for r in n["ranges"]:
        lo, hi = r["range_GeV"]
        print(f"g_expected_over_1e-3_{lo:g}-{hi:g}GeV: {r['median']:.2f} (median), "
              f"{r['min']:.2f}-{r['max']:.2f}")  # fmt: skip
    for r in n["datamc"]:
        lo, hi = r["range_GeV"]
        print(f"data_over_mc_{lo:g}-{hi:g}GeV: {r['data_over_mc']:.3f}, "
              f"chi2/ndf {r['chi2']:.1f}/{r['ndf']}")  # fmt: skip
    lee = n["lee"]
    print(f"z_local_max: {lee['z_local_max']:.2f} sigma at {lee['mass_at_max']:.4f} GeV")
    print(f"z_global: {lee['z_global']:.2f} sigma ({lee['upcrossings']:.0f} upcrossings)")
    print(f"working_point: {n['working_point']}")
    print(f"scan_masses: {n['scan_masses']}")
    print()
    print(markdown(n))


if __name__ == "__main__":
    main()
