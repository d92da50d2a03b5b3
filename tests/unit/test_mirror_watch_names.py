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

And one of the normaliser's: a file moved over whose lost ``moved_to`` was detected (size or mtime
changed) was reported ``updated`` again for a write read later in the same batch.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from fswatch_supervisor.backends.inotify import IN_MOVED_FROM, IN_MOVED_TO, InotifyBackend
from tests.unit.test_mirror_support import Running, async_test, fdinfo_watches


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
        for path in (a / "y" / "f", b / "x" / "g", a / "h"):
            path.write_text("1")
            await r.settle(path.parent)

        assert {str(a / "y" / "f"), str(b / "x" / "g"), str(a / "h")} <= set(r.paths("created"))
        assert r.mirror.watch_count() == 5 == fdinfo_watches(r.fd)


@async_test
async def test_a_crawl_that_runs_while_a_rename_onto_its_name_is_held_waits_for_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "w", tmp_path / "out"
    x, p, z, q = root / "x", root / "P", root / "Z", root / "Q"
    for d in (outside, x, q):
        d.mkdir(parents=True)
    (q / "q").write_text("q")
    r = Running()
    r.mirror._move_grace_s = 0.3  # the pairer holds a read 20 ms; long enough to run a crawl meanwhile
    async with r:
        await r.mirror.add_root(str(root))
        gate = asyncio.Event()
        r.mirror._enqueue(gate.wait)  # the crawl of `P` queues behind this
        p.mkdir()
        await r.wait_for(lambda: str(p) in r.paths("created"))
        os.rename(x, outside / "x")  # a moved_from without its pair: the pairer holds what follows
        os.rename(p, z)
        os.rename(q, p)
        await r.wait_for(lambda: r.mirror._pairer is not None and r.mirror._pairer.holding)
        gate.set()
        await r.settle(root)
        (z / "z").write_text("z")
        (p / "p").write_text("p")
        await r.settle(z)
        await r.settle(p)

        created = set(r.paths("created"))
        assert {str(z / "z"), str(p / "p")} <= created
        assert str(p / "q") not in created  # it was `Q/q`, moved with `Q`
        assert sorted(e for e, *_ in r.mirror.entries(str(root))) == sorted(
            map(str, [p, p / "q", p / "p", z, z / "z"]))


@async_test
async def test_a_root_released_while_a_rename_below_it_is_held_leaves_no_watch(tmp_path: Path) -> None:
    root, outside = tmp_path / "w", tmp_path / "out"
    for d in (root / "x", root / "a", outside):
        d.mkdir(parents=True)
    r = Running()
    r.mirror._move_grace_s = 0.3
    async with r:
        await r.mirror.add_root(str(root))
        os.rename(root / "x", outside / "x")
        os.rename(root / "a", root / "b")
        await r.wait_for(lambda: r.mirror._pairer is not None and r.mirror._pairer.holding)
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
            backend.moved_dir(str(tmp_path / f"cur{i}"), str(tmp_path / f"old{i}"))
            backend.moved_dir(str(tmp_path / f"new{i}"), str(tmp_path / f"cur{i}"))

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
