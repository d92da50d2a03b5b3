"""The event pipeline: mirror changes → coalesced per window → routed to watchers → stored → published.

Coalescing is path-level, so watchers that share a ``coalesce_ms`` share one coalescer: a change is
merged once per distinct window, not once per watcher. Routing then asks only the watchers whose
include roots are ancestors of the path (the registry's root index) and applies their rules. One
stored record serves every watcher that sees the same event; it is written before it is published
or handed to a waiting long-poll, so an id a client has seen is never lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from fswatch_supervisor.changes import Action, Change
from fswatch_supervisor.coalesce import Coalescer
from fswatch_supervisor.registry import Registry
from fswatch_supervisor.store.eventstore import EventStore, NewEvent
from fswatch_supervisor.watchers import Watcher

METADATA_ACTIONS = frozenset({"overflow", "root-deleted", "watch-error"})
Publish = Callable[[str, dict[str, Any]], None]


class Pipeline:
    def __init__(self, registry: Registry, store: EventStore, publish: Publish) -> None:
        self._registry = registry
        self._store = store
        self._publish = publish
        self._coalescers: dict[int, Coalescer] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.changes_in = 0
        self.events_stored = 0
        self.events_published = 0

    # -- input ------------------------------------------------------------------------------

    def on_changes(self, changes: list[Change]) -> None:
        """The mirror's callback: runs in the loop thread for each batch of OS changes."""
        now = time.time_ns()
        ready: list[tuple[int | None, Change]] = []
        for change in changes:
            self.changes_in += 1
            if change.action == "created" and change.existed_before:
                # Something replaced an existing entry (an atomic save's rename-over): for anyone
                # who knew the path, that is an update of it.
                change.action = "updated"
            if change.action in METADATA_ACTIONS:
                ready.extend(self._flush_all())  # metadata must not overtake what came before it
                ready.append((None, change))
                continue
            for window in self._windows_for(change):
                ready.extend((window, out) for out in self._coalescer(window).add(change, now))
        self._deliver(ready)
        self._arm_timer()

    def _windows_for(self, change: Change) -> set[int]:
        windows = {w.coalesce_ms for w in self._registry.covering(change.path)}
        if change.from_path is not None:
            windows.update(w.coalesce_ms for w in self._registry.covering(change.from_path))
        return windows

    def _coalescer(self, window: int) -> Coalescer:
        coalescer = self._coalescers.get(window)
        if coalescer is None:
            coalescer = self._coalescers[window] = Coalescer(window)
        return coalescer

    def _flush_all(self) -> list[tuple[int | None, Change]]:
        return [(window, c) for window, co in self._coalescers.items() for c in co.flush()]

    # -- timers -----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadlines = [d for co in self._coalescers.values() if (d := co.next_deadline()) is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines:
            delay = max(0.0, (min(deadlines) - time.time_ns()) / 1e9)
            self._timer = asyncio.get_running_loop().call_later(delay, self.run_due)

    def run_due(self) -> None:
        """Deliver every window whose deadline has passed."""
        self._timer = None
        now = time.time_ns()
        self._deliver([(window, c) for window, co in self._coalescers.items() for c in co.due(now)])
        self._arm_timer()

    def pending(self, window: int) -> int:
        coalescer = self._coalescers.get(window)
        return coalescer.pending() if coalescer is not None else 0

    def flush(self) -> None:
        """Deliver everything pending now (shutdown)."""
        self._deliver(self._flush_all())
        self._arm_timer()

    # -- routing ----------------------------------------------------------------------------

    def _deliver(self, ready: Iterable[tuple[int | None, Change]]) -> None:
        # One record per (change, what a watcher sees of it); watchers that see the same share it.
        batch: dict[tuple[int, str, str], tuple[Change, list[str]]] = {}
        for position, (window, change) in enumerate(ready):
            for watcher, event in self._route(window, change):
                key = (position, event.action, event.path)
                entry = batch.get(key)
                if entry is None:
                    batch[key] = (event, [watcher.id])
                else:
                    entry[1].append(watcher.id)
        if batch:
            self.emit([
                NewEvent(action=event.action, path=event.path, kind=event.kind, time_ns=event.time_ns,
                         watchers=tuple(ids), from_path=event.from_path, rescan=event.rescan,
                         detail=event.detail)
                for event, ids in batch.values()
            ])

    def _route(self, window: int | None, change: Change) -> Iterable[tuple[Watcher, Change]]:
        if window is None:
            yield from self._route_metadata(change)
            return
        seen: set[str] = set()
        candidates = self._registry.covering(change.path)
        if change.from_path is not None:
            candidates = candidates + self._registry.covering(change.from_path)
        for watcher in candidates:
            if watcher.coalesce_ms != window or watcher.id in seen:
                continue
            seen.add(watcher.id)
            event = _as_seen_by(watcher, change)
            if event is not None:
                yield watcher, event

    def _route_metadata(self, change: Change) -> Iterable[tuple[Watcher, Change]]:
        for watcher in self._registry.all():
            for root in watcher.roots:
                related = (root == change.path or root.startswith(change.path + "/")
                           or change.path.startswith(root + "/"))
                if related:
                    path = root if change.action == "overflow" else change.path
                    yield watcher, Change(change.action, path, change.kind, change.time_ns,
                                          rescan=change.rescan, detail=change.detail)
                    break

    # -- output -----------------------------------------------------------------------------

    def emit(self, events: list[NewEvent]) -> None:
        """Store, then publish and wake long-polls. Also used for ``watcher-deleted``."""
        stored = self._store.append(events)
        self.events_stored += len(stored)
        woken: set[str] = set()
        for new, (_seq, event) in zip(events, stored, strict=True):
            for watcher_id in new.watchers:
                self._publish(watcher_id, event)
                self.events_published += 1
                woken.add(watcher_id)
        for watcher_id in woken:
            self.wake(watcher_id)

    def wake(self, watcher_id: str) -> None:
        for future in self._waiters.pop(watcher_id, ()):
            if not future.done():
                future.set_result(None)

    async def wait_for_events(self, watcher_id: str, timeout: float) -> None:
        """Return when an event for ``watcher_id`` is stored, or after ``timeout`` seconds."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(watcher_id, set()).add(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(watcher_id)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    self._waiters.pop(watcher_id, None)

    def stats(self) -> dict[str, int]:
        return {
            "changes_in": self.changes_in,
            "events_stored": self.events_stored,
            "events_published": self.events_published,
            "coalescing_pending": sum(co.pending() for co in self._coalescers.values()),
            "long_polls_waiting": sum(len(v) for v in self._waiters.values()),
        }


def _as_seen_by(watcher: Watcher, change: Change) -> Change | None:
    """The change as this watcher sees it: a move across its edge becomes created or deleted."""
    selects_to = watcher.covers(change.path) and watcher.rules.selects(change.path)
    if change.action != "moved" or change.from_path is None:
        return change if selects_to else None
    selects_from = watcher.covers(change.from_path) and watcher.rules.selects(change.from_path)
    if selects_to and selects_from:
        return change
    if selects_to:
        arrived: Action = "updated" if change.existed_before else "created"  # e.g. a hidden temp renamed over it
        return Change(arrived, change.path, change.kind, change.time_ns, rescan=change.rescan)
    if selects_from:
        return Change("deleted", change.from_path, change.kind, change.time_ns, rescan=change.rescan)
    return None
