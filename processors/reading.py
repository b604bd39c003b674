"""Errors while reading an input chunk: told apart from every other error, and either raised as
:class:`ChunkReadError` naming the file or, with ``processing.skip_bad_files``, recorded.

Only the reading and computing of a chunk is guarded: an error writing an output (a read-only or
full ``skims/`` folder) is a :class:`OutputWriteError` naming the output, never a skipped input.
"""

from __future__ import annotations

from typing import Any

from alps.config import AnalysisConfig

__all__ = ["ChunkReadError", "OutputWriteError", "is_read_error", "skipped_chunk"]


class ChunkReadError(RuntimeError):
    """A chunk of an input file could not be read (corrupt or truncated file)."""


class OutputWriteError(RuntimeError):
    """An output (a skim file) could not be written; the message names it."""


def is_read_error(exc: BaseException) -> bool:
    """Whether an exception (or one in its chain) comes from reading a damaged file."""
    import zlib

    import uproot

    kinds: tuple[type[BaseException], ...] = (
        OSError,
        EOFError,
        zlib.error,
        uproot.deserialization.DeserializationError,
    )
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kinds) or "decompress" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def skipped_chunk(exc: Exception, meta: Any, config: AnalysisConfig) -> dict[str, Any]:
    """The record of a chunk left out because it could not be read (``exc`` is a read error);
    raises :class:`ChunkReadError` naming the file unless ``skip_bad_files`` is set."""
    where = f"{meta.get('filename')} entries {meta.get('entrystart')}-{meta.get('entrystop')}"
    if not config.processing.skip_bad_files:
        raise ChunkReadError(f"cannot read {where}: {type(exc).__name__}: {exc}") from exc
    return {
        "file": meta.get("filename"),
        "entrystart": meta.get("entrystart"),
        "entrystop": meta.get("entrystop"),
        "error": f"{type(exc).__name__}: {exc}",
    }
