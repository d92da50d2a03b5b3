"""The event store's API: append, read, paging, bounds, ids across restarts, retention, locking."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fswatch_supervisor.errors import StoreBusy, StoreClosed
from fswatch_supervisor.eventmodel import format_id, format_time, parse_time
from fswatch_supervisor.store import EventStore, FsyncPolicy, NewEvent
from tests.unit.conftest import MakeStore

T0 = time.time_ns() // 10**9 * 10**9
"""Whole seconds near now: the default age limit (7 days) applies on every rotation."""





def ev(path: str, *watchers: str, t: int = T0, action: str = "created", **kw: Any) -> NewEvent:
    return NewEvent(action=action, path=path, kind="file", time_ns=t, watchers=watchers or ("w1",), **kw)


def ids(events: list[dict[str, Any]]) -> list[int]:
    return [int(e["id"]) for e in events]


class TestAppendRead:
    def test_append_returns_consecutive_seqs_and_public_maps(self, make_store: MakeStore) -> None:
        store = make_store()
        out = store.append([ev("/r/a"), ev("/r/b", action="moved", from_path="/r/a")])
        assert [seq for seq, _ in out] == [1, 2]
        assert out[0][1] == {"id": format_id(1), "action": "created", "path": "/r/a", "kind": "file",
                             "time": format_time(T0)}
        assert out[1][1]["from"] == "/r/a"
        assert store.last_seq == 2

    def test_read_returns_the_same_maps_as_append(self, make_store: MakeStore) -> None:
        store = make_store()
        appended = store.append([
            ev("/r/a", rescan=True),
            NewEvent("watch-error", "/r", None, T0, ("w1",), detail="inotify limit"),
            ev("/r/c"),
        ])
        assert store.read("w1") == [m for _, m in appended]
        assert appended[0][1]["rescan"] is True
        assert "rescan" not in appended[2][1] and "from" not in appended[2][1]
        assert appended[1][1]["kind"] is None and appended[1][1]["detail"] == "inotify limit"

    def test_each_watcher_reads_only_its_own_events(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev("/a", "w1"), ev("/b", "w2"), ev("/c", "w1", "w2"), ev("/d", "w3")])
        assert ids(store.read("w1")) == [1, 3]
        assert ids(store.read("w2")) == [2, 3]
        assert store.read("w1")[1] == store.read("w2")[1]  # one shared record
        assert store.read("nobody") == []

    def test_paging_with_after_and_limit_visits_every_event_once(self, make_store: MakeStore) -> None:
        store = make_store(segment_bytes=2048)  # several segments
        for batch in range(20):
            store.append([ev(f"/p/{batch}/{i}", "w1" if i % 3 else "w2") for i in range(25)])
        expected = ids(store.read("w1", limit=10_000))
        seen: list[int] = []
        after = 0
        while page := store.read("w1", after=after, limit=7):
            assert len(page) <= 7
            seen += ids(page)
            after = ids(page)[-1]
        assert seen == expected
        assert len(seen) == 20 * 16
        assert seen == sorted(set(seen))

    def test_bounds_follow_the_watchers_own_events(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.bounds("w1") == (None, None)
        store.append([ev("/a", "w2"), ev("/b", "w1"), ev("/c", "w2"), ev("/d", "w1"), ev("/e", "w2")])
        assert store.bounds("w1") == (2, 4)
        assert store.bounds("w2") == (1, 5)

    def test_since_filters_by_time_even_when_times_are_not_monotone(self, make_store: MakeStore) -> None:
        store = make_store(segment_bytes=512)
        second = 10**9
        times = [0, 1, 2, 5, 3, 4, 6, 2, 7, 8] * 8  # slightly out of order, like real clocks
        store.append([ev(f"/t/{i}", t=T0 + t * second) for i, t in enumerate(times)])
        got = store.read("w1", since_ns=T0 + 4 * second, limit=10_000)
        want = [i + 1 for i, t in enumerate(times) if t >= 4]
        assert ids(got) == want
        assert all(parse_time(e["time"]) >= T0 + 4 * second for e in got)
        assert ids(store.read("w1", since_ns=T0 + 4 * second, limit=3, after=20)) == [w for w in want
                                                                                      if w > 20][:3]
        assert store.read("w1", since_ns=T0 + 99 * second) == []

    @settings(max_examples=30, deadline=None)
    @given(st.lists(st.integers(-400, 400), min_size=600, max_size=1500), st.integers(-100, 16_000),
           st.integers(0, 3))
    def test_since_skipping_by_time_marks_never_loses_a_match(self, noise: list[int], since: int,
                                                              watcher_stride: int) -> None:
        times = [T0 + (10 * i + jitter) * 1000 for i, jitter in enumerate(noise)]
        watchers = ["w1" if watcher_stride == 0 or i % (watcher_stride + 1) == 0 else "other"
                    for i in range(len(times))]
        with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp), fsync=FsyncPolicy.NEVER,
                                                              segment_bytes=40_000) as store:
            store.append([ev(f"/n/{i}", w, t=t) for i, (t, w) in enumerate(zip(times, watchers, strict=True))])
            since_ns = T0 + since * 1000
            want = [i + 1 for i, (t, w) in enumerate(zip(times, watchers, strict=True))
                    if t >= since_ns and w == "w1"]
            assert ids(store.read("w1", since_ns=since_ns, limit=10_000)) == want
            assert ids(store.read("w1", since_ns=since_ns, limit=5)) == want[:5]

    def test_empty_append_is_a_no_op(self, make_store: MakeStore) -> None:
        store = make_store()
        assert store.append([]) == []
        assert store.last_seq == 0

    def test_stats_count_events_and_segments(self, make_store: MakeStore) -> None:
        store = make_store(segment_bytes=1024)
        for _ in range(10):
            store.append([ev(f"/s/{i}") for i in range(10)])
        stats = store.stats()
        assert stats["events"] == 100 and stats["appended_total"] == 100
        assert stats["last_seq"] == 100 and stats["oldest_seq"] == 1
        assert stats["segments"] > 1
        assert stats["bytes"] == sum(p.stat().st_size for p in store.directory.glob("seg-*.log"))


class TestLifecycle:
    def test_ids_continue_after_a_clean_restart(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev("/a"), ev("/b", "w2")])
        store.close()
        store = make_store()
        assert store.last_seq == 2
        assert ids(store.read("w1")) == [1]
        assert ids(store.read("w2")) == [2]  # index rebuilt from the records alone
        assert [seq for seq, _ in store.append([ev("/c")])] == [3]

    def test_ids_are_never_reused_after_retention_dropped_everything(self, make_store: MakeStore) -> None:
        store = make_store(retain_age_s=60, segment_bytes=256)
        for i in range(10):
            store.append([ev(f"/old/{i}/{j}", t=T0 - 3600 * 10**9) for j in range(5)])
        last = store.last_seq
        store.close()
        store = make_store(retain_age_s=60, segment_bytes=256)
        # Reopening enforces age retention: all those events are years old.
        assert store.stats()["events"] == 0
        assert store.read("w1") == []
        assert store.discarded_through("w1") == last
        store.close()
        store = make_store(retain_age_s=60, segment_bytes=256)
        seq, _ = store.append([ev("/new", t=time.time_ns())])[0]
        assert seq == last + 1

    def test_calls_after_close_raise_store_closed(self, make_store: MakeStore) -> None:
        store = make_store()
        store.close()
        store.close()  # idempotent
        for call in (lambda: store.append([ev("/a")]), lambda: store.read("w1"), lambda: store.bounds("w1"),
                     store.stats, lambda: store.enforce_retention()):
            with pytest.raises(StoreClosed):
                call()

    def test_unopened_store_refuses_calls(self, tmp_path: Path) -> None:
        with pytest.raises(StoreClosed):
            EventStore(tmp_path).read("w1")

    def test_a_second_open_in_the_same_process_is_busy(self, make_store: MakeStore, tmp_path: Path) -> None:
        make_store()
        with pytest.raises(StoreBusy):
            EventStore(tmp_path / "events").open()

    def test_a_second_process_is_busy_until_the_first_closes(self, make_store: MakeStore, tmp_path: Path) -> None:
        store = make_store()
        code = ("import sys; from pathlib import Path; from fswatch_supervisor.store import EventStore\n"
                "from fswatch_supervisor.errors import StoreBusy\n"
                "s = EventStore(Path(sys.argv[1]))\n"
                "try:\n    s.open()\nexcept StoreBusy:\n    sys.exit(17)\ns.close()\n")
        argv = [sys.executable, "-c", code, str(tmp_path / "events")]
        assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 17
        store.close()
        assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0

    @pytest.mark.parametrize("policy", list(FsyncPolicy))
    def test_every_fsync_policy_stores_and_reopens(self, make_store: MakeStore, policy: FsyncPolicy) -> None:
        store = make_store(fsync=policy, fsync_interval_s=0.01, segment_bytes=512)
        for i in range(5):
            store.append([ev(f"/f/{i}/{j}") for j in range(10)])
        if policy is FsyncPolicy.INTERVAL:
            deadline = time.monotonic() + 5
            while any(s.dirty for s in store._segments.segments) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not any(s.dirty for s in store._segments.segments)
        store.close()
        assert len(make_store(fsync=policy).read("w1")) == 50


class TestRetention:
    def test_event_limit_drops_whole_old_segments(self, make_store: MakeStore) -> None:
        store = make_store(retain_events=80)  # rotates every 10 events
        for i in range(30):
            store.append([ev(f"/e/{i}/{j}") for j in range(5)])
        stats = store.stats()
        assert 70 <= stats["events"] <= 80
        assert stats["discarded_total"] == 150 - stats["events"]
        kept = ids(store.read("w1", limit=1000))
        assert kept == list(range(stats["oldest_seq"], 151))
        assert store.discarded_through("w1") == stats["oldest_seq"] - 1

    def test_byte_limit(self, make_store: MakeStore) -> None:
        store = make_store(retain_bytes=4096)
        for i in range(200):
            store.append([ev(f"/bytes/{i:04d}")])
        stats = store.stats()
        assert stats["bytes"] <= 4096
        assert stats["bytes"] > 4096 * 5 // 8  # whole segments of 1/8 of the limit go
        assert ids(store.read("w1", limit=1000))[-1] == 200

    def test_age_limit_uses_the_given_clock(self, make_store: MakeStore) -> None:
        hour = 3600 * 10**9
        store = make_store(retain_age_s=3600, segment_bytes=300)
        for i in range(10):
            store.append([ev(f"/age/{i}/{j}", t=T0 + i * hour // 4) for j in range(4)])
        assert store.enforce_retention(now_ns=T0 + hour // 2) == 0
        dropped = store.enforce_retention(now_ns=T0 + 2 * hour)
        assert dropped > 0
        remaining = store.read("w1", limit=1000)
        # Nothing newer than the limit went, and what is left is contiguous up to the newest.
        assert ids(remaining) == list(range(ids(remaining)[0], 41))
        assert store.discarded_through("w1") == ids(remaining)[0] - 1
        assert parse_time(remaining[0]["time"]) >= T0 + hour - hour // 4

    def test_the_active_segment_is_never_dropped(self, make_store: MakeStore) -> None:
        store = make_store(retain_age_s=1)
        store.append([ev("/a")])
        assert store.enforce_retention(now_ns=T0 + 10**15) == 0
        assert ids(store.read("w1")) == [1]

    def test_discarded_through_is_per_watcher_and_survives_restart(self, make_store: MakeStore) -> None:
        store = make_store(retain_events=16)  # rotates every 2 events
        store.append([ev("/x", "quiet")])
        for i in range(40):
            store.append([ev(f"/busy/{i}", "busy")])
        assert store.bounds("quiet") == (None, None)
        assert store.discarded_through("quiet") == 1
        busy = store.discarded_through("busy")
        assert busy == store.bounds("busy")[0] - 1  # type: ignore[operator]
        assert store.discarded_through("never-seen") == 0
        store.close()
        store = make_store(retain_events=16)
        assert store.discarded_through("quiet") == 1
        assert store.discarded_through("busy") == busy

    def test_forget_watcher_drops_its_index_also_after_restart(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev("/a", "gone", "kept"), ev("/b", "gone")])
        store.forget_watcher("gone")
        assert store.read("gone") == [] and store.bounds("gone") == (None, None)
        assert store.watchers() == ["kept"]
        store.close()
        store = make_store()
        assert store.read("gone") == []
        assert ids(store.read("kept")) == [1]


class TestAgainstAModel:
    @settings(max_examples=25, deadline=None)
    @given(st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True),
                              st.integers(1, 6), st.booleans()), min_size=1, max_size=15),
           st.integers(200, 2000))
    def test_reads_match_a_dict_model_across_reopens(self, ops: list[tuple[list[str], int, bool]],
                                                     segment_bytes: int) -> None:
        model: dict[str, list[tuple[int, str]]] = {"a": [], "b": [], "c": []}
        with tempfile.TemporaryDirectory() as tmp:
            store = EventStore(Path(tmp), segment_bytes=segment_bytes, fsync=FsyncPolicy.NEVER)
            store.open()
            try:
                for n, (watchers, size, reopen) in enumerate(ops):
                    batch = [ev(f"/m/{n}/{i}", *watchers) for i in range(size)]
                    for seq, event in store.append(batch):
                        for w in watchers:
                            model[w].append((seq, event["path"]))
                    if reopen:
                        store.close()
                        store = EventStore(Path(tmp), segment_bytes=segment_bytes, fsync=FsyncPolicy.NEVER)
                        store.open()
                for w, expected in model.items():
                    assert [(int(e["id"]), e["path"]) for e in store.read(w, limit=10_000)] == expected
                    assert store.bounds(w) == ((expected[0][0], expected[-1][0]) if expected else (None, None))
                    if len(expected) > 2:
                        middle = expected[len(expected) // 2][0]
                        assert [int(e["id"]) for e in store.read(w, after=middle, limit=2)] == [
                            s for s, _ in expected if s > middle][:2]
            finally:
                store.close()


def test_readers_in_threads_see_consistent_prefixes_while_appending(make_store: MakeStore) -> None:
    store = make_store(segment_bytes=4096, retain_events=400)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                got = ids(store.read("w1", limit=500))
                assert got == sorted(set(got))
                if got:
                    assert got == list(range(got[0], got[0] + len(got)))  # retention cuts a prefix only
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for i in range(300):
        store.append([ev(f"/c/{i}/{j}") for j in range(5)])
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
    assert ids(store.read("w1", limit=1000))[-1] == 1500
