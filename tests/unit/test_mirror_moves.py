"""Moves within, out of and into the followed set; roots that disappear."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fswatch_supervisor.changes import Change
from tests.unit.test_mirror_support import Running, async_test, fdinfo_watches, make_tree


@async_test
async def test_directory_moved_within_tree_is_one_move_and_keeps_its_watches(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_tree(root, ["src/pkg/sub", "dst"])
    async with Running() as r:
        await r.mirror.add_root(str(root))
        before = r.mirror.watch_count()
        os.rename(root / "src" / "pkg", root / "dst" / "pkg")
        (root / "dst" / "pkg" / "sub" / "new.txt").write_text("x")
        await r.settle(root / "dst" / "pkg" / "sub")
        assert r.summary() == [("moved", str(root / "dst" / "pkg")),
                               ("created", str(root / "dst" / "pkg" / "sub" / "new.txt"))]
        moved = r.changes[0]
        assert (moved.from_path, moved.kind, moved.existed_before) == (str(root / "src" / "pkg"), "dir", False)
        assert r.mirror.watch_count() == before == fdinfo_watches(r.fd)
        assert r.mirror.is_os_watched(str(root / "dst" / "pkg" / "sub"))
        assert not r.mirror.is_os_watched(str(root / "src" / "pkg"))
        paths = [p for p, *_ in r.mirror.entries(str(root))]
        assert str(root / "dst" / "pkg" / "sub" / "f0.txt") in paths
        assert not any(p.startswith(str(root / "src" / "pkg")) for p in paths)


@async_test
async def test_directory_moved_out_is_deleted_and_releases_watches(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    make_tree(root, ["a/b"])
    outside.mkdir()
    async with Running() as r:
        await r.mirror.add_root(str(root))
        assert r.mirror.watch_count() == 3
        os.rename(root / "a", outside / "a")
        await r.settle(root)
        deleted = r.paths("deleted")
        assert deleted[-1] == str(root / "a")
        assert set(deleted) == {str(root / "a"), str(root / "a" / "b"), str(root / "a" / "f0.txt"),
                                str(root / "a" / "b" / "f0.txt")}
        assert all(c.kind is not None and c.existed_before for c in r.changes)
        assert r.mirror.watch_count() == 1 == fdinfo_watches(r.fd)
        (outside / "a" / "later.txt").write_text("")
        await r.settle(root)
        assert not r.paths("created")


@async_test
async def test_directory_moved_in_is_created_with_its_contents(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    make_tree(outside, ["a/b/c"], files_per_dir=2)
    async with Running() as r:
        await r.mirror.add_root(str(root))
        os.rename(outside / "a", root / "a")
        expected = {str(root / p) for p in ("a", "a/f0.txt", "a/f1.txt", "a/b", "a/b/f0.txt", "a/b/f1.txt",
                                             "a/b/c", "a/b/c/f0.txt", "a/b/c/f1.txt")}
        await r.wait_for(lambda: expected <= set(r.paths("created")))
        await r.settle(root / "a" / "b" / "c")
        assert sorted(r.paths("created")) == sorted(expected)
        assert r.mirror.watch_count() == 4 == fdinfo_watches(r.fd)


@async_test
async def test_root_deleted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_tree(root, ["a"])
    async with Running() as r:
        await r.mirror.add_root(str(root))
        (root / "a" / "f0.txt").unlink()
        (root / "a").rmdir()
        root.rmdir()
        await r.wait_for(lambda: ("root-deleted", str(root)) in r.summary())
        assert r.summary()[-1] == ("root-deleted", str(root))
        await r.wait_for(lambda: fdinfo_watches(r.fd) == 0)
        assert r.mirror.watch_count() == 0
        assert list(r.mirror.entries(str(root))) == []


@async_test
async def test_root_deleted_and_made_again_with_its_inode_number(tmp_path: Path) -> None:
    """ext4 gives a new directory the number of one just deleted: the root's own watch being
    deleted, not the number at its path, says the root is gone (before: no event, and its sync
    cookies were never seen again)."""
    for _attempt in range(20):
        root = tmp_path / f"root{_attempt}"
        root.mkdir()
        async with Running() as r:
            await r.mirror.add_root(str(root))
            number = root.stat().st_ino
            root.rmdir()  # both before the loop reads either event
            root.mkdir()
            if root.stat().st_ino != number:
                continue  # this file system chose another number this time: nothing to pin
            await r.wait_for(lambda: ("root-deleted", str(root)) in r.summary())  # noqa: B023
            await r.wait_for(lambda: fdinfo_watches(r.fd) == 0)
            assert not r.mirror.is_os_watched(str(root))
            return
    pytest.skip("the file system under tmp_path never reused an inode number")


@async_test
async def test_a_root_whose_unwatched_ancestor_is_renamed_is_gone_before_its_next_event(tmp_path: Path) -> None:
    """inotify tells a watch nothing when an ancestor of its directory (watched by nobody) is
    renamed: the next batch of events finds the root's directory, or a watched file's parent, gone
    from its path first (before: ``t2/a/b``'s changes came as ``t/a/b``'s, for good)."""
    make_tree(tmp_path / "t", ["a/b", "d"])
    root, file_root = tmp_path / "t" / "a" / "b", tmp_path / "t" / "d" / "f0.txt"
    async with Running() as r:
        await r.mirror.add_root(str(root))
        await r.mirror.add_root(str(file_root))
        os.rename(tmp_path / "t", tmp_path / "t2")
        (tmp_path / "t2" / "a" / "b" / "x").write_text("new")
        (tmp_path / "t2" / "d" / "f0.txt").write_text("changed")
        await r.wait_for(lambda: len(r.paths("root-deleted")) == 2)
        await r.wait_for(lambda: fdinfo_watches(r.fd) == 0)
        assert sorted(r.summary()) == [("root-deleted", str(root)), ("root-deleted", str(file_root))]


@async_test
async def test_root_moved_away(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_tree(root, ["a"])
    async with Running() as r:
        await r.mirror.add_root(str(root))
        os.rename(root, tmp_path / "elsewhere")
        await r.wait_for(lambda: ("root-deleted", str(root)) in r.summary())
        assert r.mirror.watch_count() == 0 == fdinfo_watches(r.fd)
        assert r.summary() == [("root-deleted", str(root))]
        assert list(r.mirror.entries(str(root))) == []


@async_test
async def test_nested_root_moved_within_outer_root(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    make_tree(outer, ["inner/x"])
    async with Running() as r:
        await r.mirror.add_root(str(outer))
        await r.mirror.add_root(str(outer / "inner"))
        os.rename(outer / "inner", outer / "renamed")
        await r.settle(outer)
        assert ("moved", str(outer / "renamed")) in r.summary()
        assert ("root-deleted", str(outer / "inner")) in r.summary()
        assert r.mirror.is_os_watched(str(outer / "renamed" / "x"))
        assert r.mirror.watch_count() == 3 == fdinfo_watches(r.fd)


@async_test
async def test_file_replaced_by_directory_via_rename(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("")
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "inner").write_text("")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        (tmp_path / "p").unlink()
        os.rename(tmp_path / "stage", tmp_path / "p")
        await r.settle(tmp_path)
        assert r.summary() == [("deleted", str(tmp_path / "p")), ("moved", str(tmp_path / "p"))]
        assert (r.changes[1].kind, r.changes[1].from_path) == ("dir", str(tmp_path / "stage"))
        assert r.mirror.is_os_watched(str(tmp_path / "p"))
        assert str(tmp_path / "p" / "inner") in [p for p, *_ in r.mirror.entries(str(tmp_path))]


@async_test
async def test_moves_across_the_pruned_boundary_follow_needs(tmp_path: Path) -> None:
    make_tree(tmp_path, ["shown/deep", ".hidden/deep"])
    async with Running(needs_dir=lambda d: "/." not in d) as r:
        await r.mirror.add_root(str(tmp_path))
        assert r.mirror.watch_count() == 3
        os.rename(tmp_path / "shown", tmp_path / ".now-hidden")
        os.rename(tmp_path / ".hidden", tmp_path / "now-shown")
        expected = {str(tmp_path / "now-shown" / p) for p in ("f0.txt", "deep", "deep/f0.txt")}
        await r.wait_for(lambda: expected <= set(r.paths("created")))
        await r.settle(tmp_path / "now-shown" / "deep")
        assert [(c.action, c.path) for c in r.changes if c.action == "moved"] == [
            ("moved", str(tmp_path / ".now-hidden")), ("moved", str(tmp_path / "now-shown"))]
        assert r.mirror.watch_count() == 3 == fdinfo_watches(r.fd)
        assert not r.mirror.is_os_watched(str(tmp_path / ".now-hidden"))
        assert r.mirror.is_os_watched(str(tmp_path / "now-shown" / "deep"))


@async_test
async def test_pruned_directories_below_a_moved_directory_follow_its_new_name(tmp_path: Path) -> None:
    cache, kept = tmp_path / "cache", tmp_path / "kept"
    make_tree(tmp_path, ["cache/sub/deeper"])
    # as for `exclude-glob cache/**`: the directory itself is needed, nothing below it
    async with Running(needs_dir=lambda d: not d.startswith(str(cache) + "/")) as r:
        await r.mirror.add_root(str(tmp_path))
        assert not r.mirror.is_os_watched(str(cache / "sub"))
        before = r.mirror.watch_count()
        os.rename(cache, kept)
        await r.settle(kept)
        assert r.mirror.is_os_watched(str(kept / "sub")) and r.mirror.is_os_watched(str(kept / "sub" / "deeper"))
        assert {str(kept / "sub" / "f0.txt"), str(kept / "sub" / "deeper"),
                str(kept / "sub" / "deeper" / "f0.txt")} <= set(r.paths("created"))
        (kept / "sub" / "deeper" / "new").write_text("x")
        await r.settle(kept / "sub" / "deeper")
        # the write's modify may come in a later read than its create: then `updated` follows
        assert [c.action for c in r.of(kept / "sub" / "deeper" / "new")][:1] == ["created"]
        assert r.mirror.watch_count() == before + 2 == fdinfo_watches(r.fd)
        os.rename(kept, cache)  # and back: what the old name needed is released again
        await r.settle(cache)
        assert not r.mirror.is_os_watched(str(cache / "sub"))
        assert r.mirror.watch_count() == before == fdinfo_watches(r.fd)
        assert not any(p.startswith(str(cache / "sub") + "/") for p, *_ in r.mirror.entries(str(tmp_path)))


@async_test
async def test_a_directory_renamed_to_an_unneeded_name_is_handed_on_before_its_subtree_is_released(
        tmp_path: Path) -> None:
    src, hidden = tmp_path / "src", tmp_path / ".src"
    make_tree(tmp_path, ["src/deep"])
    below_at_move: list[str] = []

    def observe(changes: list[Change]) -> None:
        # What the pipeline does with a moved directory: read the model below its new name.
        if any(c.action == "moved" and c.path == str(hidden) for c in changes):
            below_at_move.extend(p for p, *_ in r.mirror.entries(str(hidden)))

    async with Running(needs_dir=lambda d: "/." not in d, observe=observe) as r:
        await r.mirror.add_root(str(tmp_path))
        before = r.mirror.watch_count()
        os.rename(src, hidden)
        await r.settle(tmp_path)
        assert r.summary() == [("moved", str(hidden))]
        assert below_at_move == [str(hidden / p) for p in ("deep", "deep/f0.txt", "f0.txt")]
        assert r.mirror.watch_count() == before - 2 == fdinfo_watches(r.fd)
        assert [p for p, *_ in r.mirror.entries(str(tmp_path))] == [str(hidden)]
