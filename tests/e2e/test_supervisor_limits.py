"""The inotify watch limit: an error to the creator (no half-made watcher), a ``watch-error`` later."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fswatch_supervisor.errors import InsufficientStorage
from tests.harness import SupervisorProc, count_inotify_watches, events_of, wait_until

LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_watches")


def _watches_in_use_by_this_user() -> int:
    total = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if proc.stat().st_uid == os.getuid():
                    total += count_inotify_watches(int(proc.name))
            except OSError:
                continue
    return total


@pytest.fixture
def low_watch_limit() -> Iterator[int]:
    """Lower ``max_user_watches`` to 60 above what this user holds now; restore it afterwards."""
    if os.geteuid() != 0 or not os.access(LIMIT_FILE, os.W_OK):
        pytest.skip("needs root to lower fs.inotify.max_user_watches")
    original = LIMIT_FILE.read_text()
    headroom = _watches_in_use_by_this_user() + 60
    try:
        LIMIT_FILE.write_text(str(headroom))
    except OSError as exc:
        pytest.skip(f"cannot change fs.inotify.max_user_watches here: {exc}")
    try:
        yield headroom
    finally:
        LIMIT_FILE.write_text(original)


def test_watch_limit_at_creation_is_507_and_leaves_nothing(supervisor: SupervisorProc, tree: Path,
                                                           low_watch_limit: int) -> None:
    for i in range(200):
        (tree / f"d{i}").mkdir()
    with supervisor.client() as rpc:
        with pytest.raises(InsufficientStorage, match="max_user_watches"):
            rpc.call("create_watcher", path=str(tree))
        assert rpc.call("list_watchers")["items"] == []
        assert count_inotify_watches(supervisor.pid) == 0
        small = tree / "d0"
        wid = rpc.call("create_watcher", path=str(small))["id"]
        assert rpc.call("status")["os_watches"] == 1
        # Growing past the limit later is an event, not a crash.
        for i in range(120):
            (small / f"sub{i}").mkdir()
        wait_until(lambda: any(e["action"] == "watch-error" for e in events_of(rpc, wid)), 15, 0.1, "watch-error")
        error = next(e for e in events_of(rpc, wid) if e["action"] == "watch-error")
        assert "max_user_watches" in error["detail"]
        assert rpc.call("ping")["ready"] is True
