"""The event pipeline: mirror changes → coalesced per window → routed to watchers → stored → published.

Coalescing is path-level, so watchers that share a ``coalesce_ms`` share one coalescer: a change is
merged once per distinct window, not once per watcher. Routing then asks only the watchers whose
include roots are ancestors of the path (the registry's root index) and applies their rules. One
stored record serves every watcher that sees the same event; it is written before it is published
or handed to a waiting long-poll, so an id a client has seen is never lost.

A directory moved inside the followed set is one ``moved`` from the mirror, but a watcher's rules can
select different entries below its old and its new name (``cache/**`` excluded, ``cache`` renamed;
a hidden directory that another watcher keeps listed renamed to a visible name). So the entries below
a moved directory are captured when the move arrives, and routing adds what the watcher needs to stay
exact: ``deleted`` for entries it saw only under the old name (before the move, children first),
``created`` for entries it sees only under the new one (after, parents first).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, cast

from fswatch_supervisor.changes import Action, Change, Kind
from fswatch_supervisor.coalesce import Coalescer
from fswatch_supervisor.eventmodel import Event
from fswatch_supervisor.registry import Registry
from fswatch_supervisor.rules import RuleSet
from fswatch_supervisor.store.eventstore import NewEvent
from fswatch_supervisor.watchers import Watcher

METADATA_ACTIONS = frozenset({"overflow", "root-deleted", "watch-error"})


class EventLog(Protocol):
    """Where events are stored before they are published (the ``EventStore``)."""

    def append(self, events: Sequence[NewEvent]) -> list[tuple[int, Event]]: ...


Publish = Callable[[Iterable[tuple[Sequence[str], dict[str, Any]]]], None]
"""Send stored events, each to its watchers (the PUB socket encodes each once)."""
EntriesBelow = Callable[[str], Iterable[tuple[str, str, int, int]]]
"""The mirror's records (path, kind, size, mtime_ns) strictly below a directory, in tree order
(each directory before its entries)."""
Carried = list[tuple[str, Kind]]
"""The entries below a moved directory, as (path relative to it with a leading '/', kind)."""
Captured = tuple[Carried, Carried]
"""What a pending move carried: the entries below its source as its consumers knew them (its first
hop's, when the coalescer merges moves through one name) and those below it now."""
_NOTHING: Captured = ([], [])


class Pipeline:
    def __init__(self, registry: Registry, store: EventLog, publish: Publish) -> None:
        self._registry = registry
        self._store = store
        self._publish = publish
        self._coalescers: dict[int, Coalescer] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self.entries_below: EntriesBelow | None = None
        self._carried: dict[int, dict[str, Captured]] = {}
        """Per window, per destination: the entries below a directory moved there and not yet routed."""
        self.changes_in = 0
        self.events_stored = 0
        self.events_published = 0

    # -- input ------------------------------------------------------------------------------

    def on_changes(self, changes: list[Change]) -> None:
        """The mirror's callback: runs in the loop thread for each batch of OS changes."""
        now = time.time_ns()
        ready: list[tuple[int | None, Change]] = []
        append = ready.append
        windows_covering = self._registry.windows_covering
        self.changes_in += len(changes)
        for change in changes:
            if change.action == "created" and change.existed_before:
                # Something replaced an existing entry (an atomic save's rename-over): for anyone
                # who knew the path, that is an update of it.
                change.action = "updated"
            elif change.action in METADATA_ACTIONS:
                ready.extend(self._flush_all())  # metadata must not overtake what came before it
                append((None, change))
                continue
            windows = windows_covering(change.path)
            if change.from_path is not None:
                windows |= windows_covering(change.from_path)
            carried = None
            if change.action == "moved" and change.kind == "dir" and windows:
                carried = self._capture(change.path)
            for window in windows:
                for out in self._coalescer(window).add(change, now):
                    append((window, out))
                if carried is not None:
                    self._carry(window, change, carried, ready)
        self._deliver(ready)
        self._arm_timer()

    def _capture(self, directory: str) -> Carried | None:
        if self.entries_below is None:
            return None
        # Taken now, while the model holds the subtree the move carried: by the time a window closes
        # it may have moved on. Empty when the mirror will crawl the directory and report its contents.
        cut = len(directory)
        return [(path[cut:], cast(Kind, kind)) for path, kind, _, _ in self.entries_below(directory)]

    def _carry(self, window: int, move: Change, carried: Carried, ready: list[tuple[int | None, Change]]) -> None:
        """Keep what ``move`` carried until it is routed; ``ready`` is what the coalescers closed so
        far in this batch (routed at its end)."""
        pending = self._carried.setdefault(window, {})
        source, earlier = move.from_path, None
        # A move on from where a pending move arrived: the coalescer merges the two into one move
        # from the first source, whose entries the model may have forgotten since (".h"). Unless
        # that move's window closed already in this batch (a barrier: the deletion of a directory
        # below it, or this move): it is routed on its own, with its own capture.
        if window and source is not None and source in pending and not any(
                w == window and c.path == source and c.kind == "dir" for w, c in ready):
            earlier = pending.pop(source)
        pending[move.path] = (carried if earlier is None else earlier[0], carried)

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
        new_events: list[NewEvent] = []
        # Watchers told of an overflow in this batch: the mirror reports one per root, and a
        # watcher whose roots nest (or who shares one with a nested root) is told once.
        overflowed: set[str] = set()
        for window, change in ready:
            if window is not None and change.from_path is None and change.kind != "dir":
                # The common case, a file changed in place: each watcher sees it whole or not at
                # all, so it is one record for all of them, without the per-watcher views below.
                ids = self._selecting(window, change.path)
                if ids:
                    new_events.append(_new_event(change, ids))
                continue
            # One record per (change, what a watcher sees of it); watchers that see the same events
            # share them. Keyed by the whole sequence a change becomes, so each watcher's order is kept.
            views: dict[tuple[object, ...], tuple[list[Change], list[str]]] = {}
            for group, events in self._route(window, change, overflowed):
                key = tuple((e.action, e.path, e.from_path, e.kind) for e in events)
                entry = views.get(key)
                if entry is None:
                    views[key] = (events, group)
                else:
                    entry[1].extend(group)
            new_events += [_new_event(event, tuple(group)) for events, group in views.values() for event in events]
        for window, carried in self._carried.items():
            if carried and self.pending(window) == 0:
                carried.clear()  # moves that netted to nothing (moved and back) leave no capture behind
        if new_events:
            self.emit(new_events)

    def _selecting(self, window: int, path: str) -> tuple[str, ...]:
        """Ids of the watchers with this window whose rules select ``path`` (each once)."""
        selected: tuple[str, ...] = ()
        for rules, ids in self._registry.rule_groups(path, window):
            if rules.selects(path):
                selected += ids
        return selected

    def _route(self, window: int | None, change: Change,
               overflowed: set[str]) -> Iterable[tuple[list[str], list[Change]]]:
        """What the change is for each group of watchers that see it alike: ``(ids, events)``."""
        if window is None:
            yield from (([watcher.id], [event]) for watcher, event in self._route_metadata(change, overflowed))
            return
        seen: set[str] = set()
        candidates = self._registry.covering(change.path)
        if change.from_path is not None:
            candidates += self._registry.covering(change.from_path)
        carried = self._carried.get(window, {}).pop(change.path, None) if change.kind == "dir" else None
        views: dict[RuleSet, tuple[list[str], list[Change]]] = {}  # equal rules see a change alike
        for watcher in candidates:
            if watcher.coalesce_ms != window or watcher.id in seen:
                continue
            seen.add(watcher.id)
            view = views.get(watcher.rules)
            if view is None:
                view = views[watcher.rules] = ([], _as_seen_by(watcher.rules, change, carried or _NOTHING))
            view[0].append(watcher.id)
        yield from ((ids, events) for ids, events in views.values() if events)

    def _route_metadata(self, change: Change, overflowed: set[str]) -> Iterable[tuple[Watcher, Change]]:
        if change.action == "root-deleted":
            # The mirror reports each vanished root on its own: it is news for that root's watchers
            # only, and their last about it (routing stops counting them there).
            for watcher in self._registry.covering(change.path):
                if change.path in watcher.roots:
                    yield watcher, change
            self._registry.detach_root(change.path)
            return
        for watcher in self._registry.all():
            if change.action == "overflow" and watcher.id in overflowed:
                continue
            for root in watcher.roots:
                related = (root == change.path or root.startswith(change.path + "/")
                           or change.path.startswith(root + "/"))
                if related:
                    if change.action == "overflow":
                        overflowed.add(watcher.id)
                    path = root if change.action == "overflow" else change.path
                    yield watcher, Change(change.action, path, change.kind, change.time_ns,
                                          rescan=change.rescan, detail=change.detail)
                    break

    # -- output -----------------------------------------------------------------------------

    def emit(self, events: list[NewEvent]) -> None:
        """Store, then publish and wake long-polls. Also used for ``watcher-deleted``."""
        stored = self._store.append(events)
        self.events_stored += len(stored)
        self._publish([(new.watchers, event) for new, (_seq, event) in zip(events, stored, strict=True)])
        self.events_published += sum(len(new.watchers) for new in events)
        if self._waiters:
            for watcher_id in {w for new in events for w in new.watchers}:
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


def _new_event(change: Change, watchers: tuple[str, ...]) -> NewEvent:
    return NewEvent(action=change.action, path=change.path, kind=change.kind, time_ns=change.time_ns,
                    watchers=watchers, from_path=change.from_path, rescan=change.rescan, detail=change.detail)


def _as_seen_by(rules: RuleSet, change: Change, carried: Captured) -> list[Change]:
    """The change as a watcher with these rules sees it: a move across its edge becomes created or
    deleted, and for a moved directory, the entries below it whose selection the move changed."""
    sees = rules.selects  # False outside the watcher's include roots

    def below(action: Action, top: str, entries: Iterable[tuple[str, Kind]]) -> list[Change]:
        return [Change(action, top + rel, kind, change.time_ns, rescan=change.rescan) for rel, kind in entries]

    before, after = carried
    selects_to = sees(change.path)
    source = change.from_path if change.action == "moved" else None
    if source is None:
        if not selects_to:
            return []
        if change.action == "deleted":
            # Nothing arrives with a deletion: a capture here is one that moves netted to nothing
            # left behind (``mv cache g; mv g cache; rm -r cache`` in one window), used up now.
            return [change]
        # A directory that arrived by a move the coalescer folded into created/updated.
        return [change, *below("created", change.path, [(r, k) for r, k in after if sees(change.path + r)])]
    selects_from = sees(source)
    at_from = {rel for rel, _ in before if sees(source + rel)}
    at_to = {rel for rel, _ in after if sees(change.path + rel)}
    kept = at_from & at_to if selects_to and selects_from else set()  # carried along by the move itself
    gone = below("deleted", source, [e for e in before if e[0] in at_from and e[0] not in kept][::-1])
    came = below("created", change.path, [e for e in after if e[0] in at_to and e[0] not in kept])
    if selects_to and selects_from:
        return [*gone, change, *came]
    if selects_to:
        arrived: Action = "updated" if change.existed_before else "created"  # e.g. a hidden temp renamed over it
        return [*gone, Change(arrived, change.path, change.kind, change.time_ns, rescan=change.rescan), *came]
    if selects_from:
        return [*gone, Change("deleted", source, change.kind, change.time_ns, rescan=change.rescan), *came]
    return [*gone, *came]
