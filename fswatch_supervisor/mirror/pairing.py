"""Pairing ``moved_from`` with ``moved_to`` by cookie, across at most one read boundary.

The kernel queues both halves of a rename one after the other, and a read can end between them.
When a batch ends with a ``moved_from`` whose partner has not arrived, that event and everything
after it are held back (order matters: a later event may be about the same path) until the next
batch or a short grace period, whichever comes first; then an unpaired ``moved_from`` is final.
The grace is extended while the backend says events are still queued or read but not delivered
(a busy machine can leave the partner there for longer than the grace), up to ``MOVE_WAIT_MAX_S``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fswatch_supervisor.backends.rawevent import RawEvent

MOVE_GRACE_S: Final = 0.02
MOVE_WAIT_MAX_S: Final = 1.0


@dataclass(slots=True, init=False)
class Move:
    src: RawEvent
    dst: RawEvent

    # Written out because mypyc compiles it (not frozen: a frozen dataclass's ``__init__`` is slow).
    def __init__(self, src: RawEvent, dst: RawEvent) -> None:
        self.src = src
        self.dst = dst


Op = RawEvent | Move


class MovePairer:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[Op]], None],
                 grace_s: float = MOVE_GRACE_S, *, events_pending: Callable[[], bool] = lambda: False,
                 wait_max_s: float = MOVE_WAIT_MAX_S) -> None:
        self._loop = loop
        self._deliver = deliver
        self._grace_s = grace_s
        self._events_pending = events_pending
        self._wait_max_s = wait_max_s
        self._held: list[RawEvent] = []
        self._held_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, batch: list[RawEvent]) -> None:
        events = self._held + batch if self._held else batch
        self._held = []
        self._pair(events, final=False)

    def _grace_over(self) -> None:
        if self._events_pending() and self._loop.time() - self._held_since < self._wait_max_s:
            self._timer = self._loop.call_later(self._grace_s, self._grace_over)  # the partner may be there
            return
        self.flush()

    def flush(self) -> None:
        """Deliver whatever is held, treating unpaired ``moved_from`` as final."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events, self._held = self._held, []
        if events:
            self._pair(events, final=True)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = []

    def _pair(self, events: list[RawEvent], *, final: bool) -> None:
        ops: list[Op] = []
        append = ops.append
        taken: set[int] = set()
        """Indices of ``moved_to`` paired with an earlier ``moved_from`` that did not precede them."""
        partners: dict[int, list[int]] | None = None
        n = len(events)
        i = 0
        while i < n:
            ev = events[i]
            action = ev.action
            if action != "moved_from" or not ev.cookie:
                if action != "moved_to" or i not in taken:
                    append(ev)
                i += 1
                continue
            nxt = events[i + 1] if i + 1 < n else None
            if nxt is not None and nxt.cookie == ev.cookie and nxt.action == "moved_to" and i + 1 not in taken:
                append(Move(ev, nxt))  # the usual case: the kernel queues both halves together
                i += 2
                continue
            if partners is None:
                partners = {}
                for k, other in enumerate(events):
                    if other.action == "moved_to" and other.cookie:
                        partners.setdefault(other.cookie, []).append(k)
            j = next((k for k in partners.get(ev.cookie, ()) if k > i and k not in taken), None)
            if j is not None:
                taken.add(j)
                append(Move(ev, events[j]))
            elif final:
                append(ev)
            else:
                self._held = [e for k, e in enumerate(events[i:], start=i) if k not in taken]
                if self._timer is None:
                    self._held_since = self._loop.time()
                    self._timer = self._loop.call_later(self._grace_s, self._grace_over)
                break
            i += 1
        else:
            if self._timer is not None and not self._held:
                self._timer.cancel()
                self._timer = None
        if ops:
            self._deliver(ops)
