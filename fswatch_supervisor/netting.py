"""A closed batch's net effect: its raw changes replayed on a small identity model.

The model knows which entry sits at which path: the one there at the window start, one moved in, or
one made in the window. The net difference between the start and the end is what a consumer needs,
in an order it can replay: deletions, then moves (each destination vacated before something moves
onto it; a swap's cycle is broken by one ``created``), then creations, then updates. The README's
*Coalescing* section has the full table.
"""

from __future__ import annotations

from fswatch_supervisor.changes import Action, Change, Kind


def net_changes(changes: list[Change]) -> list[Change]:
    """The net changes of one batch, whose raw ``changes`` are in observation order."""
    return _Replay(changes).net()


class _Entry:
    """One directory entry's identity while a batch is replayed."""

    __slots__ = ("kind", "modified", "origin")

    def __init__(self, origin: str | None, kind: Kind | None) -> None:
        self.origin = origin  # the path where it sat at the window start; None when made in the window
        self.kind = kind
        self.modified = False


class _Replay:
    """Replays one batch on the identity model and derives the net changes, in a replayable order."""

    def __init__(self, changes: list[Change]) -> None:
        self.start: dict[str, _Entry | None] = {}  # insertion order = first appearance
        self.now: dict[str, _Entry | None] = {}
        self.last_ns: dict[str, int] = {}
        self.rescan = all(c.rescan for c in changes)
        for c in changes:
            self._apply(c)

    def _touch(self, path: str, existed: bool, time_ns: int) -> None:
        if path not in self.start:
            entry = _Entry(path, None) if existed else None
            self.start[path] = self.now[path] = entry
        self.last_ns[path] = time_ns

    def _observe(self, path: str, kind: Kind | None) -> _Entry | None:
        """The entry now at ``path``, learning its kind from a change that names it."""
        entry = self.now[path]
        if entry is not None and kind is not None:
            entry.kind = kind
        return entry

    def _apply(self, c: Change) -> None:
        if c.action == "moved" and c.from_path in (None, c.path):
            # A move without a distinct source says only "something changed at path".
            c = Change("updated" if c.from_path else "created", c.path, c.kind, c.time_ns,
                       existed_before=c.existed_before, rescan=c.rescan)
        if c.action == "created":
            self._touch(c.path, c.existed_before, c.time_ns)
            self.now[c.path] = _Entry(None, c.kind)
        elif c.action == "updated":
            self._touch(c.path, True, c.time_ns)
            entry = self._observe(c.path, c.kind)
            if entry is None:  # an update to what we believed absent: it is new content here
                entry = self.now[c.path] = _Entry(None, c.kind)
            entry.modified = True
        elif c.action == "deleted":
            self._touch(c.path, True, c.time_ns)
            self._observe(c.path, c.kind)
            self.now[c.path] = None
        elif c.action == "moved":
            assert c.from_path is not None
            self._touch(c.from_path, True, c.time_ns)
            self._touch(c.path, c.existed_before, c.time_ns)
            moving = self._observe(c.from_path, c.kind) or _Entry(None, c.kind)
            self.now[c.from_path] = None
            self.now[c.path] = moving

    def _event(
        self, action: Action, path: str, kind: Kind | None, from_path: str | None = None, existed: bool = False
    ) -> Change:
        return Change(action, path, kind, self.last_ns[path], from_path, existed, rescan=self.rescan)

    def net(self) -> list[Change]:
        # dest -> source for every start entry that ends at another path
        moves = {p: e.origin for p, e in self.now.items() if e is not None and e.origin not in (None, p)}
        fresh = {p for p, e in self.now.items() if e is not None and e.origin is None}
        fresh |= self._break_cycles(moves)
        moved_away = set(moves.values())
        out: list[Change] = []
        replaced: set[str] = set()  # paths whose start entry was destroyed and a new one of its kind is there
        for p, entry in self.start.items():
            if entry is None or p in moved_away or self.now[p] is entry or p in moves:
                continue
            new = self.now[p]
            # A fresh entry here, of the same kind: an update. Not for a directory: its entries went
            # with the old one, and their deletions are not always among the raw changes (moved away
            # through a name nobody lists, then deleted: mv a .h; mv .h b; rm -r b; mkdir a).
            if new is not None and new.kind != "dir" and _same_kind(entry.kind, new.kind):
                replaced.add(p)
            else:
                out.append(self._event("deleted", p, entry.kind, existed=True))
        for src, dest in self._move_order(moves):
            entry = self.now[dest]
            assert entry is not None
            had = self.start[dest] is not None and dest not in moved_away
            out.append(self._event("moved", dest, entry.kind, src, had))
        for p in self.now:
            entry = self.now[p]
            if entry is None:
                continue
            if p in replaced:
                out.append(self._event("updated", p, entry.kind, existed=True))
            elif p in fresh:
                out.append(self._event("created", p, entry.kind))
            elif entry.modified:
                out.append(self._event("updated", p, entry.kind, existed=True))
        return out

    @staticmethod
    def _break_cycles(moves: dict[str, str]) -> set[str]:
        """Entries that went round a cycle (a swap) cannot be replayed as moves alone: drop one move
        per cycle and report its destination as created. Returns those destinations."""
        broken: set[str] = set()
        seen: set[str] = set()
        for start in sorted(moves):
            path = start
            trail: list[str] = []
            while path in moves and path not in seen:
                seen.add(path)
                trail.append(path)
                path = moves[path]
            if path in trail:  # came back onto this walk: a cycle through `path`
                broken.add(path)
                del moves[path]
        return broken

    @staticmethod
    def _move_order(moves: dict[str, str]) -> list[tuple[str, str]]:
        """(source, dest) pairs so that a path is vacated before something moves onto it."""
        sources = set(moves.values())
        order: list[tuple[str, str]] = []
        for dest in moves:
            if dest in sources:
                continue  # not a chain end: reached by walking back from one
            while dest in moves:
                src = moves[dest]
                order.append((src, dest))
                dest = src
        return order


def _same_kind(before: Kind | None, after: Kind | None) -> bool:
    # An unknown kind counts as unchanged: "updated" is the less surprising answer.
    return before is None or after is None or before == after
