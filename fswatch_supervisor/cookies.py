"""``sync``: wait until every change made before the request is visible, as watchman does.

A cookie file is created in each of the watcher's root directories. inotify delivers events of one
instance in order, so when the cookie's own creation is read back, everything made before it has
been read too. Then the coalescing windows that may still hold those changes are allowed to close.
The mirror never reports cookie files as changes (their names start with ``COOKIE_PREFIX``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

from fswatch_supervisor.logs import get_logger

COOKIE_PREFIX = ".fswatch-cookie-"
log = get_logger(__name__)


class CookieJar:
    def __init__(self) -> None:
        self._serial = itertools.count(1)
        self._pending: dict[str, asyncio.Future[None]] = {}

    def on_cookie(self, path: str) -> None:
        """The mirror saw a cookie file appear. Resolve on the next loop turn, so the changes read
        in the same batch before it are routed first."""
        future = self._pending.pop(path, None)
        if future is not None and not future.done():
            asyncio.get_running_loop().call_soon(_resolve, future)

    async def round_trip(self, directories: list[str], timeout: float) -> None:
        """Write a cookie in each directory and wait until each is observed (or the timeout)."""
        loop = asyncio.get_running_loop()
        written: list[str] = []
        futures: list[asyncio.Future[None]] = []
        for directory in directories:
            path = os.path.join(directory, f"{COOKIE_PREFIX}{os.getpid()}-{next(self._serial)}")
            future: asyncio.Future[None] = loop.create_future()
            self._pending[path] = future
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            except OSError as exc:  # the root is gone or read-only: nothing more can arrive from it
                log.info("sync.cookie_unwritable", directory=directory, error=str(exc))
                self._pending.pop(path, None)
                continue
            written.append(path)
            futures.append(future)
        try:
            if futures:
                await asyncio.wait_for(asyncio.gather(*futures), timeout)
        finally:
            for path in written:
                self._pending.pop(path, None)
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def sleep_until_ns(deadline_ns: int) -> None:
    delay = (deadline_ns - time.time_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
