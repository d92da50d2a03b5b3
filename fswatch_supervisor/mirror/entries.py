"""The in-memory model of the watched trees: every known entry and the children of listed dirs.

An entry is ``path -> (kind, size, mtime_ns)`` packed into one int (about 80 bytes less per
entry than a tuple). A directory is *listed* when its children are known (it holds an OS watch
and was scanned); a directory entry whose parent is listed but which is not listed itself is on
the *pruned boundary*: seen, but nobody needed to descend into it. The boundary is kept sorted so
that the boundary below any root is found by bisection, without walking the tree.

Entries whose parent is not listed (a watched root, or a single watched file) are *tops*.
Children sets hold the same ``str`` objects as the entry keys, so a path is stored once.
"""

from __future__ import annotations

import bisect
import stat
from collections.abc import Iterable, Iterator
from typing import Final

from fswatch_supervisor.changes import Kind

KINDS: Final[tuple[Kind, ...]] = ("file", "dir", "symlink", "other")
_KIND_INDEX: Final[dict[str, int]] = {k: i for i, k in enumerate(KINDS)}
_SIZE_BITS: Final = 64
_SIZE_MASK: Final = (1 << _SIZE_BITS) - 1

Stat = tuple[Kind, int, int]
Record = tuple[str, str, int, int]
"""(path, kind, size, mtime_ns): what ``entries()`` yields and persistence stores."""


_KIND_OF_FORMAT: Final[dict[int, Kind]] = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}


def kind_of_mode(mode: int) -> Kind:
    return _KIND_OF_FORMAT.get(stat.S_IFMT(mode), "other")


def parent_of(path: str) -> str:
    return path.rpartition("/")[0] or "/"


def is_under(path: str, top: str) -> bool:
    """``path`` is ``top`` or below it."""
    return path == top or path.startswith(top + "/") or (top == "/" and path.startswith("/"))


def _pack(kind: Kind, size: int, mtime_ns: int) -> int:
    return (mtime_ns << (_SIZE_BITS + 2)) | (size << 2) | _KIND_INDEX[kind]


def _unpack(value: int) -> Stat:
    return KINDS[value & 3], (value >> 2) & _SIZE_MASK, value >> (_SIZE_BITS + 2)


class SortedPaths:
    """A sorted set of paths with a fast "everything below this directory" query."""

    __slots__ = ("_items", "_set")

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._set = set(items)
        self._items = sorted(self._set)

    def add(self, path: str) -> None:
        if path not in self._set:
            self._set.add(path)
            bisect.insort(self._items, path)

    def discard(self, path: str) -> None:
        if path in self._set:
            self._set.discard(path)
            del self._items[bisect.bisect_left(self._items, path)]

    def __contains__(self, path: object) -> bool:
        return path in self._set

    def __len__(self) -> int:
        return len(self._set)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def under(self, top: str, *, include_self: bool = False) -> list[str]:
        """Paths strictly below ``top`` (and ``top`` itself when asked and present)."""
        # '/' + 1 == '0': every "top/..." string sorts in [top + "/", top + "0").
        prefix = "/" if top == "/" else top + "/"
        lo = bisect.bisect_left(self._items, prefix)
        hi = bisect.bisect_left(self._items, prefix[:-1] + "0")
        found = self._items[lo:hi]
        if include_self and top in self._set:
            found.insert(0, top)
        return found


class Tree:
    """Known entries, listings of listed directories, and the pruned boundary."""

    __slots__ = ("_entries", "_children", "pruned")

    def __init__(self) -> None:
        self._entries: dict[str, int] = {}
        self._children: dict[str, set[str]] = {}
        self.pruned = SortedPaths()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def get(self, path: str) -> Stat | None:
        value = self._entries.get(path)
        return None if value is None else _unpack(value)

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

    def records(self, top: str) -> Iterator[Record]:
        """``(path, kind, size, mtime_ns)`` strictly below ``top``, sorted by path."""
        for path in sorted(self.walk(top)):
            kind, size, mtime_ns = _unpack(self._entries[path])
            yield path, kind, size, mtime_ns

    def all_records(self) -> Iterator[Record]:
        for path, value in self._entries.items():
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
