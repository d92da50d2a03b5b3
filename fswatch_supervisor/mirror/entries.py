"""The in-memory model of the watched trees: every known entry and the children of listed dirs.

An entry is ``path -> (kind, size, mtime_ns)`` packed into one int (about 80 bytes less per
entry than a tuple). A directory is *listed* when its children are known (it holds an OS watch
and was scanned); a directory entry whose parent is listed but which is not listed itself is on
the *pruned boundary*: seen, but nobody needed to descend into it. The boundary is kept sorted so
that the boundary below any root is found by bisection, without walking the tree.

Entries whose parent is not listed (a watched root, or a single watched file) are *tops*.
Children sets hold the same ``str`` objects as the entry keys, so a path is stored once.

A crawl learns an entry's kind from the directory listing alone (``d_type``) and adds it
*unstated* (``adopt``): its size and mtime are read later, by ``fill_stats`` (a background pass
after the crawl) or when something asks for them first (``get``, ``records``), so the model's
answers stay exact while a new watcher is ready after one ``readdir`` per directory. A write
between the listing and that late ``lstat`` still arrives as an event; only a rescan after an
overflow, which diffs against the model, must not trust late values: ``late_since`` says since
when one may hide a change whose event was dropped.
"""

from __future__ import annotations

import bisect
import os
import stat
import time
from collections.abc import Callable, Iterator
from typing import Final

from fswatch_supervisor.changes import Kind
from fswatch_supervisor.mirror.paths import SortedPaths, parent_of, tree_order

KINDS: Final[tuple[Kind, ...]] = ("file", "dir", "symlink", "other")
_KIND_INDEX: Final[dict[str, int]] = {k: i for i, k in enumerate(KINDS)}
_FILE: Final = _KIND_INDEX["file"]
_DIR: Final = _KIND_INDEX["dir"]
_LINK: Final = _KIND_INDEX["symlink"]
_OPEN: Final = float("inf")
_SIZE_BITS: Final = 64
_SIZE_MASK: Final = (1 << _SIZE_BITS) - 1
_UNSTATED: Final = 4
"""Bit 2 of a packed entry: size and mtime (both 0) are not read yet."""
_LATE: Final = 8
"""Bit 3: size and mtime were read after the listing, not by a scan or after an event. Size
starts at bit 4."""
_FLAGS: Final = _UNSTATED | _LATE
LATE_WINDOW_S: Final = 10.0
"""How long after the last late ``lstat`` an overflow rescan still distrusts late values: events
dropped before that ``lstat`` are announced by an overflow the loop reads well within it."""
LATE_MARGIN_NS: Final = 20_000_000
"""File-system timestamps come from a coarse clock (up to a tick, ~4-10 ms, behind)."""
UNREAD_SIZE: Final = -1
"""The size of a persisted record whose size and mtime were not read: its mtime is then a time at
or before its listing, and a later mtime means a change (``scanner.Baseline``)."""

Stat = tuple[Kind, int, int]
Record = tuple[str, str, int, int]
"""(path, kind, size, mtime_ns): what ``entries()`` yields and persistence stores."""


_KIND_OF_FORMAT: Final[dict[int, Kind]] = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}


def kind_of_mode(mode: int) -> Kind:
    return _KIND_OF_FORMAT.get(stat.S_IFMT(mode), "other")


def _pack(kind: Kind, size: int, mtime_ns: int) -> int:
    return (mtime_ns << (_SIZE_BITS + 4)) | (size << 4) | _KIND_INDEX[kind]


def _unpack(value: int) -> Stat:
    return KINDS[value & 3], (value >> 4) & _SIZE_MASK, value >> (_SIZE_BITS + 4)


def _lstat(path: str, kind_index: int) -> int | None:
    """The packed entry for ``path`` read now; ``None`` while it is gone or no longer of that kind
    (the events saying so are still to come and will fix the model)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return kind_index  # unreadable (no search permission): known by name and kind only
    kind = kind_of_mode(st.st_mode)
    if _KIND_INDEX[kind] != kind_index:
        return None
    return _pack(kind, st.st_size, st.st_mtime_ns) | _LATE


class Listing:
    """A directory's entries by kind, as its listing named them (``d_type``, no ``lstat``)."""

    __slots__ = ("dirs", "files", "links")

    def __init__(self) -> None:
        self.dirs: list[str] = []
        self.files: list[str] = []
        self.links: list[str] = []

    def __len__(self) -> int:
        return len(self.dirs) + len(self.files) + len(self.links)

    def paths(self) -> list[str]:
        return self.dirs + self.files + self.links

    def groups(self) -> tuple[tuple[list[str], Kind], ...]:
        return (self.dirs, "dir"), (self.files, "file"), (self.links, "symlink")

    def without(self, paths: set[str]) -> Listing:
        rest = Listing()
        rest.dirs = [p for p in self.dirs if p not in paths]
        rest.files = [p for p in self.files if p not in paths]
        rest.links = [p for p in self.links if p not in paths]
        return rest


class Tree:
    """Known entries, listings of listed directories, and the pruned boundary."""

    __slots__ = ("_entries", "_children", "pruned", "_unstated", "_late_from_ns", "_late_until", "clock",
                 "late_window_s")

    def __init__(self) -> None:
        self._entries: dict[str, int] = {}
        self._children: dict[str, set[str]] = {}
        self.pruned = SortedPaths()
        self._unstated: list[str] = []
        """Paths added unstated, for ``fill_stats`` (an entry moved since is queued again under its
        new name; one removed or stated since is skipped)."""
        self._late_from_ns = 0
        self._late_until = 0.0
        # Attributes, not module globals, so that a test can move time on (a compiled module
        # binds its globals and imports for good).
        self.clock: Callable[[], float] = time.monotonic
        self.late_window_s = LATE_WINDOW_S

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def get(self, path: str) -> Stat | None:
        value = self._entries.get(path)
        if value is not None and value & _UNSTATED:
            value = self._state(path, value)
        return None if value is None else _unpack(value)

    def known(self, path: str) -> Stat | None:
        """What the model holds for ``path`` without reading anything: ``None`` when it has no
        entry, or its size and mtime were not read yet, or were read late (by path, after the
        listing: a rename not applied yet may have put another file there, ``mv x t; mv y x``)."""
        value = self._entries.get(path)
        return None if value is None or value & _FLAGS else _unpack(value)

    def kind(self, path: str) -> Kind | None:
        value = self._entries.get(path)
        return None if value is None else KINDS[value & 3]

    def is_listed(self, path: str) -> bool:
        return path in self._children

    def listed_count(self) -> int:
        return len(self._children)

    def children(self, path: str) -> frozenset[str]:
        return frozenset(self._children.get(path, ()))

    def put(self, path: str, kind: Kind, size: int, mtime_ns: int) -> None:
        """Add or update an entry. Replacing a directory by another kind needs ``remove`` first."""
        self._entries[path] = _pack(kind, size, mtime_ns)
        siblings = self._children.get(parent_of(path))
        if siblings is not None:
            siblings.add(path)
        if kind == "dir" and siblings is not None and path not in self._children:
            self.pruned.add(path)

    def adopt(self, parent: str, listing: Listing, listed_ns: int) -> list[str]:
        """List ``parent`` (listed at ``listed_ns``) with the entries of ``listing``, unstated.

        When some are known already (watched roots inside), nothing is added: their paths are
        returned, for the caller to reconcile them and ``adopt`` the rest."""
        entries, dirs, files, links = self._entries, listing.dirs, listing.files, listing.links
        for group in (dirs, files, links):
            for path in group:
                if path in entries:
                    return [p for p in listing.paths() if p in entries]
        # Plain loops, not ``dict.update``/``isdisjoint``: compiled, they are direct dict and set
        # operations without a temporary dict per group (1.8 -> 1.0 µs per directory of a crawl).
        self.mark_listed(parent)
        kids, queue, listed = self._children[parent], self._unstated, self._children
        for group, value in ((dirs, _DIR | _UNSTATED), (files, _FILE | _UNSTATED), (links, _LINK | _UNSTATED)):
            for path in group:
                entries[path] = value
                kids.add(path)
                queue.append(path)
        for path in dirs:
            if path not in listed:
                self.pruned.add(path)
        if self._late_until != _OPEN and self.late_since() is None:
            self._late_from_ns = listed_ns
        self._late_until = _OPEN
        return []

    def fill_stats(self, budget: int) -> bool:
        """``lstat`` up to ``budget`` unstated entries; whether some are left."""
        queue, entries = self._unstated, self._entries
        take = queue[-budget:]
        del queue[-budget:]
        for path in take:
            value = entries.get(path)
            if value is not None and value & _UNSTATED:
                self._state(path, value)
        if take and not queue:
            self._late_until = self.clock() + self.late_window_s
        return bool(queue)

    def unstated(self) -> int:
        """Entries queued for ``fill_stats`` (an upper bound: some may have been stated since)."""
        return len(self._unstated)

    def late_since(self) -> int | None:
        """While entries are unstated, and for ``LATE_WINDOW_S`` after the last was stated: the
        wall-clock ns from which the mtime of an entry read late (``is_late``) may be a change
        made after its listing, whose event an overflow may have dropped. ``None`` otherwise."""
        if self.clock() >= self._late_until:
            return None
        return self._late_from_ns - LATE_MARGIN_NS

    def is_late(self, path: str) -> bool:
        """Whether ``path``'s size and mtime were (or are still to be) read after its listing."""
        return bool(self._entries.get(path, 0) & _FLAGS)

    def _state(self, path: str, value: int) -> int:
        found = _lstat(path, value & 3)
        if found is None:
            return value
        self._entries[path] = found
        return found

    def refresh(self, path: str, kind: Kind, size: int, mtime_ns: int) -> None:
        """``put`` for a known entry that stays what it was as far as listings go (a non-directory,
        or a directory whose listing is unchanged)."""
        self._entries[path] = _pack(kind, size, mtime_ns)

    def mark_listed(self, path: str) -> None:
        """``path`` is (about to be) scanned and watched: its children will be known."""
        self.pruned.discard(path)
        self._children.setdefault(path, set())

    def forget_listing(self, path: str) -> list[str]:
        """Stop listing ``path``; return its children, which stay as (top) entries for the caller
        to keep or remove. ``path`` rejoins the pruned boundary when its parent is listed."""
        children = self._children.pop(path, set())
        for child in children:
            self.pruned.discard(child)
        if path in self._entries and self.kind(path) == "dir" and parent_of(path) in self._children:
            self.pruned.add(path)
        return list(children)

    def remove_one(self, path: str) -> None:
        """Remove a single entry that is not listed (or whose listing was forgotten)."""
        self._entries.pop(path, None)
        self.pruned.discard(path)
        siblings = self._children.get(parent_of(path))
        if siblings is not None:
            siblings.discard(path)

    def remove(self, path: str) -> list[tuple[str, Kind, bool]]:
        """Remove ``path`` and everything below it; return ``(path, kind, was_listed)``,
        deepest first, so deletions can be reported children before parents."""
        order = self._preorder(path)
        removed: list[tuple[str, Kind, bool]] = []
        for p in reversed(order):
            value = self._entries.pop(p, None)
            listed = self._children.pop(p, None) is not None
            self.pruned.discard(p)
            if value is not None:
                removed.append((p, KINDS[value & 3], listed))
        siblings = self._children.get(parent_of(path))
        if siblings is not None:
            siblings.discard(path)
        return removed

    def move(self, old: str, new: str) -> list[tuple[str, str]]:
        """Rename the subtree ``old`` to ``new`` (which must not exist); return the
        ``(old, new)`` pairs of listed directories, whose watches must follow."""
        order = self._preorder(old)
        cut = len(old)
        listed: list[tuple[str, str]] = []
        for p in order:
            q = new + p[cut:]
            value = self._entries.pop(p, None)
            if value is not None:
                self._entries[q] = value
                if value & _UNSTATED:
                    self._unstated.append(q)
            kids = self._children.pop(p, None)
            if kids is not None:
                self._children[q] = {new + c[cut:] for c in kids}
                listed.append((p, q))
        for p in self.pruned.under(old, include_self=True):
            self.pruned.discard(p)
            self.pruned.add(new + p[cut:])
        old_siblings = self._children.get(parent_of(old))
        if old_siblings is not None:
            old_siblings.discard(old)
        new_siblings = self._children.get(parent_of(new))
        if new_siblings is not None and new in self._entries:
            new_siblings.add(new)
            if self.kind(new) == "dir" and new not in self._children:
                self.pruned.add(new)
        else:
            self.pruned.discard(new)
        return listed

    def walk(self, top: str) -> list[str]:
        """Every known path strictly below ``top``, in no particular order."""
        return self._preorder(top)[1:]

    def listed_under(self, top: str) -> list[str]:
        """Listed directories at or below ``top``."""
        return [p for p in self._preorder(top) if p in self._children]

    def records(self, top: str, after: str = "") -> Iterator[Record]:
        """``(path, kind, size, mtime_ns)`` strictly below ``top`` in *tree order* (a directory, then
        what is below it, siblings by name; ``tree_order`` compares two paths so), starting just
        after the path ``after`` ("" for the start). For paging: a page costs the entries it returns
        plus one sort of the siblings on the way down to ``after``, not a walk and sort of the tree."""
        if after:
            prefix = top.rstrip("/") + "/"
            if after.startswith(prefix):
                yield from self._sorted_walk(top, after[len(prefix):].split("/"))
                return
            if tree_order(after) > tree_order(top):
                return  # after every entry below top
        yield from self._sorted_walk(top, None)

    def _sorted_walk(self, directory: str, resume: list[str] | None) -> Iterator[Record]:
        kids = sorted(self._children.get(directory, ()))
        start = 0
        if resume:
            # Skip to the path being resumed from (gone since? then to where it was): the entries
            # before it were returned already, and so were it and the part of its subtree before
            # the rest of ``resume``.
            target = directory.rstrip("/") + "/" + resume[0]
            start = bisect.bisect_left(kids, target)
            if start < len(kids) and kids[start] == target:
                yield from self._sorted_walk(target, resume[1:] or None)
                start += 1
        for path in kids[start:]:
            value = self._entries[path]
            kind, size, mtime_ns = _unpack(self._state(path, value) if value & _UNSTATED else value)
            yield path, kind, size, mtime_ns
            if path in self._children:
                yield from self._sorted_walk(path, None)

    def all_records(self) -> Iterator[Record]:
        """Every entry, for persistence: one still unstated is ``UNREAD_SIZE`` with, as mtime, a time
        at or before its listing (reading 100,000 sizes here would stall the loop for a second)."""
        unread_mtime = self._late_from_ns - LATE_MARGIN_NS
        for path, value in self._entries.items():
            if value & _UNSTATED:
                yield path, KINDS[value & 3], UNREAD_SIZE, unread_mtime
            else:
                kind, size, mtime_ns = _unpack(value)
                yield path, kind, size, mtime_ns

    def record(self, path: str) -> Record | None:
        found = self.get(path)
        return None if found is None else (path, *found)

    def _preorder(self, top: str) -> list[str]:
        order: list[str] = []
        stack = [top]
        while stack:
            p = stack.pop()
            order.append(p)
            kids = self._children.get(p)
            if kids:
                stack.extend(kids)
        return order
