"""The portable backend: watchdog's Observer (FSEvents on macOS, inotify/kqueue/polling elsewhere).

Limits, compared with the native inotify backend:

- Watches are recursive only. ``add_dir`` records the directory as needed and schedules one
  recursive watch at the top-most needed directory; directories below it cost nothing more, and
  excluded directories cannot be left out at the OS level (their events arrive and the mirror
  drops them). ``watch_count`` counts scheduled recursive watches.
- No overflow report: if the OS drops events, nothing says so.
- Every schedule carries an ``event_filter`` (created/deleted/modified/moved), so no open/close
  events are generated where the platform lets the filter narrow the OS mask.

Events arrive on watchdog's threads and are handed to the loop with ``call_soon_threadsafe``,
batched: one loop callback drains whatever accumulated.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import threading
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from fswatch_supervisor.backends.base import OnEvents, RawEvent, WatchBackend
from fswatch_supervisor.errors import WatchError, WatchLimitReached, WatchPermission

EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent, DirCreatedEvent, FileDeletedEvent, DirDeletedEvent,
    FileModifiedEvent, DirModifiedEvent, FileMovedEvent, DirMovedEvent,
]


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


class _Handler(FileSystemEventHandler):
    def __init__(self, backend: WatchdogBackend) -> None:
        self._backend = backend

    def dispatch(self, event: FileSystemEvent) -> None:
        self._backend._from_thread(event)


class WatchdogBackend(WatchBackend):
    name = "watchdog"
    per_directory = False

    def __init__(self) -> None:
        self._observer: Any = Observer()
        self._handler = _Handler(self)
        self._held: set[str] = set()
        self._scheduled: dict[str, Any] = {}
        self._cookies = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: list[RawEvent] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_events: OnEvents | None = None

    def start(self, loop: asyncio.AbstractEventLoop, on_events: OnEvents) -> None:
        self._loop = loop
        self._on_events = on_events
        self._observer.start()

    def add_dir(self, path: str, *, rekey: bool = True) -> None:
        if any(_under(path, top) for top in self._scheduled):
            self._held.add(path)
            return
        self._schedule(path)
        self._held.add(path)
        for top in [t for t in self._scheduled if t != path and _under(t, path)]:
            self._observer.unschedule(self._scheduled.pop(top))

    def remove_dir(self, path: str) -> None:
        self._held.discard(path)
        watch = self._scheduled.pop(path, None)
        if watch is None:
            return
        self._observer.unschedule(watch)
        # Directories below that are still needed lose their cover: give them their own watches.
        orphans = sorted(p for p in self._held if _under(p, path))
        for p in orphans:
            if not any(_under(p, top) for top in self._scheduled):
                try:
                    self._schedule(p)
                except WatchError:
                    self._held.discard(p)

    def moved_dir(self, old: str, new: str, watched: list[tuple[str, str]]) -> None:
        # A recursive OS watch keeps following the moved tree under its old name in watchdog, so
        # only the bookkeeping moves; a moved top is re-scheduled at its new path.
        moved = [p for p in self._held if _under(p, old)]
        for p in moved:
            self._held.discard(p)
            self._held.add(new + p[len(old):])
        for top in [t for t in self._scheduled if _under(t, old)]:
            self._observer.unschedule(self._scheduled.pop(top))
            try:
                self._schedule(new + top[len(old):])
            except WatchError:
                pass

    def watch_count(self) -> int:
        return len(self._scheduled)

    def is_watched(self, path: str) -> bool:
        return path in self._held

    def close(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
        self._scheduled.clear()
        self._held.clear()

    def _schedule(self, path: str) -> None:
        try:
            self._scheduled[path] = self._observer.schedule(
                self._handler, path, recursive=True, event_filter=EVENT_FILTER)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise WatchLimitReached(
                    f"the OS refused another watch ({exc.strerror}); on Linux raise "
                    "`sudo sysctl fs.inotify.max_user_watches=524288`") from exc
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise WatchPermission(f"permission denied watching {path}") from exc
            raise WatchError(f"cannot watch {path}: {exc}") from exc

    def _translate(self, event: FileSystemEvent) -> list[RawEvent]:
        src = str(event.src_path)
        is_dir = bool(event.is_directory)
        kind = event.event_type
        if kind == "created":
            return [RawEvent(src, "created", is_dir)]
        if kind == "modified":
            # A directory's own mtime moves with every entry added: only noise for a mirror.
            return [] if is_dir else [RawEvent(src, "modified", False)]
        if kind == "deleted":
            return [RawEvent(src, "dir_gone" if src in self._scheduled else "deleted", is_dir)]
        if kind == "moved":
            cookie = next(self._cookies)
            return [RawEvent(src, "moved_from", is_dir, cookie),
                    RawEvent(str(event.dest_path), "moved_to", is_dir, cookie)]
        return []

    def _from_thread(self, event: FileSystemEvent) -> None:
        raws = self._translate(event)
        if not raws or self._loop is None:
            return
        with self._lock:
            first = not self._pending
            self._pending.extend(raws)
        if first:
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:
                pass  # the loop closed while the observer was stopping

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch and self._on_events is not None:
            self._on_events(batch)
