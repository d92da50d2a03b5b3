"""Overflow, rescans and the persisted model that a restarted supervisor diffs against."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from fswatch_supervisor.errors import StoreCorrupt
from tests.unit.test_mirror_support import Running, async_test, make_tree


@pytest.fixture(name="fast_tmp")
def _fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs directory when there is one: creating 17k files on a VM's disk takes seconds."""
    if not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm") as td:
        yield Path(td)


def max_queued_events() -> int:
    with open("/proc/sys/fs/inotify/max_queued_events") as fh:
        return int(fh.read())


@async_test
async def test_overflow_reports_then_rescans_everything(fast_tmp: Path) -> None:
    count = max_queued_events() + 500
    if count > 100_000:
        pytest.skip("max_queued_events is too high to overflow quickly")
    root = fast_tmp / "root"
    make_tree(root, ["d"])
    # The drain thread normally keeps the kernel queue empty; with a one-byte backlog it stops
    # reading until the (blocked) loop takes what it read, as if it could not keep up. Small reads,
    # so that its one read cannot make room for the surplus (a 256 KiB read holds 8k events).
    with mock.patch("fswatch_supervisor.backends.drain.MAX_BACKLOG", 1), \
            mock.patch("fswatch_supervisor.backends.drain.READ_SIZE", 4096):
        async with Running() as r:
            await r.mirror.add_root(str(root))
            # The loop is blocked while we create: the kernel queue fills up and overflows.
            base = f"{root}/d/n"
            for i in range(count):
                os.close(os.open(f"{base}{i}", os.O_CREAT | os.O_WRONLY, 0o644))
            # The sync cookie is written while the queue is still full: its event is lost too,
            # and only the rescan can find it.
            await r.settle(root, timeout=30)
            assert set(r.paths("created")) == {str(root / "d" / f"n{i}") for i in range(count)}
            overflow = [i for i, c in enumerate(r.changes) if c.action == "overflow"]
            assert overflow and r.changes[overflow[0]].path == str(root)
            rescanned = [i for i, c in enumerate(r.changes) if c.rescan]
            assert rescanned and min(rescanned) > overflow[0]
            assert len(r.paths("created")) == count, "no duplicates between events and the rescan"
            assert r.mirror.entry_count() == count + 3


@async_test
async def test_rescan_against_a_saved_model_reports_what_changed_while_down(tmp_path: Path) -> None:
    root, state = tmp_path / "root", tmp_path / "model.msgpack"
    make_tree(root, ["keep", "gone/deeper", "edit"])
    async with Running() as r:
        await r.mirror.add_root(str(root))
        r.mirror.save(state)
    (root / "keep" / "new.txt").write_text("n")
    (root / "edit" / "f0.txt").write_text("longer content")
    (root / "gone" / "deeper" / "f0.txt").unlink()
    (root / "gone" / "deeper").rmdir()
    (root / "gone" / "f0.txt").unlink()
    (root / "gone").rmdir()
    make_tree(root, ["fresh/sub"])
    async with Running() as r:
        await r.mirror.add_root(str(root))
        baseline = r.mirror.load(state)[str(root)]
        await r.mirror.rescan(str(root), baseline=baseline)
        got = {(c.action, os.path.relpath(c.path, root), c.kind) for c in r.changes}
        assert got == {
            ("created", "keep/new.txt", "file"), ("updated", "edit/f0.txt", "file"),
            ("deleted", "gone", "dir"), ("deleted", "gone/f0.txt", "file"),
            ("deleted", "gone/deeper", "dir"), ("deleted", "gone/deeper/f0.txt", "file"),
            ("created", "fresh", "dir"), ("created", "fresh/f0.txt", "file"),
            ("created", "fresh/sub", "dir"), ("created", "fresh/sub/f0.txt", "file"),
        }
        assert all(c.rescan for c in r.changes)
        assert [c.existed_before for c in r.changes if c.action == "deleted"] == [True] * 4
        deleted = [os.path.relpath(c.path, root) for c in r.changes if c.action == "deleted"]
        assert deleted.index("gone/deeper/f0.txt") < deleted.index("gone/deeper") < deleted.index("gone")
        await r.mirror.rescan(str(root))
        assert len(r.changes) == 10, "a second rescan finds nothing new"


@async_test
async def test_save_and_load_split_records_per_root(tmp_path: Path) -> None:
    root, state = tmp_path / "root", tmp_path / "model.msgpack"
    make_tree(root, ["a/b"])
    (root / "single").write_text("s")
    async with Running() as r:
        await r.mirror.add_root(str(root))
        await r.mirror.add_root(str(root / "a"))
        await r.mirror.add_root(str(root / "single"))
        r.mirror.save(state)
        loaded = r.mirror.load(state)
        assert set(loaded) == {str(root), str(root / "a"), str(root / "single")}
        for key, records in loaded.items():
            assert records == list(r.mirror.entries(key))
        assert [p for p, *_ in loaded[str(root / "a")]] == [
            str(root / "a" / "b"), str(root / "a" / "b" / "f0.txt"), str(root / "a" / "f0.txt")]
        assert r.mirror.load(tmp_path / "missing") == {}
        state.write_bytes(b"\x93garbage")
        with pytest.raises(StoreCorrupt):
            r.mirror.load(state)
        assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

