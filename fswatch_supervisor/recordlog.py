"""A small append-only log of msgpack maps with torn-tail recovery (the watcher registry's file).

Framing is the event store's (``store.framing``), so both files recover the same way: a record
torn by a crash is cut on open, never fatal. Appends are written before the caller acknowledges
anything and fdatasync'd, because watcher definitions are rare and must survive a power cut.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack

from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.store import framing

log = get_logger(__name__)


class RecordLog:
    def __init__(self, path: Path, *, sync_each: bool = True) -> None:
        self.path = path
        self.records = 0
        self.sync_each = sync_each
        self._fd: int | None = None
        self._dirty = False

    def open(self) -> list[dict[str, Any]]:
        """Read every intact record, cut a torn tail, and keep the file open for appends."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        result = framing.scan_file(str(self.path))
        if result.torn_bytes:
            log.warning("recordlog.torn_tail_cut", path=str(self.path), bytes=result.torn_bytes)
            os.ftruncate(self._fd, result.valid_end)
        maps = [msgpack.unpackb(payload, raw=False) for _offset, payload in result.records]
        self.records = len(maps)
        return maps

    def append(self, record: dict[str, Any]) -> None:
        assert self._fd is not None, "RecordLog.open() first"
        os.write(self._fd, framing.encode_record(msgpack.packb(record, use_bin_type=True)))
        self.records += 1
        self._dirty = True
        if self.sync_each:
            self.sync()

    def sync(self) -> None:
        """fdatasync what was appended since the last sync."""
        fd = self.detach_sync()
        if fd is not None:
            sync_and_close(fd)

    def detach_sync(self) -> int | None:
        """A duplicate of the file's descriptor for ``sync_and_close``, elsewhere (a thread): it covers
        every append so far, and stays valid whatever the log does meanwhile (appends, a rewrite,
        close). ``None`` when nothing was appended since the last sync."""
        if not self._dirty or self._fd is None:
            return None
        self._dirty = False  # cleared first: an append during the sync marks the log dirty again
        return os.dup(self._fd)

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the whole log atomically (temp file, fsync, rename)."""
        tmp = self.path.with_suffix(".compact")
        data = framing.encode_records(msgpack.packb(r, use_bin_type=True) for r in records)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        self.records = len(records)

    def close(self) -> None:
        self.sync()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sync_and_close(fd: int) -> None:
    """fdatasync and close a descriptor from ``RecordLog.detach_sync``."""
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
