"""Crawls that read sizes and mtimes late: the model stays exact, and no change is lost to it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from fswatch_supervisor.backends.inotify import InotifyBackend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.mirror import entries, scanner
from fswatch_supervisor.mirror.persist import load_model, save_model
from fswatch_supervisor.mirror.scanner import Baseline, Crawler
from fswatch_supervisor.mirror.state import MirrorState
from tests.unit.test_mirror_normalise import NoBackend
from tests.unit.test_mirror_support import Running, async_test, make_tree

HOUR_NS = 3600 * 10**9


class Crawled:
    """A model of ``top`` built by the crawler alone (no OS events, no background fill)."""

    def __init__(self, top: Path) -> None:
        self.top = str(top)
        self.changes: list[Change] = []
        self.cookies: list[str] = []
        self.state = MirrorState(NoBackend(), lambda _d: True, self.changes.extend)
        self.tree = self.state.tree
        self.tree.put(self.top, "dir", 0, 0)
        self.put_off: list[str] = []
        self.crawler = Crawler(self.state, self.cookies.append, self.put_off.append, lambda: False)

    def crawl(self, *, report: bool = False, rescan: bool = False, baseline: Baseline | None = None,
              late_since: int | None = None) -> None:
        asyncio.run(self.crawler.crawl(self.top, report=report, rescan=rescan, baseline=baseline,
                                       late_since=late_since))

    def fill(self) -> None:
        while self.tree.fill_stats(2):
            pass

    def summary(self) -> set[tuple[str, str]]:
        return {(c.action, os.path.relpath(c.path, self.top)) for c in self.changes}


def on_disk(path: str) -> tuple[str, int, int]:
    st = os.lstat(path)
    return entries.kind_of_mode(st.st_mode), st.st_size, st.st_mtime_ns


def aged(top: Path) -> None:
    """Every entry below ``top`` last modified an hour ago."""
    past = time.time_ns() - HOUR_NS
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(past, past), follow_symlinks=False)


def test_the_crawl_reads_no_stats_yet_the_model_answers_exactly(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b", "c"], files_per_dir=2)
    (tmp_path / "a" / "f0.txt").write_text("longer")
    os.symlink("a", tmp_path / "link")
    m = Crawled(tmp_path)
    m.crawl()
    assert m.tree.unstated() == 10
    records = list(m.tree.records(m.top))
    assert [p for p, *_ in records] == sorted(str(p) for p in tmp_path.rglob("*"))
    assert all((kind, size, mtime) == on_disk(path) for path, kind, size, mtime in records)
    assert m.tree.get(str(tmp_path / "link")) == on_disk(str(tmp_path / "link"))


def test_the_background_fill_reads_every_entry_once_and_follows_renames(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, ["a"], files_per_dir=3)
    m = Crawled(tmp_path)
    m.crawl()
    os.rename(tmp_path / "a" / "f0.txt", tmp_path / "a" / "g.txt")
    m.tree.move(str(tmp_path / "a" / "f0.txt"), str(tmp_path / "a" / "g.txt"))  # as its event would
    stated: list[str] = []
    real = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p: stated.append(p) or real(p))
    m.fill()
    monkeypatch.undo()
    assert sorted(stated) == sorted(str(p) for p in tmp_path.rglob("*"))
    assert m.tree.get(str(tmp_path / "a" / "g.txt")) == on_disk(str(tmp_path / "a" / "g.txt"))
    assert not m.tree.fill_stats(10)


def test_a_late_value_read_while_a_swap_is_unapplied_is_not_taken_as_known(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    (tmp_path / "y").write_text("longer")
    m = Crawled(tmp_path)
    m.crawl()
    os.rename(tmp_path / "x", tmp_path / "t")  # a swap whose events are not applied yet
    os.rename(tmp_path / "y", tmp_path / "x")
    os.rename(tmp_path / "t", tmp_path / "y")
    m.fill()  # reads `x` by path: `y`'s file
    x = str(tmp_path / "x")
    assert m.tree.get(x) == on_disk(x)
    # So the normaliser's check for a dropped moved_to (a size or mtime a rename cannot change)
    # must not compare with it: `y` would look rewritten once the swap is applied.
    assert m.tree.known(x) is None


def test_an_entry_gone_before_its_late_stat_keeps_its_kind(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    m = Crawled(tmp_path)
    m.crawl()
    (tmp_path / "f").unlink()
    m.fill()
    assert m.tree.get(str(tmp_path / "f")) == ("file", 0, 0)  # until its deletion event removes it


def test_an_overflow_rescan_reports_a_write_its_late_stat_absorbed(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a"], files_per_dir=2)
    aged(tmp_path)
    m = Crawled(tmp_path)
    m.crawl()
    # Written after the listing, read by the late stat; its event was dropped (an overflow).
    (tmp_path / "a" / "f0.txt").write_text("changed")
    m.fill()
    late = m.tree.late_since()  # what the mirror notes when it reads the overflow
    m.crawl(report=True, rescan=True, late_since=late)
    assert m.summary() == {("updated", "a/f0.txt")}
    m.changes.clear()
    m.crawl(report=True, rescan=True, late_since=late)
    assert m.changes == [], "a rescan states what it reports: the next one trusts it"


def test_the_rescan_distrusts_late_values_however_long_after_the_overflow_it_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rescan job can wait behind a big crawl, or behind the rescan of a larger root.
    make_tree(tmp_path, ["a"], files_per_dir=2)
    aged(tmp_path)
    m = Crawled(tmp_path)
    m.crawl()
    (tmp_path / "a" / "f0.txt").write_text("changed")  # its event is lost in an overflow
    m.fill()
    late = m.tree.late_since()  # the overflow is read now, within the window
    later = time.monotonic() + entries.LATE_WINDOW_S + 1
    monkeypatch.setattr(m.tree, "clock", lambda: later)
    assert m.tree.late_since() is None  # the window has closed by the time the rescan runs
    m.crawl(report=True, rescan=True, late_since=late)
    assert m.summary() == {("updated", "a/f0.txt")}


def test_a_model_saved_before_its_stats_were_read_still_shows_what_changed_while_down(tmp_path: Path) -> None:
    top, state = tmp_path / "top", tmp_path / "model.msgpack"
    make_tree(top, ["a", "b"], files_per_dir=2)
    aged(top)
    before = Crawled(top)
    before.crawl()
    save_model(state, {str(top): "dir"}, before.tree.all_records())  # nothing read yet: fast
    assert {size for _p, _k, size, _m in load_model(state)[str(top)]} == {entries.UNREAD_SIZE}
    (top / "a" / "f1.txt").write_text("changed while down")
    after = Crawled(top)
    after.crawl()
    after.crawl(report=True, rescan=True, baseline=Baseline(load_model(state)[str(top)]))
    assert after.summary() == {("updated", "a/f1.txt")}


def test_late_values_are_distrusted_for_a_bounded_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, ["a"], files_per_dir=2)
    m = Crawled(tmp_path)
    monkeypatch.setattr(m.tree, "late_window_s", 0.0)
    m.crawl()
    assert m.tree.late_since() is not None  # entries still unstated
    m.fill()
    assert m.tree.late_since() is None
    (tmp_path / "a" / "f1.txt").write_text("changed")  # its event would report it
    m.crawl(report=True, rescan=True, late_since=m.tree.late_since())
    assert m.summary() == {("updated", "a/f1.txt")}


def test_a_directory_that_appears_is_reported_from_its_listing(tmp_path: Path) -> None:
    m = Crawled(tmp_path)
    m.crawl()
    make_tree(tmp_path, ["new/sub"], files_per_dir=1)
    os.symlink("new", tmp_path / "new" / "link")
    (tmp_path / "new" / ".fswatch-cookie-1").write_text("")
    m.tree.put(str(tmp_path / "new"), "dir", 0, 0)
    m.changes.clear()
    asyncio.run(m.crawler.crawl(str(tmp_path / "new"), report=True))
    assert {(c.action, os.path.relpath(c.path, tmp_path), c.kind) for c in m.changes} == {
        ("created", "new/sub", "dir"), ("created", "new/f0.txt", "file"),
        ("created", "new/sub/f0.txt", "file"), ("created", "new/link", "symlink")}
    assert m.cookies == [str(tmp_path / "new" / ".fswatch-cookie-1")]


def test_a_watched_file_inside_keeps_its_entry_and_the_rest_is_listed(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a"], files_per_dir=2)
    m = Crawled(tmp_path)
    single = str(tmp_path / "a" / "f0.txt")
    m.tree.put(single, *on_disk(single))
    m.crawl(report=True)
    assert m.summary() == {("created", "a"), ("created", "a/f1.txt")}
    assert m.tree.get(single) == on_disk(single)
    assert m.tree.children(str(tmp_path / "a")) == {single, str(tmp_path / "a" / "f1.txt")}


def test_special_files_are_listed_with_a_stat(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "f").write_text("x")
    assert scanner.list_kinds(str(tmp_path)) is None
    m = Crawled(tmp_path)
    m.crawl()
    assert m.tree.get(str(tmp_path / "pipe")) == on_disk(str(tmp_path / "pipe"))
    assert on_disk(str(tmp_path / "pipe"))[0] == "other"
    assert m.tree.unstated() == 0


@async_test
async def test_a_write_right_after_the_watch_is_reported_and_modelled(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b", "c"], files_per_dir=2)
    target = tmp_path / "a" / "b" / "f1.txt"
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        target.write_text("more")  # before the loop ran the background fill
        await r.settle(tmp_path / "a" / "b")
        # The truncation and the write may be read apart: two raw updates, which the coalescer merges.
        assert set(r.summary()) == {("updated", str(target))}
        await r.wait_for(lambda: not r.mirror._state.tree.unstated())
        # (Directories' own mtimes are not followed: the cookie changed that of a/b.)
        assert all((kind, size, mtime) == on_disk(path)
                   for path, kind, size, mtime in r.mirror.entries(str(tmp_path)) if kind != "dir")


@async_test
async def test_the_mirror_keeps_the_overflows_distrust_for_a_rescan_that_starts_late(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, ["a"], files_per_dir=2)
    aged(tmp_path)
    written = tmp_path / "a" / "f0.txt"
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        assert isinstance(r.backend, InotifyBackend) and r.backend._drainer is not None
        r.backend._drainer.stop()  # what happens from now on stays in the kernel queue: lost
        written.write_text("changed")  # before the background fill reads it
        await r.wait_for(lambda: r.mirror._state.tree.unstated() == 0)
        r.mirror.overflow()  # read within the window for late values...
        later = time.monotonic() + entries.LATE_WINDOW_S + 1
        monkeypatch.setattr(r.mirror._state.tree, "clock", lambda: later)  # ...rescanned after
        await r.wait_for(lambda: any(c.action == "updated" and c.path == str(written) and c.rescan
                                     for c in r.changes))


@async_test
async def test_entries_moved_before_their_sizes_could_be_read_are_read_under_their_new_name(
        tmp_path: Path) -> None:
    make_tree(tmp_path, ["a"], files_per_dir=3)
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        assert isinstance(r.backend, InotifyBackend) and r.backend._drainer is not None
        r.backend._drainer.stop()  # the rename's events wait in the kernel until handed over below
        os.rename(tmp_path / "a", tmp_path / "b")
        tree = r.mirror._state.tree
        await r.wait_for(lambda: tree.unstated() == 0)  # the fill tried the old names, in vain
        while True:
            try:
                r.backend._on_chunks([os.read(r.backend.fd, 65536)])
            except BlockingIOError:
                break
        assert tree.unstated() == 4  # queued again as b, b/f0.txt ... b/f2.txt
        await r.wait_for(lambda: tree.unstated() == 0)  # and read without waiting for another crawl


@async_test
async def test_the_saved_form_after_the_background_fill_holds_every_real_size(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a", "b"], files_per_dir=3)
    (tmp_path / "a" / "f0.txt").write_text("twelve bytes")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        assert r.mirror.reading_stats()  # the daemon's periodic save waits for this to end
        await r.wait_for(lambda: not r.mirror.reading_stats())
        roots, records = r.mirror.saved_form()
        assert roots == {str(tmp_path): "dir"}
        assert all(size != entries.UNREAD_SIZE for _path, _kind, size, _mtime in records)
        assert (str(tmp_path / "a" / "f0.txt"), "file", 12) in [(p, k, s) for p, k, s, _m in records]
