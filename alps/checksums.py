"""File checksums, on the lowest floor: the histogram provenance (:mod:`alps.histio`), the stage
records (:mod:`alps.records`), the production manifest and the model files all hash file content
with this one function."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_checksum"]


def file_checksum(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content, read in 1 MiB blocks.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> file_checksum(f.name)[:16]
    'ba7816bf8f01cfea'
    >>> os.unlink(f.name)
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
