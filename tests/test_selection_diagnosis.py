"""``docs/selection_diagnosis.grid_pass_rates``: the mass-grid modulation of a selection (#13)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "docs" / "selection_diagnosis.py"
_spec = importlib.util.spec_from_file_location("selection_diagnosis", _PATH)
assert _spec is not None and _spec.loader is not None
diagnosis = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diagnosis)


def test_grid_learning_shows_as_a_falling_pass_rate_and_a_blind_cut_as_a_flat_one() -> None:
    """A cut that keeps background near the trained masses (like XGBoost on the demo's grid at
    high mass) falls with the distance to them; a cut blind to M_γγ is flat; rows nearest a
    held-out mass are counted apart."""
    rng = np.random.default_rng(7)
    grid = np.arange(8.0, 9.51, 0.25)
    held = np.zeros(len(grid), dtype=bool)
    held[3] = True
    mgg = rng.uniform(7.9, 9.6, 200_000)
    sigma = np.full(len(mgg), 0.019)
    weight = rng.uniform(0.5, 1.5, len(mgg))
    nearest = np.argmin(np.abs(mgg[:, None] - grid[None, :]), axis=1)
    dist = np.abs(mgg - grid[nearest]) / sigma
    learned = (rng.uniform(size=len(mgg)) < np.where(dist < 1, 0.5, 0.05)) & ~held[nearest]
    blind = rng.uniform(size=len(mgg)) < 0.4
    band = (8.0, 9.5)
    r = diagnosis.grid_pass_rates(mgg, weight, learned, grid, sigma, held, band)
    assert r["trained"][0] > 0.45 and max(r["trained"][1:]) < 0.07
    assert max(r["held_out"]) == 0.0
    flat = diagnosis.grid_pass_rates(mgg, weight, blind, grid, sigma, held, band)
    assert np.allclose(flat["trained"], 0.4, atol=0.02), flat
    assert np.allclose(flat["held_out"], 0.4, atol=0.05), flat
    assert len(r["trained"]) == len(diagnosis.GRID_EDGES) - 1
