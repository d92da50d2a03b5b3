"""Crash safety: torn tails are cut, acknowledged events survive kill -9, ids are never reissued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fswatch_supervisor.store import EventStore, FsyncPolicy, NewEvent, framing
from fswatch_supervisor.store.meta import load_meta, save_meta
from fswatch_supervisor.store.records import pack_record
from tests.unit.conftest import MakeStore

REPO = Path(__file__).resolve().parents[2]




def ev(i: int, *watchers: str) -> NewEvent:
    return NewEvent("updated", f"/r/{i}", "file", time.time_ns(), watchers or ("w1",))


def seqs(store: EventStore, watcher: str = "w1") -> list[int]:
    return [int(e["id"]) for e in store.read(watcher, limit=100_000)]


def segment_files(store_dir: Path) -> list[Path]:
    return sorted(store_dir.glob("seg-*.log"))


def record_offsets(path: Path) -> list[int]:
    return [offset for offset, _ in framing.scan_file(str(path)).records]


def fill(make_store: MakeStore, count: int, **kwargs: Any) -> Path:
    store = make_store(**kwargs)
    for i in range(count):
        store.append([ev(i)])
    store.close()
    return store.directory


class TestTornTail:
    def test_a_record_cut_mid_way_is_dropped_and_its_id_not_reissued(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 10)
        (last,) = segment_files(directory)
        os.truncate(last, last.stat().st_size - 5)
        store = make_store()
        assert seqs(store) == list(range(1, 10))
        assert store.append([ev(99)])[0][0] > 10  # 10 was acknowledged once: never again

    def test_garbage_after_the_last_record_is_cut(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 10)
        (last,) = segment_files(directory)
        size = last.stat().st_size
        with last.open("ab") as handle:
            handle.write(b"\x17\x00\x00\x00garbage that is not a record")
        store = make_store()
        assert seqs(store) == list(range(1, 11))
        assert last.stat().st_size == size
        store.append([ev(11)])
        assert seqs(store)[-1] > 10

    def test_a_flipped_checksum_keeps_everything_before_it(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 10)
        (last,) = segment_files(directory)
        fifth = record_offsets(last)[4]
        data = bytearray(last.read_bytes())
        data[fifth + 4] ^= 0x01
        last.write_bytes(bytes(data))
        store = make_store()
        assert seqs(store) == [1, 2, 3, 4]
        assert store.stats()["events"] == 4

    def test_a_valid_frame_with_the_wrong_seq_is_cut(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 3)
        (last,) = segment_files(directory)
        with last.open("ab") as handle:
            handle.write(framing.encode_record(pack_record(77, ev(0), None)))
        store = make_store()
        assert seqs(store) == [1, 2, 3]

    def test_zeros_from_a_lost_page_are_cut(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 5)
        (last,) = segment_files(directory)
        with last.open("ab") as handle:
            handle.write(b"\0" * 4096)
        store = make_store()
        assert seqs(store) == [1, 2, 3, 4, 5]

    def test_a_short_older_segment_leaves_a_gap_not_a_failure(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 60, segment_bytes=600)
        files = segment_files(directory)
        assert len(files) >= 3
        os.truncate(files[1], record_offsets(files[1])[2] + 3)  # keep its first two records
        store = make_store(segment_bytes=600)
        got = seqs(store)
        second_base = int(files[1].name[4:24])
        third_base = int(files[2].name[4:24])
        assert got == sorted(got)
        assert second_base + 1 in got and second_base + 2 not in got
        assert got[-1] == 60 and third_base in got

    def test_missing_meta_falls_back_to_the_segments(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 7)
        (directory / "META").unlink()
        store = make_store()
        assert seqs(store) == list(range(1, 8))
        assert store.append([ev(8)])[0][0] == 8

    def test_an_interrupted_retention_drop_is_finished_on_open(self, make_store: MakeStore) -> None:
        directory = fill(make_store, 60, segment_bytes=600)
        files = segment_files(directory)
        third_base = int(files[2].name[4:24])
        meta = load_meta(directory)
        assert meta is not None
        meta.dropped_through = third_base - 1  # as if the process died between META and unlink
        save_meta(directory, meta)
        store = make_store(segment_bytes=600)
        assert not files[0].exists() and not files[1].exists()
        assert seqs(store)[0] == third_base


def _read_acks(proc: subprocess.Popen[str], want: int, deadline: float) -> list[tuple[int, int, int]]:
    acks: list[tuple[int, int, int]] = []
    assert proc.stdout is not None
    while len(acks) < want:
        assert time.monotonic() < deadline, "writer too slow"
        line = proc.stdout.readline()
        assert line, "writer exited early"
        if line.startswith("ACK"):
            _, batch, first, last = line.split()
            acks.append((int(batch), int(first), int(last)))
    return acks


@pytest.mark.parametrize("policy", [FsyncPolicy.INTERVAL, FsyncPolicy.NEVER])
def test_kill_9_mid_burst_keeps_every_acknowledged_event(tmp_path: Path, policy: FsyncPolicy) -> None:
    directory = tmp_path / "events"
    acknowledged: list[tuple[int, int, int]] = []
    for round_no in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.unit.store_crash_writer", str(directory), policy, str(64 * 1024)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            acks = _read_acks(proc, 15 + 10 * round_no, time.monotonic() + 60)
        finally:
            proc.send_signal(signal.SIGKILL)  # while it is in the middle of further appends
            proc.wait(timeout=30)
            assert proc.stdout is not None
            # Lines flushed before the kill are acknowledgements too.
            rest = proc.stdout.read()
            proc.stdout.close()
        acks += [(int(b), int(f), int(la)) for _, b, f, la in
                 (line.split() for line in rest.splitlines() if line.startswith("ACK"))]
        acknowledged += [(round_no * 10_000 + b, f, la) for b, f, la in acks]

    with EventStore(directory) as store:
        events = store.read("all", limit=1_000_000)
        by_seq = {int(e["id"]): e for e in events}
        got = [int(e["id"]) for e in events]
        assert got == sorted(set(got)), "ids strictly increasing"
        odd = {int(e["id"]) for e in store.read("odd", limit=1_000_000)}
        for tagged_batch, first, last in acknowledged:
            batch = tagged_batch % 10_000
            for i, seq in enumerate(range(first, last + 1)):
                assert seq in by_seq, f"acknowledged seq {seq} lost"
                assert by_seq[seq]["path"] == f"/crash/{batch}/{i}" + "x" * (i % 50)
                assert (seq in odd) == (i % 2 == 1)
        newest = max(last for _, _, last in acknowledged)
        assert store.append([ev(0, "all")])[0][0] > newest
