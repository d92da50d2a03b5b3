"""Crawling: watch a directory, then list it, then descend into the subdirectories that are needed.

The watch is taken *before* the listing, so nothing created in between is missed: it is either
in the listing or reported by an event (the model de-duplicates). One step (watch + list +
reconcile one directory) is atomic with respect to the event loop; the crawl yields to the loop
every few hundred directories and logs ``crawl.progress`` every ~2 s on big trees.

A crawl that does not diff (a new root, a directory that appeared) takes each entry's kind from
the listing itself (``d_type``) and adds it *unstated* (see ``entries``): one ``readdir`` per
directory and no ``lstat`` per entry (a crawl of 5,000 directories and 10,000 files went from
~130 to ~85 ms). A rescan diffs sizes and mtimes, so it ``lstat``s every entry as it lists.

Three uses share the walk, differing only in what they report:
- a new root (``report=False``): the listing is the baseline, nothing is reported;
- a directory that appeared (created or moved in): whatever the model does not know yet is
  reported as ``created``;
- a rescan (``rescan=True``): every directory is listed again and every difference from the
  model, or from a persisted ``Baseline``, is reported with ``rescan=True``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from typing import Final, cast

from fswatch_supervisor.changes import Change, Kind
from fswatch_supervisor.errors import WatchedElsewhere, WatchError, WatchLimitReached, WatchPermission
from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.mirror.entries import UNREAD_SIZE, Listing, Stat, kind_of_mode
from fswatch_supervisor.mirror.paths import parent_of
from fswatch_supervisor.mirror.state import MirrorState

COOKIE_PREFIX: Final = ".fswatch-cookie-"
_COOKIE_MARK: Final = "/" + COOKIE_PREFIX
YIELD_EVERY_DIRS: Final = 256
PENDING_WAIT_TURNS: Final = 200
PENDING_WAIT_S: Final = 0.005
"""How long a crawl waits for queued events to be applied (at most 1 s) before the inode decides."""
PROGRESS_EVERY_S: Final = 2.0

ScanItem = tuple[str, Kind, int, int]

log = get_logger(__name__)


def join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else parent + "/" + name


def is_cookie(path: str) -> bool:
    return COOKIE_PREFIX in path and path.rpartition("/")[2].startswith(COOKIE_PREFIX)


def list_dir(path: str, cookies: list[str] | None = None) -> list[ScanItem]:
    """The entries of ``path`` (lstat: symlinks are reported as themselves, never followed).
    The supervisor's own sync cookies are never entries; they are appended to ``cookies``.

    Entries are stat-ed relative to an open descriptor of the directory, not by path: when the
    directory is renamed during the listing, a by-path lstat finds nothing and its entries would be
    dropped from a listing the model then trusts (the move event that follows re-keys them)."""
    items: list[ScanItem] = []
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with os.scandir(fd) as it:
            for entry in it:
                if entry.name.startswith(COOKIE_PREFIX):
                    if cookies is not None:
                        cookies.append(join(path, entry.name))
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted since the readdir: its event follows
                items.append((join(path, entry.name), kind_of_mode(st.st_mode), st.st_size, st.st_mtime_ns))
    finally:
        os.close(fd)
    return items


def list_kinds(path: str, cookies: list[str] | None = None) -> Listing | None:
    """The entries of ``path`` by the kind the listing gives (no ``lstat``); ``None`` when some
    entry's kind is not in it (a file system without ``d_type``, or a device, socket or FIFO):
    ``list_dir`` then lists the directory instead. Cookies are handled as by ``list_dir``."""
    listing = Listing()
    dirs, files, links = listing.dirs, listing.files, listing.links
    with os.scandir(path) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                dirs.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                files.append(entry.path)
            elif entry.is_symlink():
                links.append(entry.path)
            else:
                return None
    if _COOKIE_MARK in "\0".join(files):  # one search per directory instead of one per entry
        found = [p for p in files if is_cookie(p)]
        listing.files = [p for p in files if not is_cookie(p)]
        if cookies is not None:
            cookies += found
    return listing


def stat_path(path: str) -> ScanItem | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return path, kind_of_mode(st.st_mode), st.st_size, st.st_mtime_ns


def changed(before: Stat, size: int, mtime_ns: int) -> bool:
    """Whether an entry of the same kind as ``before`` now has ``size`` and ``mtime_ns``."""
    if before[1] == UNREAD_SIZE:  # persisted before it was read: ``before[2]`` bounds its listing
        return mtime_ns >= before[2]
    return (before[1], before[2]) != (size, mtime_ns)


class Baseline:
    """Persisted records indexed by parent directory: what a rescan after a restart diffs against."""

    __slots__ = ("_by_parent",)

    def __init__(self, records: Iterable[tuple[str, str, int, int]]) -> None:
        self._by_parent: dict[str, dict[str, Stat]] = {}
        for path, kind, size, mtime_ns in records:
            self._by_parent.setdefault(parent_of(path), {})[path] = (cast(Kind, kind), size, mtime_ns)

    def children(self, path: str) -> dict[str, Stat]:
        return self._by_parent.get(path, {})

    def subtree(self, path: str, kind: Kind) -> list[tuple[str, Kind]]:
        """``path`` and everything the baseline had below it, children first."""
        order: list[tuple[str, Kind]] = []
        stack: list[tuple[str, Kind]] = [(path, kind)]
        while stack:
            p, k = stack.pop()
            order.append((p, k))
            stack.extend((c, s[0]) for c, s in self.children(p).items())
        return order[::-1]


class _Progress:
    __slots__ = ("top", "dirs", "files", "started", "_next_log", "limit_hit", "unwatched")

    def __init__(self, top: str) -> None:
        self.top = top
        self.dirs = self.files = self.unwatched = 0
        self.started = self._next_log = time.monotonic()
        self._next_log += PROGRESS_EVERY_S
        self.limit_hit: WatchLimitReached | None = None

    def log_due(self) -> None:
        """Log ``crawl.progress`` if it is time (asked every ``YIELD_EVERY_DIRS``, not per directory)."""
        now = time.monotonic()
        if now >= self._next_log:
            self._next_log = now + PROGRESS_EVERY_S
            log.info("crawl.progress", dirs=self.dirs, files=self.files, root=self.top)


async def wait_while(busy: Callable[[], bool]) -> None:
    """Wait until ``busy()`` is false, checking every ``PENDING_WAIT_S``, at most 1 s."""
    for _ in range(PENDING_WAIT_TURNS):
        if not busy():
            return
        await asyncio.sleep(PENDING_WAIT_S)


class Crawler:
    def __init__(self, state: MirrorState, on_cookie: Callable[[str], None],
                 crawl_after_pending: Callable[[str], None], events_waiting: Callable[[], bool]) -> None:
        self._s = state
        self._on_cookie = on_cookie
        self._crawl_after_pending = crawl_after_pending
        self._events_waiting = events_waiting

    async def crawl(self, top: str, *, report: bool, rescan: bool = False,
                    baseline: Baseline | None = None, strict: bool = False, limit_fatal: bool = False,
                    late_since: int | None = None, rekey: bool = False) -> None:
        """Make every needed directory at or below ``top`` listed and watched.

        ``top`` must already be a directory entry. With ``strict`` a failure to watch or read
        ``top`` itself raises (and leaves no watch behind); otherwise it becomes a ``watch-error``.
        With ``limit_fatal`` the watch limit raises wherever it is hit (a watcher being created
        must be whole or not at all); the caller releases what was added. ``late_since`` is
        ``Tree.late_since()`` as it was when the overflow that asked for this rescan was read:
        the rescan may run much later, and the distrust of late values must not end meanwhile.

        A directory found watched under another name (renamed since it was queued, and the rename
        not applied yet) is put off until the queued events are applied, unless ``rekey`` or
        ``rescan`` (after an overflow no event will explain it) say that its inode decides. A
        ``strict`` top (a new root) cannot be put off: the crawl waits for those events instead.
        """
        tree, progress = self._s.tree, _Progress(top)
        needs_dir, emit = self._s.needs_dir, self._s.emit
        stack = [top]
        top_waited = False
        while stack:
            d = stack.pop()
            if tree.kind(d) != "dir" or (d != top and not tree.is_listed(parent_of(d))):
                continue  # removed or moved while waiting on the stack
            if tree.is_listed(d) and not rescan:
                # Already followed for someone else: only its pruned boundary may be new to us.
                stack.extend(p for p in tree.pruned.under(d) if needs_dir(p))
                continue
            cookies: list[str] = []
            try:
                listing = self._visit(d, progress, cookies, stats=rescan, strict=strict and d == top,
                                      limit_fatal=limit_fatal, rekey=rekey or rescan or top_waited)
            except WatchedElsewhere:  # only a strict top: the rename that explains it moves it first
                top_waited = True
                await self.wait_applied()
                stack.append(d)
                continue
            if listing is None:
                continue
            if isinstance(listing, Listing):
                changes = self._adopt(d, listing, report=report)
                subdirs, count = listing.dirs, len(listing)
            else:
                changes = self._reconcile(d, listing, report=report, rescan=rescan, baseline=baseline,
                                          late_since=late_since)
                subdirs, count = [path for path, kind, _size, _mtime in listing if kind == "dir"], len(listing)
            if changes:
                emit(changes)
            if report:
                # A cookie whose event was lost (an overflow) is still on disk: a sync waiting
                # for it must not hang. The facade defers it until this crawl has finished.
                for cookie in cookies:
                    self._on_cookie(cookie)
            for path in subdirs:
                if tree.is_listed(path) or needs_dir(path):
                    stack.append(path)
            progress.files += count
            progress.dirs += 1
            if progress.dirs % YIELD_EVERY_DIRS == 0:
                progress.log_due()
                await asyncio.sleep(0)
        self._finish(progress)

    def _visit(self, d: str, progress: _Progress, cookies: list[str], *, stats: bool, strict: bool,
               limit_fatal: bool = False, rekey: bool = False) -> Listing | list[ScanItem] | None:
        """Watch then list ``d``: by kinds, or ``lstat``-ed when ``stats`` is asked for or the
        kinds alone were not enough; ``None`` when it cannot be followed (or not yet)."""
        was_listed = self._s.ws.is_listed(d)
        if progress.limit_hit is not None and not was_listed:
            progress.unwatched += 1
            return None
        try:
            if was_listed and stats:
                # A rescan: events were lost, renames among them; make the watch this directory's.
                self._s.ws.recheck(d)
            else:
                self._hold(d, rekey=rekey)
        except WatchedElsewhere:
            if strict:
                raise
            self._crawl_after_pending(d)
            return None
        except WatchLimitReached as exc:
            if strict or limit_fatal:
                raise
            progress.limit_hit = exc
            progress.unwatched += 1
            return None
        except WatchError as exc:
            if strict:
                raise
            if not isinstance(exc, WatchPermission):
                return None  # vanished: the parent's event reports it
            self._watch_error(d, str(exc))
            return None
        try:
            listing = None if stats else list_kinds(d, cookies)
            return listing if listing is not None else list_dir(d, cookies)
        except OSError as exc:
            if not was_listed:
                self._s.ws.drop(d)
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                if strict:
                    raise WatchError(f"{d} vanished while being watched") from exc
                return None
            if strict:
                raise WatchPermission(f"cannot read directory {d}: {exc.strerror}") from exc
            self._watch_error(d, f"cannot read directory {d}: {exc.strerror}")
            return None

    async def wait_applied(self) -> None:
        """Wait (at most 1 s) until no event is left to apply."""
        await wait_while(self._events_waiting)

    def _hold(self, d: str, *, rekey: bool) -> None:
        """Watch ``d``; raises ``WatchedElsewhere`` when its inode is watched under another name and
        queued events may yet explain that (a rename read later moves the model to match)."""
        try:
            self._s.ws.hold(d, rekey=rekey)
        except WatchedElsewhere:
            if self._events_waiting():
                raise
            self._s.ws.hold(d, rekey=True)  # nothing left to read: the inode decides

    def _adopt(self, d: str, listing: Listing, *, report: bool) -> list[Change]:
        """List the unlisted ``d`` from ``listing``: new entries join unstated (``created`` when
        reporting); the few already known (watched roots inside) are reconciled as by a scan."""
        tree, now = self._s.tree, time.time_ns()
        changes: list[Change] = []
        known = tree.adopt(d, listing, now)
        if known:
            items = [item for item in map(stat_path, known) if item is not None]
            changes = self._reconcile(d, items, report=report, rescan=False, baseline=None)
            listing = listing.without(set(known))
            tree.adopt(d, listing, now)
        if report:
            for paths, kind in listing.groups():
                changes += [Change("created", path, kind, now) for path in paths]
        return changes

    def _reconcile(self, d: str, items: list[ScanItem], *, report: bool, rescan: bool,
                   baseline: Baseline | None, late_since: int | None = None) -> list[Change]:
        """Make the model's listing of ``d`` equal ``items``; return what changed, if reporting.

        Differences are taken against ``baseline`` when given (the model is then updated silently),
        else against the model itself."""
        s, tree = self._s, self._s.tree
        now = time.time_ns()
        ref = baseline.children(d) if baseline is not None else None
        # Diffing against the model: values it read late may hide a change an overflow dropped.
        late = late_since if rescan and ref is None else None
        previous = tree.children(d)
        tree.mark_listed(d)
        changes: list[Change] = []
        seen: set[str] = set()
        for path, kind, size, mtime_ns in items:
            seen.add(path)
            distrust = late is not None and tree.is_late(path)
            old = tree.get(path)
            if old is not None and old[0] == "dir" and kind != "dir":
                changes += s.drop_subtree(path, now, report=report and ref is None, rescan=rescan)
                old = None  # its deletion is reported above
            tree.put(path, kind, size, mtime_ns)
            if not report:
                continue
            before = ref.get(path) if ref is not None else old
            if before is None:
                changes.append(Change("created", path, kind, now, rescan=rescan))
            elif before[0] != kind:
                changes.append(Change("deleted", path, before[0], now, existed_before=True, rescan=rescan))
                changes.append(Change("created", path, kind, now, rescan=rescan))
            elif kind != "dir" and (changed(before, size, mtime_ns) or distrust and mtime_ns >= cast(int, late)):
                changes.append(Change("updated", path, kind, now, existed_before=True, rescan=rescan))
        for path in previous - seen:
            if path in tree:
                changes += s.drop_subtree(path, now, report=report and ref is None, rescan=rescan)
        if baseline is not None and ref is not None and report:
            for path in ref.keys() - seen:
                for p, k in baseline.subtree(path, ref[path][0]):
                    changes.append(Change("deleted", p, k, now, existed_before=True, rescan=rescan))
        return changes

    def _watch_error(self, d: str, detail: str) -> None:
        log.warning("watch.error", path=d, detail=detail)
        self._s.emit([Change("watch-error", d, "dir", time.time_ns(), detail=detail)])

    def _finish(self, progress: _Progress) -> None:
        elapsed = time.monotonic() - progress.started
        if progress.limit_hit is not None:
            detail = (f"{progress.unwatched} directories below {progress.top} (and whatever they contain) "
                      f"are not watched: {progress.limit_hit}")
            self._watch_error(progress.top, detail)
        if elapsed >= PROGRESS_EVERY_S:
            log.info("crawl.done", dirs=progress.dirs, files=progress.files, root=progress.top,
                     seconds=round(elapsed, 3))
