"""The generators of the process registry (:mod:`alps.processes`, the one table of processes).

The table names each background's factory as ``"module:function"``; :func:`make_background`
imports and calls it with the generator cuts (and the row's ``generator_args``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from alps.processes import get_process

from .generators.base import Generator

if TYPE_CHECKING:
    from alps.config import GeneratorCuts

__all__ = ["make_background"]


def make_background(name: str, cuts: GeneratorCuts) -> Generator:
    """The generator of the background process ``name``, from its registry row."""
    row = get_process(name)
    if row.generator is None:
        raise ValueError(f"{name!r} is not a background process")
    module, _, function = row.generator.partition(":")
    factory = getattr(importlib.import_module(module), function)
    generator: Generator = factory(cuts, *row.generator_args)
    return generator
