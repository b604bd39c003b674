"""The outputs of a tiny fixed run against the stored reference in ``tests/reference/``.

A refactoring must leave the numbers unchanged: the histograms of the process stage bit for bit
(``≤ 1e-12`` relative), and, in the ``slow`` test, the scored histograms, the model and the
``limits.json`` numbers (``≤ 1e-9`` relative) of the whole chain.

When the physics changes on purpose (a new background, a new systematic, other masses), regenerate
the reference from the repository root and commit it with a message that says why::

    PYTHONPATH=$PWD python tests/reference/make_reference.py --full
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
import make_reference as reference

HISTOGRAM_RTOL = 1e-12
LIMITS_RTOL = 1e-9


def _stored(name: str) -> dict[str, np.ndarray]:
    with np.load(reference.HERE / name, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _compare_histograms(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want), (
        f"missing: {sorted(set(want) - set(got))[:10]}, new: {sorted(set(got) - set(want))[:10]}"
    )
    for key, expected in want.items():
        np.testing.assert_allclose(got[key], expected, rtol=HISTOGRAM_RTOL, atol=0, err_msg=key)


def _compare_numbers(got: Any, want: Any, where: str = "limits") -> None:
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for key in want:
            _compare_numbers(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _compare_numbers(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=LIMITS_RTOL, abs=0), where
    else:
        assert got == want, where


def test_process_stage_reproduces_the_reference(tmp_path: Path) -> None:
    _compare_histograms(reference.run_fast(tmp_path), _stored("histograms.npz"))


@pytest.mark.slow
def test_whole_chain_reproduces_the_reference(tmp_path: Path) -> None:
    out = reference.run_full(tmp_path)
    _compare_histograms(out["histograms"], _stored("histograms.npz"))
    _compare_histograms(out["scored"], _stored("full.npz"))
    assert out["model"] == json.loads((reference.HERE / "model.json").read_text())
    _compare_numbers(out["limits"], json.loads((reference.HERE / "limits.json").read_text()))
