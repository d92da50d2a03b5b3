"""A watch's two names: the path events are read under, and the path the mirror has applied.

The inotify backend renames a watch as soon as it reads a rename's pair, so that the events after it
in the same read carry the new path; the mirror applies the rename later (after the read, or a read
later when the move pairer holds it). Until this session the backend kept one name per watch and
guessed, from a count of renames per ``(old, new)`` pair, which of the mirror's calls it had already
followed. These sequences (a review's reproducers) broke that:

1. A rename the mirror does not follow (its source not covered) left its count behind; a later rename
   with the same names was then taken as done, so its watch kept the old name and nothing in the
   moved directory was reported again.
2. ``mv a b; mv c a`` in one read, ``b`` an empty watched directory: giving ``b``'s names back to
   ``a`` before releasing the replaced ``b`` took over the name ``a`` from ``c``'s watch.
3. A crawl queued for ``P`` that ran while ``mv P Z; mv Q P`` was read but held by the pairer: ``P``
   already named ``Q``'s watch, so the crawl took it as its own and listed ``Q``'s entries as ``P``'s.
4. A watcher deleted while a rename was held released its watches by the mirror's names, which the
   backend no longer had: the kernel watch stayed for good.
5. More than 1,024 renames in one delivery (the counts were bounded): the oldest were applied twice.

A second review then tried to break the two names (a regression of theirs first, then older bugs):

6. A root added on a rename's destination while the pairer held the rename took the watch over by
   its inode; the held move, applied next, released the destination, and with it that watch.
7. A directory root beside a single watched file, renamed: the backend re-keyed its read name, so
   ``IN_MOVE_SELF`` named the new path and the root was never reported gone. ``dir_gone`` now
   carries the mirror's name.
8. A swap, or a rename and a new directory at the old name, lost in an overflow: the rescan re-listed
   the directories without re-checking their watches, so events kept coming under crossed names.
9. A crawl of a new directory run while the pairer held ``mv a b; mkdir a``: it listed the new ``a``
   as the old one, and the held move carried that listing to ``b``.

And a third review's, older still:

10. The same when the events were read but not delivered (queued jobs run back to back).
11. A root added on a path a rename not yet applied was about (``mv a b; mkdir a``, then a watcher on
    ``a``; or on ``b`` while the rename was held) was reported ``root-deleted`` when the rename was
    applied, though its directory was there all along, and then forgotten.

And one of the normaliser's: a file moved over whose lost ``moved_to`` was detected (size or mtime
changed) was reported ``updated`` again for a write read later in the same batch.
"""

from __future__ import annotations

import asyncio
import os
import select
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fswatch_supervisor.backends.inotify import IN_MOVED_FROM, IN_MOVED_TO, IN_Q_OVERFLOW, InotifyBackend
from fswatch_supervisor.changes import Change
from tests.unit.test_mirror_support import Running, async_test, fdinfo_watches


class _LosingOneRead(InotifyBackend):
    """Replaces the next read with an overflow, as when the kernel queue overflowed."""

    lose_next = False

    def _on_chunks(self, chunks: list[bytes]) -> None:
        if self.lose_next:
            self.lose_next = False
            chunks = [struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0)]
        super()._on_chunks(chunks)


def _holding_longer() -> Running:
    """A mirror whose pairer holds a read 0.3 s instead of 20 ms: long enough to act meanwhile."""
    r = Running()
    r.mirror._move_grace_s = 0.3
    return r


async def _held(r: Running, root: Path, outside: Path, then: Callable[[], None]) -> None:
    """Move ``root/x`` out (a ``moved_from`` without its pair: the pairer holds what follows), do
    ``then``, and wait until the pairer holds it."""
    os.rename(root / "x", outside / "x")
    then()
    await r.wait_for(lambda: r.mirror._pairer is not None and r.mirror._pairer.holding)


async def _created_with_its_crawl_queued(r: Running, directory: Path) -> asyncio.Event:
    """``mkdir directory`` with its crawl queued behind a gate: set the gate to let the crawl run."""
    gate = asyncio.Event()
    r.mirror._enqueue(gate.wait)
    directory.mkdir()
    await r.wait_for(lambda: str(directory) in r.paths("created"))
    return gate


def _renames(*pairs: tuple[Path, Path]) -> Callable[[], None]:
    def rename() -> None:
        for src, dst in pairs:
            os.rename(src, dst)
    return rename


def _watched_inodes(fd: int) -> list[int]:
    """The inodes the kernel's watches on ``fd`` are on (``/proc/self/fdinfo``)."""
    with open(f"/proc/self/fdinfo/{fd}") as fdinfo:
        return [int(part[4:], 16) for line in fdinfo if line.startswith("inotify")
                for part in line.split() if part.startswith("ino:")]


def _until_read_from_the_kernel(fd: int) -> None:
    """Block (the loop must not run) until the drain thread has read what the kernel queued on ``fd``;
    still in the kernel, events are a documented limit (README), not what a test can pin."""
    deadline = time.monotonic() + 5
    while select.select([fd], [], [], 0)[0] and time.monotonic() < deadline:
        time.sleep(0.001)


async def _written(r: Running, *paths: Path) -> set[str]:
    """Write each of ``paths``, wait until the mirror has seen them; every path reported created."""
    for path in paths:
        path.write_text("1")
    for path in paths:
        await r.settle(path.parent)
    return set(r.paths("created"))


async def _lost_in_an_overflow(r: Running, backend: _LosingOneRead, root: Path, change: Callable[[], None]) -> None:
    """Make ``change``, its events lost to an overflow; wait until the overflow's rescan is done."""
    backend.lose_next = True
    change()
    await r.wait_for(lambda: "overflow" in [action for action, _ in r.summary()])
    await r.settle(root)


def _append(path: Path) -> None:
    with open(path, "a") as fh:
        fh.write("more")


@async_test
async def test_a_rename_the_mirror_did_not_follow_leaves_nothing_that_skips_a_later_one(tmp_path: Path) -> None:
    f, a, b = tmp_path / "f.txt", tmp_path / "a", tmp_path / "b"
    f.write_text("x")
    async with Running() as r:
        await r.mirror.add_root(str(f))  # tmp_path is watched for one file: `a` is not followed
        a.mkdir()
        os.rename(a, b)
        await r.settle(tmp_path)
        await r.mirror.add_root(str(tmp_path))
        a.mkdir()
        await r.settle(tmp_path)
        os.rename(a, b)  # a listed directory over the empty listed `b`
        await r.settle(tmp_path)
        (b / "z").write_text("z")
        await r.settle(b)

        assert str(b / "z") in r.paths("created")
        assert r.mirror.watch_count() == 2 == fdinfo_watches(r.fd)


@async_test
async def test_a_name_vacated_by_a_rename_over_an_empty_directory_keeps_the_watch_that_took_it(
        tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    (a / "x").mkdir(parents=True)
    (c / "y").mkdir(parents=True)
    b.mkdir()
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        os.rename(a, b)  # no await between: one read holds both
        os.rename(c, a)
        await r.settle(tmp_path)
        paths = (a / "y" / "f", b / "x" / "g", a / "h")
        assert set(map(str, paths)) <= await _written(r, *paths)
        assert r.mirror.watch_count() == 5 == fdinfo_watches(r.fd)


@async_test
async def test_a_crawl_that_runs_while_a_rename_onto_its_name_is_held_waits_for_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "w", tmp_path / "out"
    x, p, z, q = root / "x", root / "P", root / "Z", root / "Q"
    for d in (outside, x, q):
        d.mkdir(parents=True)
    (q / "q").write_text("q")
    async with _holding_longer() as r:
        await r.mirror.add_root(str(root))
        gate = await _created_with_its_crawl_queued(r, p)
        await _held(r, root, outside, _renames((p, z), (q, p)))
        gate.set()
        await r.settle(root)
        created = await _written(r, z / "z", p / "p")
        assert {str(z / "z"), str(p / "p")} <= created
        assert str(p / "q") not in created  # it was `Q/q`, moved with `Q`
        assert sorted(e for e, *_ in r.mirror.entries(str(root))) == sorted(
            map(str, [p, p / "q", p / "p", z, z / "z"]))


@async_test
async def test_a_root_released_while_a_rename_below_it_is_held_leaves_no_watch(tmp_path: Path) -> None:
    root, outside = tmp_path / "w", tmp_path / "out"
    for d in (root / "x", root / "a", outside):
        d.mkdir(parents=True)
    async with _holding_longer() as r:
        await r.mirror.add_root(str(root))
        await _held(r, root, outside, _renames((root / "a", root / "b")))
        r.mirror.remove_root(str(root))
        r.mirror.release()
        await asyncio.sleep(0.4)  # the held read is applied after the release: it must not re-add

        assert r.mirror.watch_count() == 0 == fdinfo_watches(r.fd)


def test_a_read_with_more_than_a_thousand_renames_is_applied_once_each(tmp_path: Path) -> None:
    backend = InotifyBackend()
    try:
        swaps = 600  # `mv cur_i old_i; mv new_i cur_i`: 1,200 renames in one delivery
        for i in range(swaps):
            for name in (f"cur{i}", f"new{i}"):
                (tmp_path / name).mkdir()
                backend.add_dir(str(tmp_path / name))
        cookie = 1
        for i in range(swaps):  # as the backend reads them (without touching the disk)
            for src, dst in ((f"cur{i}", f"old{i}"), (f"new{i}", f"cur{i}")):
                backend._dir_moved(IN_MOVED_FROM, cookie, str(tmp_path / src))
                backend._dir_moved(IN_MOVED_TO, cookie, str(tmp_path / dst))
                cookie += 1
        for i in range(swaps):  # as the mirror applies them, later
            for src, dst in ((f"cur{i}", f"old{i}"), (f"new{i}", f"cur{i}")):
                backend.moved_dir(str(tmp_path / src), str(tmp_path / dst),
                                  [(str(tmp_path / src), str(tmp_path / dst))])

        assert all(backend.is_watched(str(tmp_path / f"old{i}")) for i in range(swaps))
        for i in range(swaps):  # the mirror's names reach every watch, each once
            backend.remove_dir(str(tmp_path / f"old{i}"))
            backend.remove_dir(str(tmp_path / f"cur{i}"))
        assert backend.watch_count() == 0 == fdinfo_watches(backend.fd)
    finally:
        backend.close()


@async_test
async def test_a_file_moved_over_and_written_in_one_batch_is_updated_once(tmp_path: Path) -> None:
    f, g, d = tmp_path / "f", tmp_path / "g", tmp_path / "d"
    f.write_text("x")
    d.mkdir()
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        await r.wait_for(lambda: not r.mirror.reading_stats())
        os.rename(f, g)
        os.rename(d, tmp_path / "e")  # a directory move settles `g` mid-batch
        _append(g)  # and this write is read after it, in the same batch
        await r.settle(tmp_path)

        assert [c.action for c in r.changes if c.path == str(g)].count("updated") <= 1


@async_test
async def test_a_root_added_on_a_held_renames_destination_keeps_its_watch(tmp_path: Path) -> None:
    root, outside = tmp_path / "w", tmp_path / "out"
    a, b = root / "a", root / "b"
    for d in (root / "x", a / "sub", outside):
        d.mkdir(parents=True)
    async with _holding_longer() as r:
        await r.mirror.add_root(str(root))
        await _held(r, root, outside, _renames((a, b)))
        await r.mirror.add_root(str(b))  # waits for the held rename rather than taking the watch
        await r.settle(root)
        assert {str(b / "new"), str(b / "sub" / "deep")} <= await _written(r, b / "new", b / "sub" / "deep")
        assert str(b) not in r.paths("root-deleted")  # the held move replaced `b`, but `b` is its directory
        assert r.mirror.watch_count() == 3 == fdinfo_watches(r.fd)


@async_test
async def test_a_directory_root_renamed_beside_a_watched_file_is_reported_gone(tmp_path: Path) -> None:
    a, f = tmp_path / "a", tmp_path / "f.txt"
    (a / "sub").mkdir(parents=True)
    f.write_text("x")
    async with Running() as r:
        await r.mirror.add_root(str(f))  # tmp_path is watched, not listed: the mirror does not follow `a`
        await r.mirror.add_root(str(a))
        os.rename(a, tmp_path / "c")
        await r.wait_for(lambda: str(a) in r.paths("root-deleted"))
        a.mkdir()
        await r.mirror.add_root(str(a))  # a new directory at the old name is a new root
        (a / "n").write_text("1")
        await r.settle(a)

        assert str(a / "n") in r.paths("created")
        assert [e for e, *_ in r.mirror.entries(str(a))] == [str(a / "n")]
        assert r.mirror.watch_count() == 2 == fdinfo_watches(r.fd)


@async_test
async def test_a_watched_files_parent_renamed_beside_another_watched_file_reports_the_file_gone(
        tmp_path: Path) -> None:
    d, f = tmp_path / "d", tmp_path / "f.txt"
    d.mkdir()
    (d / "g.txt").write_text("g")
    f.write_text("x")
    async with Running() as r:
        await r.mirror.add_root(str(f))
        await r.mirror.add_root(str(d / "g.txt"))
        os.rename(d, tmp_path / "e")
        await r.wait_for(lambda: str(d / "g.txt") in r.paths("root-deleted"))


@pytest.mark.parametrize("lost", ["a swap", "a rename and a new directory at the old name"])
@async_test
async def test_renames_lost_in_an_overflow_leave_every_watch_on_its_directory_after_the_rescan(
        tmp_path: Path, lost: str) -> None:
    root = tmp_path / "w"
    a, b = root / "a", root / "b"
    (a / "x").mkdir(parents=True)
    if lost == "a swap":
        (b / "y").mkdir(parents=True)

    def change() -> None:
        if lost == "a swap":
            _renames((a, root / "t"), (b, a), (root / "t", b))()
        else:
            os.rename(a, b)
            a.mkdir()

    backend = _LosingOneRead()
    async with Running(backend=backend) as r:
        await r.mirror.add_root(str(root))
        await _lost_in_an_overflow(r, backend, root, change)

        created = await _written(r, a / "in_a", b / "in_b")
        assert {str(a / "in_a"), str(b / "in_b")} <= created
        assert not {str(b / "in_a"), str(a / "in_b")} & created
        assert r.mirror.watch_count() == (5 if lost == "a swap" else 4) == fdinfo_watches(r.fd)


@async_test
async def test_a_watched_files_parent_replaced_in_an_overflow_is_watched_anew_by_the_rescan(tmp_path: Path) -> None:
    d, e = tmp_path / "d", tmp_path / "e"
    d.mkdir()
    (d / "f.txt").write_text("old")

    def replace_parent() -> None:
        os.rename(d, e)
        d.mkdir()
        (d / "f.txt").write_text("new!")

    backend = _LosingOneRead()
    async with Running(backend=backend) as r:
        await r.mirror.add_root(str(d / "f.txt"))
        await _lost_in_an_overflow(r, backend, d, replace_parent)
        (e / "f.txt").write_text("written in e, outside the watch")  # queued before the next one
        (d / "f.txt").write_text("written in d")
        await r.wait_for(lambda: not r.changes[-1].rescan)
        after_overflow = r.changes[[c.action for c in r.changes].index("overflow") + 1:]

        # The rescan's update, then the write's (its truncation and write may be read apart: two).
        assert [(c.action, c.path, c.rescan) for c in after_overflow[:2]] == [
            ("updated", str(d / "f.txt"), True), ("updated", str(d / "f.txt"), False)]
        assert {(c.action, c.path, c.rescan) for c in after_overflow[2:]} <= {("updated", str(d / "f.txt"), False)}
        assert r.mirror.watch_count() == 1 == fdinfo_watches(r.fd)
        assert _watched_inodes(r.fd) == [os.stat(d).st_ino]  # the one watch is on the new `d`


@async_test
async def test_a_crawl_queued_before_a_held_rename_and_a_new_directory_at_its_name_lists_the_right_one(
        tmp_path: Path) -> None:
    root, outside = tmp_path / "w", tmp_path / "out"
    a, b = root / "a", root / "b"
    for d in (root / "x", outside):
        d.mkdir(parents=True)

    def rename_and_replace() -> None:
        os.rename(a, b)
        a.mkdir()
        (a / "new").write_text("n")

    async with _holding_longer() as r:
        await r.mirror.add_root(str(root))
        gate = await _created_with_its_crawl_queued(r, a)
        (a / "old").write_text("o")
        await _held(r, root, outside, rename_and_replace)
        gate.set()
        await r.settle(root)
        (b / "later").write_text("1")
        await r.settle(b)

        assert sorted(e for e, *_ in r.mirror.entries(str(root))) == sorted(
            map(str, [a, a / "new", b, b / "old", b / "later"]))
        assert str(b / "later") in r.paths("created")


@async_test
async def test_a_crawl_queued_behind_jobs_sees_a_rename_read_while_they_ran(tmp_path: Path) -> None:
    root = tmp_path / "w"
    a, b = root / "a", root / "b"
    root.mkdir()
    gate = asyncio.Event()

    async def job_during_which_another_process_acts() -> None:
        await gate.wait()
        os.rename(a, b)  # and no await after it: nothing is delivered until the worker yields
        a.mkdir()
        (a / "new").write_text("n")
        _until_read_from_the_kernel(r.fd)  # read, not delivered: what the crawl must wait for

    async with Running() as r:
        await r.mirror.add_root(str(root))
        r.mirror._enqueue(job_during_which_another_process_acts)
        a.mkdir()  # its crawl queues behind that job
        await r.wait_for(lambda: str(a) in r.paths("created"))
        (a / "old").write_text("o")
        gate.set()
        await r.settle(root)

        assert str(b / "later") in await _written(r, b / "later")
        assert sorted(e for e, *_ in r.mirror.entries(str(root))) == sorted(
            map(str, [a, a / "new", b, b / "old", b / "later"]))
        assert r.mirror.watch_count() == 3 == fdinfo_watches(r.fd)


@async_test
async def test_a_root_added_on_a_name_an_unapplied_rename_vacated_stays_a_root(tmp_path: Path) -> None:
    root = tmp_path / "w"
    a, b = root / "a", root / "b"
    (a / "sub").mkdir(parents=True)
    async with Running() as r:
        await r.mirror.add_root(str(root))
        os.rename(a, b)
        a.mkdir()
        await r.mirror.add_root(str(a))  # before the rename is applied: `a` is still listed
        await r.settle(root)
        r.mirror.remove_root(str(root))  # the outer watcher goes; the one on `a` stays
        r.mirror.release()

        assert str(a) not in r.paths("root-deleted")
        assert str(a / "n") in await _written(r, a / "n")
        assert sorted(e for e, *_ in r.mirror.entries(str(a))) == [str(a / "n")]


def _replayed(start: set[str], changes: list[Change]) -> set[str]:
    """The paths a consumer holds after applying ``changes`` to ``start`` in order."""
    held = set(start)
    for c in changes:
        if c.action == "created":
            held.add(c.path)
        elif c.action == "deleted":
            held -= {p for p in held if p == c.path or p.startswith(c.path + "/")}
        elif c.action == "moved" and c.from_path is not None:
            below = {p for p in held if p == c.from_path or p.startswith(c.from_path + "/")}
            held = (held - below) | {c.path + p[len(c.from_path):] for p in below}
    return held


@async_test
async def test_a_directory_renamed_over_one_a_rescan_listed_too_late_leaves_no_ghosts(tmp_path: Path) -> None:
    """``mv a b`` lost to an overflow, then ``mv b d.tmp; mv d.tmp/f cache`` read after the rescan
    (which listed ``d.tmp`` with ``f`` still in it): the late ``moved_to d.tmp`` replaces the
    directory the model has there. It was empty when renamed over, so what the model still holds
    below it is gone (before: dropped silently, and ``d.tmp/f`` stayed with the consumer)."""
    root = tmp_path / "t"
    for d in ("a/b", "b"):
        (root / d).mkdir(parents=True)
    for f in ("f", "a/f", "a/.f", "a/b/f"):
        (root / f).write_text("x")
    backend = _LosingOneRead()
    async with Running(backend=backend) as r:
        await r.mirror.add_root(str(root))
        start = {str(p) for p in root.rglob("*")}
        backend.lose_next = True
        os.rename(root / "a", root / "b")
        await asyncio.sleep(0)
        os.rename(root / "b", root / "d.tmp")
        await asyncio.sleep(0)
        os.rename(root / "d.tmp" / "f", root / "cache")
        await r.wait_for(lambda: "overflow" in [action for action, _ in r.summary()])
        await r.settle(root)
        await r.settle(root / "d.tmp")
        assert _replayed(start, r.changes) == {str(p) for p in root.rglob("*")}


@async_test
async def test_a_root_inside_another_renamed_over_in_an_overflow_is_root_deleted(tmp_path: Path) -> None:
    """``mv a build`` over the empty root ``build``, its events lost: the rescan of the outer root
    re-lists ``build`` and cannot tell the directory there is another one. Each nested root is
    asked (before: its watcher went on following ``a``'s directory as if it were its own)."""
    root = tmp_path / "t"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f").write_text("x")
    (root / "build").mkdir()
    backend = _LosingOneRead()
    async with Running(backend=backend) as r:
        await r.mirror.add_root(str(root))
        await r.mirror.add_root(str(root / "build"))
        await _lost_in_an_overflow(r, backend, root, lambda: os.rename(root / "a", root / "build"))
        assert ("root-deleted", str(root / "build")) in r.summary()
        modelled = {path for path, *_ in r.mirror.entries(str(root))}
        assert modelled - {str(root)} == {str(p) for p in root.rglob("*")}, modelled
