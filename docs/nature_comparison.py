"""The limits and the background composition with the pseudo-data's "nature" on and off (#17).

Two ``alps run`` work directories of the same configuration, one with
``simulation.data.nature.enabled: true`` (the default: beyond-LO components and detector effects
the MC does not know, docs/background_model.md) and one with it off (pseudo-data drawn from the
MC's own processes). Per M_gg range it prints, as ``name: value`` lines and as a Markdown table:

- the ratio on/off of the expected (median) and observed 95% CL g limits over the scan masses of
  the range (median, and the 16th-84th percentiles);
- the MC background composition (``report/composition.json``, the nominal selection before the
  score cut): the shares of the largest backgrounds, with nature on and off (the MC is the same
  LO sample; only the data-driven corrections differ);
- the pseudo-data over the MC and the chi2/ndf of data against MC in the range; (data - MC) / data
  is the share of the pseudo-data that the LO MC does not describe.

Run: ``python docs/nature_comparison.py --on alps-output --off alps-output-nature-off``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

RANGES = ((0.2, 1.0), (1.0, 4.0), (4.0, 9.7))  # those of alps/composition.py


def _limits(workdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    result = json.loads((workdir / "limits" / "limits.json").read_text())
    masses = np.asarray(result["masses_GeV"])
    exp = np.array([np.nan if e is None else e[2] for e in result["expected"]["g_GeV-1"]])
    obs = np.array([np.nan if o is None else o for o in result["observed"]["g_GeV-1"]])
    return masses, exp, obs


def _composition(workdir: Path) -> list[dict[str, Any]]:
    return list(json.loads((workdir / "report" / "composition.json").read_text()))


def _shares(row: dict[str, Any], top: int = 3) -> str:
    items = sorted(row["share"].items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{k} {100 * v:.1f}%" for k, v in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--on", required=True, type=Path, help="work directory, nature on")
    parser.add_argument("--off", required=True, type=Path, help="work directory, nature off")
    args = parser.parse_args()
    m_on, exp_on, obs_on = _limits(args.on)
    m_off, exp_off, obs_off = _limits(args.off)
    if not np.array_equal(m_on, m_off):
        raise SystemExit("the two runs scanned different masses")
    lines = [
        "| M_γγ range | expected g on/off | observed g on/off | MC composition | data/MC, χ²/ndf: "
        "nature off | nature on | (data − MC)/data, on |",
        "|---|---|---|---|---|---|---|",
    ]
    comp_on = {tuple(r["range_GeV"]): r for r in _composition(args.on)}
    comp_off = {tuple(r["range_GeV"]): r for r in _composition(args.off)}
    for lo, hi in RANGES:
        inside = (m_on >= lo) & (m_on < hi) & np.isfinite(exp_on) & np.isfinite(exp_off)
        re = exp_on[inside] / exp_off[inside]
        ro = obs_on[inside] / obs_off[inside]
        tag = f"{lo:g}-{hi:g}GeV"
        print(f"expected_g_ratio_on_off_{tag}: {np.median(re):.3f} "
              f"({np.percentile(re, 16):.3f}-{np.percentile(re, 84):.3f})")  # fmt: skip
        print(f"observed_g_ratio_on_off_{tag}: {np.nanmedian(ro):.3f} "
              f"({np.nanpercentile(ro, 16):.3f}-{np.nanpercentile(ro, 84):.3f})")  # fmt: skip
        cells = [f"{lo:g}–{hi:g} GeV",
                 f"{np.median(re):.3f} ({np.percentile(re, 16):.3f}–{np.percentile(re, 84):.3f})",
                 f"{np.nanmedian(ro):.3f} ({np.nanpercentile(ro, 16):.3f}–{np.nanpercentile(ro, 84):.3f})"]  # fmt: skip
        # the composition table's ranges (alps/composition.py) may differ from these: nearest one
        key_on = min(comp_on, key=lambda k: abs(k[0] - lo) + abs(k[1] - hi))
        c_on, c_off = comp_on[key_on], comp_off[key_on]
        if key_on != (lo, hi):
            cells.append(f"({key_on[0]:g}–{key_on[1]:g} GeV) {_shares(c_on)}")
        else:
            cells.append(_shares(c_on))
        for name, c in (("off", c_off), ("on", c_on)):
            print(f"composition_{name}_{key_on[0]:g}-{key_on[1]:g}GeV: {_shares(c, 4)}; "
                  f"data/MC {c['data_over_mc']:.3f}, chi2/ndf {c['chi2']:.1f}/{c['ndf']}")  # fmt: skip
            cells.append(f"{c['data_over_mc']:.3f}, {c['chi2']:.1f}/{c['ndf']}")
        excess = (c_on["data"] - c_on["mc"]) / c_on["data"]
        cells.append(f"{100 * excess:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
