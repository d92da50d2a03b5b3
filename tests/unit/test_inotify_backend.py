"""The raw inotify backend: batches, mask, cookies, re-keyed moves, exact watch accounting."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from pathlib import Path

import pytest

from fswatch_supervisor.backends import open_backend
from fswatch_supervisor.backends.base import RawEvent
from fswatch_supervisor.backends.inotify import InotifyBackend, watch_limit_message
from fswatch_supervisor.backends.inotify_events import IN_ATTRIB, IN_CREATE, IN_DELETE, IN_ISDIR, IN_MODIFY
from fswatch_supervisor.errors import WatchError
from tests.unit.test_mirror_support import async_test, fdinfo_watches


class Collected:
    def __init__(self) -> None:
        self.batches: list[list[RawEvent]] = []

    def __call__(self, batch: list[RawEvent]) -> None:
        self.batches.append(batch)

    @property
    def events(self) -> list[tuple[str, str]]:
        return [(e.action, e.path) for b in self.batches for e in b]

    async def wait_for(self, item: tuple[str, str], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while item not in self.events:
            assert time.monotonic() < deadline, f"{item} not seen; got {self.events}"
            await asyncio.sleep(0.005)


async def started(tmp_path: Path) -> tuple[InotifyBackend, Collected]:
    backend = InotifyBackend()
    got = Collected()
    backend.start(asyncio.get_running_loop(), got)
    backend.add_dir(str(tmp_path))
    return backend, got


def test_open_backend_defaults_to_inotify_on_linux() -> None:
    backend = open_backend(None)
    try:
        assert backend.name == "inotify" and backend.per_directory
    finally:
        backend.close()
    with pytest.raises(ValueError):
        open_backend("kqueue-please")


@async_test
async def test_basic_events_and_no_open_close_noise(tmp_path: Path) -> None:
    (tmp_path / "existing").write_text("data")
    backend, got = await started(tmp_path)
    try:
        for _ in range(5):
            (tmp_path / "existing").read_text()  # opens and closes: must produce nothing
        f = tmp_path / "f"
        f.write_text("x")
        os.chmod(f, 0o600)
        f.unlink()
        (tmp_path / "d").mkdir()
        await got.wait_for(("created", str(tmp_path / "d")))
        # The write right after the creation is dropped when both land in one read (see below).
        assert [e for e in got.events if e != ("modified", str(f))] == [
            ("created", str(f)), ("attrib", str(f)), ("deleted", str(f)), ("created", str(tmp_path / "d"))]
        assert got.batches[-1][-1].is_dir
    finally:
        backend.close()


@async_test
async def test_renamed_watched_dir_is_rekeyed_before_later_events(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    backend, got = await started(tmp_path)
    try:
        backend.add_dir(str(tmp_path / "a"))
        os.rename(tmp_path / "a", tmp_path / "b")
        (tmp_path / "b" / "inside").write_text("")
        await got.wait_for(("created", str(tmp_path / "b" / "inside")))
        moves = [e for b in got.batches for e in b if e.action.startswith("moved")]
        assert [(m.action, m.path) for m in moves] == [("moved_from", str(tmp_path / "a")),
                                                       ("moved_to", str(tmp_path / "b"))]
        assert moves[0].cookie == moves[1].cookie != 0
        assert backend.is_watched(str(tmp_path / "b")) and not backend.is_watched(str(tmp_path / "a"))
    finally:
        backend.close()


@async_test
async def test_watch_accounting_matches_the_kernel(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).mkdir()
    backend, got = await started(tmp_path)
    try:
        for name in "abc":
            backend.add_dir(str(tmp_path / name))
            backend.add_dir(str(tmp_path / name))  # idempotent
        assert backend.watch_count() == 4 == fdinfo_watches(backend.fd)
        backend.remove_dir(str(tmp_path / "a"))
        backend.remove_dir(str(tmp_path / "a"))  # idempotent
        (tmp_path / "b").rename(tmp_path / "b2")  # moved away: gone from its name, watch kept
        await got.wait_for(("dir_gone", str(tmp_path / "b")))
        (tmp_path / "c").rmdir()  # deleted: the kernel drops this one itself (IN_IGNORED)
        await got.wait_for(("dir_deleted", str(tmp_path / "c")))
        deadline = time.monotonic() + 5
        while backend.watch_count() != 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        assert fdinfo_watches(backend.fd) == 2
        with pytest.raises(WatchError):
            backend.add_dir(str(tmp_path / "missing"))
        (tmp_path / "file").write_text("")
        with pytest.raises(WatchError):
            backend.add_dir(str(tmp_path / "file"))  # IN_ONLYDIR
    finally:
        backend.close()


def _raw(wd: int, mask: int, name: str = "", cookie: int = 0) -> bytes:
    encoded = name.encode() + b"\0" * (16 - len(name)) if name else b""
    return struct.pack("iIII", wd, mask, cookie, len(encoded)) + encoded


def test_a_write_right_after_a_files_creation_or_write_is_folded_into_it() -> None:
    backend = InotifyBackend()
    try:
        backend._path_of[1] = "/d"
        out: list[RawEvent] = []
        backend._parse(b"".join([
            _raw(1, IN_CREATE, "a"), _raw(1, IN_MODIFY, "a"), _raw(1, IN_MODIFY, "a"),  # one created
            _raw(1, IN_MODIFY, "b"), _raw(1, IN_MODIFY, "a"),  # another file in between: kept
            _raw(1, IN_DELETE, "a"), _raw(1, IN_MODIFY, "a"),  # after a deletion: kept
            _raw(1, IN_CREATE | IN_ISDIR, "s"), _raw(1, IN_MODIFY | IN_ISDIR, "s"),  # directories: kept
            _raw(1, IN_ATTRIB, "b"), _raw(1, IN_MODIFY, "b"),  # after an attribute change: kept
        ]), out)
        assert [(e.action, e.path) for e in out] == [
            ("created", "/d/a"), ("modified", "/d/b"), ("modified", "/d/a"), ("deleted", "/d/a"),
            ("modified", "/d/a"), ("created", "/d/s"), ("modified", "/d/s"), ("attrib", "/d/b"),
            ("modified", "/d/b")]
    finally:
        backend.close()


def test_limit_message_names_the_sysctl() -> None:
    message = watch_limit_message()
    assert "fs.inotify.max_user_watches" in message and "sysctl" in message


@async_test
async def test_events_pending_sees_events_not_yet_delivered(tmp_path: Path) -> None:
    backend, got = await started(tmp_path)
    try:
        assert backend._drainer is not None
        backend._drainer.stop()  # nothing reads the fd now: what the kernel queues stays there
        assert not backend.events_pending()
        (tmp_path / "f").write_text("x")
        assert backend.events_pending()
        while True:
            try:
                os.read(backend.fd, 65536)
            except BlockingIOError:
                break
        assert not backend.events_pending()
    finally:
        backend.close()
