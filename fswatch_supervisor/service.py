"""Every RPC operation, against the registry, the mirror, the pipeline and the store.

Each ``op_<name>`` takes the request map and returns the result map, or raises a ``RequestError``
that the RPC server turns into an error reply (and the front-end into problem details).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import time
from collections.abc import Iterator
from typing import Any, Final

import orjson

from fswatch_supervisor import arguments as arg
from fswatch_supervisor.cookies import CookieJar, sleep_until_ns
from fswatch_supervisor.errors import (
    BadRequest,
    Forbidden,
    Gone,
    InsufficientStorage,
    NotFound,
    SyncTimeout,
    Unprocessable,
    WatchError,
    WatchLimitReached,
    WatchPermission,
)
from fswatch_supervisor.eventmodel import format_id, format_time
from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.mirror import FsMirror
from fswatch_supervisor.mirror.entries import Record
from fswatch_supervisor.mirror.paths import tree_order
from fswatch_supervisor.pipeline import Pipeline
from fswatch_supervisor.registry import Registry
from fswatch_supervisor.rules import RuleError, RuleSet
from fswatch_supervisor.store.eventstore import EventStore, NewEvent
from fswatch_supervisor.watchers import DEFAULT_COALESCE_MS, Watcher, new_watcher_id

log = get_logger(__name__)
MAX_WAIT_S = 60.0
PAGE_FORMATS: Final = ("map", "json")
"""``read_events`` answers its page as a map (default) or as the page's JSON document (``{"json": bytes}``)."""


class Service:
    def __init__(self, registry: Registry, store: EventStore, mirror: FsMirror, pipeline: Pipeline,
                 cookies: CookieJar) -> None:
        self.registry = registry
        self.store = store
        self.mirror = mirror
        self.pipeline = pipeline
        self.cookies = cookies
        self.rescans: dict[str, asyncio.Task[None]] = {}
        self.started_ns = time.time_ns()
        self.ready = False
        self.roots_added = False
        """A new root was crawled since the last snapshot save: save soon, so that a crash still
        leaves a baseline to rescan against."""
        self._create_lock = asyncio.Lock()

    # -- helpers ----------------------------------------------------------------------------

    def _watcher(self, args: dict[str, Any]) -> Watcher:
        watcher_id = arg.string(args, "id")
        watcher = self.registry.get(watcher_id or "")
        if watcher is None:
            raise NotFound(f"no watcher with id {watcher_id!r}")
        watcher.last_touch = time.monotonic()
        return watcher

    def _describe(self, watcher: Watcher) -> dict[str, Any]:
        return watcher.describe(self.store.bounds(watcher.id))

    # -- watchers ---------------------------------------------------------------------------

    async def op_create_watcher(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"path", "rules", "tags", "coalesce_ms", "ttl_s"})
        if ("path" in args) == ("rules" in args):
            raise BadRequest("give exactly one of 'path' and 'rules'")
        tags = arg.tag_map(args, "tags")
        coalesce_ms = arg.integer(args, "coalesce_ms", DEFAULT_COALESCE_MS, 0, 3_600_000)
        ttl_s = arg.integer(args, "ttl_s", None, 1)
        if "path" in args:
            path = args["path"]
            if not isinstance(path, str) or not path:
                raise BadRequest("path must be a non-empty string")
            if not os.path.isabs(path):
                raise Unprocessable(f"path must be absolute, got {path!r}")
            rules = RuleSet.for_path(os.path.normpath(path))
        else:
            try:
                rules = RuleSet.parse(args["rules"])
            except RuleError as exc:
                raise BadRequest(f"rules: {exc}") from None
        for root in rules.roots:
            check_root(root)
        assert coalesce_ms is not None
        async with self._create_lock:  # serial ids and rollback stay simple when creates queue up
            await self.mirror.catch_up()
            serial = self.registry.next_serial()
            watcher = Watcher(
                id=new_watcher_id(serial), serial=serial, rules=rules,
                path=rules.roots[0], tags=tags, coalesce_ms=coalesce_ms, ttl_s=ttl_s,
                created_ns=time.time_ns(), owner_uid=int(args.get("user", os.getuid())),
                last_touch=time.monotonic(),
            )
            self.registry.add(watcher)
            added: list[str] = []
            try:
                for root in rules.roots:
                    await self.mirror.add_root(root, all_or_nothing=True)
                    added.append(root)
            except (WatchError, OSError) as exc:
                self.registry.remove(watcher.id)
                for root in added:
                    self.mirror.remove_root(root)
                self.mirror.release()
                if isinstance(exc, WatchLimitReached):
                    raise InsufficientStorage(str(exc)) from None
                if isinstance(exc, WatchPermission | PermissionError):
                    raise Forbidden(f"cannot watch {rules.roots[0]}: {exc}") from None
                raise Unprocessable(f"cannot watch {rules.roots[0]}: {exc}") from None
            self.registry.persist_add(watcher)
            self.roots_added = True
        log.info("watcher.created", id=watcher.id, roots=list(rules.roots), coalesce_ms=coalesce_ms)
        return self._describe(watcher)

    async def op_get_watcher(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"id"})
        return self._describe(self._watcher(args))

    async def op_list_watchers(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"ids", "tags", "limit", "cursor"})
        limit = arg.integer(args, "limit", 100, 1, 1000)
        assert limit is not None
        after_serial = _decode_list_cursor(arg.string(args, "cursor", required=False))
        chosen = [w for w in self.registry.select(arg.string_list(args, "ids"), arg.tag_map(args, "tags"))
                  if w.serial > after_serial]
        page = chosen[:limit]
        for watcher in page:
            watcher.last_touch = time.monotonic()
        more = len(chosen) > limit
        return {"items": [self._describe(w) for w in page],
                "next": _encode_list_cursor(page[-1].serial) if more else None}

    async def op_delete_watcher(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"id"})
        watcher = self._watcher(args)
        self.delete([watcher])
        return {"deleted": [watcher.id]}

    async def op_delete_watchers(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"ids", "tags"})
        ids, tags = arg.string_list(args, "ids"), arg.tag_map(args, "tags")
        if not ids and not tags:
            raise BadRequest("give at least one selector: ids or tags")
        chosen = self.registry.select(ids, tags)
        self.delete(chosen)
        return {"deleted": [w.id for w in chosen]}

    def delete(self, watchers: list[Watcher]) -> None:
        """Remove watchers: a final ``watcher-deleted`` event each, then free index and OS watches."""
        if not watchers:
            return
        now = time.time_ns()
        self.pipeline.emit([NewEvent(action="watcher-deleted", path=w.path, kind=None, time_ns=now,
                                     watchers=(w.id,)) for w in watchers])
        for watcher in watchers:
            self.registry.remove(watcher.id)
            for root in watcher.roots:
                self.mirror.remove_root(root)
            self.registry.persist_remove(watcher)
            self.store.forget_watcher(watcher.id)
            self.pipeline.wake(watcher.id)
            log.info("watcher.deleted", id=watcher.id)
        self.mirror.release()

    def expire(self) -> None:
        """Delete watchers whose ``ttl_s`` passed without a request touching them."""
        now = time.monotonic()
        expired = [w for w in self.registry.all() if w.ttl_s is not None and now - w.last_touch > w.ttl_s]
        if expired:
            log.info("watchers.expired", ids=[w.id for w in expired])
            self.delete(expired)

    # -- events -----------------------------------------------------------------------------

    async def op_read_events(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"id", "after", "since", "limit", "wait", "format"})
        page_format = arg.string(args, "format", required=False) or "map"
        if page_format not in PAGE_FORMATS:
            raise BadRequest(f"format must be one of {', '.join(PAGE_FORMATS)}, got {page_format!r}")
        after = arg.event_id(args, "after")
        since = arg.timestamp(args, "since")
        limit = arg.integer(args, "limit", 1000, 1, 10_000)
        wait = arg.number(args, "wait", 0.0, 0.0, MAX_WAIT_S)
        watcher = self._watcher(args)
        assert limit is not None
        discarded = self.store.discarded_through(watcher.id)
        if after is not None and after < discarded:
            oldest, _ = self.store.bounds(watcher.id)
            raise Gone(f"events after {format_id(after)} were discarded by retention; resynchronise "
                       f"from the snapshot", oldest_event_id=None if oldest is None else format_id(oldest))
        items = self.store.read(watcher.id, after=after or 0, limit=limit, since_ns=since)
        if not items and wait > 0:
            deadline = time.monotonic() + wait
            while not items and (remaining := deadline - time.monotonic()) > 0:
                await self.pipeline.wait_for_events(watcher.id, remaining)
                if self.registry.get(watcher.id) is None:
                    break
                items = self.store.read(watcher.id, after=after or 0, limit=limit, since_ns=since)
        oldest, latest = self.store.bounds(watcher.id)
        next_after = items[-1]["id"] if items else (None if after is None else format_id(after))
        page = {"items": items, "next_after": next_after,
                "oldest_event_id": None if oldest is None else format_id(oldest),
                "latest_event_id": None if latest is None else format_id(latest)}
        if page_format == "json":
            # The HTTP body itself: a front-end then forwards bytes instead of decoding a thousand
            # maps from msgpack and encoding them again as JSON.
            return {"json": orjson.dumps(page)}
        return page

    async def op_snapshot(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"id", "limit", "cursor"})
        watcher = self._watcher(args)
        limit = arg.integer(args, "limit", 1000, 1, 10_000)
        assert limit is not None
        cursor = arg.string(args, "cursor", required=False)
        # Listing and cursor are taken in one loop turn: no change can fall between them.
        after, from_root, last_path = _decode_snapshot_cursor(cursor) if cursor else (self.store.last_seq, "", "")
        items: list[dict[str, Any]] = []
        position: tuple[str, str] | None = None
        for root, (path, kind, size, mtime_ns) in self._snapshot_walk(watcher, from_root, last_path):
            if path == root and kind == "dir" or not watcher.rules.selects(path):
                continue
            if len(items) == limit:
                break
            items.append({"path": path, "kind": kind, "size": size, "mtime": format_time(mtime_ns)})
            position = (root, path)
        else:
            position = None  # the walk ended: this was the last page
        next_cursor = _encode_snapshot_cursor(after, *position) if position is not None else None
        return {"items": items, "next": next_cursor, "after": format_id(after)}

    def _snapshot_walk(self, watcher: Watcher, from_root: str, last_path: str) -> Iterator[tuple[str, Record]]:
        """The model's entries for ``watcher``: each root walked in tree order, roots in tree order,
        from just after ``last_path`` in the walk of ``from_root``. A root another root's walk
        passes through is not walked again (one inside it by name but behind a symlink, or below a
        pruned directory, is). A root reported ``root-deleted`` is not walked: the watcher no longer
        follows it, whatever another watcher keeps in the model there."""
        roots = sorted({r for r in watcher.roots if self.registry.follows(watcher, r)}, key=tree_order)
        walks = [r for r in roots if not any(self.mirror.reaches(outer, r) for outer in roots)]
        for root in walks:
            if from_root and tree_order(root) < tree_order(from_root):
                continue  # returned by earlier pages
            resume = last_path if root == from_root else ""
            for record in self.mirror.entries(root, resume):
                yield root, record

    async def op_explain(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"id", "path"})
        watcher = self._watcher(args)
        path = arg.string(args, "path")
        assert path is not None
        if not os.path.isabs(path):
            raise BadRequest(f"path must be absolute, got {path!r}")
        path = os.path.normpath(path)
        selected, rule = watcher.rules.explain(path) if watcher.covers(path) else (False, None)
        directory = path if os.path.isdir(path) else os.path.dirname(path)
        return {"path": path, "selected": selected, "rule": rule,
                "os_watched": self.mirror.is_os_watched(directory)}

    async def op_sync(self, args: dict[str, Any]) -> dict[str, Any]:
        arg.only_keys(args, {"id", "timeout_s"})
        watcher = self._watcher(args)
        timeout = arg.number(args, "timeout_s", 30.0, 0.001, 300.0)
        deadline = time.monotonic() + timeout
        pending = [t for root, t in self.rescans.items() if not t.done() and _related(root, watcher)]
        try:
            if pending:
                await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout)
            self.mirror.check_roots()  # a root whose directory left its path gets no cookie back
            directories = [d for root in watcher.roots
                           if self.mirror.is_os_watched(d := root if os.path.isdir(root) else os.path.dirname(root))]
            await self.cookies.round_trip(directories, max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            raise SyncTimeout(f"changes did not settle within {timeout:g} s") from None
        # Changes observed before the cookie sit in windows that close by now + coalesce_ms.
        await sleep_until_ns(time.time_ns() + watcher.coalesce_ms * 1_000_000 + 1_000_000)
        self.pipeline.run_due()
        _, latest = self.store.bounds(watcher.id)
        return {"latest_event_id": None if latest is None else format_id(latest)}

    # -- service ----------------------------------------------------------------------------

    async def op_ping(self, args: dict[str, Any]) -> dict[str, Any]:
        from fswatch_supervisor import __version__
        return {"pid": os.getpid(), "version": __version__, "ready": self.ready,
                "started_at": format_time(self.started_ns)}

    async def op_status(self, args: dict[str, Any]) -> dict[str, Any]:
        store = self.store.stats()
        return {
            "ready": self.ready,
            "watchers": len(self.registry),
            "os_watches": self.mirror.watch_count(),
            "rescans_running": sum(1 for t in self.rescans.values() if not t.done()),
            "store_events": store.get("events", 0),
            "store_bytes": store.get("bytes", 0),
            "store_segments": store.get("segments", 0),
            "events_dropped_by_retention": store.get("discarded_total", 0),
            "last_event_id": format_id(self.store.last_seq),
            **self.pipeline.stats(),
        }


def check_root(root: str) -> None:
    """A watch root must exist, be a directory or regular file, and be readable (else 422/403)."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        raise Unprocessable(f"path does not exist: {root}") from None
    except NotADirectoryError:
        raise Unprocessable(f"a component of the path is not a directory: {root}") from None
    except PermissionError:
        raise Forbidden(f"permission denied: {root}") from None
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        raise Unprocessable(f"path is neither a directory nor a regular file: {root}")
    needed = os.R_OK | os.X_OK if stat.S_ISDIR(info.st_mode) else os.R_OK
    if not os.access(root, needed):
        raise Forbidden(f"the daemon's user may not read {root}")


def _related(root: str, watcher: Watcher) -> bool:
    return any(r == root or r.startswith(root + "/") or root.startswith(r + "/") for r in watcher.roots)


def _encode_list_cursor(serial: int) -> str:
    return f"c{serial}"


def _decode_list_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not (cursor.startswith("c") and cursor[1:].isdigit()):
        raise BadRequest(f"cursor {cursor!r} is not one this server handed out")
    return int(cursor[1:])


def _encode_snapshot_cursor(after: int, root: str, last_path: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([after, root, last_path]).encode()).decode().rstrip("=")


def _decode_snapshot_cursor(cursor: str) -> tuple[int, str, str]:
    try:
        after, root, last_path = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(after, int) and isinstance(root, str) and isinstance(last_path, str):
            return after, root, last_path
    except (ValueError, TypeError):
        pass
    raise BadRequest(f"cursor {cursor!r} is not one this server handed out")
