"""Record framing for append-only logs (the event store's segments and the watcher-registry log).

Each record on disk is::

    +----------------+----------------+-------------------+
    | u32 LE length  | u32 LE crc32   | payload (length)  |
    +----------------+----------------+-------------------+

``crc32`` covers the payload only. A crash can leave a *torn* record at the end of a file: a short
header, a short payload, or bytes that never reached the disk (zeros or stale data). Readers stop at
the first record that is incomplete or fails its checksum and report the offset where the valid
prefix ends, so the writer can truncate there and carry on. Nothing after a bad record is trusted:
appends are sequential, so a good-looking record behind a bad one was never acknowledged as part
of an intact log.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

HEADER: Final = struct.Struct("<II")
HEADER_SIZE: Final = HEADER.size
MAX_PAYLOAD: Final = 64 * 2**20
"""A length above this is corruption, not a record; it stops a torn header from claiming gigabytes."""


def encode_record(payload: bytes) -> bytes:
    """One framed record."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def encode_records(payloads: Iterable[bytes]) -> bytes:
    """Many framed records joined, so a batch reaches the file in one ``write()``."""
    return b"".join([encode_record(p) for p in payloads])


@dataclass(slots=True)
class ScanResult:
    """What :func:`scan` found: the valid records and where the valid prefix ends."""

    records: list[tuple[int, bytes]]
    """``(offset of the record's header, payload)`` for each intact record, in file order."""
    valid_end: int
    """Offset just past the last intact record; equal to the data's length when nothing is torn."""
    total: int
    """Length of the data scanned; ``total - valid_end`` bytes are torn or corrupt."""

    @property
    def torn_bytes(self) -> int:
        return self.total - self.valid_end


def iter_records(data: bytes | memoryview, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` for intact records from ``start``; stop silently at the first bad one.

    Use :func:`scan` when the caller needs to know where the valid prefix ends.
    """
    view = memoryview(data)
    end = len(view)
    pos = start
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    while pos + HEADER_SIZE <= end:
        length, crc = unpack(view, pos)
        body = pos + HEADER_SIZE
        if length > MAX_PAYLOAD or body + length > end:
            return
        payload = bytes(view[body:body + length])
        if crc32(payload) != crc:
            return
        yield pos, payload
        pos = body + length


def record_end(offset: int, payload: bytes) -> int:
    """Offset just past a record yielded at ``offset`` with ``payload``."""
    return offset + HEADER_SIZE + len(payload)


def scan(data: bytes | memoryview, start: int = 0) -> ScanResult:
    """All intact records of ``data`` from ``start`` and the end of the valid prefix."""
    records = list(iter_records(data, start))
    valid_end = record_end(*records[-1]) if records else start
    return ScanResult(records=records, valid_end=valid_end, total=len(data))


def scan_file(path: str, start: int = 0) -> ScanResult:
    """:func:`scan` over a whole file (read at once: segments are a few MiB)."""
    with open(path, "rb") as handle:
        data = handle.read()
    return scan(data, start)


def payload_at(data: bytes, pos: int) -> bytes:
    """The payload of the record whose header is at ``pos``; ``ValueError`` if it is not intact.

    For random access into a log that was already recovered, where a failure means the file changed
    under us (bit rot, another writer), not a torn tail.
    """
    return payloads_at(data, [pos])[0]


def payloads_at(data: bytes, positions: Iterable[int]) -> list[bytes]:
    """:func:`payload_at` for many records of one buffer (one loop: this is on every read's path)."""
    out: list[bytes] = []
    append = out.append
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    size = len(data)
    for pos in positions:
        body = pos + HEADER_SIZE
        if body > size:
            raise ValueError(f"no record header at offset {pos}")
        length, crc = unpack(data, pos)
        if length > MAX_PAYLOAD or body + length > size:
            raise ValueError(f"record at offset {pos} overruns the data")
        payload = data[body:body + length]
        if crc32(payload) != crc:
            raise ValueError(f"record at offset {pos} fails its checksum")
        append(payload)
    return out
