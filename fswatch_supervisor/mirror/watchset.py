"""Which directories hold an OS watch, and why.

A directory is watched for one of two reasons: it is *listed* (the mirror knows its children and
follows them), or it is the parent of a single watched file (only that entry is followed, so an
atomic save, a rename over the file, is seen). The OS watch is taken when the first reason appears
and released when the last one goes, so overlapping watchers share one watch per directory.
"""

from __future__ import annotations

from fswatch_supervisor.backends.base import WatchBackend
from fswatch_supervisor.mirror.paths import is_under, parent_of


class WatchSet:
    __slots__ = ("backend", "_listed", "_file_parents")

    def __init__(self, backend: WatchBackend) -> None:
        self.backend = backend
        self._listed: set[str] = set()
        self._file_parents: dict[str, set[str]] = {}

    def hold(self, path: str, *, rekey: bool = True) -> None:
        """Watch ``path`` because it is listed; raises the backend's ``WatchError`` subclasses
        (``WatchedElsewhere`` only without ``rekey``: see ``WatchBackend.add_dir``)."""
        if path in self._listed:
            return
        if path not in self._file_parents:
            self.backend.add_dir(path, rekey=rekey)
        self._listed.add(path)

    def recheck(self, path: str) -> None:
        """The listed ``path`` is rescanned after lost events: its watch must be this directory's."""
        self.backend.recheck_dir(path)

    def drop(self, path: str) -> None:
        if path not in self._listed:
            return
        self._listed.discard(path)
        if path not in self._file_parents:
            self.backend.remove_dir(path)

    def hold_file(self, path: str) -> None:
        """Watch the parent of the single file ``path``."""
        parent = parent_of(path)
        if parent not in self._listed and parent not in self._file_parents:
            self.backend.add_dir(parent)
        self._file_parents.setdefault(parent, set()).add(path)

    def drop_file(self, path: str) -> None:
        parent = parent_of(path)
        files = self._file_parents.get(parent)
        if files is None or path not in files:
            return
        files.discard(path)
        if not files:
            del self._file_parents[parent]
            if parent not in self._listed:
                self.backend.remove_dir(parent)

    def is_listed(self, path: str) -> bool:
        return path in self._listed

    def listed(self) -> list[str]:
        return list(self._listed)

    def files_in(self, parent: str) -> list[str]:
        return list(self._file_parents.get(parent, ()))

    def covers(self, path: str) -> bool:
        """Whether events about ``path`` matter: its directory is listed, or it is a watched file."""
        parent = parent_of(path)
        return parent in self._listed or path in self._file_parents.get(parent, ())

    def is_watched(self, path: str) -> bool:
        return path in self._listed or path in self._file_parents

    def count(self) -> int:
        """Distinct directories that need a watch (equals the backend's count for inotify)."""
        return len(self._listed) + sum(1 for p in self._file_parents if p not in self._listed)

    def move(self, old: str, new: str, listed: list[tuple[str, str]]) -> None:
        """The subtree ``old`` was renamed to ``new``: re-key every reason below it, keep the watches.
        ``listed`` holds the ``(old, new)`` listed directories (from ``Tree.move``)."""
        cut = len(old)
        watched = [(before, after) for before, after in listed if before in self._listed]
        for before, after in watched:
            self._listed.discard(before)
            self._listed.add(after)
        for parent in [p for p in self._file_parents if is_under(p, old)]:
            files = self._file_parents.pop(parent)
            self._file_parents[new + parent[cut:]] = {new + f[cut:] for f in files}
            if new + parent[cut:] not in self._listed:  # a listed one is in ``watched`` already
                watched.append((parent, new + parent[cut:]))
        self.backend.moved_dir(old, new, watched)
