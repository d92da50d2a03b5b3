"""Pairing ``moved_from`` with ``moved_to`` by cookie, across at most one read boundary.

The kernel queues both halves of a rename together, but a read can end between them. When a
batch ends with a ``moved_from`` whose partner has not arrived, that event and everything after
it are held back (order matters: a later event may be about the same path) until the next batch
or a short grace period, whichever comes first; then an unpaired ``moved_from`` is final.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fswatch_supervisor.backends.base import RawEvent

MOVE_GRACE_S: Final = 0.02


@dataclass(slots=True, frozen=True)
class Move:
    src: RawEvent
    dst: RawEvent


Op = RawEvent | Move


class MovePairer:
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[list[Op]], None],
                 grace_s: float = MOVE_GRACE_S) -> None:
        self._loop = loop
        self._deliver = deliver
        self._grace_s = grace_s
        self._held: list[RawEvent] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, batch: list[RawEvent]) -> None:
        events = self._held + batch if self._held else batch
        self._held = []
        self._pair(events, final=False)

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
        partner: dict[int, list[int]] = {}
        for i, ev in enumerate(events):
            if ev.action == "moved_to" and ev.cookie:
                partner.setdefault(ev.cookie, []).append(i)
        used: set[int] = set()
        ops: list[Op] = []
        for i, ev in enumerate(events):
            if i in used:
                continue
            if ev.action == "moved_from" and ev.cookie:
                j = next((k for k in partner.get(ev.cookie, ()) if k > i and k not in used), None)
                if j is not None:
                    used.add(j)
                    ops.append(Move(ev, events[j]))
                    continue
                if not final:
                    self._held = [e for k, e in enumerate(events[i:], start=i) if k not in used]
                    if self._timer is None:
                        self._timer = self._loop.call_later(self._grace_s, self.flush)
                    break
            ops.append(ev)
        else:
            if self._timer is not None and not self._held:
                self._timer.cancel()
                self._timer = None
        if ops:
            self._deliver(ops)
