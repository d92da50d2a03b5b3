"""The coalescer: merges bursts of raw changes into the net change a consumer needs.

Each path's window opens at its first raw change and closes ``window_ms`` later; it never slides, so
no change waits longer than the window. A ``moved`` ties its source's and destination's windows
into one *batch* (the earlier deadline wins), because a move's meaning depends on both ends: a temp
file written and renamed over its target must become one ``updated`` of the target.

When a batch closes, its net effect is emitted (``netting``: deletions, then moves in dependency
order, then creations, then updates; the README's *Coalescing* section has the full table).

Barriers flush everything pending first, so nothing can reorder across them: metadata changes
(``overflow``, ``root-deleted``, ``watch-error``) and the deletion or move of a directory (or an
entry of unknown kind) that has pending changes below it. The converse order is kept without a
barrier: a batch that takes a change below a path pending in another batch closes only after that
batch, so ``mkdir d`` or ``mv a d`` reaches consumers before ``mv x d/x`` even when the move joined
``x``'s earlier window (replayed first, a later ``moved d from a`` would wipe ``d/x``).

Output ``time_ns`` is that of the last raw change merged into the event: the moment the supervisor
observed the state the event describes, so ``since=T`` never hides a change made after T.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from itertools import count

from fswatch_supervisor.changes import Change
from fswatch_supervisor.netting import net_changes

_METADATA = frozenset({"overflow", "root-deleted", "watch-error"})
_TREE_KINDS = frozenset({"dir", None})
"""Kinds of entry a later change can be below: a directory, or an entry of unknown kind."""


class _Batch:
    # A plain class, not a dataclass: mypyc compiles this ``__init__``, not a generated one (one per
    # pending path in a burst).
    __slots__ = ("after", "alive", "changes", "deadline_ns", "merged_into", "paths")

    def __init__(self, deadline_ns: int) -> None:
        self.deadline_ns = deadline_ns
        self.changes: list[tuple[int, Change]] = []
        self.paths: set[str] = set()
        self.alive = True
        self.after: set[_Batch] | None = None
        """Batches holding a pending ancestor of one of our changes' paths: they close first."""
        self.merged_into: _Batch | None = None


def _dependencies(batch: _Batch) -> Iterator[_Batch]:
    """The batches ``batch`` must follow, earliest deadline first, then in arrival order (a set has
    no order of its own, and one OS read gives many changes the same time)."""
    after = sorted({_current(b) for b in batch.after or ()},
                   key=lambda b: (b.deadline_ns, b.changes[0][0] if b.changes else 0))
    batch.after = None
    return iter(after)


def _followed(batch: _Batch) -> set[_Batch]:
    """The open batches ``batch`` must follow, directly or through others."""
    seen: set[_Batch] = set()
    stack = [batch]
    while stack:
        for dependency in stack.pop().after or ():
            current = _current(dependency)
            if current.alive and current not in seen:
                seen.add(current)
                stack.append(current)
    return seen


def _current(batch: _Batch) -> _Batch:
    while batch.merged_into is not None:
        batch = batch.merged_into
    return batch


class Coalescer:
    """Per-path, non-sliding coalescing windows. Not thread-safe; times are caller-supplied ns."""

    def __init__(self, window_ms: int) -> None:
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        self._window_ns = window_ms * 1_000_000
        self._by_path: dict[str, _Batch] = {}
        self._heap: list[tuple[int, int, list[_Batch]]] = []
        """Open windows by deadline. Batches opened with one deadline in a row share one entry, in
        the order they opened: a read's changes share their time, so a burst pushes and pops the heap
        once per read, not once per path. Closed and merged batches stay there, dead, until it is due."""
        self._newest: list[_Batch] | None = None
        """The heap entry the last batch opened in, while it is in the heap."""
        self._seq = count()
        self._below: dict[str, int] = {}  # directory -> number of its active children (see _count_active)
        self._dirs: set[str] = set()
        """Pending paths named by a change of a directory (or unknown kind): the only ones a later
        change can be below. Empty in a burst of file changes, which then skip the ancestor walk."""

    def pending(self) -> int:
        """How many paths have an open window."""
        return len(self._by_path)

    def next_deadline(self) -> int | None:
        """When the earliest open window closes (ns), or None when nothing is pending."""
        heap = self._heap
        while heap and not any(batch.alive for batch in heap[0][2]):
            self._pop()
        return heap[0][0] if heap else None

    def add(self, change: Change, now_ns: int) -> list[Change]:
        """Take one raw change; return what is ready now (overdue windows, barriers, window 0)."""
        if self._window_ns == 0:
            return [change]
        heap = self._heap
        out = self.due(now_ns) if heap and heap[0][0] <= now_ns else []
        if change.action in _METADATA:
            out += self.flush()
            out.append(change)
            return out
        path, kind = change.path, change.kind
        ends = [path] if change.from_path is None else [change.from_path, path]
        tree_change = change.action in ("deleted", "moved") and kind in _TREE_KINDS
        if tree_change and any(self._below.get(p, 0) for p in ends):
            out += self.flush()
        if change.unfollowed:
            for p in ends:  # what is pending at either end leaves first: this move is not netted with it
                if (pending := self._by_path.get(p)) is not None and pending.alive:
                    out += self._close(pending)
        ancestors: set[_Batch] | None = None
        if self._dirs:
            ancestors = self._close_unmergeable(ends, out)
        batch = self._batch_for(ends, change.time_ns, ancestors)
        batch.changes.append((next(self._seq), change))
        if kind in _TREE_KINDS:
            self._dirs.update(ends)
        return out

    def due(self, now_ns: int) -> list[Change]:
        """Close every window whose deadline has passed, earliest deadline first."""
        return self._close_through(now_ns)

    def flush(self) -> list[Change]:
        """Close every window now, in deadline order (for ``/sync`` and shutdown)."""
        return self._close_through(None)

    def _close_through(self, deadline_ns: int | None) -> list[Change]:
        out: list[Change] = []
        heap = self._heap
        while heap and (deadline_ns is None or heap[0][0] <= deadline_ns):
            for batch in self._pop():
                if batch.alive:
                    out += self._close(batch)
        return out

    def _open(self, deadline_ns: int) -> _Batch:
        batch = _Batch(deadline_ns)
        newest = self._newest
        if newest is not None and newest[0].deadline_ns == deadline_ns:
            newest.append(batch)
        else:
            self._newest = newest = [batch]
            heapq.heappush(self._heap, (deadline_ns, next(self._seq), newest))
        return batch

    def _pop(self) -> list[_Batch]:
        _, _, batches = heapq.heappop(self._heap)
        if batches is self._newest:
            self._newest = None
        return batches

    def _batch_for(self, ends: list[str], time_ns: int, ancestors: set[_Batch] | None) -> _Batch:
        """The batch that takes a change at ``ends``, merging the batches it joins. ``ancestors``
        are the batches of the pending directories above ``ends``: it closes after them."""
        by_path = self._by_path
        found = [b for p in ends if (b := by_path.get(p)) is not None]
        if not found:
            batch = self._open(time_ns + self._window_ns)
        elif len(found) == 1 or all(b is found[0] for b in found):
            batch = found[0]
        else:
            # The earlier deadline survives: merging may close a window early, never late.
            batch, *others = sorted({id(b): b for b in found}.values(), key=lambda b: b.deadline_ns)
            for other in others:
                other.alive = False
                other.merged_into = batch
                batch.changes = sorted(batch.changes + other.changes, key=lambda sc: sc[0])
                for p in other.paths:
                    by_path[p] = batch
                batch.paths |= other.paths
                if other.after:
                    batch.after = other.after | (batch.after or set())
        for p in ends:
            if p not in batch.paths:
                batch.paths.add(p)
                by_path[p] = batch
                if not self._below.get(p):
                    self._count_active(p, 1)
        if ancestors:
            ancestors.discard(batch)
            if ancestors:
                batch.after = ancestors if batch.after is None else batch.after | ancestors
        return batch

    def _close_unmergeable(self, ends: list[str], out: list[Change]) -> set[_Batch]:
        """Close first (into ``out``) the batches that taking a change at ``ends`` would fold into
        one batch with a change below one of its directories, or into a cycle of ``after`` links
        (``mv a g; mv g/f f; mv f a``, where the last move joins both earlier batches). A batch is
        replayed on a flat model of paths: it cannot order a change below a moved directory with
        that move. Returns the batches of the pending directories above ``ends`` that remain."""
        by_path = self._by_path
        while True:
            ancestors = self._ancestor_batches(ends)
            found = {b for p in ends if (b := by_path.get(p)) is not None}
            if not found:
                return ancestors
            blocking = next((a for a in ancestors if a in found), None)
            for batch in [*ancestors, *found] if blocking is None else ():
                reached = _followed(batch) & found
                reached.discard(batch)
                if reached:
                    blocking = batch if batch in ancestors else next(iter(reached))
                    break
            if blocking is None:
                return ancestors
            out += self._close(blocking)

    def _ancestor_batches(self, ends: list[str]) -> set[_Batch]:
        dirs, by_path = self._dirs, self._by_path
        found: set[_Batch] = set()
        for path in ends:
            cut = path.rfind("/")
            while cut > 0:
                path = path[:cut]
                if path in dirs:
                    found.add(by_path[path])
                cut = path.rfind("/")
        return found

    # ``_below[d]`` counts the children of ``d`` that are *active*: pending themselves, or with
    # something pending below them. "Anything pending below d?" is then one lookup, and a change
    # walks up only while it is the first (or last) active entry of a directory, not to the root.

    def _count_active(self, path: str, delta: int) -> None:
        """``path`` just became active (+1) or inactive (-1): count it in its parent, and so on up
        while that changes whether the parent is active."""
        below, by_path = self._below, self._by_path
        while path != "/":
            parent = path.rpartition("/")[0] or "/"
            n = below.get(parent, 0) + delta
            if n:
                below[parent] = n
            else:
                del below[parent]
            if n != (delta > 0) or parent in by_path:
                return  # the parent was active before (+1) or stays active (-1)
            path = parent

    def _close(self, batch: _Batch) -> list[Change]:
        """Close ``batch`` after the batches it must follow: a depth-first topological order,
        iterative, dependencies in deadline order. A batch is claimed when it is visited, so one
        reached twice closes once, and a cycle of ``after`` links ends."""
        batch.alive = False
        if not batch.after:
            batch.after = None
            return self._net(batch)
        out: list[Change] = []
        stack = [(batch, _dependencies(batch))]
        while stack:
            current, pending = stack[-1]
            for dependency in pending:
                if dependency.alive:
                    dependency.alive = False
                    stack.append((dependency, _dependencies(dependency)))
                    break
            else:
                stack.pop()
                out += self._net(current)
        return out

    def _net(self, batch: _Batch) -> list[Change]:
        by_path, below, dirs = self._by_path, self._below, self._dirs
        for p in batch.paths:
            del by_path[p]
            if not below.get(p):
                self._count_active(p, -1)
            if dirs:
                dirs.discard(p)
        if len(batch.changes) == 1:
            only = batch.changes[0][1]
            if only.action != "moved" and not (only.action == "created" and only.existed_before):
                return [only]  # a lone change is its own net effect; skip the replay
        return net_changes([c for _, c in batch.changes])
