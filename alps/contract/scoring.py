"""What the processor needs of a trained selection: a picklable callable with feature names.

``models.load_scorer`` returns one; the pipeline loads it and hands it to the processor, so the
processor never imports the models package (nor torch, on workers that do not score).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["ScorerLike"]


@runtime_checkable
class ScorerLike(Protocol):
    """Scores in [0, 1] for an ``(n, k)`` matrix of the features in ``features`` order."""

    @property
    def features(self) -> tuple[str, ...]: ...

    def __call__(self, x: Any) -> npt.NDArray[np.floating[Any]]: ...
