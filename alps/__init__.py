"""alps: distributed columnar analysis for the Belle II search for axion-like particles.

The command line is :mod:`alps.cli`; the configuration :mod:`alps.config`; the cached chain of
stages :mod:`alps.pipeline`; Dask start-up :mod:`alps.cluster`; histogram files :mod:`alps.histio`.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("alps")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
