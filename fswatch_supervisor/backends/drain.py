"""Drain a kernel event queue (the inotify fd) on a thread of its own.

The kernel queue is small (``max_queued_events``, 16,384 by default) and overflows whenever the
event loop is busy for a moment: routing, coalescing and storing a fast burst can take longer
than the burst itself. A thread that does nothing but ``read()`` keeps the kernel queue empty and
hands raw bytes to the loop, which parses them in order. Only bytes cross threads; every watch
descriptor is still interpreted on the loop thread. The user-space backlog is bounded: past
``max_backlog`` bytes the thread stops reading, so the kernel overflows and the usual overflow
handling (an ``overflow`` event and a rescan) takes over instead of unbounded memory.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections import deque
from collections.abc import Callable
from typing import Final

from fswatch_supervisor.logs import get_logger

log = get_logger(__name__)
READ_SIZE: Final = 64 * 1024
MAX_BACKLOG: Final = 64 * 1024 * 1024
DELIVER_BYTES: Final = 64 * 1024
"""What one loop callback processes (~2,000 events); the rest follows in the next callbacks."""


class QueueDrainer:
    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop, on_chunks: Callable[[list[bytes]], None],
                 *, max_backlog: int | None = None) -> None:
        self._fd = fd
        self._loop = loop
        self._on_chunks = on_chunks
        self._max_backlog = max_backlog if max_backlog is not None else MAX_BACKLOG
        self._chunks: deque[bytes] = deque()
        self._backlog = 0
        self._reading = False
        """Set while bytes read from the kernel are not counted in the backlog yet."""
        self._lock = threading.Lock()
        self._notified = False
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inotify-drain", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (before the fd is closed). Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            if self._backlog >= self._max_backlog:
                poller.poll(10)  # let the loop catch up; the kernel queue may overflow meanwhile
            else:
                poller.poll()
                self._read_available()
            if self._stopping:
                return

    def _read_available(self) -> None:
        if self._stopping:
            return
        got: list[bytes] = []
        self._reading = True
        try:
            while True:
                try:
                    data = os.read(self._fd, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if not self._stopping:
                        log.error("inotify.read_failed", error=str(exc))
                    return
                if not data:
                    break
                got.append(data)
                if len(got) * READ_SIZE >= self._max_backlog:
                    break
            if not got:
                return
            with self._lock:
                self._chunks.extend(got)
                self._backlog += sum(map(len, got))
                notify = not self._notified
                self._notified = True
        finally:
            self._reading = False
        if notify:
            try:
                self._loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop is closed: we are shutting down
                pass

    def _deliver(self) -> None:
        # A slice at a time, then back to the loop: a backlog handed over whole would be
        # normalised, coalesced and stored as one batch, holding every event of it (and the
        # timers of due windows) until the last one is done, while the front-ends sit idle.
        chunks: list[bytes] = []
        taken = 0
        with self._lock:
            while self._chunks and taken < DELIVER_BYTES:
                chunk = self._chunks.popleft()
                chunks.append(chunk)
                taken += len(chunk)
            self._backlog -= taken
            more = bool(self._chunks)
            self._notified = more
        if more:
            self._loop.call_soon(self._deliver)
        if chunks and not self._stopping:
            self._on_chunks(chunks)

    def backlog_bytes(self) -> int:
        return self._backlog

    def undelivered(self) -> bool:
        """Whether bytes already read from the kernel are not delivered yet."""
        return self._reading or self._backlog > 0

    def pending(self) -> bool:
        """Whether bytes the kernel had queued when this was called are not delivered yet.

        Asked in this order, no byte slips between the answers: still in the kernel, then being
        read (the flag is cleared only once the bytes are in the backlog), then in the backlog
        (emptied only by the loop thread, which is the one asking)."""
        readable, _, _ = select.select([self._fd], [], [], 0)
        return bool(readable) or self._reading or self._backlog > 0
