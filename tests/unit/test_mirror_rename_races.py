"""Directory renames that raced the mirror and lost events (found by the hypothesis replay test).

1. The crawler watches a new directory, then lists it. If the directory was renamed between the
   kernel's readdir and the per-entry lstat, a by-path lstat found nothing, the entries were dropped
   as "vanished", the directory was marked listed anyway and the move that followed carried an empty
   listing: its files were never reported (``mkdir a; touch a/f a/g; mv a f`` lost ``f/g``).
2. A watched directory renamed over an existing, watched, empty directory: the backend re-keys the
   moved watches to the new name as it reads the pair, so releasing the replaced directory's watch
   by that name removed the moved directory's own watch; nothing below it was seen again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from fswatch_supervisor.mirror import scanner
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
        assert r.summary() == [("moved", y), ("deleted", f"{y}/f"), ("created", f"{y}/g")]
        assert r.mirror.is_os_watched(y)
        await r.wait_for(lambda: r.mirror.watch_count() == 2 == fdinfo_watches(r.fd))
