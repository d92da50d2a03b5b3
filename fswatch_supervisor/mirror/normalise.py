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

Every path a batch touches is ``lstat``-ed at most once, at the batch's end (or before a change
leaves the normaliser mid-batch): a file is usually created and written in one batch, and one
``lstat`` then gives the kind of its ``created`` and the model's size and mtime. Until then a new
non-directory is assumed to be a ``file``. When the entry is gone by then, the guess stays and
the path is remembered as *guessed*, so that a later rename of it ``lstat``s the target instead of
trusting the model (a symlink created and renamed at once is still a symlink), and a directory move
that carries it has it looked at again at the batch's end (a kind that differs is reported again,
as a replacement).
"""

from __future__ import annotations

import time
from typing import Final, Protocol

from fswatch_supervisor.backends.rawevent import RawEvent
from fswatch_supervisor.changes import Change, Kind
from fswatch_supervisor.mirror.pairing import Move, Op
from fswatch_supervisor.mirror.paths import parent_of
from fswatch_supervisor.mirror.scanner import is_cookie, stat_path
from fswatch_supervisor.mirror.state import MirrorState


class Host(Protocol):
    """What the normaliser needs from the facade."""

    def request_crawl(self, path: str) -> None: ...
    def cookie(self, path: str) -> None: ...
    def overflow(self) -> None: ...


GUESSED_MAX: Final = 4096
"""Guessed paths remembered across batches; old ones are forgotten first (only a rename that
arrives after that many other guesses would trust the guess)."""


class Normaliser:
    def __init__(self, state: MirrorState, host: Host) -> None:
        self._s = state
        self._host = host
        self._out: list[Change] = []
        self._fresh: set[str] = set()
        """Paths with a ``created``/``updated`` already in this batch and nothing since."""
        self._restat: set[str] = set()
        """Paths whose model entry lags behind a write of this batch: ``lstat``-ed once, at its end."""
        self._unsure: dict[str, list[Change]] = {}
        """New non-directories of this batch (assumed ``file``) and the changes that name the entry
        now at that path: the ``lstat`` at the end gives them their real kind."""
        self._guessed: dict[str, None] = {}
        """Paths whose model kind is a guess: the entry was gone before it could be ``lstat``-ed."""
        self._recheck: set[str] = set()
        """Guessed paths a directory move of this batch carried: the entry may be there now."""
        self._arrived: set[str] = set()
        """Destinations of this batch's moves of non-directories, ``lstat``-ed at its end: the kernel
        drops a ``moved_to`` equal to the event just before it but for the cookie (``mv x d;
        mv /unwatched/y d``: the second is lost), so the entry there may not be the one moved."""
        self._now = 0

    def apply(self, ops: list[Op]) -> None:
        self._now = time.time_ns()
        try:
            for op in ops:
                if isinstance(op, Move):
                    self._move(op.src, op.dst)
                else:
                    self._event(op)
        finally:
            if self._recheck:
                self._recheck_guesses()
            self._flush()
            self._fresh.clear()  # now, not at the next batch: a burst's set would stay until then

    def _flush(self) -> None:
        self._settle()
        if self._out:
            out, self._out = self._out, []
            self._s.emit(out)

    def _settle(self) -> None:
        """``lstat`` each path of ``_restat``, ``_unsure`` and ``_arrived`` once; fix the model and
        the kinds."""
        if not self._restat and not self._unsure and not self._arrived:
            return
        tree = self._s.tree
        unsure, self._unsure = self._unsure, {}
        restat, self._restat = self._restat, set()
        arrived, self._arrived = self._arrived, set()
        # Moved here with the model's size and mtime still current (no write to it this batch):
        # a rename keeps both, so a difference is an entry renamed over it whose event is lost.
        carried = arrived - restat
        restat.update(unsure)
        restat |= arrived
        replaced: list[str] = []
        rewritten: list[tuple[str, Kind]] = []
        for path in restat:
            known = tree.kind(path)
            if known is None:
                continue
            item = stat_path(path)
            changes = unsure.get(path)
            if item is None or item[1] == "dir" or (changes is None and item[1] != known):
                # Gone or replaced: the events saying so are still to come; keep what the model has.
                # But not for a moved entry whose replacement's event the kernel may have dropped.
                if changes is not None:
                    self._guess(path)
                elif item is not None and item[1] != "dir" and known != "dir" and path in arrived:
                    replaced.append(path)
                continue
            _, kind, size, mtime_ns = item
            if changes is None and path in carried and kind != "dir":
                before = tree.known(path)
                if before is not None and (before[1], before[2]) != (size, mtime_ns):
                    rewritten.append((path, kind))
            tree.refresh(path, kind, size, mtime_ns)
            if changes is not None:
                for change in changes:
                    change.kind = kind
                self._guessed.pop(path, None)
        for path in replaced:  # after the loop: ``_appear`` may add to what it took
            self._appear(path, False, replacing=True)
        for path, kind in rewritten:  # reported once: a write read later in this batch adds nothing
            self._out.append(Change("updated", path, kind, self._now, existed_before=True))
            self._fresh.add(path)

    def _guess(self, path: str) -> None:
        self._guessed[path] = None
        if len(self._guessed) > GUESSED_MAX:
            del self._guessed[next(iter(self._guessed))]

    def _recheck_guesses(self) -> None:
        """``lstat`` the guessed entries that directory moves carried (a directory moved leaves at
        once, so one created just before it was looked for, mid-batch, where it no longer was). One
        of another kind than its ``created`` said is reported again, as a replacement."""
        recheck, self._recheck = self._recheck, set()
        for path in recheck:
            known = self._s.tree.kind(path)
            item = stat_path(path) if path in self._guessed and known is not None else None
            if item is None or item[1] == "dir":
                continue  # gone again, or replaced: still a guess, or the events saying so follow
            if item[1] != known:
                self._appear(path, False, replacing=True)
            else:
                self._s.tree.refresh(*item)
                del self._guessed[path]

    def _event(self, ev: RawEvent) -> None:
        action, path = ev.action, ev.path
        if action == "overflow":
            self._flush()
            self._host.overflow()
        elif action == "dir_gone" or action == "dir_deleted":
            self._dir_gone(path, deleted=action == "dir_deleted")
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
        if old is None and not is_dir:
            # The common case, a new file: its lstat waits for the end of the batch (see the top).
            change = Change("created", path, "file", self._now)
            tree.put(path, "file", 0, 0)
            self._out.append(change)
            self._fresh.add(path)
            self._unsure[path] = [change]
            return
        item = stat_path(path)
        kind: Kind
        if item is not None and (item[1] == "dir") == is_dir:
            _, kind, size, mtime_ns = item
        elif item is None and old is not None:
            return  # already gone again: its deletion event follows
        else:
            # Gone, or already replaced by an entry of the other sort (``mkdir b; mv b c; mv f b``,
            # whose events follow): the event says which sort this entry is.
            item = None
            kind, size, mtime_ns = ("dir" if is_dir else "file"), 0, 0
        if old is not None and old[0] == kind and not replacing:
            return  # a scan found it first
        if old is not None and old[0] == "dir":
            # Renamed over, the directory there was empty. Entries the model still holds below it
            # learned their fate out of order (an overflow's rescan listed them after this rename
            # was made, and their own move out was read before this one): they are gone.
            for child in sorted(tree.children(path)):
                self._out += s.drop_subtree(child, self._now, report=True)
            self._out += s.drop_subtree(path, self._now, report=False)
        self._unsure.pop(path, None)  # an earlier entry there was replaced: its kind stays a guess
        tree.put(path, kind, size, mtime_ns)
        self._out.append(Change("created", path, kind, self._now, existed_before=old is not None))
        self._fresh.add(path)
        if item is None and kind != "dir":
            self._guess(path)
        else:
            self._guessed.pop(path, None)
        if kind == "dir" and s.ws.is_listed(parent_of(path)) and s.needs_dir(path):
            self._host.request_crawl(path)

    def _touch(self, path: str) -> None:
        if path in self._fresh:  # already reported in this batch: only the model's size/mtime lag
            self._restat.add(path)
            return
        known = self._s.tree.kind(path)
        if known is not None and known != "dir" and path not in self._guessed:
            # A write does not change what the entry is; its size and mtime are read at the end.
            self._out.append(Change("updated", path, known, self._now, existed_before=True))
            self._fresh.add(path)
            self._restat.add(path)
            return
        item = stat_path(path)
        if item is None:
            return
        _, kind, size, mtime_ns = item
        if known != kind:
            self._appear(path, kind == "dir", replacing=True)
            return
        self._s.tree.put(path, kind, size, mtime_ns)
        self._out.append(Change("updated", path, kind, self._now, existed_before=True))
        self._fresh.add(path)

    def _vanish(self, path: str) -> None:
        if path in self._s.tree:
            self._out += self._s.drop_subtree(path, self._now, report=True)
        self._fresh.discard(path)
        self._unsure.pop(path, None)
        self._guessed.pop(path, None)

    def _move(self, src_ev: RawEvent, dst_ev: RawEvent) -> None:
        s, tree = self._s, self._s.tree
        src, dst = src_ev.path, dst_ev.path
        if is_cookie(dst) or is_cookie(src):
            if s.ws.covers(src) and not is_cookie(src):
                self._vanish(src)
            self._event(RawEvent(dst, "moved_to", dst_ev.is_dir))
            return
        kind = tree.kind(src) if s.ws.covers(src) else None
        if not s.ws.covers(dst):
            if kind is not None:
                self._vanish(src)
            return
        if kind is None:
            self._appear(dst, dst_ev.is_dir, replacing=True)
            return
        self._out += s.vanish_roots(src, self._now)
        # Contents nobody followed (``mv a build; rm build/f; mv build a``, ``build`` excluded): as
        # one batch the two moves net to nothing, and ``a/f`` would stay with the consumers.
        unfollowed = kind == "dir" and not tree.is_listed(src) and not s.needs_dir(src)
        existed = dst in tree
        if existed:
            self._out += s.drop_subtree(dst, self._now, report=False)
            self._unsure.pop(dst, None)
        listed = tree.move(src, dst)
        if kind == "dir":  # only directories hold watches; re-keying them costs O(watches)
            s.ws.move(src, dst, listed)
        change = Change("moved", dst, kind, self._now, from_path=src, existed_before=existed,
                        unfollowed=unfollowed)
        self._out.append(change)
        self._fresh.discard(src)
        self._fresh.discard(dst)
        if kind == "dir":
            self._carry_below(src, dst)
            # The router captures the entries below ``dst`` when the move reaches it: it must leave
            # now, before a later op of this batch moves or drops them (``mv x b; mv y b``).
            self._flush()
            self._follow_dir(dst)
        else:
            self._carry_unsure(src, dst, change)
            self._arrived.add(dst)

    def _carry_unsure(self, src: str, dst: str, change: Change) -> None:
        """A non-directory moved: what this batch still has to learn about it follows it to ``dst``."""
        if src in self._restat:
            self._restat.discard(src)
            self._restat.add(dst)
        unsure = self._unsure.pop(src, None)
        if unsure is not None:
            unsure.append(change)
            self._unsure[dst] = unsure
        elif src in self._guessed:
            del self._guessed[src]
            self._unsure[dst] = [change]

    def _carry_below(self, src: str, dst: str) -> None:
        """A directory moved: what this batch knows or owes about entries below it follows it (on
        disk they are already below ``dst``: the move happened before its events were read)."""
        prefix, cut = src + "/", len(src)
        for path in [p for p in self._unsure if p.startswith(prefix)]:
            self._unsure[dst + path[cut:]] = self._unsure.pop(path)
        for paths in (self._restat, self._fresh, self._recheck, self._arrived):
            below = [p for p in paths if p.startswith(prefix)]
            paths.difference_update(below)
            paths.update(dst + p[cut:] for p in below)
        for path in [p for p in self._guessed if p.startswith(prefix)]:
            del self._guessed[path]
            self._guessed[dst + path[cut:]] = None
            self._recheck.add(dst + path[cut:])

    def _follow_dir(self, dst: str) -> None:
        """Re-apply the needs at ``dst``: what the old name pruned may be needed now, and what it
        needed may not be. The ``moved`` has left already (``_move``), so the router captured the
        moved subtree before anything below is released."""
        s, tree = self._s, self._s.tree
        needed = s.ws.is_listed(parent_of(dst)) and s.needs_dir(dst)
        if not tree.is_listed(dst):
            if needed:
                self._host.request_crawl(dst)
            return
        if not needed or len(tree.listed_under(dst)) > 1:
            s.release(scope=dst)
        if needed and any(s.needs_dir(p) for p in tree.pruned.under(dst)):
            self._host.request_crawl(dst)

    def _dir_gone(self, path: str, *, deleted: bool = False) -> None:
        s = self._s
        root = s.roots.get(path)
        if root is not None and root.kind == "dir":
            if not deleted and root.still_at(path):
                return
            self._out += s.vanish_roots(path, self._now, deleted=deleted)
            if not s.ws.is_listed(parent_of(path)):
                self._out += s.drop_subtree(path, self._now, report=False)
        elif s.ws.files_in(path) and not s.ws.is_listed(path):
            self._out += s.vanish_roots(path, self._now)
