"""Saving and loading the model, so a restarted supervisor can report what changed while it was down.

One msgpack file: ``{"version": 1, "roots": {path: kind}, "entries": [[path, kind, size, mtime_ns]...]}``
(``size`` is ``entries.UNREAD_SIZE`` for an entry saved before its size and mtime were read),
written to a temporary file, fsynced and renamed over the old one, so a crash leaves either the
old or the new model, never a torn one. Entries are stored once even when roots overlap; loading
splits them per root again. (This is a state file, not a wire message, so it does not go through
``protocol``.)
"""

from __future__ import annotations

import bisect
import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import msgpack

from fswatch_supervisor.errors import StoreCorrupt
from fswatch_supervisor.mirror.entries import Record

FORMAT_VERSION: Final = 1


def encode_model(roots: Mapping[str, str], records: Iterable[Record]) -> bytes:
    """The saved form of ``roots`` (path → kind) and the ``records``."""
    data = {"version": FORMAT_VERSION, "roots": dict(roots), "entries": [list(r) for r in records]}
    return msgpack.packb(data, use_bin_type=True)


def write_model(path: Path, payload: bytes) -> None:
    """Atomically replace ``path`` with ``payload``. Blocking (fsync), so the daemon runs it in a
    thread; each call has its own temporary file, so a late write cannot tear another's."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_model(path: Path, roots: Mapping[str, str], records: Iterable[Record]) -> None:
    """Atomically write ``roots`` (path → kind) and the ``records`` to ``path``."""
    write_model(path, encode_model(roots, records))


def load_model(path: Path) -> dict[str, list[Record]]:
    """The saved records per root: below a directory root (not the root itself, like
    ``FsMirror.entries``), or the file itself for a file root. ``{}`` when nothing was saved;
    ``StoreCorrupt`` when the file cannot be read back."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        data: Any = msgpack.unpackb(raw, raw=False, strict_map_key=True)
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {data.get('version') if isinstance(data, dict) else data!r}")
        roots: dict[str, str] = dict(data["roots"])
        entries: list[Record] = sorted((str(p), str(k), int(s), int(m)) for p, k, s, m in data["entries"])
    except (ValueError, TypeError, KeyError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise StoreCorrupt(f"cannot read the saved file-system model {path}: {exc}") from exc
    paths = [r[0] for r in entries]
    result: dict[str, list[Record]] = {}
    for root, kind in roots.items():
        if kind == "file":
            i = bisect.bisect_left(paths, root)
            result[root] = [entries[i]] if i < len(paths) and paths[i] == root else []
        else:
            prefix = root.rstrip("/") + "/"
            lo = bisect.bisect_left(paths, prefix)
            hi = bisect.bisect_left(paths, prefix[:-1] + "0")
            result[root] = entries[lo:hi]
    return result
