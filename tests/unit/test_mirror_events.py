"""Live events → changes on a real tree: kinds, bursts, de-duplication, existed_before, cookies."""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.test_mirror_support import Running, async_test


def append(path: Path, text: str, *, times: int = 1) -> None:
    """Append ``text`` ``times`` times, one write(2) each."""
    with open(path, "a") as fh:
        for _ in range(times):
            fh.write(text)
            fh.flush()


@async_test
async def test_kinds_of_created_and_deleted_entries(tmp_path: Path) -> None:
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        (tmp_path / "f").write_text("hello")
        (tmp_path / "d").mkdir()
        os.symlink(str(tmp_path / "d"), tmp_path / "link")
        os.mkfifo(tmp_path / "fifo")
        await r.settle(tmp_path)
        kinds = {c.path: c.kind for c in r.changes if c.action == "created"}
        assert kinds == {str(tmp_path / "f"): "file", str(tmp_path / "d"): "dir",
                         str(tmp_path / "link"): "symlink", str(tmp_path / "fifo"): "other"}
        for name in ("f", "link", "fifo"):
            (tmp_path / name).unlink()
        (tmp_path / "d").rmdir()
        await r.settle(tmp_path)
        deleted = {c.path: c.kind for c in r.changes if c.action == "deleted"}
        assert deleted == kinds


@async_test
async def test_symlink_loops_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    os.symlink("..", tmp_path / "a" / "up")
    os.symlink(str(tmp_path), tmp_path / "self")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        assert r.mirror.watch_count() == 2
        records = {p: k for p, k, _s, _m in r.mirror.entries(str(tmp_path))}
        assert records == {str(tmp_path / "a"): "dir", str(tmp_path / "a" / "up"): "symlink",
                           str(tmp_path / "self"): "symlink"}


@async_test
async def test_directory_created_and_filled_at_once_reports_every_file(tmp_path: Path) -> None:
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        deep = tmp_path / "a" / "b" / "c"
        deep.mkdir(parents=True)
        expected = set()
        for d in (tmp_path / "a", tmp_path / "a" / "b", deep):
            for i in range(20):
                (d / f"f{i}").write_text("x")
                expected.add(str(d / f"f{i}"))
        await r.wait_for(lambda: expected <= set(r.paths("created")))
        await r.settle(deep)
        created = r.paths("created")
        assert len(created) == len(set(created)), "no duplicates"
        assert set(created) == expected | {str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(deep)}
        assert all(r.mirror.is_os_watched(str(d)) for d in (tmp_path / "a", deep))


@async_test
async def test_existed_before_follows_the_model(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        target.write_text("1")
        await r.settle(tmp_path)
        append(target, "2")
        await r.settle(tmp_path)
        (tmp_path / "other").write_text("3")
        os.rename(tmp_path / "other", target)
        await r.settle(tmp_path)
        target.unlink()
        await r.settle(tmp_path)
        seen = [(c.action, c.existed_before) for c in r.of(target)]
        assert seen == [("created", False), ("updated", True), ("moved", True), ("deleted", True)]


@async_test
async def test_repeated_writes_in_one_batch_are_one_update(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        append(target, "x", times=50)
        await r.settle(tmp_path)
        updates = [c for c in r.of(target) if c.action == "updated"]
        assert 1 <= len(updates) < 50
        assert dict((p, s) for p, _k, s, _m in r.mirror.entries(str(tmp_path)))[str(target)] == 50


@async_test
async def test_sync_cookies_are_never_changes(tmp_path: Path) -> None:
    (tmp_path / ".fswatch-cookie-old").write_text("")
    async with Running() as r:
        await r.mirror.add_root(str(tmp_path))
        assert [p for p, *_ in r.mirror.entries(str(tmp_path))] == []
        cookie = tmp_path / ".fswatch-cookie-x"
        cookie.write_text("")
        await r.wait_for(lambda: str(cookie) in r.cookies)
        cookie.unlink()
        os.rename(tmp_path / ".fswatch-cookie-old", tmp_path / ".fswatch-cookie-new")
        await r.wait_for(lambda: str(tmp_path / ".fswatch-cookie-new") in r.cookies)
        (tmp_path / "real").write_text("")
        await r.settle(tmp_path)
        assert r.summary() == [("created", str(tmp_path / "real"))]


@async_test
async def test_changes_outside_needed_dirs_are_not_reported(tmp_path: Path) -> None:
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    async with Running(needs_dir=lambda d: "/." not in d) as r:
        await r.mirror.add_root(str(tmp_path))
        assert not r.mirror.is_os_watched(str(tmp_path / ".git"))
        assert r.mirror.watch_count() == 1
        (tmp_path / ".git" / "HEAD").write_text("ref")
        (tmp_path / ".git" / "new").mkdir()
        (tmp_path / "seen").write_text("")
        await r.settle(tmp_path)
        assert r.summary() == [("created", str(tmp_path / "seen"))]
