"""Builds the shipped run registry (``python -m simulation.registry_table`` rewrites the CSV).

The table mirrors the Belle II data-taking history in outline (physics.md "The search", "Beams"):

* experiment 3, the 2018 commissioning run ("Phase 2"): 0.445 fb^-1 at the Upsilon(4S), with high
  beam background and a less tuned detector (the sample of PRL 125 (2020) 161806);
* Run 1, experiments 7-26 in 2019-2022: 426.9 fb^-1 in total (arXiv:2407.00965), of which about
  362 fb^-1 at the Upsilon(4S), about 42 fb^-1 60 MeV below it ("off-resonance") and about
  19 fb^-1 in an energy scan above it.

The split into experiments, run ranges, periods and the run-to-run variations (beam energies within
a few MeV, the background level, the resolution scale, trigger thresholds and the pseudo-data's
detector offsets) are *estimates* with plausible sizes, drawn once with a fixed seed; they are not
Belle II's measured conditions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .physics import E_HER_NOMINAL, E_LER_NOMINAL, SIGMA_E_HER, SIGMA_E_LER
from .registry import RunBlock, RunRegistry, default_registry_path

__all__ = ["build_default_registry"]

# (experiment, period, luminosity in fb^-1, number of blocks, sqrt(s) mode, beam background level)
_EXPERIMENTS = [
    (3, "2018", 0.445, 4, "4S", 4.5),
    (7, "2019a", 0.48, 1, "4S", 2.8),
    (8, "2019b", 4.6, 2, "4S", 2.6),
    (10, "2019c", 3.9, 2, "4S", 2.5),
    (12, "2020a", 64.0, 8, "4S", 2.2),
    (14, "2020b", 16.3, 4, "4S", 2.3),
    (16, "2020c", 10.1, 3, "off", 2.4),
    (17, "2020c", 10.4, 3, "4S", 2.4),
    (18, "2021a", 95.0, 10, "4S", 1.9),
    (20, "2021b", 3.6, 2, "off", 2.1),
    (22, "2021c", 33.2, 5, "4S", 2.0),
    (24, "2022a", 88.0, 9, "4S", 1.7),
    (25, "2021d", 19.0, 4, "scan", 2.0),
    (26, "2022b", 78.4, 8, "4S", 1.8),
]
_OFF_RESONANCE_SHIFT = -0.060  # GeV in sqrt(s), physics.md "Beams"
_SCAN_POINTS = (10.653, 10.701, 10.746, 10.805)  # GeV, Belle II 2021 energy scan


def _energies(mode: str, block: int, rng: np.random.Generator) -> tuple[float, float]:
    """HER and LER energies of a block: nominal scaled to the block's sqrt(s), plus jitter."""
    sqrt_s_nominal = 2.0 * np.sqrt(E_HER_NOMINAL * E_LER_NOMINAL) * np.cos(41.5e-3)
    if mode == "4S":
        target = sqrt_s_nominal
    elif mode == "off":
        target = sqrt_s_nominal + _OFF_RESONANCE_SHIFT
    else:
        target = _SCAN_POINTS[block % len(_SCAN_POINTS)]
    scale = target / sqrt_s_nominal
    e_her = E_HER_NOMINAL * scale + rng.normal(0.0, 1.5e-3)
    e_ler = E_LER_NOMINAL * scale + rng.normal(0.0, 0.8e-3)
    return round(e_her, 5), round(e_ler, 5)


def build_default_registry(seed: int = 2018_2022) -> RunRegistry:
    """The default registry, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    total_run1 = sum(lumi for exp, _, lumi, *_ in _EXPERIMENTS if exp != 3)
    run1_scale = 426.9 / total_run1
    blocks: list[RunBlock] = []
    for exp, period, lumi_fb, n_blocks, mode, bkg in _EXPERIMENTS:
        lumi_pb = lumi_fb * 1000.0 * (1.0 if exp == 3 else run1_scale)
        shares = rng.dirichlet(np.full(n_blocks, 8.0))
        run = 0
        # The pseudo-data's detector is a little off the MC's in some experiments.
        exp_scale = 1.0 + (rng.choice([0.0, -0.004, 0.003, 0.005]) if exp != 7 else 0.0)
        exp_res = 1.0 + rng.choice([0.0, 0.05, 0.08, 0.12])
        exp_trg = rng.choice([0.0, 0.0, 0.05, 0.1])
        for i in range(n_blocks):
            n_runs = int(rng.integers(80, 600))
            e_her, e_ler = _energies(mode, i, rng)
            level = float(bkg * rng.uniform(0.85, 1.15))
            blocks.append(
                RunBlock(
                    exp=exp,
                    run_lo=run,
                    run_hi=run + n_runs - 1,
                    period=period,
                    lumi_pb=round(float(lumi_pb * shares[i]), 3),
                    e_her=e_her,
                    e_ler=e_ler,
                    sigma_her=SIGMA_E_HER,
                    sigma_ler=SIGMA_E_LER,
                    bkg_clusters=round(level, 3),
                    ecl_res_scale=round(1.0 + 0.03 * (level - 1.0), 4),
                    trk_ineff=round(float(rng.uniform(2e-3, 8e-3)), 5),
                    trg_esum_threshold=round(float(rng.uniform(0.95, 1.1)), 3),
                    trg_esum_width=0.08,
                    trg_ncl_threshold=round(float(rng.uniform(0.09, 0.12)), 3),
                    trg_ncl_width=0.015,
                    data_energy_scale=round(float(exp_scale), 4),
                    data_res_scale=round(float(exp_res), 4),
                    data_trg_esum_shift=round(float(exp_trg), 3),
                )
            )
            run += n_runs + int(rng.integers(0, 40))
    return RunRegistry(blocks)


def main(path: str | Path | None = None) -> None:
    target = Path(path) if path is not None else default_registry_path()
    build_default_registry().write_csv(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
