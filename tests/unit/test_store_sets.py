"""Interned watcher sets in segment records: every segment decodes alone, a torn definition costs
only what recovery would cut anyway, and stores written in the older per-id format read the same."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fswatch_supervisor.errors import StoreError
from fswatch_supervisor.eventmodel import make_event
from fswatch_supervisor.store import EventStore, FsyncPolicy, NewEvent, framing
from fswatch_supervisor.store.meta import StoreMeta, save_meta
from fswatch_supervisor.store.records import PER_ID_FORMAT, extra_of, pack_record
from fswatch_supervisor.store.segment import segment_name
from tests.unit.conftest import MakeStore

T0 = time.time_ns()
HUNDRED = tuple(f"w_{k:x}Ab3dXy9Q" for k in range(100))
"""A hundred ids shaped like the registry's."""


def ev(i: int, watchers: Sequence[str], **kw: Any) -> NewEvent:
    return NewEvent("updated", f"/r/{i}", "file", T0 + i, tuple(watchers), **kw)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg-*.log"))


def receivers(path: Path) -> list[Any]:
    """The receivers field of each record of a segment file, as stored."""
    return [msgpack.unpackb(payload)[6] for _, payload in framing.scan_file(str(path)).records]


def expected(events: list[NewEvent], first: int = 1) -> dict[str, list[dict[str, Any]]]:
    """What each watcher must read: the public maps of its events, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for seq, e in enumerate(events, first):
        event = make_event(seq, e.action, e.path, e.kind, e.time_ns, **(extra_of(e) or {}))
        for watcher in dict.fromkeys(e.watchers):
            out.setdefault(watcher, []).append(event)
    return out


def read_all(store: EventStore, watchers: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return {w: got for w in watchers if (got := store.read(w, limit=1_000_000))}


def write_per_id_store(directory: Path, events: list[NewEvent], per_segment: int) -> None:
    """Write ``events`` as the store did before sets were interned: ``seg-N.log`` files of per-id
    records and a META as a clean close leaves it."""
    directory.mkdir(parents=True)
    for start in range(0, len(events), per_segment):
        chunk = events[start:start + per_segment]
        payloads = [pack_record(start + 1 + i, e, extra_of(e)) for i, e in enumerate(chunk)]
        (directory / segment_name(start + 1, PER_ID_FORMAT)).write_bytes(framing.encode_records(payloads))
    save_meta(directory, StoreMeta(seq_reserved=len(events)))


class TestRoundTrip:
    def test_a_set_is_written_once_per_segment_then_by_number(self, make_store: MakeStore) -> None:
        store = make_store()
        events = [ev(0, HUNDRED), ev(1, ("a",)), ev(2, HUNDRED), ev(3, ("a",)), ev(4, ("a", "b")), ev(5, HUNDRED)]
        store.append(events[:3])
        store.append(events[3:])
        (path,) = segment_files(store.directory)
        assert path.name.endswith(".v2.log")
        assert receivers(path) == [list(HUNDRED), ["a"], 0, 1, ["a", "b"], 0]
        assert read_all(store, [*HUNDRED, "a", "b"]) == expected(events)

    def test_a_hundred_watchers_cost_what_one_does_on_disk(self, make_store: MakeStore) -> None:
        sizes = []
        for watchers in (HUNDRED[:1], HUNDRED):
            store = make_store(retain_events=10_000)
            before = store.stats()["bytes"]
            store.append([ev(i, watchers) for i in range(1000)])
            sizes.append((store.stats()["bytes"] - before) / 1000)
            store.close()
        one, hundred = sizes
        assert hundred < one + 2  # the ids once per segment, then one byte per event

    def test_the_writer_continues_a_reopened_segment_with_its_numbers(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev(0, ("a",)), ev(1, ("b",))])
        store.close()
        store = make_store()
        store.append([ev(2, ("b",)), ev(3, ("c",))])
        (path,) = segment_files(store.directory)
        assert receivers(path) == [["a"], ["b"], 1, ["c"]]
        store.close()
        store = make_store()
        got = read_all(store, "abc")
        assert {w: [int(e["id"]) for e in evs] for w, evs in got.items()} == {"a": [1], "b": [2, 3], "c": [4]}

    def test_every_segment_defines_the_sets_it_uses(self, make_store: MakeStore) -> None:
        store = make_store(segment_bytes=600)
        events = [ev(i, ("a", "b") if i % 3 else ("a",)) for i in range(60)]
        for e in events:
            store.append([e])
        files = segment_files(store.directory)
        assert len(files) >= 3
        for path in files:
            fields = receivers(path)
            defined = 0
            for field in fields:
                if isinstance(field, list):
                    defined += 1
                else:
                    assert field < defined, f"{path.name} uses a set it does not define"

    def test_a_segment_dropped_by_retention_takes_no_definition_with_it(self, make_store: MakeStore) -> None:
        store = make_store(retain_events=16)  # rotates every 2 events, keeps 14..16
        events = [ev(i, ("a", "b") if i % 2 else ("a",)) for i in range(40)]
        for e in events:
            store.append([e])
        oldest = store.stats()["oldest_seq"]
        assert oldest > 1
        store.close()
        store = make_store(retain_events=16)
        want = {w: [e for e in evs if int(e["id"]) >= oldest] for w, evs in expected(events).items()}
        assert read_all(store, "ab") == want
        assert store.discarded_through("b") == max(int(e["id"]) for e in expected(events)["b"]
                                                   if int(e["id"]) < oldest)

    def test_a_failed_write_leaves_no_number_without_its_definition(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev(0, ("a",))])
        with mock.patch.object(os, "pwrite", side_effect=OSError(28, "No space left on device")), \
                pytest.raises(StoreError):
            store.append([ev(1, ("b",))])
        store.append([ev(2, ("b",))])  # must define "b" again: the failed batch never reached the file
        store.close()
        store = make_store()
        assert [e["path"] for e in store.read("b")] == ["/r/2"]


class TestTornDefinition:
    def _store_with_a_definition_mid_segment(self, make_store: MakeStore) -> tuple[Path, int]:
        """Seqs 1-3 go to {a}; seq 4 defines {a, b}; 5-8 alternate. Returns the segment and the
        offset of seq 4's record."""
        store = make_store()
        store.append([ev(i, ("a", "b") if i >= 3 and i % 2 else ("a",)) for i in range(8)])
        store.close()
        (path,) = segment_files(store.directory)
        assert receivers(path)[3] == ["a", "b"]
        return path, framing.scan_file(str(path)).records[3][0]

    @pytest.mark.parametrize("damage", ["flip", "truncate"])
    def test_events_after_a_torn_definition_are_cut_with_it(self, make_store: MakeStore, damage: str) -> None:
        path, offset = self._store_with_a_definition_mid_segment(make_store)
        if damage == "flip":
            data = bytearray(path.read_bytes())
            data[offset + framing.HEADER_SIZE + 2] ^= 0xFF
            path.write_bytes(bytes(data))
        else:
            os.truncate(path, offset + framing.HEADER_SIZE + 5)
        store = make_store()
        assert [int(e["id"]) for e in store.read("a")] == [1, 2, 3]
        assert store.read("b") == []
        assert store.stats()["events"] == 3
        seq = store.append([ev(9, ("a", "b"))])[0][0]
        store.close()
        store = make_store()
        assert [int(e["id"]) for e in store.read("b")] == [seq]

    def test_a_number_no_earlier_record_defines_ends_the_intact_prefix(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev(0, ("a",)), ev(1, ("a",))])
        store.close()
        (path,) = segment_files(store.directory)
        stray = msgpack.packb([3, T0, "updated", "/r/x", "file", None, 5])
        good = msgpack.packb([4, T0, "updated", "/r/y", "file", None, 0])
        with path.open("ab") as handle:
            handle.write(framing.encode_records([stray, good]))
        store = make_store()
        assert [int(e["id"]) for e in store.read("a")] == [1, 2]
        assert store.stats()["events"] == 2

    def test_a_cut_record_defines_nothing_for_the_writer(self, make_store: MakeStore) -> None:
        store = make_store()
        store.append([ev(0, ("a",)), ev(1, ("a",))])
        store.close()
        (path,) = segment_files(store.directory)
        with path.open("ab") as handle:  # a definition of {b} under a seq that is not the next one
            handle.write(framing.encode_record(pack_record(7, ev(7, ("b",)), None)))
        (store.directory / "META").unlink()  # so the writer continues this very segment
        store = make_store()
        assert store.append([ev(2, ("b",))])[0][0] == 3
        assert receivers(path) == [["a"], 0, ["b"]]
        store.close()
        store = make_store()
        assert [e["path"] for e in store.read("b")] == ["/r/2"]


class TestUpgrade:
    def test_a_per_id_store_reads_the_same_and_is_never_appended_to(self, tmp_path: Path) -> None:
        directory = tmp_path / "events"
        old = [ev(i, HUNDRED if i % 4 == 0 else ("a", HUNDRED[i % 100]), rescan=i % 5 == 0) for i in range(30)]
        write_per_id_store(directory, old, per_segment=10)
        before = {p.name: p.read_bytes() for p in segment_files(directory)}
        watchers = [*HUNDRED, "a"]
        with EventStore(directory) as store:
            assert read_all(store, watchers) == expected(old)
            assert store.bounds("a") == (2, 30)
            new = [ev(100 + i, ("a",)) for i in range(5)]
            assert [seq for seq, _ in store.append(new)] == [31, 32, 33, 34, 35]
        assert {p.name: p.read_bytes() for p in segment_files(directory) if p.name in before} == before
        assert segment_files(directory)[-1].name == "seg-00000000000000000031.v2.log"
        with EventStore(directory) as store:
            assert read_all(store, watchers) == expected(old + new)

    def test_a_torn_per_id_tail_is_cut_as_before(self, tmp_path: Path) -> None:
        directory = tmp_path / "events"
        write_per_id_store(directory, [ev(i, ("a",)) for i in range(5)], per_segment=10)
        (path,) = segment_files(directory)
        os.truncate(path, path.stat().st_size - 3)
        with EventStore(directory) as store:
            assert [int(e["id"]) for e in store.read("a")] == [1, 2, 3, 4]
            assert store.append([ev(9, ("a",))])[0][0] == 6  # 5 was handed out once

    def test_an_older_binarys_segment_beside_an_empty_new_one(self, tmp_path: Path) -> None:
        """An older binary does not list ``.v2`` segments: it may start ``seg-N.log`` where an
        empty ``seg-N.v2.log`` begins. The empty one goes; nothing is lost."""
        directory = tmp_path / "events"
        with EventStore(directory) as store:
            store.append([ev(0, ("a",))])  # seg-1.v2 holds 1; the store closes with seq_reserved = 1
            store.close()
        with EventStore(directory, retain_events=8) as store:  # rotates after every event
            store.append([ev(1, ("a",))])
        assert (directory / "seg-00000000000000000003.v2.log").stat().st_size == 0
        (directory / segment_name(3, PER_ID_FORMAT)).write_bytes(
            framing.encode_record(pack_record(3, ev(2, ("a",)), None)))
        save_meta(directory, StoreMeta(seq_reserved=3))
        with EventStore(directory) as store:
            assert [e["path"] for e in store.read("a")] == ["/r/0", "/r/1", "/r/2"]
            assert store.append([ev(3, ("a",))])[0][0] == 4
        assert not (directory / "seg-00000000000000000003.v2.log").exists()


batches = st.lists(st.lists(st.sets(st.sampled_from("abcd"), min_size=1).map(sorted), min_size=1, max_size=6),
                   min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(batches, st.integers(1, 8), st.sampled_from([200, 400, 100_000]))
def test_reads_match_a_store_written_in_the_per_id_format(plan: list[list[list[str]]], per_segment: int,
                                                          segment_bytes: int) -> None:
    events = [ev(i, watchers) for i, watchers in enumerate(w for batch in plan for w in batch)]
    with tempfile.TemporaryDirectory() as tmp:
        old_dir, new_dir = Path(tmp) / "old", Path(tmp) / "new"
        write_per_id_store(old_dir, events, per_segment)
        with EventStore(new_dir, segment_bytes=segment_bytes, fsync=FsyncPolicy.NEVER) as store:
            i = 0
            for batch in plan:
                store.append(events[i:i + len(batch)])
                i += len(batch)
        new_bytes = sum(p.stat().st_size for p in segment_files(new_dir))
        old_bytes = sum(p.stat().st_size for p in segment_files(old_dir))
        with EventStore(old_dir, fsync=FsyncPolicy.NEVER) as old, \
                EventStore(new_dir, segment_bytes=segment_bytes, fsync=FsyncPolicy.NEVER) as new:
            assert read_all(new, "abcd") == read_all(old, "abcd") == expected(events)
            for w in "abcd":
                assert new.bounds(w) == old.bounds(w)
                assert new.read(w, after=len(events) // 2, limit=3) == old.read(w, after=len(events) // 2, limit=3)
            assert sorted(new.watchers()) == sorted(old.watchers())
            assert new.stats()["events"] == old.stats()["events"] == len(events)
        assert new_bytes <= old_bytes
