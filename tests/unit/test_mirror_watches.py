"""Shared OS watches: one per needed directory, counted exactly, absorbed and released."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fswatch_supervisor.backends.inotify import InotifyBackend
from fswatch_supervisor.errors import WatchError, WatchLimitReached
from fswatch_supervisor.mirror import scanner
from fswatch_supervisor.mirror.entries import Listing
from tests.unit.test_mirror_support import Running, async_test, fdinfo_watches, make_tree

DIRS = ["a/x/1", "a/x/2", "a/y", "b/z", "b/.hidden/deep", "c"]
# root + a, a/x, a/x/1, a/x/2, a/y, b, b/z, b/.hidden, b/.hidden/deep, c
ALL_DIRS = 11


def no_hidden(path: str) -> bool:
    return "/." not in path


class CountingLists:
    """Counts directory listings (the "OS crawl") the mirror performs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real, real_kinds = scanner.list_dir, scanner.list_kinds

        def counting(path: str, cookies: list[str] | None = None) -> list[scanner.ScanItem]:
            self.calls.append(path)
            return real(path, cookies)

        def counting_kinds(path: str, cookies: list[str] | None = None) -> Listing | None:
            self.calls.append(path)
            return real_kinds(path, cookies)

        monkeypatch.setattr(scanner, "list_dir", counting)
        monkeypatch.setattr(scanner, "list_kinds", counting_kinds)


@async_test
async def test_overlapping_roots_share_watches(tmp_path: Path) -> None:
    make_tree(tmp_path, DIRS)
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path / "a"))
        assert r.mirror.watch_count() == 5 == fdinfo_watches(r.fd)
        await r.mirror.add_root(str(tmp_path / "a" / "x"))
        await r.mirror.add_root(str(tmp_path))
        await r.mirror.add_root(str(tmp_path / "b"))
        assert r.mirror.watch_count() == ALL_DIRS == fdinfo_watches(r.fd)


@async_test
async def test_add_root_on_watched_tree_does_not_crawl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, DIRS)
    lists = CountingLists(monkeypatch)
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        assert len(lists.calls) == ALL_DIRS
        lists.calls.clear()
        started = time.perf_counter()
        await r.mirror.add_root(str(tmp_path / "a"))
        await r.mirror.add_root(str(tmp_path))
        elapsed = time.perf_counter() - started
        assert lists.calls == []
        assert elapsed < 0.05
        assert r.mirror.watch_count() == ALL_DIRS


@async_test
async def test_new_root_absorbs_the_pruned_boundary_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, DIRS)
    lists = CountingLists(monkeypatch)
    async with Running(needs_dir=no_hidden) as r:
        await r.mirror.add_root(str(tmp_path))
        assert r.mirror.watch_count() == ALL_DIRS - 2 == fdinfo_watches(r.fd)
        assert not r.mirror.is_os_watched(str(tmp_path / "b" / ".hidden"))
        lists.calls.clear()
        r.needs = lambda _d: True  # a second watcher that includes hidden directories
        await r.mirror.add_root(str(tmp_path))
        assert sorted(lists.calls) == [str(tmp_path / "b" / ".hidden"), str(tmp_path / "b" / ".hidden" / "deep")]
        assert r.mirror.watch_count() == ALL_DIRS == fdinfo_watches(r.fd)
        assert r.changes == [], "absorbing is a baseline, not news"


@async_test
async def test_release_drops_what_no_watcher_needs(tmp_path: Path) -> None:
    make_tree(tmp_path, DIRS)
    async with Running(needs_dir=no_hidden) as r:
        await r.mirror.add_root(str(tmp_path))
        r.needs = lambda _d: True
        await r.mirror.add_root(str(tmp_path))
        await r.mirror.add_root(str(tmp_path / "a" / "x"))
        assert r.mirror.watch_count() == ALL_DIRS
        r.needs = no_hidden  # the hidden-including watcher was deleted
        r.mirror.remove_root(str(tmp_path))
        r.mirror.release()
        assert r.mirror.watch_count() == ALL_DIRS - 2 == fdinfo_watches(r.fd)
        records = [p for p, *_ in r.mirror.entries(str(tmp_path))]
        assert str(tmp_path / "b" / ".hidden") in records  # still seen, as the pruned boundary
        assert str(tmp_path / "b" / ".hidden" / "f0.txt") not in records
        r.mirror.remove_root(str(tmp_path))  # the last watcher on the whole tree goes
        r.mirror.release()
        assert r.mirror.watch_count() == 3 == fdinfo_watches(r.fd)  # a/x, a/x/1, a/x/2 remain
        assert r.mirror.is_os_watched(str(tmp_path / "a" / "x" / "1"))
        assert list(r.mirror.entries(str(tmp_path / "b"))) == []
        (tmp_path / "a" / "x" / "1" / "still.txt").write_text("")
        await r.settle(tmp_path / "a" / "x")
        assert r.summary() == [("created", str(tmp_path / "a" / "x" / "1" / "still.txt"))]
        r.mirror.remove_root(str(tmp_path / "a" / "x"))
        r.mirror.release()
        assert r.mirror.watch_count() == 0 == fdinfo_watches(r.fd)
        assert r.mirror.entry_count() == 0


@async_test
async def test_single_file_root_watches_its_parent_only(tmp_path: Path) -> None:
    make_tree(tmp_path, ["sub"])
    target = tmp_path / "config.toml"
    target.write_text("a = 1")
    async with Running() as r:
        await r.mirror.add_root(str(target))
        assert r.mirror.watch_count() == 1 == fdinfo_watches(r.fd)
        assert [p for p, *_ in r.mirror.entries(str(target))] == [str(target)]
        (tmp_path / "unrelated").write_text("")
        (tmp_path / ".config.toml.swp").write_text("b = 2")
        os.rename(tmp_path / ".config.toml.swp", target)  # an editor's atomic save
        await r.settle(tmp_path)
        assert [(c.action, c.path, c.existed_before) for c in r.changes] == [("created", str(target), True)]
        await r.mirror.add_root(str(tmp_path))  # a directory watcher on the parent shares the watch
        assert r.mirror.watch_count() == 2 == fdinfo_watches(r.fd)
        r.mirror.remove_root(str(tmp_path))
        r.mirror.release()
        assert r.mirror.watch_count() == 1 == fdinfo_watches(r.fd)
        assert [p for p, *_ in r.mirror.entries(str(target))] == [str(target)]


@async_test
async def test_root_errors_leave_nothing_behind(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    async with Running() as r:
        for bad in (str(tmp_path / "missing"), str(tmp_path / "fifo"), "relative/path"):
            with pytest.raises(WatchError):
                await r.mirror.add_root(bad)
        assert r.mirror.watch_count() == 0 and r.mirror.entry_count() == 0


class LimitedBackend(InotifyBackend):
    """inotify with a lower ``max_user_watches``, as if the sysctl were that low."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def add_dir(self, path: str, *, rekey: bool = True) -> None:
        if not self.is_watched(path) and self.watch_count() >= self.limit:
            raise WatchLimitReached("watch limit (test): raise it with `sysctl fs.inotify.max_user_watches=524288`")
        super().add_dir(path, rekey=rekey)


@async_test
async def test_watch_limit_at_the_root_rolls_back(tmp_path: Path) -> None:
    make_tree(tmp_path, DIRS)
    async with Running(backend=LimitedBackend(0)) as r:
        with pytest.raises(WatchLimitReached, match="max_user_watches"):
            await r.mirror.add_root(str(tmp_path))
        assert r.mirror.watch_count() == 0 == fdinfo_watches(r.fd)
        assert r.mirror.entry_count() == 0


@async_test
async def test_watch_limit_below_the_root_is_a_watch_error(tmp_path: Path) -> None:
    make_tree(tmp_path, DIRS)
    async with Running(backend=LimitedBackend(4)) as r:
        await r.mirror.add_root(str(tmp_path))
        assert r.mirror.watch_count() == 4 == fdinfo_watches(r.fd)
        errors = [c for c in r.changes if c.action == "watch-error"]
        assert len(errors) == 1 and errors[0].path == str(tmp_path)
        assert errors[0].detail is not None and "max_user_watches" in errors[0].detail
        assert "4 directories" in errors[0].detail  # found before the limit, not descended
