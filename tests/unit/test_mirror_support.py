"""Shared helpers for the mirror tests: a running mirror on the real inotify backend."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fswatch_supervisor.backends.base import WatchBackend
from fswatch_supervisor.backends.inotify import InotifyBackend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.mirror import FsMirror

_cookie_ids = itertools.count()


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body in a fresh event loop (keeps pytest fixtures working)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def fdinfo_watches(fd: int) -> int:
    """The number of inotify watches the kernel holds on ``fd``."""
    with open(f"/proc/self/fdinfo/{fd}") as fh:
        return sum(1 for line in fh if line.startswith("inotify wd:"))


def make_tree(root: Path, dirs: list[str], files_per_dir: int = 1) -> None:
    """``root`` with the directories ``dirs`` (and their parents), each holding ``files_per_dir``
    files named ``f<i>.txt``; ``root`` itself holds none."""
    root.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        parts = Path(d).parts
        for depth in range(1, len(parts) + 1):
            sub = root.joinpath(*parts[:depth])
            sub.mkdir(exist_ok=True)
            for i in range(files_per_dir):
                (sub / f"f{i}.txt").write_text("x")


class Running:
    """A started ``FsMirror`` that records every change and cookie."""

    def __init__(self, needs_dir: Callable[[str], bool] | None = None,
                 backend: WatchBackend | None = None,
                 observe: Callable[[list[Change]], None] | None = None) -> None:
        """``observe`` sees each batch of changes as it is handed on, before it is recorded (as the
        pipeline does: e.g. it reads the model when a directory was moved)."""
        self.needs: Callable[[str], bool] = needs_dir or (lambda _d: True)
        self.changes: list[Change] = []
        self.cookies: list[str] = []
        self.backend = backend or InotifyBackend()
        self._observe = observe
        self.mirror = FsMirror(self.backend, needs_dir=lambda d: self.needs(d),
                               on_changes=self._record, on_cookie=self.cookies.append)

    def _record(self, changes: list[Change]) -> None:
        if self._observe is not None:
            self._observe(changes)
        self.changes.extend(changes)

    async def __aenter__(self) -> Running:
        await self.mirror.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.mirror.close()

    @property
    def fd(self) -> int:
        assert isinstance(self.backend, InotifyBackend)
        return self.backend.fd

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; changes: {self.summary()}")
            await asyncio.sleep(0.005)

    async def settle(self, directory: Path, timeout: float = 5.0) -> None:
        """Write a sync cookie in ``directory`` and wait until the mirror has seen it: every
        change made before is then reported."""
        cookie = directory / f".fswatch-cookie-{os.getpid()}-{next(_cookie_ids)}"
        cookie.write_text("")
        await self.wait_for(lambda: str(cookie) in self.cookies, timeout)
        cookie.unlink()

    def summary(self) -> list[tuple[str, str]]:
        return [(c.action, c.path) for c in self.changes]

    def paths(self, action: str) -> list[str]:
        return [c.path for c in self.changes if c.action == action]

    def of(self, path: Path | str) -> list[Change]:
        return [c for c in self.changes if c.path == str(path)]

