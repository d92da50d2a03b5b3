"""Raw OS events (already paired into moves) → path-level ``Change`` objects.

Rules the lead's coalescer and router rely on:
- every change carries a kind: from ``lstat`` when the entry exists, else the kind the model knew
  (symlinks are themselves, never followed);
- the model de-duplicates: an event for something a scan already found is not news, and
  repeated ``updated`` for one path within one batch is reported once;
- a move inside the followed set is one ``moved``; out of it, ``deleted`` (with everything the
  model knew below it); into it, ``created`` for the entry and, by a crawl, for its contents;
- a watched root that disappears is ``root-deleted`` (a single watched *file* that is deleted or
  renamed is ``deleted``: its directory stays watched so it can come back, e.g. atomic saves);
- the supervisor's sync cookies (``.fswatch-cookie-*``) go to ``on_cookie`` only, after every
  change that preceded them in the stream.
"""

from __future__ import annotations

import os
import time
from typing import Protocol

from fswatch_supervisor.backends.base import RawEvent
from fswatch_supervisor.changes import Change, Kind
from fswatch_supervisor.mirror.entries import parent_of
from fswatch_supervisor.mirror.pairing import Move, Op
from fswatch_supervisor.mirror.scanner import is_cookie, stat_path
from fswatch_supervisor.mirror.state import MirrorState


class Host(Protocol):
    """What the normaliser needs from the facade."""

    def request_crawl(self, path: str) -> None: ...
    def cookie(self, path: str) -> None: ...
    def overflow(self) -> None: ...


class Normaliser:
    def __init__(self, state: MirrorState, host: Host) -> None:
        self._s = state
        self._host = host
        self._out: list[Change] = []
        self._fresh: set[str] = set()
        """Paths with a ``created``/``updated`` already in this batch and nothing since."""
        self._restat: set[str] = set()
        """Fresh paths written again in this batch: their size and mtime are read once, at its end."""
        self._now = 0

    def apply(self, ops: list[Op]) -> None:
        self._now = time.time_ns()
        self._fresh.clear()
        try:
            for op in ops:
                if isinstance(op, Move):
                    self._move(op.src, op.dst)
                else:
                    self._event(op)
            self._restat_written()
        finally:
            self._restat.clear()
            self._flush()

    def _restat_written(self) -> None:
        tree = self._s.tree
        for path in self._restat:
            old = tree.get(path)
            item = stat_path(path) if old is not None else None
            if item is not None and item[1] == old[0]:  # type: ignore[index]
                tree.put(path, item[1], item[2], item[3])

    def _flush(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self._s.emit(out)

    def _event(self, ev: RawEvent) -> None:
        action, path = ev.action, ev.path
        if action == "overflow":
            self._flush()
            self._host.overflow()
        elif action == "dir_gone":
            self._dir_gone(path)
        elif is_cookie(path):
            if action in ("created", "moved_to") and self._s.ws.is_watched(parent_of(path)):
                self._flush()
                self._host.cookie(path)
        elif not self._s.ws.covers(path):
            return
        elif action in ("created", "moved_to"):
            self._appear(path, ev.is_dir, replacing=action == "moved_to")
        elif action in ("modified", "attrib"):
            self._touch(path)
        else:
            self._vanish(path)

    def _appear(self, path: str, is_dir: bool, *, replacing: bool) -> None:
        s, tree = self._s, self._s.tree
        old = tree.get(path)
        item = stat_path(path)
        if item is None:
            if old is not None:
                return  # already gone again: its deletion event follows
            kind: Kind = "dir" if is_dir else "file"
            size, mtime_ns = 0, 0
        else:
            _, kind, size, mtime_ns = item
        if old is not None and old[0] == kind and not replacing:
            return  # a scan found it first
        if old is not None and old[0] == "dir":
            self._out += s.drop_subtree(path, self._now, report=False)
        tree.put(path, kind, size, mtime_ns)
        self._out.append(Change("created", path, kind, self._now, existed_before=old is not None))
        self._fresh.add(path)
        if kind == "dir" and s.ws.is_listed(parent_of(path)) and s.needs_dir(path):
            self._host.request_crawl(path)

    def _touch(self, path: str) -> None:
        if path in self._fresh:  # already reported in this batch: only the model's size/mtime lag
            self._restat.add(path)
            return
        item = stat_path(path)
        if item is None:
            return
        _, kind, size, mtime_ns = item
        old = self._s.tree.get(path)
        if old is None or old[0] != kind:
            self._appear(path, kind == "dir", replacing=True)
            return
        self._s.tree.put(path, kind, size, mtime_ns)
        if path not in self._fresh:
            self._out.append(Change("updated", path, kind, self._now, existed_before=True))
            self._fresh.add(path)

    def _vanish(self, path: str) -> None:
        if path in self._s.tree:
            self._out += self._s.drop_subtree(path, self._now, report=True)
        self._fresh.discard(path)

    def _move(self, src_ev: RawEvent, dst_ev: RawEvent) -> None:
        s, tree = self._s, self._s.tree
        src, dst = src_ev.path, dst_ev.path
        if is_cookie(dst) or is_cookie(src):
            if s.ws.covers(src) and not is_cookie(src):
                self._vanish(src)
            self._event(RawEvent(dst, "moved_to", dst_ev.is_dir))
            return
        src_known = s.ws.covers(src) and src in tree
        if not s.ws.covers(dst):
            if src_known:
                if s.ws.is_watched(parent_of(dst)):
                    # The backend saw both halves and re-keyed the watches to ``dst``; they are
                    # released under their old names below, so give the names back first.
                    s.ws.backend.moved_dir(dst, src)
                self._vanish(src)
            return
        if not src_known:
            self._appear(dst, dst_ev.is_dir, replacing=True)
            return
        kind = tree.kind(src)
        self._out += s.vanish_roots(src, self._now)
        existed = dst in tree
        if existed:
            self._out += s.drop_subtree(dst, self._now, report=False)
        listed = tree.move(src, dst)
        if kind == "dir":  # only directories hold watches; re-keying them costs O(watches)
            s.ws.move(src, dst, listed)
        self._out.append(Change("moved", dst, kind, self._now, from_path=src, existed_before=existed))
        self._fresh.discard(src)
        self._fresh.discard(dst)
        if kind == "dir":
            needed = s.ws.is_listed(parent_of(dst)) and s.needs_dir(dst)
            if tree.is_listed(dst) and not needed:
                s.release(scope=dst)
            elif needed and not tree.is_listed(dst):
                self._host.request_crawl(dst)

    def _dir_gone(self, path: str) -> None:
        s = self._s
        root = s.roots.get(path)
        if root is not None and root.kind == "dir":
            try:
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == root.ident:
                    return
            except OSError:
                pass
            self._out += s.vanish_roots(path, self._now)
            if not s.ws.is_listed(parent_of(path)):
                self._out += s.drop_subtree(path, self._now, report=False)
        elif s.ws.files_in(path) and not s.ws.is_listed(path):
            self._out += s.vanish_roots(path, self._now)
