"""``FsMirror``: the facade the supervisor calls. One asyncio loop thread does everything.

Flow: backend batches → ``MovePairer`` → ``Normaliser`` → ``on_changes``. Work that can be long
(crawling a directory that appeared, rescans after an overflow or a restart) runs as jobs, in
order, on one worker task owned by the mirror; sync cookies seen while a job is queued or running
are handed to ``on_cookie`` only after it finished, so "settled" includes what a rescan reports.
After a crawl, a background task reads the sizes and mtimes the crawl left unread
(``Tree.fill_stats``), a chunk per loop turn; whoever needs them sooner reads them on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

from fswatch_supervisor.backends.base import WatchBackend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.errors import WatchError, WatchPermission
from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.mirror.entries import Record, kind_of_mode
from fswatch_supervisor.mirror.normalise import Normaliser
from fswatch_supervisor.mirror.pairing import MOVE_GRACE_S, MovePairer, Op
from fswatch_supervisor.mirror.paths import is_under, parent_of, tree_order
from fswatch_supervisor.mirror.persist import encode_model, load_model, write_model
from fswatch_supervisor.mirror.scanner import Baseline, Crawler, changed, stat_path, wait_while
from fswatch_supervisor.mirror.state import MirrorState, NeedsDir

Job = Callable[[], Awaitable[None]]
FILL_CHUNK = 128
"""Late ``lstat``s per loop turn (~0.4 ms). An RPC takes several loop turns, each of which may wait
for one chunk: at 1,024 (3 ms) the requests right after a big crawl took 15–20 ms instead of 2."""
SAVE_READS_MAX = 16384
"""Unread sizes ``save`` reads before saving (~40 ms); beyond, it saves them unread."""

log = get_logger(__name__)


class FsMirror:
    def __init__(self, backend: WatchBackend, *, needs_dir: NeedsDir,
                 on_changes: Callable[[list[Change]], None],
                 on_cookie: Callable[[str], None] | None = None,
                 move_grace_s: float = MOVE_GRACE_S) -> None:
        self._backend = backend
        self._on_changes = on_changes
        self._on_cookie = on_cookie
        self._state = MirrorState(backend, needs_dir, self._emit)
        self._crawler = Crawler(self._state, self.cookie, self._crawl_after_pending, self._events_waiting)
        self._normaliser = Normaliser(self._state, self)
        self._move_grace_s = move_grace_s
        self._pairer: MovePairer | None = None
        self._jobs: deque[Job] = deque()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._busy = 0
        self._cookies: list[str] = []
        self._overflow_queued = False
        self._waiting: set[asyncio.Future[None]] = set()
        self._filler: asyncio.Task[None] | None = None
        self._overflow_late: int | None = None
        """``Tree.late_since()`` when the overflows the queued rescan answers were read."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._pairer = MovePairer(loop, self._apply, self._move_grace_s,
                                  events_pending=self._backend.events_pending)
        self._backend.start(loop, self._pairer.feed)
        self._worker = asyncio.create_task(self._work(), name="fswatch-mirror-jobs")

    async def close(self) -> None:
        for task in (self._worker, self._filler):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._worker = self._filler = None
        for waiter in self._waiting:
            waiter.cancel()
        if self._pairer is not None:
            self._pairer.close()
        self._backend.close()

    async def add_root(self, root: str, *, all_or_nothing: bool = False) -> None:
        """Follow ``root`` (a directory, recursively as ``needs_dir`` allows, or a single file).

        Only what is not already followed is crawled; nothing found is reported. Raises
        ``WatchLimitReached``/``WatchPermission``/``WatchError`` for the root itself and then
        leaves nothing behind; below the root, failures become ``watch-error`` changes — except
        the watch limit with ``all_or_nothing``, which raises too (the caller, having dropped
        its need, calls ``release()`` to free what the partial crawl added)."""
        st = self._lstat_root(root)
        kind = kind_of_mode(st.st_mode)
        ident = (st.st_dev, st.st_ino)
        s = self._state
        if kind == "file":
            s.ws.hold_file(root)
            if root not in s.tree:
                s.tree.put(root, "file", st.st_size, st.st_mtime_ns)
            s.register_root(root, "file", ident)
            return
        if kind != "dir":
            raise WatchError(f"{root} is neither a directory nor a regular file")
        added_entry = root not in s.tree
        if added_entry:
            s.tree.put(root, "dir", st.st_size, st.st_mtime_ns)
        # Registered first, so that a release() running during the crawl keeps what it adds.
        s.register_root(root, "dir", ident)
        try:
            await self._crawler.crawl(root, report=False, strict=True, limit_fatal=all_or_nothing)
            self._fill_later()
        except WatchError:
            self.remove_root(root)
            if s.roots.get(root) is not None and s.roots[root].refs <= 0:
                s.forget_root(root)
            if added_entry and not s.tree.is_listed(root):
                s.tree.remove_one(root)
            raise

    async def catch_up(self) -> None:
        """Apply every change the OS reported before this call and finish the crawls and rescans it
        asked for: a new watcher's crawl adopts what it finds silently, and run first it would take
        the news of ``mkdir d; echo > d/x`` from those already following the tree. Call it before
        the new watcher is registered, so that the news is not its own."""
        await self._crawler.wait_applied()
        if self._busy:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def reached() -> None:  # every job queued before it has run
                if not done.done():
                    done.set_result(None)

            self._enqueue(reached)
            await done

    def check_roots(self) -> None:
        """Report roots whose directory left their path above anything watched (see
        ``MirrorState.roots_gone_unseen``): before each batch of events is applied, so that none
        is reported under a name its directory no longer has, and before a ``sync``."""
        self._emit(self._state.roots_gone_unseen(time.time_ns()))

    def _apply(self, ops: list[Op]) -> None:
        self.check_roots()
        self._normaliser.apply(ops)

    def remove_root(self, root: str) -> None:
        """One watcher on ``root`` is gone; its watches go at the next ``release()``."""
        found = self._state.roots.get(root)
        if found is not None:
            found.refs -= 1

    def release(self) -> None:
        """Drop watches and entries of directories that no remaining watcher needs."""
        self._state.release()

    async def rescan(self, root: str, *, baseline: Iterable[Record] | None = None) -> None:
        """List ``root`` again and report (``rescan=True``) every difference from the model, or
        from ``baseline`` records (e.g. ``load()``-ed after a restart, with ``add_root`` done)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def job() -> None:
            # ``done`` may already be cancelled: its awaiting caller went away.
            try:
                await self._rescan_now(root, baseline)
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:
                if not done.done():
                    done.set_exception(exc)
                return
            if not done.done():
                done.set_result(None)

        self._enqueue(job)
        self._waiting.add(done)
        try:
            await done
        finally:
            self._waiting.discard(done)

    def entries(self, root: str, after: str = "") -> Iterator[Record]:
        """``(path, kind, size, mtime_ns)`` below a directory root, or the file root itself, in tree
        order (``entries.tree_order``), from just after the path ``after``: a snapshot page walks
        only what it returns."""
        found = self._state.roots.get(root)
        if found is not None and found.kind == "file":
            record = self._state.tree.record(root)
            if record is not None and (not after or tree_order(after) < tree_order(root)):
                yield record
            return
        yield from self._state.tree.records(root, after)

    def reaches(self, outer: str, inner: str) -> bool:
        """Whether the walk of root ``outer`` (``entries``) passes through ``inner``: every
        directory from ``outer`` down to ``inner``'s parent is listed, so none is a symlink or a
        pruned directory, and ``inner`` is an entry there."""
        if inner == outer or not is_under(inner, outer):
            return False
        tree = self._state.tree
        directory = parent_of(inner)
        while tree.is_listed(directory):
            if directory == outer:
                return inner in tree
            directory = parent_of(directory)
        return False

    def is_os_watched(self, dir_path: str) -> bool:
        return self._state.ws.is_watched(dir_path)

    def watch_count(self) -> int:
        return self._backend.watch_count()

    def entry_count(self) -> int:
        return len(self._state.tree)

    def saved_form(self) -> tuple[dict[str, str], list[Record]]:
        """The model as it is saved: the roots (path → kind) and a copy of every record, which
        ``persist.save_model`` may pack and write in another thread. Sizes and mtimes still unread
        are read first when they are few; many are saved unread (``entries.UNREAD_SIZE``) rather
        than stall the loop."""
        roots: dict[str, str] = {r: root.kind for r, root in self._state.roots.items() if root.refs > 0}
        tree = self._state.tree
        if tree.unstated() <= SAVE_READS_MAX:
            tree.fill_stats(SAVE_READS_MAX)
        return roots, list(tree.all_records())

    def reading_stats(self) -> bool:
        """Whether the background reads of sizes and mtimes a crawl left are still going on."""
        return self._filler is not None

    def save(self, path: Path) -> None:
        """Persist the model now (blocking: the daemon's periodic save packs and writes in a thread)."""
        write_model(path, encode_model(*self.saved_form()))

    def load(self, path: Path) -> dict[str, list[Record]]:
        return load_model(path)

    # -- Normaliser host ------------------------------------------------------------------------

    def request_crawl(self, path: str) -> None:
        async def job() -> None:
            # Events read by now (held by the pairer, or not delivered yet while jobs ran back to
            # back) came after the one that asked for this crawl: a rename of ``path`` among them
            # (``mv a b; mkdir a``) must move the model first, or the new directory's listing would
            # be taken for the old one's.
            await wait_while(self._read_not_applied)
            await self._crawler.crawl(path, report=True)
            self._fill_later()

        self._enqueue(job)

    def _crawl_after_pending(self, path: str) -> None:
        """Crawl ``path`` again once the events queued now are applied: the crawl found the
        directory there watched under another name, and the rename that explains it is among them
        (it moves the model's entry and its watch, and whatever was at ``path`` before). Whatever
        still disagrees then is settled by the inode."""
        async def job() -> None:
            await self._crawler.wait_applied()
            await self._crawler.crawl(path, report=True, rekey=True)
            self._fill_later()

        self._enqueue(job)

    def _events_waiting(self) -> bool:
        """Whether events are still to be applied: unread, being read, or held by the pairer."""
        return self._backend.events_pending() or self._pairer_holding()

    def _pairer_holding(self) -> bool:
        return self._pairer is not None and self._pairer.holding

    def _read_not_applied(self) -> bool:
        return self._backend.events_undelivered() or self._pairer_holding()

    def cookie(self, path: str) -> None:
        if self._busy:
            self._cookies.append(path)
        elif self._on_cookie is not None:
            self._on_cookie(path)

    def overflow(self) -> None:
        roots = sorted(r for r, root in self._state.roots.items() if root.refs > 0)
        log.warning("mirror.overflow", roots=len(roots))
        now = time.time_ns()
        self._emit([Change("overflow", r, None, now, detail="the OS dropped events; rescanning")
                    for r in roots])
        # Taken now: the rescan may start long after, when the window for late values has closed.
        late = self._state.tree.late_since()
        if late is not None:
            self._overflow_late = late if self._overflow_late is None else min(self._overflow_late, late)
        if not self._overflow_queued:
            self._overflow_queued = True
            self._enqueue(self._rescan_all)

    # -- internals ------------------------------------------------------------------------------

    def _emit(self, changes: list[Change]) -> None:
        if changes:
            self._on_changes(changes)
            # A directory moved before its entries' sizes were read queues them again under the new
            # name: the fill must run for them too, or late values would stay distrusted.
            self._fill_later()

    def _lstat_root(self, root: str) -> os.stat_result:
        if not os.path.isabs(root) or os.path.normpath(root) != root:
            raise WatchError(f"root must be an absolute, normalised path: {root!r}")
        try:
            return os.lstat(root)
        except PermissionError as exc:
            raise WatchPermission(f"cannot read {root}: {exc.strerror}") from exc
        except OSError as exc:
            raise WatchError(f"cannot watch {root}: {exc.strerror}") from exc

    def _fill_later(self) -> None:
        if self._filler is None and self._worker is not None and self._state.tree.unstated():
            self._filler = asyncio.create_task(self._fill(), name="fswatch-mirror-stats")

    async def _fill(self) -> None:
        try:
            while True:
                if not self._state.tree.fill_stats(FILL_CHUNK):
                    return
                await asyncio.sleep(0)
        finally:
            self._filler = None

    def _enqueue(self, job: Job) -> None:
        self._busy += 1
        self._jobs.append(job)
        self._wake.set()

    async def _work(self) -> None:
        while True:
            while not self._jobs:
                self._wake.clear()
                await self._wake.wait()
            job = self._jobs.popleft()
            try:
                await job()
            except Exception:
                log.exception("mirror.job_failed")
            finally:
                self._busy -= 1
                if not self._busy:
                    self._release_cookies()

    def _release_cookies(self) -> None:
        cookies, self._cookies = self._cookies, []
        if self._on_cookie is not None:
            for path in cookies:
                self._on_cookie(path)

    async def _rescan_all(self) -> None:
        self._overflow_queued = False
        late, self._overflow_late = self._overflow_late, None
        if self._pairer is not None:
            self._pairer.flush()
        roots = sorted(r for r, root in self._state.roots.items() if root.refs > 0)
        tops = [r for r in roots if not any(t != r and is_under(r, t) and self._state.tree.is_listed(t)
                                            for t in roots)]
        # A root inside another's tree is re-listed by that rescan, which cannot tell that the
        # directory there now is another one (renamed over, its events lost): ask each.
        self._emit(self._state.roots_replaced(sorted(set(roots) - set(tops)), time.time_ns()))
        for root in tops:
            await self._rescan_now(root, None, late_since=late)

    async def _rescan_now(self, root: str, records: Iterable[Record] | None, *, late_since: int | None = None) -> None:
        s = self._state
        found = s.roots.get(root)
        if found is None:
            raise WatchError(f"{root} is not a watched root")
        now = time.time_ns()
        baseline = Baseline(records) if records is not None else None
        if found.kind == "file":
            self._emit(self._rescan_file(root, baseline, now, late_since))
            return
        if not found.still_at(root):
            gone = s.vanish_roots(root, now)
            gone += s.drop_subtree(root, now, report=False)
            self._emit(gone)
            return
        await self._crawler.crawl(root, report=True, rescan=True, baseline=baseline, late_since=late_since)

    def _rescan_file(self, root: str, baseline: Baseline | None, now: int, late_since: int | None) -> list[Change]:
        tree = self._state.tree
        parent = parent_of(root)
        if not self._state.ws.is_listed(parent):  # a listed one is rechecked by its own rescan
            with contextlib.suppress(WatchError):  # gone: the stat below says so
                self._state.ws.recheck(parent)
        # A size/mtime read late may hide a write whose event the overflow dropped (see scanner).
        distrust_from = late_since if baseline is None and tree.is_late(root) else None
        item = stat_path(root)
        before = baseline.children(os.path.dirname(root)).get(root) if baseline is not None else tree.get(root)
        if item is None:
            tree.remove_one(root)
            return [] if before is None else [Change("deleted", root, before[0], now, existed_before=True,
                                                     rescan=True)]
        _, kind, size, mtime_ns = item
        tree.put(root, kind, size, mtime_ns)
        if before is None:
            return [Change("created", root, kind, now, rescan=True)]
        hidden = distrust_from is not None and mtime_ns >= distrust_from
        if before[0] != kind or changed(before, size, mtime_ns) or hidden:
            return [Change("updated", root, kind, now, existed_before=True, rescan=True)]
        return []
