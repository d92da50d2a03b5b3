"""The store's segments, oldest first: seq lookup, batched reads, totals. The last one is active."""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from fswatch_supervisor.errors import StoreCorrupt
from fswatch_supervisor.store import framing
from fswatch_supervisor.store.segment import Segment

MERGE_GAP_BYTES: Final = 16 * 1024
"""Records of one watcher closer than this are fetched with one pread: reading the gap costs less
than another system call."""


class SegmentSet:
    __slots__ = ("_bases", "bytes", "events", "segments")

    def __init__(self, segments: list[Segment] | None = None) -> None:
        self.segments: list[Segment] = list(segments or [])
        self._bases = [s.base for s in self.segments]
        self.events = sum(s.count for s in self.segments)
        self.bytes = sum(s.size for s in self.segments)

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def active(self) -> Segment | None:
        return self.segments[-1] if self.segments else None

    def add(self, segment: Segment) -> None:
        if self._bases and segment.base <= self._bases[-1]:
            raise ValueError("segments must be added in ascending base order")
        self.segments.append(segment)
        self._bases.append(segment.base)
        self.events += segment.count
        self.bytes += segment.size

    def appended(self, events: int, size: int) -> None:
        """Account for records just appended to the active segment."""
        self.events += events
        self.bytes += size

    def remove(self, segment: Segment) -> None:
        number = self.segments.index(segment)
        del self.segments[number]
        del self._bases[number]
        self.events -= segment.count
        self.bytes -= segment.size

    def oldest_seq(self) -> int:
        """The first retained seq; 0 when no segment holds a record."""
        return next((s.base for s in self.segments if s.count), 0)

    def over_limits(self, max_events: int, max_bytes: int, oldest_allowed_ns: int) -> list[Segment]:
        """The oldest segments to drop so that no limit is exceeded; never the active one."""
        dropped: list[Segment] = []
        events, size = self.events, self.bytes
        for segment in self.segments[:-1]:
            if events <= max_events and size <= max_bytes and segment.max_time_ns >= oldest_allowed_ns:
                break
            dropped.append(segment)
            events -= segment.count
            size -= segment.size
        return dropped

    def segment_of(self, seq: int) -> Segment:
        number = bisect_right(self._bases, seq) - 1
        if number < 0 or not self.segments[number].holds(seq):
            raise StoreCorrupt(f"seq {seq} is indexed but no segment holds it")
        return self.segments[number]

    def skip_before(self, since_ns: int, default: int) -> int:
        """A cursor below which no record is as new as ``since_ns`` (``default`` if none is).

        Whole segments are skipped by their newest time and, inside the first segment that has a
        newer record, blocks of records by the running-maximum time marks; both stay correct when
        times are not monotone in seq. Only what follows is filtered record by record.
        """
        for segment in self.segments:
            index = segment.first_index_since(since_ns)
            if index < segment.count:
                return segment.base + index - 1
        return default

    def fetch(self, seqs: list[int]) -> list[bytes]:
        """Payloads for ascending ``seqs``; runs of nearby records share one pread."""
        payloads: list[bytes] = []
        pos, total = 0, len(seqs)
        while pos < total:
            segment = self.segment_of(seqs[pos])
            base, offsets, count = segment.base, segment.offsets, segment.count
            limit = base + count  # seqs below this are in this segment
            last = pos
            # Extend the run while the next wanted record starts close to where the run ends; the
            # gap check uses the next record's start, the end of a record being the next's start.
            while last + 1 < total:
                nxt = seqs[last + 1]
                if nxt >= limit:
                    break
                run_end = seqs[last] + 1 - base
                if run_end < count and offsets[nxt - base] - offsets[run_end] > MERGE_GAP_BYTES:
                    break
                last += 1
            start = offsets[seqs[pos] - base]
            end_index = seqs[last] + 1 - base
            end = offsets[end_index] if end_index < count else segment.size
            try:
                data = segment.pread(start, end)
                first, stop = seqs[pos] - base, seqs[last] - base + 1
                if stop - first == last + 1 - pos:  # a contiguous run: its offsets are a slice
                    positions = [offset - start for offset in offsets[first:stop]]
                else:
                    positions = [offsets[seq - base] - start for seq in seqs[pos:last + 1]]
                payloads.extend(framing.payloads_at(data, positions))
            except (OSError, ValueError) as exc:
                raise StoreCorrupt(f"cannot read seq {seqs[pos]} from {segment.path.name}: {exc}") from exc
            pos = last + 1
        return payloads

    def close_all(self) -> None:
        for segment in self.segments:
            segment.close()
        self.segments, self._bases = [], []
        self.events = self.bytes = 0
