"""The watcher registry: every live watcher, the index of watch roots, and its persistence.

The root index maps each include root to its watchers, so finding the watchers a change may
concern costs one dict lookup per ancestor of its path, never a scan of every watcher.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.recordlog import RecordLog
from fswatch_supervisor.rules import RuleSet
from fswatch_supervisor.watchers import Watcher

log = get_logger(__name__)


def outermost(roots: list[str]) -> list[str]:
    """The roots not inside another root: rescanning those covers the rest exactly once."""
    ordered = sorted(set(roots))
    tops: list[str] = []
    for root in ordered:
        if not any(root == t or root.startswith(t.rstrip("/") + "/") for t in tops):
            tops.append(root)
    return tops


class Covering:
    """The watchers whose include roots are at or above a directory, and what routing asks of them:
    their coalescing windows, and per window their distinct rule sets with the ids having each.
    A hundred watchers over one tree usually have a few distinct rule sets, so a change is matched
    a few times, not a hundred."""

    __slots__ = ("watchers", "windows", "_groups")

    def __init__(self, watchers: tuple[Watcher, ...]) -> None:
        self.watchers = watchers
        self.windows = frozenset(w.coalesce_ms for w in watchers)
        self._groups: dict[int, list[tuple[RuleSet, tuple[str, ...]]]] = {}

    def groups(self, window: int) -> list[tuple[RuleSet, tuple[str, ...]]]:
        found = self._groups.get(window)
        if found is None:
            by_rules: dict[RuleSet, dict[str, None]] = {}
            for watcher in self.watchers:  # a watcher with nested roots is here once per root
                if watcher.coalesce_ms == window:
                    by_rules.setdefault(watcher.rules, {})[watcher.id] = None
            found = self._groups[window] = [(rules, tuple(ids)) for rules, ids in by_rules.items()]
        return found


class Registry:
    def __init__(self, log_path: Path, *, sync_each: bool = True) -> None:
        self._log = RecordLog(log_path, sync_each=sync_each)
        self._watchers: dict[str, Watcher] = {}
        self._by_root: dict[str, list[Watcher]] = {}
        self._file_root_parents: dict[str, int] = {}
        self._file_parents_of: dict[str, list[str]] = {}
        self._serial = 0
        self._covering_dirs: dict[str, Covering] = {}
        self._covering_shared: dict[tuple[str, ...], Covering] = {}
        """``covering()`` of directories, the hot lookup of routing; dropped whenever watchers change."""

    def open(self) -> list[Watcher]:
        """Replay the log; return the restored watchers in creation order."""
        for record in self._log.open():
            op = record.get("op")
            if op == "put":
                watcher = Watcher.from_record(record["watcher"])
                self._serial = max(self._serial, watcher.serial)
                self.add(watcher)
            elif op == "del":
                self._serial = max(self._serial, int(record.get("serial", 0)))
                if record["id"] in self._watchers:
                    self.remove(record["id"])
        self._compact_if_worth_it()
        return self.all()

    def close(self) -> None:
        self._log.close()

    def sync(self) -> None:
        self._log.sync()

    def detach_sync(self) -> int | None:
        """See ``RecordLog.detach_sync``: a descriptor to fdatasync off the loop, or None."""
        return self._log.detach_sync()

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    # -- membership -------------------------------------------------------------------------

    def add(self, watcher: Watcher) -> None:
        self._watchers[watcher.id] = watcher
        self._forget_covering()
        for root in watcher.roots:
            self._by_root.setdefault(root, []).append(watcher)
            if not os.path.isdir(root):
                # A single-file watcher needs its parent watched to see atomic saves.
                parent = os.path.dirname(root)
                self._file_root_parents[parent] = self._file_root_parents.get(parent, 0) + 1
                self._file_parents_of.setdefault(watcher.id, []).append(parent)

    def remove(self, watcher_id: str) -> Watcher:
        watcher = self._watchers.pop(watcher_id)
        self._forget_covering()
        for root in watcher.roots:
            bucket = self._by_root.get(root, [])
            if watcher in bucket:
                bucket.remove(watcher)
            if not bucket:
                self._by_root.pop(root, None)
        for parent in self._file_parents_of.pop(watcher_id, []):
            self._file_root_parents[parent] -= 1
            if self._file_root_parents[parent] <= 0:
                del self._file_root_parents[parent]
        return watcher

    def detach_root(self, root: str) -> None:
        """``root`` is gone (its ``root-deleted`` was routed): the watchers that had it no longer
        follow it, however long others keep the tree there watched or it comes back. Their rules
        and other roots stay (one at or above it still covers what it selects). A file root's
        parent stays counted: a directory that is gone holds no watch, and keeping it costs at
        most one watch if another watcher's crawl finds it again."""
        if self._by_root.pop(root, None) is not None:
            self._forget_covering()

    def follows(self, watcher: Watcher, root: str) -> bool:
        """Whether ``watcher`` still follows its ``root`` (not detached by a ``root-deleted``)."""
        return watcher in self._by_root.get(root, ())

    def persist_add(self, watcher: Watcher) -> None:
        self._log.append({"op": "put", "watcher": watcher.to_record()})

    def persist_remove(self, watcher: Watcher) -> None:
        self._log.append({"op": "del", "id": watcher.id, "serial": watcher.serial})
        self._compact_if_worth_it()

    def _compact_if_worth_it(self) -> None:
        if self._log.records > 2 * len(self._watchers) + 64:
            # The newest serial must survive compaction so ids are never reused.
            records: list[dict[str, Any]] = [{"op": "put", "watcher": w.to_record()} for w in self.all()]
            records.append({"op": "del", "id": "", "serial": self._serial})
            self._log.rewrite(records)

    # -- lookups ----------------------------------------------------------------------------

    def get(self, watcher_id: str) -> Watcher | None:
        return self._watchers.get(watcher_id)

    def all(self) -> list[Watcher]:
        return sorted(self._watchers.values(), key=lambda w: w.serial)

    def __len__(self) -> int:
        return len(self._watchers)

    def select(self, ids: Iterable[str] = (), tags: dict[str, str] | None = None) -> list[Watcher]:
        """Watchers whose id is any of ``ids`` (when given) and whose tags contain all of ``tags``."""
        wanted = set(ids)
        chosen = [self._watchers[i] for i in wanted if i in self._watchers] if wanted else self.all()
        if tags:
            chosen = [w for w in chosen if all(w.tags.get(k) == v for k, v in tags.items())]
        return sorted(chosen, key=lambda w: w.serial)

    def covering(self, path: str) -> tuple[Watcher, ...]:
        """Watchers having an include root at ``path`` or above it."""
        return self._covering(path).watchers

    def windows_covering(self, path: str) -> frozenset[int]:
        """The distinct ``coalesce_ms`` of :meth:`covering` (asked once per change: cached)."""
        return self._covering(path).windows

    def rule_groups(self, path: str, window: int) -> list[tuple[RuleSet, tuple[str, ...]]]:
        """The watchers of :meth:`covering` with this window, grouped by equal rule sets: routing
        decides once per group (cached)."""
        return self._covering(path).groups(window)

    def _covering(self, path: str) -> Covering:
        if path == "/":
            return Covering(tuple(self._by_root.get("/", ())))
        cut = path.rfind("/")
        above = self._covering_dir(path[:cut] or "/")
        here = self._by_root.get(path)
        return Covering(above.watchers + tuple(here)) if here else above

    def _covering_dir(self, directory: str) -> Covering:
        cached = self._covering_dirs.get(directory)
        if cached is None:
            if len(self._covering_dirs) > 200_000:
                self._forget_covering()
            # From the parent's answer (a crawl asks parents first): a directory that is nobody's
            # root shares its parent's answer, one dict lookup instead of a walk to "/".
            cut = directory.rfind("/")
            above = None if directory == "/" or cut < 0 else self._covering_dir(directory[:cut] or "/")
            here = self._by_root.get(directory)
            if above is not None and not here:
                cached = above
            else:
                watchers = (above.watchers if above is not None else ()) + tuple(here or ())
                # Directories share one answer per distinct watcher set (5,000 copies cost 1.5 MB).
                key = tuple(w.id for w in watchers)
                cached = self._covering_shared.get(key)
                if cached is None:
                    cached = self._covering_shared[key] = Covering(watchers)
            self._covering_dirs[directory] = cached
        return cached

    def _forget_covering(self) -> None:
        self._covering_dirs.clear()
        self._covering_shared.clear()

    def roots(self) -> list[str]:
        return list(self._by_root)

    def needs_dir(self, dir_path: str) -> bool:
        """Whether some watcher wants ``dir_path`` OS-watched (the mirror's oracle)."""
        if dir_path in self._file_root_parents:
            return True
        return any(w.rules.needs_dir(dir_path) for w in self.covering(dir_path))
