"""Stage records and file digests: what the pipeline's cache trusts, and how it checks it.

A stage's record, ``<workdir>/.alps/<stage>.json``, holds the key the stage ran under (a hash of
the configuration it reads, of its code and of the digests of the files it read), those parts
themselves (to say what changed) and the sha256 of every file it wrote. Records are written last,
through a temporary name and a rename, so a record never describes outputs that are not complete,
and a record is never removed: a run that fails leaves the previous record, whose output
digests no longer match what is on disk if the failed run replaced any of them.

File digests are sha256 of the content. They are remembered in ``.alps/digests.json`` against the
file's size and modification time (nanoseconds), so an unchanged file is not read again; a file
that is rewritten, copied or touched is hashed afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from alps.checksums import file_checksum

__all__ = [
    "RECORD_DIR",
    "FileDigests",
    "atomic_write_text",
    "digest_json",
    "read_record",
    "write_record",
]

RECORD_DIR = ".alps"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def digest_json(payload: Any) -> str:
    """A short sha256 of a JSON-serialisable payload (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _record_path(workdir: Path, name: str) -> Path:
    return workdir / RECORD_DIR / f"{name}.json"


def read_record(workdir: Path, name: str) -> dict[str, Any] | None:
    """The stage's record, or None when it has none (or an unreadable one)."""
    try:
        record = json.loads(_record_path(workdir, name).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "key" in record else None


def write_record(workdir: Path, name: str, record: Mapping[str, Any]) -> None:
    atomic_write_text(_record_path(workdir, name), json.dumps(record, indent=1, sort_keys=True))


class FileDigests:
    """sha256 of files under a work directory, remembered against (size, mtime_ns)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._path = workdir / RECORD_DIR / "digests.json"
        try:
            self._memo: dict[str, list[Any]] = json.loads(self._path.read_text())
        except (OSError, ValueError):
            self._memo = {}
        self._changed = False

    def digest(self, relpath: str) -> str | None:
        """The file's sha256, or None when it does not exist."""
        return self._remembered(relpath, relpath, file_checksum)

    def derived(self, relpath: str, tag: str, compute: Callable[[Path], str]) -> str | None:
        """A value computed from a file's content (e.g. a digest of part of it), remembered like
        the file's own digest; None when the file does not exist."""
        return self._remembered(relpath, f"{relpath}#{tag}", compute)

    def _remembered(
        self, relpath: str, memo_key: str, compute: Callable[[Path], str]
    ) -> str | None:
        path = self.workdir / relpath
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = [stat.st_size, stat.st_mtime_ns]
        known = self._memo.get(memo_key)
        if known is not None and known[:2] == stamp:
            return str(known[2])
        value = compute(path)
        self._memo[memo_key] = [*stamp, value]
        self._changed = True
        return value

    def known(self, relpath: str) -> tuple[int, int, str] | None:
        """The remembered ``(size, mtime_ns, sha256)`` of a file, or None; a caller that hashes
        elsewhere (a Dask worker) trusts the digest only while the file's stamp is unchanged."""
        entry = self._memo.get(relpath)
        return (int(entry[0]), int(entry[1]), str(entry[2])) if entry is not None else None

    def remember(self, relpath: str, size: int, mtime_ns: int, sha256: str) -> None:
        """Record a digest computed elsewhere against the file's stamp when it was hashed."""
        if self._memo.get(relpath) != [size, mtime_ns, sha256]:
            self._memo[relpath] = [size, mtime_ns, sha256]
            self._changed = True

    def refresh(self) -> None:
        """Adopt the digests that another instance saved since this one was loaded (a stage
        that hashed its own outputs on the workers): each is keyed by its file's stamp, so an
        entry that no longer matches its file is simply not used."""
        try:
            saved = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return
        for key, entry in saved.items():
            if self._memo.get(key) != entry:
                self._memo[key] = entry
                self._changed = True

    def many(self, relpaths: Iterable[str]) -> dict[str, str | None]:
        return {p: self.digest(p) for p in sorted(set(relpaths))}

    def save(self) -> None:
        """Store the remembered digests (only those of files that still exist)."""
        if not self._changed or not (self.workdir / RECORD_DIR).is_dir():
            return
        kept = {
            p: v for p, v in self._memo.items() if (self.workdir / p.partition("#")[0]).exists()
        }
        atomic_write_text(self._path, json.dumps(kept, sort_keys=True))
        self._changed = False
