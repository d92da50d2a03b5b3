"""The mirror's shared state and the operations that keep its parts consistent.

``MirrorState`` ties the model (``Tree``), the OS watches (``WatchSet``) and the registered roots
together, so that the crawler, the event normaliser and the facade change them only through
operations that keep three invariants: a directory is listed iff it is held in the watch set; a
removed subtree releases every watch below it; a root whose path disappears is reported once
(``root-deleted``) and forgotten.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from fswatch_supervisor.backends.base import WatchBackend
from fswatch_supervisor.changes import Change, Kind
from fswatch_supervisor.mirror.entries import Tree
from fswatch_supervisor.mirror.paths import SortedPaths, is_under, parent_of
from fswatch_supervisor.mirror.watchset import WatchSet

NeedsDir = Callable[[str], bool]
Emit = Callable[[list[Change]], None]


@dataclass(slots=True)
class Root:
    kind: Kind
    """``dir`` (watched recursively) or ``file`` (only that entry, via its parent's watch)."""
    refs: int
    ident: tuple[int, int]
    """(st_dev, st_ino) when added: a directory recreated at the same path is not the root."""

    def still_at(self, path: str) -> bool:
        """Whether the directory this root was added for is still at ``path``."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == self.ident


class MirrorState:
    __slots__ = ("tree", "ws", "needs_dir", "emit", "roots", "_root_paths")

    def __init__(self, backend: WatchBackend, needs_dir: NeedsDir, emit: Emit) -> None:
        self.tree = Tree()
        self.ws = WatchSet(backend)
        self.needs_dir = needs_dir
        self.emit = emit
        self.roots: dict[str, Root] = {}
        self._root_paths = SortedPaths()

    def active_root(self, path: str) -> Root | None:
        root = self.roots.get(path)
        return root if root is not None and root.refs > 0 else None

    def register_root(self, path: str, kind: Kind, ident: tuple[int, int]) -> None:
        root = self.roots.get(path)
        if root is None or root.ident != ident or root.kind != kind:
            self.roots[path] = Root(kind, 1 if root is None else root.refs + 1, ident)
            self._root_paths.add(path)
        else:
            root.refs += 1

    def roots_under(self, path: str) -> list[str]:
        return self._root_paths.under(path, include_self=True)

    def vanish_roots(self, path: str, now: int, *, deleted: bool = False) -> list[Change]:
        """Roots at or below ``path`` are no longer there: one ``root-deleted`` each, then forget
        them. A watched *file* that is itself deleted or renamed is not a vanished root: its
        parent stays watched, so a rename over it (an atomic save) is seen as ``created``.
        ``deleted``: the directory at ``path`` is known deleted, whatever is at its path now."""
        changes: list[Change] = []
        for path_ in self._root_paths.under(path, include_self=True):
            root = self.roots[path_]
            if root.kind == "file" and path_ == path:
                continue
            if root.kind == "dir" and not (deleted and path_ == path) and root.still_at(path_):
                # Added after the change now applied was made (`mv a b; mkdir a`, then a watcher on
                # `a`; or on `b` while that rename was held): its directory is the one there now.
                continue
            changes.append(Change("root-deleted", path_, root.kind, now, existed_before=True))
            self.forget_root(path_)
        return changes

    def roots_gone_unseen(self, now: int) -> list[Change]:
        """Vanish the roots whose directory left their path with no event to say so: inotify tells
        a watch nothing when an ancestor of its directory is renamed, so a root whose parent
        nobody lists (a watcher on ``a/b`` alone, then ``mv a c``) would go on reporting ``c/b``'s
        changes as ``a/b``'s. One ``lstat`` per such root. A watched file's parent is checked by
        name only (a directory made again at that path is taken for it)."""
        changes: list[Change] = []
        for path, root in list(self.roots.items()):
            if root.refs <= 0 or path not in self.roots:  # forgotten meanwhile, below a vanished one
                continue
            parent = parent_of(path)
            if self.ws.is_listed(parent):
                continue  # its parent's events say what happens to it
            if root.kind == "dir" and not root.still_at(path):
                changes += self.vanish_roots(path, now)
                changes += self.drop_subtree(path, now, report=False)
            elif root.kind == "file" and not os.path.isdir(parent):
                changes += self.vanish_roots(parent, now)
        return changes

    def roots_replaced(self, paths: list[str], now: int) -> list[Change]:
        """Vanish the directory roots among ``paths`` whose directory is no longer the one they
        were added for; their subtrees stay, for the rescan that re-lists them."""
        changes: list[Change] = []
        for path in paths:
            root = self.roots.get(path)
            if root is not None and root.kind == "dir" and not root.still_at(path):
                changes += self.vanish_roots(path, now)
        return changes

    def forget_root(self, path: str) -> None:
        root = self.roots.pop(path, None)
        self._root_paths.discard(path)
        if root is not None and root.kind == "file":
            self.ws.drop_file(path)
            if not self.tree.is_listed(parent_of(path)):
                self.tree.remove_one(path)

    def drop_subtree(self, path: str, now: int, *, report: bool, rescan: bool = False) -> list[Change]:
        """``path`` is gone: forget it and everything below, release their watches, and return
        ``root-deleted`` for roots below plus (when ``report``) ``deleted``, children first."""
        changes = self.vanish_roots(path, now)
        for p, kind, listed in self.tree.remove(path):
            if listed:
                self.ws.drop(p)
            if report:
                changes.append(Change("deleted", p, kind, now, existed_before=True, rescan=rescan))
        return changes

    def release(self, scope: str | None = None) -> None:
        """Drop watches and entries that no active root needs any more (at or below ``scope``).

        A listed directory stays listed when it is an active root, or when its parent stays
        listed and ``needs_dir`` approves it. Unlisting goes children first, so a kept island
        (a root inside a tree that is released) survives as a top entry.
        """
        listed = sorted(self.tree.listed_under(scope) if scope is not None else self.ws.listed())
        candidates = set(listed)
        keep: set[str] = set()
        for d in listed:
            root = self.active_root(d)
            if root is not None and root.kind == "dir":
                keep.add(d)
                continue
            parent = parent_of(d)
            parent_kept = parent in keep if parent in candidates else self.tree.is_listed(parent)
            if parent_kept and self.needs_dir(d):
                keep.add(d)
        for d in reversed(listed):
            if d not in keep:
                self._unlist(d, keep)
        dead = [p for p, root in self.roots.items()
                if root.refs <= 0 and (scope is None or is_under(p, scope))]
        for path in dead:
            self.forget_root(path)

    def _unlist(self, d: str, keep: set[str]) -> None:
        for child in self.tree.forget_listing(d):
            if child in keep or self.active_root(child) is not None:
                continue
            self.tree.remove_one(child)
        self.ws.drop(d)
        if not self.tree.is_listed(parent_of(d)) and self.active_root(d) is None:
            self.tree.remove_one(d)
