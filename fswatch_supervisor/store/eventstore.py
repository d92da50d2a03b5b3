"""The crash-safe append-only event store.

Layout of the store directory::

    LOCK                        flock()ed exclusively while a process has the store open
    META                        sequence reservation, retention marks (see meta.py)
    seg-<first seq>.v2.log      framed msgpack records (see framing.py, records.py), oldest first
    seg-<first seq>.log         the same in the older per-id record format: read, never appended to

One u64 sequence numbers every event of the store; seqs are consecutive inside a segment, so a
record is found by bisecting the segment bases and indexing the segment's offset table. Each
watcher's seqs live in its own ``array('Q')`` (watchindex.py), so reading after a cursor costs what
it returns. Retention removes whole segments, oldest first, never the one being written.

All methods are thread-safe (one lock); reads do their file I/O under it and decode outside it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Final

from fswatch_supervisor.errors import StoreClosed, StoreCorrupt, StoreError
from fswatch_supervisor.eventmodel import Event, event_map
from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.store.meta import StoreMeta, load_meta, save_meta
from fswatch_supervisor.store.records import (
    FsyncPolicy,
    NewEvent,
    decode_events,
    extra_of,
    frame_records,
)
from fswatch_supervisor.store.recovery import recover
from fswatch_supervisor.store.segment import Segment, fsync_dir, lock_directory
from fswatch_supervisor.store.segmentset import SegmentSet
from fswatch_supervisor.store.syncer import Syncer, synced_marker
from fswatch_supervisor.store.watchindex import WatcherIndex

__all__ = ["EventStore", "FsyncPolicy", "NewEvent"]

log = get_logger(__name__)

SEQ_RESERVE_BLOCK: Final = 65_536
"""Seqs reserved durably in META ahead of use; an unclean stop skips at most this many ids."""
RETENTION_GRANULARITY: Final = 8
"""A segment also rotates at 1/8 of the event and byte limits, so dropping whole segments keeps the
store within 7/8..8/8 of a limit even when the limit is small next to ``segment_bytes``."""
SINCE_CHUNK: Final = 1024


class _State(Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class EventStore:
    def __init__(
        self,
        directory: Path,
        *,
        retain_events: int = 1_000_000,
        retain_age_s: float = 7 * 86400,
        retain_bytes: int = 512 * 2**20,
        segment_bytes: int = 8 * 2**20,
        fsync: FsyncPolicy = FsyncPolicy.INTERVAL,
        fsync_interval_s: float = 0.2,
    ) -> None:
        if retain_events < 1 or retain_bytes < 1 or retain_age_s <= 0 or segment_bytes < 1:
            raise ValueError("retention limits and segment_bytes must be positive")
        if fsync_interval_s <= 0:
            raise ValueError("fsync_interval_s must be positive")
        self.directory = Path(directory)
        self.retain_events = retain_events
        self.retain_age_ns = int(retain_age_s * 1e9)
        self.retain_bytes = retain_bytes
        self.fsync = FsyncPolicy(fsync)
        self.fsync_interval_s = fsync_interval_s
        self._rotate_bytes = max(1, min(segment_bytes, retain_bytes // RETENTION_GRANULARITY))
        self._rotate_events = max(1, retain_events // RETENTION_GRANULARITY)
        self._lock = threading.Lock()
        self._state = _State.UNOPENED
        self._lock_fd = -1
        self._segments = SegmentSet()
        self._index = WatcherIndex()
        self._meta = StoreMeta()
        self._next_seq = 1
        self._appended_total = 0
        self._discarded_total = 0
        self._syncer: Syncer | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Lock the directory, recover (cut a torn tail), rebuild the index, continue the sequence."""
        with self._lock:
            if self._state is not _State.UNOPENED:
                raise StoreError("an EventStore can be opened only once; make a new one")
            started = time.monotonic()
            self._lock_fd = lock_directory(self.directory)
            try:
                self._recover()
            except OSError as exc:
                self._release()
                raise StoreError(f"cannot open the event store in {self.directory}: {exc}") from exc
            except BaseException:
                self._release()
                raise
            self._state = _State.OPEN
            log.info("store_opened", directory=str(self.directory), segments=len(self._segments),
                     events=self._segments.events, bytes=self._segments.bytes, next_seq=self._next_seq,
                     open_s=round(time.monotonic() - started, 3))
        if self.fsync is FsyncPolicy.INTERVAL:
            self._syncer = Syncer(self.fsync_interval_s, self._dup_dirty_fds)
            self._syncer.start()
        self.enforce_retention()

    def _recover(self) -> None:
        try:
            meta = load_meta(self.directory)
        except ValueError as exc:
            # Only reachable if META was damaged outside our atomic replace; the segments still
            # give a safe floor for the sequence.
            log.error("store_meta_unreadable", error=str(exc))
            meta = None
        self._meta = meta or StoreMeta()
        self._index = WatcherIndex(self._meta.discarded)
        found = recover(self.directory, self._meta, self._index)
        self._segments = SegmentSet(found.segments)
        self._next_seq = max(found.max_seq, self._meta.seq_reserved, self._meta.dropped_through) + 1
        last = self._segments.active
        # A segment of the older record format is never continued, so an older binary opening this
        # store again still finds every file it can list in the format it reads.
        if last is None or last.next_seq != self._next_seq or last.sets is None:
            if last is not None and last.count == 0:
                self._segments.remove(last)
                self._drop_files([last])
            self._start_segment()
        self._meta.prune_forgotten()
        self._meta.seq_reserved = self._next_seq - 1 + SEQ_RESERVE_BLOCK
        save_meta(self.directory, self._meta)
        if found.torn_bytes:
            log.warning("store_recovered", torn_bytes=found.torn_bytes, last_seq=self._next_seq - 1)

    def close(self) -> None:
        """Flush, fsync and unlock. Afterwards every call raises ``StoreClosed``; closing twice is fine."""
        with self._lock:
            if self._state is not _State.OPEN:
                self._state = _State.CLOSED
                return
            self._state = _State.CLOSED
        if self._syncer is not None:
            self._syncer.stop()
        with self._lock:
            try:
                for segment in self._segments.segments:
                    if segment.dirty:
                        segment.datasync()
                self._meta.seq_reserved = self._next_seq - 1
                self._meta.discarded = self._index.discarded_map()
                save_meta(self.directory, self._meta)
            except OSError as exc:
                # The data was written; only durability is in doubt, and the reservation in META
                # still keeps ids from being reused.
                raise StoreError(f"closing the event store in {self.directory} failed: {exc}") from exc
            finally:
                self._release()
            log.info("store_closed", last_seq=self._next_seq - 1)

    def _release(self) -> None:
        self._segments.close_all()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1

    def __enter__(self) -> EventStore:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise StoreClosed(f"the event store is {self._state.value}")

    # -- writing -----------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """Every seq handed out so far is at most this, every future one is greater; 0 on a new store.

        After an unclean stop it may be above the last stored event (the skipped reservation).
        """
        return self._next_seq - 1

    def append(self, events: Sequence[NewEvent]) -> list[tuple[int, Event]]:
        """Store ``events`` under consecutive seqs with one ``write()``; return ``(seq, public map)``s.

        When this returns, the events survive ``kill -9`` (and, under ``FsyncPolicy.ALWAYS``, power
        loss). The map is the same for every watcher of the event.
        """
        if not events:
            return []
        extras = [extra_of(event) for event in events]
        with self._lock:
            self._check_open()
            first = self._next_seq
            last = first + len(events) - 1
            if last > self._meta.seq_reserved:
                self._meta.seq_reserved = last + SEQ_RESERVE_BLOCK
                self._save_meta()
            active = self._segments.segments[-1]
            sets = active.sets
            assert sets is not None, "the active segment is always of the set format"
            with sets.pending():
                data, lengths, times = frame_records(first, events, extras, sets)
                try:
                    active.append(data, lengths, times)
                except OSError as exc:
                    raise StoreError(f"cannot append to {active.path.name}: {exc}") from exc
            self._next_seq = last + 1
            self._segments.appended(len(events), len(data))
            self._appended_total += len(events)
            add = self._index.add
            seq = first
            for event in events:
                add(seq, event.watchers)
                seq += 1
            if self.fsync is FsyncPolicy.ALWAYS:
                self._datasync(active)
            if active.size >= self._rotate_bytes or active.count >= self._rotate_events:
                self._rotate()
            elif self._segments.events > self.retain_events or self._segments.bytes > self.retain_bytes:
                self._enforce_retention(time.time_ns())
        stored: list[tuple[int, Event]] = []
        seq = first
        for e, extra in zip(events, extras, strict=True):
            stored.append((seq, event_map(seq, e.action, e.path, e.kind, e.time_ns, extra)))
            seq += 1
        return stored

    def _rotate(self) -> None:
        sealed = self._segments.segments[-1]
        if self.fsync is not FsyncPolicy.NEVER and sealed.dirty:
            # Older segments are durable before a newer one exists, so a power failure can only
            # shorten the newest segment.
            self._datasync(sealed)
        self._start_segment()
        self._enforce_retention(time.time_ns())

    def _start_segment(self) -> None:
        if self._segments.active is not None:
            self._segments.active.seal()
        try:
            segment = Segment.create(self.directory, self._next_seq)
            if self.fsync is not FsyncPolicy.NEVER:
                fsync_dir(self.directory)
        except OSError as exc:
            raise StoreError(f"cannot create a segment in {self.directory}: {exc}") from exc
        self._segments.add(segment)

    def _datasync(self, segment: Segment) -> None:
        try:
            segment.datasync()
        except OSError as exc:
            raise StoreError(f"fdatasync of {segment.path.name} failed: {exc}") from exc

    def _dup_dirty_fds(self) -> list[tuple[int, Callable[[], None]]]:
        """For the syncer: duplicates of dirty segments' fds, so retention may close the originals."""
        with self._lock:
            if self._state is not _State.OPEN:
                return []
            result = []
            for segment in self._segments.segments:
                if segment.dirty:
                    size = segment.size
                    result.append((os.dup(segment.fd), synced_marker(segment, size)))
            return result

    def _save_meta(self) -> None:
        try:
            save_meta(self.directory, self._meta)
        except OSError as exc:
            raise StoreError(f"cannot write {self.directory}/META: {exc}") from exc

    # -- reading -----------------------------------------------------------------------------

    def read(self, watcher_id: str, *, after: int = 0, limit: int = 1000,
             since_ns: int | None = None) -> list[Event]:
        """The watcher's events with seq > ``after`` and time >= ``since_ns``, ascending, ≤ ``limit``."""
        out: list[Event] = []
        cursor = after
        while len(out) < limit:
            want = limit - len(out)
            with self._lock:
                self._check_open()
                if since_ns is not None:
                    cursor = max(cursor, self._segments.skip_before(since_ns, self._next_seq - 1))
                    want = max(want, SINCE_CHUNK)
                seqs = self._index.seqs_after(watcher_id, cursor, want)
                payloads = self._segments.fetch(seqs)
            try:
                out.extend(decode_events(seqs, payloads, since_ns, limit - len(out)))
            except ValueError as exc:
                raise StoreCorrupt(str(exc)) from exc
            if since_ns is None or len(seqs) < want:
                break
            cursor = seqs[-1]
        return out

    def bounds(self, watcher_id: str) -> tuple[int | None, int | None]:
        """Oldest and latest retained seq of the watcher; ``(None, None)`` when it has none."""
        with self._lock:
            self._check_open()
            return self._index.bounds(watcher_id)

    def discarded_through(self, watcher_id: str) -> int:
        """Highest seq of the watcher that retention dropped (0 if none); 410 when ``after`` is below."""
        with self._lock:
            self._check_open()
            return self._index.discarded_through(watcher_id)

    def watchers(self) -> list[str]:
        """Watchers with retained events (after a restart: compare with the registry, forget the rest)."""
        with self._lock:
            self._check_open()
            return self._index.watchers()

    def forget_watcher(self, watcher_id: str) -> None:
        """Drop the watcher's index and 410 mark; its records stay until retention removes them."""
        with self._lock:
            self._check_open()
            self._index.forget(watcher_id)
            self._meta.forgotten[watcher_id] = self._next_seq - 1
            self._meta.discarded = self._index.discarded_map()
            self._save_meta()

    # -- retention ---------------------------------------------------------------------------

    def enforce_retention(self, now_ns: int | None = None) -> int:
        """Drop whole old segments while any limit is exceeded; return how many events went."""
        with self._lock:
            self._check_open()
            return self._enforce_retention(time.time_ns() if now_ns is None else now_ns)

    def _enforce_retention(self, now_ns: int) -> int:
        dropped = self._segments.over_limits(self.retain_events, self.retain_bytes, now_ns - self.retain_age_ns)
        if not dropped:
            return 0
        keep_from = self._segments.segments[len(dropped)].base
        self._index.cut_below(keep_from)
        self._meta.dropped_through = max(self._meta.dropped_through, keep_from - 1)
        self._meta.discarded = self._index.discarded_map()
        self._meta.prune_forgotten()
        # META first: a crash before the unlinks leaves files that the next open removes.
        self._save_meta()
        count = sum(segment.count for segment in dropped)
        for segment in dropped:
            self._segments.remove(segment)
        self._discarded_total += count
        self._drop_files(dropped)
        log.info("store_retention", segments_dropped=len(dropped), events_dropped=count,
                 oldest_seq=keep_from, events=self._segments.events, bytes=self._segments.bytes)
        return count

    def _drop_files(self, segments: list[Segment]) -> None:
        for segment in segments:
            segment.close()
            try:
                segment.path.unlink()
            except FileNotFoundError:
                pass
        try:
            fsync_dir(self.directory)
        except OSError as exc:
            log.warning("store_dir_fsync_failed", error=str(exc))

    def stats(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            return {
                "events": self._segments.events,
                "bytes": self._segments.bytes,
                "segments": len(self._segments),
                "oldest_seq": self._segments.oldest_seq(),
                "last_seq": self._next_seq - 1,
                "appended_total": self._appended_total,
                "discarded_total": self._discarded_total,
                "watchers": len(self._index.watchers()),
            }

