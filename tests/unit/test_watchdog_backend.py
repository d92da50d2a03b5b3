"""The portable watchdog backend (run here over watchdog's Linux observer)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from fswatch_supervisor.backends import open_backend
from fswatch_supervisor.backends.base import RawEvent
from fswatch_supervisor.backends.watchdog import WatchdogBackend
from tests.unit.test_mirror_support import Running, async_test, make_tree


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


@async_test
async def test_events_arrive_in_the_loop_thread_without_open_close(tmp_path: Path) -> None:
    backend = open_backend("watchdog")
    assert isinstance(backend, WatchdogBackend) and not backend.per_directory
    got: list[RawEvent] = []
    loop_thread = asyncio.get_running_loop()

    def on_events(batch: list[RawEvent]) -> None:
        assert asyncio.get_running_loop() is loop_thread
        got.extend(batch)

    (tmp_path / "f").write_text("x")
    backend.start(asyncio.get_running_loop(), on_events)
    try:
        backend.add_dir(str(tmp_path))
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "s").write_text("x")  # a new directory's contents (watchdog may synthesise)
        os.rename(tmp_path / "f", tmp_path / "g")
        await wait_until(lambda: any(e.action == "moved_to" for e in got)
                         and ("created", str(tmp_path / "sub" / "s")) in [(e.action, e.path) for e in got])
        (tmp_path / "g").read_text()
        actions = [(e.action, e.path) for e in got]
        assert ("created", str(tmp_path / "sub")) in actions
        pair = [e for e in got if e.action in ("moved_from", "moved_to")]
        assert [e.path for e in pair] == [str(tmp_path / "f"), str(tmp_path / "g")]
        assert pair[0].cookie == pair[1].cookie
        assert {e.action for e in got} <= {"created", "modified", "moved_from", "moved_to"}
    finally:
        backend.close()


@async_test
async def test_recursive_watches_are_merged_and_restored(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b", "c"])
    backend = WatchdogBackend()
    backend.start(asyncio.get_running_loop(), lambda batch: None)
    try:
        backend.add_dir(str(tmp_path / "a"))
        backend.add_dir(str(tmp_path / "a" / "b"))
        assert backend.watch_count() == 1
        backend.add_dir(str(tmp_path))  # a parent absorbs the watch below it
        assert backend.watch_count() == 1
        assert backend.is_watched(str(tmp_path / "a" / "b"))
        backend.remove_dir(str(tmp_path))  # a/ and a/b are still needed: re-covered by one watch
        assert backend.watch_count() == 1 and backend.is_watched(str(tmp_path / "a"))
        backend.remove_dir(str(tmp_path / "a"))
        backend.remove_dir(str(tmp_path / "a" / "b"))
        assert backend.watch_count() == 0
    finally:
        backend.close()


@async_test
async def test_mirror_over_watchdog_reports_changes(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a"])
    async with Running(backend=WatchdogBackend()) as r:
        await r.mirror.add_root(str(tmp_path))
        assert r.mirror.watch_count() == 1
        (tmp_path / "a" / "new").write_text("x")
        (tmp_path / "a" / "f0.txt").unlink()
        await r.settle(tmp_path / "a")
        assert ("created", str(tmp_path / "a" / "new")) in r.summary()
        assert ("deleted", str(tmp_path / "a" / "f0.txt")) in r.summary()
