"""Pure pieces of the supervisor: option parsing, root selection, the registry's index and log."""

from __future__ import annotations

from pathlib import Path

import pytest

from fswatch_supervisor.config import parse_duration, parse_size
from fswatch_supervisor.eventmodel import format_id, format_time, parse_id, parse_time
from fswatch_supervisor.mirror.persist import encode_model, load_model, save_model, write_model
from fswatch_supervisor.recordlog import RecordLog, sync_and_close
from fswatch_supervisor.registry import Registry, outermost
from fswatch_supervisor.rules import RuleSet
from fswatch_supervisor.watchers import Watcher, new_watcher_id


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200),
                                                ("7d", 604800), ("2w", 1209600), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [("1024", 1024), ("512MiB", 512 * 2**20), ("2G", 2 * 2**30),
                                            ("10kb", 10240)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "5y", "-1"])
def test_bad_durations_say_so(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_ids_are_20_digits_and_round_trip() -> None:
    assert format_id(42) == "00000000000000000042"
    assert parse_id(format_id(2**64 - 1)) == 2**64 - 1
    for bad in ("", "x", "1" * 21, "-1", "99999999999999999999"):
        with pytest.raises(ValueError):
            parse_id(bad)


def test_times_are_rfc3339_utc_microseconds() -> None:
    ns = 1_795_000_000_123_456_000
    text = format_time(ns)
    assert text.endswith("Z") and len(text) == len("2026-11-24T05:50:01.020304Z")
    assert parse_time(text) == ns
    assert parse_time("2026-11-24T06:50:01.020304+01:00") == parse_time("2026-11-24T05:50:01.020304Z")
    with pytest.raises(ValueError):
        parse_time("2026-11-24 05:50")


def test_outermost_roots_keep_only_outermost() -> None:
    assert outermost(["/a/b", "/a", "/ab", "/a/b/c", "/x"]) == ["/a", "/ab", "/x"]


def _watcher(registry: Registry, path: str, **tags: str) -> Watcher:
    serial = registry.next_serial()
    return Watcher(id=new_watcher_id(serial), serial=serial, rules=RuleSet.for_path(path), path=path,
                   tags=dict(tags), coalesce_ms=50, ttl_s=None, created_ns=0)


def test_registry_index_and_persistence(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    log = tmp_path / "watchers.log"
    registry = Registry(log)
    registry.open()
    outer = _watcher(registry, str(tmp_path / "a"), team="exo")
    inner = _watcher(registry, str(tmp_path / "a" / "b"))
    for w in (outer, inner):
        registry.add(w)
        registry.persist_add(w)
    assert {w.id for w in registry.covering(str(tmp_path / "a" / "b" / "f"))} == {outer.id, inner.id}
    assert [w.id for w in registry.covering(str(tmp_path / "a" / "f"))] == [outer.id]
    assert [w.id for w in registry.select(tags={"team": "exo"})] == [outer.id]
    registry.remove(inner.id)
    registry.persist_remove(inner)
    registry.close()
    with open(log, "ab") as handle:
        handle.write(b"\x10\x00\x00\x00torn")  # a crash mid-append
    reopened = Registry(log)
    assert [w.id for w in reopened.open()] == [outer.id]
    assert reopened.next_serial() > inner.serial, "serials (and so ids) are never reused"


def test_a_detached_sync_covers_earlier_appends_and_later_ones_wait_for_the_next(tmp_path: Path) -> None:
    log = RecordLog(tmp_path / "watchers.log", sync_each=False)
    log.open()
    assert log.detach_sync() is None  # nothing appended: nothing to sync
    log.append({"op": "add", "n": 1})
    fd = log.detach_sync()
    assert fd is not None and log.detach_sync() is None
    log.append({"op": "add", "n": 2})  # while the detached sync runs elsewhere
    log.close()  # the log may close meanwhile: the duplicate stays valid
    sync_and_close(fd)
    again = RecordLog(tmp_path / "watchers.log")
    assert [r["n"] for r in again.open()] == [1, 2]
    again.close()


def test_a_model_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "snapshot.msgpack"
    save_model(target, {"/r": "dir"}, [("/r/a", "file", 1, 2)])
    write_model(target, encode_model({"/r": "dir"}, [("/r/b", "file", 3, 4)]))
    assert load_model(target) == {"/r": [("/r/b", "file", 3, 4)]}
    with pytest.raises(TypeError):
        write_model(target, object())  # type: ignore[arg-type]  # a failed write keeps the old model
    assert load_model(target) == {"/r": [("/r/b", "file", 3, 4)]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.msgpack"]
