"""A quiet watcher's read costs what it returns, however many events other watchers have."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fswatch_supervisor.store import EventStore, FsyncPolicy, NewEvent
from fswatch_supervisor.store.segment import Segment

OTHER_EVENTS = 200_000
BATCH = 1000


def test_quiet_watcher_reads_touch_only_its_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time_ns()
    with EventStore(tmp_path, fsync=FsyncPolicy.NEVER, segment_bytes=2**20) as store:
        for batch in range(OTHER_EVENTS // BATCH):
            events = [NewEvent("updated", f"/busy/{batch}/{i}", "file", now, ("busy",)) for i in range(BATCH)]
            if batch % 40 == 0:
                events.append(NewEvent("created", f"/quiet/{batch}", "file", now, ("quiet",)))
            store.append(events)
        assert store.stats()["segments"] > 2

        reads: list[int] = []
        real_pread = Segment.pread

        def counting_pread(self: Segment, start: int, end: int) -> bytes:
            reads.append(end - start)
            return real_pread(self, start, end)

        monkeypatch.setattr(Segment, "pread", counting_pread)
        started = time.perf_counter()
        quiet = store.read("quiet")
        elapsed = time.perf_counter() - started
        assert [e["path"] for e in quiet] == [f"/quiet/{b}" for b in range(0, OTHER_EVENTS // BATCH, 40)]
        # One small pread per quiet event: nothing proportional to the 200k busy events is read.
        assert len(reads) == len(quiet)
        assert sum(reads) < 200 * len(quiet)
        assert elapsed < 0.5  # loose: measured well under 1 ms (see the README's event-store figures)

        reads.clear()
        tail = store.read("busy", after=store.last_seq - 2000, limit=1000)
        assert len(tail) == 1000
        assert len(reads) <= 2  # a contiguous run is one pread (two if it spans a rotation)
