"""The normaliser on hand-made batches (no OS watches): kinds, one lstat per path per batch, and
entries that are gone before they could be looked at."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fswatch_supervisor.backends.base import OnEvents, RawAction, RawEvent, WatchBackend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.mirror import normalise
from fswatch_supervisor.mirror.normalise import Normaliser
from fswatch_supervisor.mirror.pairing import Move, Op
from fswatch_supervisor.mirror.scanner import ScanItem, stat_path
from fswatch_supervisor.mirror.state import MirrorState


class NoBackend(WatchBackend):
    """Watches nothing: the batches are made by the test."""

    name = "none"
    per_directory = True

    def start(self, loop: asyncio.AbstractEventLoop, on_events: OnEvents) -> None: ...
    def add_dir(self, path: str, *, rekey: bool = True) -> None: ...
    def remove_dir(self, path: str) -> None: ...
    def moved_dir(self, old: str, new: str, watched: list[tuple[str, str]]) -> None: ...
    def watch_count(self) -> int:
        return 0
    def is_watched(self, path: str) -> bool:
        return False
    def close(self) -> None: ...


class Host:
    def __init__(self) -> None:
        self.crawls: list[str] = []

    def request_crawl(self, path: str) -> None:
        self.crawls.append(path)

    def cookie(self, path: str) -> None: ...
    def overflow(self) -> None: ...


class Harness:
    def __init__(self, top: Path) -> None:
        self.changes: list[Change] = []
        self.state = MirrorState(NoBackend(), lambda _d: True, self.changes.extend)
        self.state.tree.put(str(top), "dir", 0, 0)
        self.state.tree.mark_listed(str(top))
        self.state.ws.hold(str(top))
        self.normaliser = Normaliser(self.state, Host())

    def apply(self, *ops: Op) -> None:
        self.normaliser.apply(list(ops))

    def kinds(self) -> list[tuple[str, str, str | None]]:
        return [(c.action, os.path.basename(c.path), c.kind) for c in self.changes]

    def model(self, path: Path) -> tuple[str, int, int] | None:
        return self.state.tree.get(str(path))


def ev(path: Path, action: RawAction, cookie: int = 0, *, is_dir: bool = False) -> RawEvent:
    return RawEvent(str(path), action, is_dir, cookie)


def move(src: Path, dst: Path, cookie: int, *, is_dir: bool = False) -> Move:
    return Move(ev(src, "moved_from", cookie, is_dir=is_dir), ev(dst, "moved_to", cookie, is_dir=is_dir))


@pytest.fixture
def lstats(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the normaliser lstat-ed, in order."""
    seen: list[str] = []
    def counting(path: str) -> ScanItem | None:
        seen.append(path)
        return stat_path(path)

    monkeypatch.setattr(normalise, "stat_path", counting)
    return seen


def test_each_path_written_in_a_batch_is_lstat_ed_once_and_gets_its_real_kind(tmp_path: Path,
                                                                                lstats: list[str]) -> None:
    h = Harness(tmp_path)
    (tmp_path / "f").write_text("hello")
    os.symlink("f", tmp_path / "link")
    os.mkfifo(tmp_path / "pipe")
    h.apply(ev(tmp_path / "f", "created"), ev(tmp_path / "f", "modified"), ev(tmp_path / "f", "modified"),
            ev(tmp_path / "link", "created"), ev(tmp_path / "pipe", "created"), ev(tmp_path / "pipe", "attrib"))
    assert h.kinds() == [("created", "f", "file"), ("created", "link", "symlink"), ("created", "pipe", "other")]
    assert sorted(lstats) == sorted(str(tmp_path / n) for n in ("f", "link", "pipe"))
    st = os.lstat(tmp_path / "f")
    assert h.model(tmp_path / "f") == ("file", 5, st.st_mtime_ns)
    assert h.model(tmp_path / "link") == ("symlink", 1, os.lstat(tmp_path / "link").st_mtime_ns)


def test_a_write_to_a_known_file_is_reported_at_once_and_the_model_catches_up(tmp_path: Path,
                                                                               lstats: list[str]) -> None:
    h = Harness(tmp_path)
    (tmp_path / "f").write_text("a")
    h.apply(ev(tmp_path / "f", "created"))
    (tmp_path / "f").write_text("abc")
    h.apply(ev(tmp_path / "f", "modified"), ev(tmp_path / "f", "modified"))
    assert h.kinds() == [("created", "f", "file"), ("updated", "f", "file")]
    assert h.model(tmp_path / "f") == ("file", 3, os.lstat(tmp_path / "f").st_mtime_ns)
    assert len(lstats) == 2


def test_a_symlink_created_and_renamed_in_one_batch_is_a_symlink(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    os.symlink("target", tmp_path / "link")  # created as "new", renamed before the batch is looked at
    h.apply(ev(tmp_path / "new", "created"), move(tmp_path / "new", tmp_path / "link", 5))
    assert h.kinds() == [("created", "new", "symlink"), ("moved", "link", "symlink")]
    assert h.model(tmp_path / "link") is not None and h.model(tmp_path / "link")[0] == "symlink"  # type: ignore[index]


def test_a_symlink_gone_before_its_batch_ended_is_a_symlink_when_renamed_later(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.apply(ev(tmp_path / "new", "created"))  # already renamed: the lstat finds nothing, "file" is a guess
    assert h.kinds() == [("created", "new", "file")]
    os.symlink("target", tmp_path / "link")
    h.apply(move(tmp_path / "new", tmp_path / "link", 6))
    assert h.kinds()[1:] == [("moved", "link", "symlink")]
    assert h.model(tmp_path / "link") is not None and h.model(tmp_path / "link")[0] == "symlink"  # type: ignore[index]


def test_a_known_file_renamed_is_lstat_ed_once_at_the_batch_end(tmp_path: Path, lstats: list[str]) -> None:
    h = Harness(tmp_path)
    (tmp_path / "b").write_text("x")
    h.apply(ev(tmp_path / "b", "created"))
    os.rename(tmp_path / "b", tmp_path / "c")
    h.apply(move(tmp_path / "b", tmp_path / "c", 7), ev(tmp_path / "c", "modified"))
    assert h.kinds() == [("created", "b", "file"), ("moved", "c", "file"), ("updated", "c", "file")]
    # Not to learn its kind: in case the kernel dropped a rename over it (test_mirror_rename_races).
    assert lstats == [str(tmp_path / "b"), str(tmp_path / "c")]


def test_writes_below_a_directory_renamed_in_the_same_batch_reach_the_model(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    (tmp_path / "d").mkdir()
    h.apply(ev(tmp_path / "d", "created", is_dir=True))
    h.state.tree.mark_listed(str(tmp_path / "d"))  # as the crawl of the new directory does
    h.state.ws.hold(str(tmp_path / "d"))
    (tmp_path / "d" / "f").write_text("four")
    os.rename(tmp_path / "d", tmp_path / "e")  # before the batch is read, as always: its events say so
    h.apply(ev(tmp_path / "d" / "f", "created"), ev(tmp_path / "d" / "f", "modified"),
            move(tmp_path / "d", tmp_path / "e", 8, is_dir=True))
    assert h.kinds()[1:] == [("created", "f", "file"), ("moved", "e", "dir")]
    assert h.model(tmp_path / "e" / "f") == ("file", 4, os.lstat(tmp_path / "e" / "f").st_mtime_ns)
