"""Directory renames that raced the mirror and lost events (found by the hypothesis replay test).

1. The crawler watches a new directory, then lists it. If the directory was renamed between the
   kernel's readdir and the per-entry lstat, a by-path lstat found nothing, the entries were dropped
   as "vanished", the directory was marked listed anyway and the move that followed carried an empty
   listing: its files were never reported (``mkdir a; touch a/f a/g; mv a f`` lost ``f/g``).
2. A watched directory renamed over an existing, watched, empty directory: the backend re-keys the
   moved watches to the new name as it reads the pair, so releasing the replaced directory's watch
   by that name removed the moved directory's own watch; nothing below it was seen again.
3. Two directories renamed to one name in one batch (``mv build b; mv d.tmp b``, ``b`` empty): the
   router captures the entries below a moved directory when the ``moved`` reaches it, but both moves
   left at the batch's end, so the first carried what the second brought, and the second (routed
   with nothing) lost ``created b/f`` for a watcher that excludes ``*.tmp``.
4. A directory moved twice within one coalescing window through a name nobody lists
   (``mv a .h; mv .h cache``, ``cache/**`` excluded): the coalescer merges the hops into one move
   from ``a``, but the entries were captured at the last hop, after the mirror had forgotten the
   hidden directory's contents, so the watcher never got ``deleted a/f``.
5. Since a directory move leaves at once (3.), a symlink just created below it is ``lstat``-ed there,
   mid-batch: when the directory was renamed again already (``ln -s x a/l; mv a f; mv f g``) the
   entry is gone, its ``created`` leaves as a guessed ``file``, and the guess must follow the next
   move to be checked at the batch's end.
6. A directory whose name was taken by a file before its ``created`` was read (``mkdir b; mv b c;
   mv k b``): the ``lstat`` found the file, so ``b``, and then ``c``, were recorded as files, and
   nothing below ``c`` was ever looked at.
7. A directory moved on while its previous move was still in a coalescing window, but not merged with
   it: the second move is a barrier that closes the first's window (``mkdir a; mv a .keep``, the crawl
   reports ``.keep/.f``, ``mv .keep g``). The router had handed the first move's capture (taken before
   the crawl, empty) to the second, as for a merge, so a watcher that sees ``.keep/.f`` but not
   ``g/.f`` never got ``deleted .keep/.f``. Likewise when another change of the same read closed it
   (``mv d.tmp cache; rm -r cache/b; mv cache b``, ``cache/**`` excluded: ``deleted d.tmp/b`` was
   missing).
8. A name renamed onto twice in a row, the second time from outside the watched set (``mv .keep cache;
   mv a/.f cache``, ``a`` not watched yet): the kernel drops a ``moved_to`` equal to the event before
   it, ignoring the cookie, so only the first was read and ``cache`` stayed a symlink. When the kind
   stays the same (a file over the moved file), the size and mtime tell: a rename keeps both.
9. A directory name taken by another, watched directory before the crawl of the new one ran (``mkdir
   .keep``, then ``mv .keep f; mv d.tmp .keep`` before the crawl): watching ``.keep`` returned
   ``d.tmp``'s watch, which took the name, the listing was attributed to the new directory, the moves
   read next carried it to ``f``, and the directory really at ``f`` was never watched.
10. Two watched directories renamed in a chain within one read (``mv cur old; mv new cur``, a deploy's
   swap): the backend renames the watches as it reads each pair, so when the mirror then applied the
   first rename, the watch of ``new``, already under the name ``cur``, was moved along to ``old``:
   nothing in the new ``cur`` was reported again.
11. A directory moved to a name whose contents no watcher needs and back in one window, an entry
   deleted while it was there (``mv a build; rm build/f; mv build a``, ``**/build`` excluded): the
   mirror does not follow ``build``, so the deletion was not seen, and the two moves netted to
   nothing: ``a/f`` stayed with the consumer. The second move is now marked ``unfollowed``, and the
   coalescer closes what is pending at its ends first.
12. A directory moved away and back in one window, then deleted with what it held (``mv cache g; mv g
   cache; rm -r cache``): the two moves netted to nothing but left their capture of ``cache/a``, and
   routing the deletion of ``cache`` used it as if the directory had arrived: ``created cache/a``
   came out after ``deleted cache``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from fswatch_supervisor.backends.inotify import InotifyBackend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.mirror import scanner
from fswatch_supervisor.mirror.normalise import Normaliser
from fswatch_supervisor.pipeline import Pipeline
from fswatch_supervisor.registry import Registry
from fswatch_supervisor.rules import RuleSet
from fswatch_supervisor.store.eventstore import NewEvent
from fswatch_supervisor.watchers import Watcher
from tests.unit.test_mirror_late_stats import on_disk
from tests.unit.test_mirror_normalise import Harness, Host, ev, move
from tests.unit.test_mirror_support import Running, async_test, fdinfo_watches


class _RenamedAfterReaddir:
    """``os.scandir`` that reads every entry, then renames the directory before handing them out."""

    def __init__(self, real: Any, target: Any, rename: tuple[Path, Path]) -> None:
        with real(target) as it:
            self._entries = list(it)
        os.rename(*rename)

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self._entries)

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None


def test_entries_survive_a_rename_of_the_directory_during_the_listing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    (tmp_path / "a" / "g").write_text("xy")
    (tmp_path / "a" / "d").mkdir()
    real = os.scandir
    monkeypatch.setattr(os, "scandir",
                        lambda target: _RenamedAfterReaddir(real, target, (tmp_path / "a", tmp_path / "b")))

    items = scanner.list_dir(str(tmp_path / "a"))
    monkeypatch.undo()  # os.scandir is the real module's: pytest's own clean-up uses it

    # Named under the path that was listed: the move event that follows re-keys them.
    a = str(tmp_path / "a")
    assert {p: (k, s if k == "file" else None) for p, k, s, _ in items} == {
        f"{a}/d": ("dir", None), f"{a}/f": ("file", 1), f"{a}/g": ("file", 2)}


def test_an_entry_deleted_during_the_listing_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "g").write_text("x")
    real = os.scandir

    class DeletedAfterReaddir(_RenamedAfterReaddir):
        def __init__(self, target: Any) -> None:
            with real(target) as it:
                self._entries = list(it)
            (tmp_path / "f").unlink()

    monkeypatch.setattr(os, "scandir", DeletedAfterReaddir)
    items = scanner.list_dir(str(tmp_path))
    monkeypatch.undo()
    assert [p for p, *_ in items] == [str(tmp_path / "g")]


@async_test
async def test_a_directory_renamed_over_an_empty_directory_keeps_its_watch(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "f").write_text("x")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        os.rename(tmp_path / "x", tmp_path / "y")
        await r.settle(tmp_path)
        (tmp_path / "y" / "f").unlink()
        (tmp_path / "y" / "g").write_text("x")
        await r.settle(tmp_path / "y")
        y = str(tmp_path / "y")
        summary = r.summary()
        assert summary[:3] == [("moved", y), ("deleted", f"{y}/f"), ("created", f"{y}/g")]
        # the write's modify may come in a later read than its create: then `updated` follows
        assert summary[3:] in ([], [("updated", f"{y}/g")])
        assert r.mirror.is_os_watched(y)
        await r.wait_for(lambda: r.mirror.watch_count() == 2 == fdinfo_watches(r.fd))


def test_each_directory_move_leaves_with_the_entries_it_carried(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    tree = h.state.tree
    for d in ("build", "d.tmp"):
        tree.put(str(tmp_path / d), "dir", 0, 0)
        tree.mark_listed(str(tmp_path / d))
        h.state.ws.hold(str(tmp_path / d))
    tree.put(str(tmp_path / "d.tmp" / "f"), "file", 1, 1)
    # What the router captures: the model below a moved directory as the change reaches it.
    seen: list[tuple[str, str | None, list[str]]] = []
    h.state.emit = lambda changes: seen.extend(
        (c.path, c.from_path, sorted(tree.walk(c.path))) for c in changes if c.action == "moved")

    h.apply(move(tmp_path / "build", tmp_path / "b", 1, is_dir=True),
            move(tmp_path / "d.tmp", tmp_path / "b", 2, is_dir=True))

    b = str(tmp_path / "b")
    assert seen == [(b, str(tmp_path / "build"), []), (b, str(tmp_path / "d.tmp"), [f"{b}/f"])]


def test_a_symlink_below_a_directory_moved_twice_in_one_batch_ends_up_a_symlink(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.state.tree.put(str(tmp_path / "a"), "dir", 0, 0)
    h.state.tree.mark_listed(str(tmp_path / "a"))
    h.state.ws.hold(str(tmp_path / "a"))
    (tmp_path / "g").mkdir()
    os.symlink("x", tmp_path / "g" / "l")  # the disk is ahead of the events: all three already happened

    h.apply(ev(tmp_path / "a" / "l", "created"), move(tmp_path / "a", tmp_path / "f", 1, is_dir=True),
            move(tmp_path / "f", tmp_path / "g", 2, is_dir=True))

    assert h.kinds() == [("created", "l", "file"), ("moved", "f", "dir"), ("moved", "g", "dir"),
                         ("created", "l", "symlink")]
    assert h.changes[-1].existed_before  # a replacement of what was reported: for consumers, an update
    assert h.model(tmp_path / "g" / "l") == ("symlink", 1, os.lstat(tmp_path / "g" / "l").st_mtime_ns)


def test_an_entry_renamed_over_a_moved_one_unseen_is_reported_with_its_kind(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.state.tree.put(str(tmp_path / ".keep"), "symlink", 0, 0)
    (tmp_path / "cache").write_text("was a/.f")  # the disk is ahead of the events, one of which is lost

    h.apply(move(tmp_path / ".keep", tmp_path / "cache", 1))

    assert h.kinds() == [("moved", "cache", "symlink"), ("created", "cache", "file")]
    assert h.changes[-1].existed_before  # for consumers, an update of what the move brought
    assert h.state.tree.kind(str(tmp_path / "cache")) == "file"


def test_a_file_renamed_over_a_moved_file_unseen_is_reported_updated(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.state.tree.put(str(tmp_path / "x"), "file", 3, 1_000)  # what the model read of x before the move
    (tmp_path / "d").write_text("what /elsewhere/y was")  # then `mv x d; mv /elsewhere/y d`, one event lost

    h.apply(move(tmp_path / "x", tmp_path / "d", 1))

    assert h.kinds() == [("moved", "d", "file"), ("updated", "d", "file")]
    assert h.model(tmp_path / "d") == on_disk(str(tmp_path / "d"))


def test_a_moved_file_alone_is_only_moved_also_after_a_write_in_the_same_read(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    for name in ("x", "y"):
        (tmp_path / name).write_text(name)
        h.state.tree.put(str(tmp_path / name), *on_disk(str(tmp_path / name)))
    (tmp_path / "y").write_text("written, then moved")
    os.rename(tmp_path / "x", tmp_path / "d")
    os.rename(tmp_path / "y", tmp_path / "e")

    h.apply(move(tmp_path / "x", tmp_path / "d", 1), ev(tmp_path / "y", "modified"),
            move(tmp_path / "y", tmp_path / "e", 2))

    assert h.kinds() == [("moved", "d", "file"), ("updated", "y", "file"), ("moved", "e", "file")]
    assert h.model(tmp_path / "e") == on_disk(str(tmp_path / "e"))


def test_a_directory_whose_name_a_file_took_already_is_still_a_directory(tmp_path: Path) -> None:
    h, host = Harness(tmp_path), Host()
    h.normaliser = Normaliser(h.state, host)
    (tmp_path / "c").mkdir()
    (tmp_path / "b").write_text("was k")  # the disk is ahead of the events
    h.state.tree.put(str(tmp_path / "k"), *on_disk(str(tmp_path / "b")))  # as read before its move

    h.apply(ev(tmp_path / "b", "created", is_dir=True), move(tmp_path / "b", tmp_path / "c", 1, is_dir=True),
            move(tmp_path / "k", tmp_path / "b", 2))

    assert h.kinds() == [("created", "b", "dir"), ("moved", "c", "dir"), ("moved", "b", "file")]
    assert h.state.tree.kind(str(tmp_path / "c")) == "dir"
    assert str(tmp_path / "c") in host.crawls  # what is below it gets looked at


class _Kept:
    def __init__(self) -> None:
        self.events: list[NewEvent] = []

    def append(self, events: list[NewEvent]) -> list[tuple[int, dict[str, Any]]]:
        self.events += events
        return [(len(self.events), {}) for _ in events]


# To "cache", its contents excluded; or to "b", where the mirror, not having listed ".h", crawls it and
# reports as created what is there, so a/f must go even if it was deleted while hidden.
@pytest.mark.parametrize("destination", ["/r/cache", "/r/b"])
@async_test
async def test_a_directory_moved_twice_in_one_window_carries_what_its_first_name_held(
        tmp_path: Path, destination: str) -> None:
    registry = Registry(tmp_path / "watchers.log", sync_each=False)
    registry.open()
    rules = RuleSet.parse([["include-path", "/r"], ["exclude-hidden"], ["exclude-glob", "cache/**"]])
    registry.add(Watcher(id="w_1", serial=1, rules=rules, path="/r", tags={}, coalesce_ms=10, ttl_s=None,
                         created_ns=0))
    store = _Kept()
    pipeline = Pipeline(registry, store, lambda deliveries: None)  # type: ignore[arg-type]
    below: dict[str, list[str]] = {}  # the mirror's model, as the pipeline reads it
    pipeline.entries_below = lambda d: [(p, "file", 0, 0) for p in below.get(d, [])]

    def changes(*items: Change) -> None:
        pipeline.on_changes(list(items))

    now = time.time_ns()
    changes(Change("created", "/r/a", "dir", now), Change("created", "/r/a/f", "file", now))
    pipeline.flush()
    below["/r/.h"] = ["/r/.h/f"]
    changes(Change("moved", "/r/.h", "dir", now, from_path="/r/a"))
    below.clear()  # nobody needs the hidden directory: the mirror forgets what is below it
    changes(Change("moved", destination, "dir", now, from_path="/r/.h"))
    pipeline.flush()
    registry.close()

    assert [(e.action, e.path, e.from_path) for e in store.events] == [
        ("created", "/r/a", None), ("created", "/r/a/f", None), ("deleted", "/r/a/f", None),
        ("moved", destination, "/r/a")]


def _routed(steps: list[tuple[list[Change], dict[str, list[str]]]], rules: list[list[str]]) -> list[tuple[str, ...]]:
    """What a pipeline stores for one watcher (window 10 ms) fed ``steps``: each a batch of changes
    and the mirror's model as the pipeline reads it then (directory -> paths below it)."""
    with tempfile.TemporaryDirectory() as state:
        registry = Registry(Path(state) / "watchers.log", sync_each=False)
        registry.open()
        registry.add(Watcher(id="w_1", serial=1, rules=RuleSet.parse(rules), path="/r", tags={}, coalesce_ms=10,
                             ttl_s=None, created_ns=0))
        store = _Kept()
        pipeline = Pipeline(registry, store, lambda deliveries: None)  # type: ignore[arg-type]
        below: dict[str, list[str]] = {}
        pipeline.entries_below = lambda d: [(p, "file", 0, 0) for p in below.get(d, [])]
        for changes, model in steps:
            below = model
            pipeline.on_changes(changes)
        pipeline.flush()
        registry.close()
    return [(e.action, e.path) + ((e.from_path,) if e.from_path else ()) for e in store.events]


@async_test
async def test_a_directory_moved_on_after_its_previous_move_closed_carries_what_it_held_then() -> None:
    now = time.time_ns()
    steps = [([Change("created", "/r/a", "dir", now)], {}),
             ([Change("moved", "/r/.keep", "dir", now, from_path="/r/a")], {}),  # not listed yet: nothing below
             ([Change("created", "/r/.keep/.f", "file", now)], {}),  # the crawl's
             # Below a pending change of its source (.keep/.f): this move closes every window first.
             ([Change("moved", "/r/g", "dir", now, from_path="/r/.keep")], {"/r/g": ["/r/g/.f"]})]
    rules = [["include-path", "/r"], ["exclude-hidden"], ["include-glob", "**/.keep"]]

    assert _routed(steps, rules) == [("created", "/r/.keep"), ("created", "/r/.keep/.f"),
                                     ("deleted", "/r/.keep/.f"), ("moved", "/r/g", "/r/.keep")]


@async_test
async def test_a_directory_moved_on_after_a_deletion_below_it_closed_its_move_carries_what_it_held_then() -> None:
    now = time.time_ns()
    steps = [([Change("moved", "/r/cache", "dir", now, from_path="/r/d.tmp")], {"/r/cache": ["/r/cache/b"]}),
             # One read: the deletion of a directory with a pending change below it closes every window.
             ([Change("deleted", "/r/cache/b/d", "file", now), Change("deleted", "/r/cache/b", "dir", now),
               Change("moved", "/r/b", "dir", now, from_path="/r/cache")], {})]
    rules = [["include-path", "/r"], ["exclude-glob", "cache/**"]]

    assert _routed(steps, rules) == [("deleted", "/r/d.tmp/b"), ("moved", "/r/cache", "/r/d.tmp"),
                                     ("moved", "/r/b", "/r/cache")]


@async_test
async def test_a_directory_moved_away_and_back_leaves_nothing_for_a_new_one_at_the_name_between() -> None:
    now = time.time_ns()
    steps = [([Change("created", "/r/build", "dir", now), Change("created", "/r/build/f", "file", now)], {}),
             ([Change("moved", "/r/a", "dir", now, from_path="/r/build")], {"/r/a": ["/r/a/f"]}),
             ([Change("moved", "/r/build", "dir", now, from_path="/r/a")], {"/r/build": ["/r/build/f"]}),
             ([Change("created", "/r/a", "dir", now)], {})]

    assert _routed(steps, [["include-path", "/r"]]) == [
        ("created", "/r/build"), ("created", "/r/build/f"), ("created", "/r/a")]


@async_test
async def test_a_directory_name_taken_by_a_watched_directory_before_its_crawl_is_crawled_under_its_new_name(
        tmp_path: Path) -> None:
    keep, f, tmp = tmp_path / ".keep", tmp_path / "f", tmp_path / "d.tmp"
    tmp.mkdir()
    (tmp / "x").write_text("x")
    async with Running() as r:
        assert isinstance(r.backend, InotifyBackend)
        await r.mirror.add_root(str(tmp_path))
        libc: Any = r.backend._libc
        real = libc.add_watch

        def add_watch(fd: int, path: bytes, mask: int) -> int:
            if path == os.fsencode(keep) and not f.exists():
                os.rename(keep, f)  # between the read of `mkdir .keep` and its crawl
                os.rename(tmp, keep)
            return int(real(fd, path, mask))

        libc.add_watch = add_watch
        keep.mkdir()
        await r.settle(tmp_path)
        libc.add_watch = real
        (f / "new").write_text("n")
        (keep / "y").write_text("y")
        await r.settle(f)
        await r.settle(keep)

        moves = [(c.path, c.from_path) for c in r.changes if c.action == "moved"]
        assert moves == [(str(f), str(keep)), (str(keep), str(tmp))]
        created = {c.path for c in r.changes if c.action == "created"}
        assert {str(keep), str(f / "new"), str(keep / "y")} <= created
        assert not created & {str(keep / "x"), str(f / "y"), str(f / "x")}
        assert r.mirror.is_os_watched(str(f)) and r.mirror.is_os_watched(str(keep))
        assert sorted(p for p, *_ in r.mirror.entries(str(tmp_path))) == sorted(
            map(str, [f, f / "new", keep, keep / "x", keep / "y"]))


@async_test
async def test_a_chain_of_directory_renames_in_one_read_keeps_each_watch_on_its_directory(tmp_path: Path) -> None:
    cur, old, new = tmp_path / "cur", tmp_path / "old", tmp_path / "new"
    for d in (cur, new):
        d.mkdir()
        (d / "x").write_text("x")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        os.rename(cur, old)  # no await between: one read holds both renames
        os.rename(new, cur)
        await r.settle(tmp_path)
        (old / "o").write_text("o")
        (cur / "c").write_text("c")
        await r.settle(old)
        await r.settle(cur)

        assert [(c.path, c.from_path) for c in r.changes if c.action == "moved"] == [
            (str(old), str(cur)), (str(cur), str(new))]
        assert {c.path for c in r.changes if c.action == "created"} == {str(old / "o"), str(cur / "c")}
        assert r.mirror.watch_count() == 3 == fdinfo_watches(r.fd)


@async_test
async def test_a_directory_moved_back_from_a_name_nobody_follows_is_not_netted_with_its_way_there(
        tmp_path: Path) -> None:
    a, build = tmp_path / "a", tmp_path / "build"
    a.mkdir()
    (a / "f").write_text("f")
    async with Running(needs_dir=lambda d: not d.endswith("/build")) as r:
        await r.mirror.add_root(str(tmp_path))
        os.rename(a, build)
        (build / "f").unlink()
        os.rename(build, a)
        await r.settle(tmp_path)
        moves = [(c.path, c.from_path, c.unfollowed) for c in r.changes if c.action == "moved"]
        assert moves == [(str(build), str(a), False), (str(a), str(build), True)]

    now = time.time_ns()
    steps = [([Change("moved", "/r/build", "dir", now, from_path="/r/a")], {"/r/build": ["/r/build/f"]}),
             ([Change("moved", "/r/a", "dir", now, from_path="/r/build", unfollowed=True)], {"/r/a": []})]
    assert _routed(steps, [["include-path", "/r"], ["exclude-glob", "**/build"]]) == [
        ("deleted", "/r/a/f"), ("deleted", "/r/a"), ("created", "/r/a")]  # netted, it was nothing


@async_test
async def test_a_directory_moved_away_and_back_then_deleted_leaves_nothing_behind() -> None:
    now = time.time_ns()
    steps = [([Change("created", "/r/cache", "dir", now), Change("created", "/r/cache/a", "file", now)], {}),
             ([Change("moved", "/r/g", "dir", now, from_path="/r/cache")], {"/r/g": ["/r/g/a"]}),
             ([Change("moved", "/r/cache", "dir", now, from_path="/r/g")], {"/r/cache": ["/r/cache/a"]}),
             ([Change("deleted", "/r/cache/a", "file", now), Change("deleted", "/r/cache", "dir", now)], {})]

    assert _routed(steps, [["include-path", "/r"]]) == [
        ("created", "/r/cache"), ("created", "/r/cache/a"), ("deleted", "/r/cache/a"), ("deleted", "/r/cache")]
