"""The background thread behind ``FsyncPolicy.INTERVAL``.

It wakes every interval, asks the store for duplicates of the dirty segments' descriptors (taken
under the store's lock, so retention may close the originals meanwhile), and ``fdatasync``s them
outside the lock: appends never wait for the disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.store.segment import Segment

log = get_logger(__name__)

DirtyFds = Callable[[], list[tuple[int, Callable[[], None]]]]
"""Returns ``(duplicated fd, mark_synced)`` per dirty segment; the syncer closes each fd."""


class Syncer:
    def __init__(self, interval_s: float, dirty_fds: DirtyFds) -> None:
        self._interval_s = interval_s
        self._dirty_fds = dirty_fds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fswatch-store-fsync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def sync_now(self) -> None:
        for fd, mark_synced in self._dirty_fds():
            try:
                os.fdatasync(fd)
                mark_synced()
            except OSError as exc:
                log.error("store_fsync_failed", error=str(exc))
            finally:
                os.close(fd)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sync_now()


def synced_marker(segment: Segment, size: int) -> Callable[[], None]:
    """A callback recording that ``segment`` is durable up to ``size`` (its size when fd was duplicated)."""
    def mark_synced() -> None:
        segment.synced_size = max(segment.synced_size, size)
    return mark_synced
