"""One segment file ``seg-<first seq, 20 digits>.v2.log``: framed records with consecutive seqs.

A segment keeps its file descriptor open for ``pread`` and an ``array('Q')`` of record offsets, so
``seq -> bytes`` is ``offsets[seq - base]`` with no search. Only the newest segment is written to.

The name carries the record format (``records.py``). Segments of the older per-id format,
``seg-<first seq>.log``, are still read but never appended to. The new name is what keeps an older
binary from damaging a newer store: it lists only ``seg-<digits>.log``, so it never opens a
``.v2`` segment (and never cuts it as undecodable); its ids continue above META's reservation.
"""

from __future__ import annotations

import fcntl
import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from fswatch_supervisor.errors import StoreBusy, StoreError
from fswatch_supervisor.eventmodel import ID_WIDTH
from fswatch_supervisor.store import framing
from fswatch_supervisor.store.records import PER_ID_FORMAT, SET_FORMAT, index_fields, per_id_receivers
from fswatch_supervisor.store.watchsets import SegmentSets

NAME_RE: Final = re.compile(rf"^seg-(\d{{{ID_WIDTH}}})(\.v2)?\.log$")
"""Group 1 is the base; group 2 is set for ``SET_FORMAT``."""
TIME_MARK_EVERY: Final = 256
"""Records per time mark: a ``since`` read skips in steps of this many records."""


def segment_name(base: int, version: int = SET_FORMAT) -> str:
    suffix = ".v2" if version == SET_FORMAT else ""
    return f"seg-{base:0{ID_WIDTH}d}{suffix}.log"


def parse_name(name: str) -> tuple[int, int] | None:
    """``(base, format)`` of a segment file name; ``None`` for any other file."""
    match = NAME_RE.match(name)
    if match is None:
        return None
    return int(match.group(1)), SET_FORMAT if match.group(2) else PER_ID_FORMAT


def fsync_dir(directory: Path) -> None:
    """Make a created, renamed or removed directory entry durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_directory(directory: Path) -> int:
    """Create ``directory`` if needed and take ``DIR/LOCK`` exclusively; return the fd holding it.

    ``flock`` belongs to the open file description, so a second open in this very process is as
    busy as one in another process; the kernel drops it when the holder dies, even by ``kill -9``.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the event store in {directory}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreBusy(f"another process has the event store in {directory} open") from exc
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock {directory}/LOCK: {exc}") from exc
    return fd


class Segment:
    """A segment file and its in-memory offset table."""

    __slots__ = ("base", "fd", "max_time_ns", "offsets", "path", "sets", "size", "synced_size", "time_marks")

    def __init__(self, path: Path, base: int, fd: int, version: int = SET_FORMAT) -> None:
        self.path = path
        self.base = base
        self.fd = fd
        self.sets: SegmentSets | None = SegmentSets() if version == SET_FORMAT else None
        """The sets its records defined, while it may still be written to; ``None`` once sealed and
        for the per-id format, which is never written to."""
        self.offsets = array("Q")
        self.size = 0
        self.synced_size = 0
        self.max_time_ns = 0
        """Newest event time in the segment; age retention and ``since`` skip by it."""
        self.time_marks = array("Q")
        """``time_marks[k]`` = newest time among records ``0 .. (k+1)*TIME_MARK_EVERY - 1``. A running
        maximum, so it is sorted even though event times are only nearly monotone in seq."""

    @classmethod
    def create(cls, directory: Path, base: int) -> Segment:
        path = directory / segment_name(base)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return cls(path, base, fd)

    @classmethod
    def recover(cls, path: Path, base: int, version: int,
                on_record: Callable[[int, Sequence[str]], None]) -> tuple[Segment, int]:
        """Open an existing segment, index its intact records and cut anything after them.

        Calls ``on_record(seq, watcher ids)`` for each intact record in order. Returns the segment
        and the number of bytes cut. A record whose payload does not decode, whose seq is not the
        next one, or whose set number no earlier record defined, ends the intact prefix just as a
        checksum failure does.
        """
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        segment = cls(path, base, fd, version)
        # Resolved last, after the seq check: a record that is cut must not define a set.
        receivers_of = per_id_receivers if segment.sets is None else segment.sets.resolve
        try:
            data = _read_all(fd)
            valid_end = 0
            expected = base
            add = segment._add
            header_size = framing.HEADER_SIZE
            for offset, payload in framing.iter_records(data):
                try:
                    seq, time_ns, receivers = index_fields(payload)
                    if seq != expected:
                        break
                    watchers = receivers_of(receivers)
                except ValueError:
                    break
                add(offset, time_ns)
                on_record(seq, watchers)
                expected += 1
                valid_end = offset + header_size + len(payload)
            if valid_end < len(data):
                os.ftruncate(fd, valid_end)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        segment.size = segment.synced_size = valid_end
        return segment, len(data) - valid_end

    @property
    def count(self) -> int:
        return len(self.offsets)

    @property
    def next_seq(self) -> int:
        return self.base + len(self.offsets)

    @property
    def last_seq(self) -> int:
        """The last seq held; ``base - 1`` when empty."""
        return self.base + len(self.offsets) - 1

    def seal(self) -> None:
        """No more records will be appended: the set table is no longer needed."""
        self.sets = None

    def holds(self, seq: int) -> bool:
        return self.base <= seq < self.base + len(self.offsets)

    def _add(self, offset: int, time_ns: int) -> None:
        self.offsets.append(offset)
        if time_ns > self.max_time_ns:
            self.max_time_ns = time_ns
        if len(self.offsets) % TIME_MARK_EVERY == 0:
            self.time_marks.append(self.max_time_ns)

    def append(self, data: bytes, lengths: list[int], times: list[int]) -> None:
        """Write framed records (``lengths`` = each framed record's size, ``times`` its event time)
        at the end, all or nothing."""
        start = self.size
        try:
            _pwrite_all(self.fd, data, start)
        except OSError:
            # A partial write (ENOSPC, EIO) must not leave a half record for the next append to
            # follow; recovery would cut it, but a live store would have indexed past it.
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                pass
            raise
        add = self._add
        pos = start
        for length, time_ns in zip(lengths, times, strict=True):
            add(pos, time_ns)
            pos += length
        self.size = pos

    def first_index_since(self, since_ns: int) -> int:
        """An index below which every record is older than ``since_ns`` (``count`` if all are)."""
        if self.max_time_ns < since_ns:
            return len(self.offsets)
        return bisect_left(self.time_marks, since_ns) * TIME_MARK_EVERY

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Byte range ``[start, end)`` of the records at indexes ``first..last`` (inclusive)."""
        offsets = self.offsets
        end = offsets[last + 1] if last + 1 < len(offsets) else self.size
        return offsets[first], end

    def pread(self, start: int, end: int) -> bytes:
        data = os.pread(self.fd, end - start, start)
        if len(data) != end - start:
            raise OSError(f"short read from {self.path}: {len(data)} of {end - start} bytes")
        return data

    def datasync(self) -> None:
        size = self.size
        os.fdatasync(self.fd)
        self.synced_size = max(self.synced_size, size)

    @property
    def dirty(self) -> bool:
        return self.synced_size < self.size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    pos = 0
    while pos < size:
        chunk = os.pread(fd, size - pos, pos)
        if not chunk:
            break
        chunks.append(chunk)
        pos += len(chunk)
    return b"".join(chunks)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
