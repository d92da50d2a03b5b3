"""The supervisor process: wires store, registry, mirror, pipeline and sockets, and runs until told to stop.

Start-up order matters: the store and the registry are recovered before any socket is bound, so
the first request already sees every watcher; roots are rescanned in the background (``sync``
waits for those rescans) so a big tree does not keep the RPC socket closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import zmq
import zmq.asyncio

from fswatch_supervisor import exitcodes, native, protocol
from fswatch_supervisor.backends import open_backend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.config import SupervisorConfig
from fswatch_supervisor.cookies import CookieJar
from fswatch_supervisor.errors import StoreBusy
from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.memory import collect_cycles_rarely, trim_after_bursts
from fswatch_supervisor.mirror import FsMirror
from fswatch_supervisor.mirror.entries import Record
from fswatch_supervisor.mirror.persist import save_model
from fswatch_supervisor.pipeline import Pipeline
from fswatch_supervisor.recordlog import sync_and_close
from fswatch_supervisor.registry import Registry, outermost
from fswatch_supervisor.rpc import Publisher, RpcServer
from fswatch_supervisor.service import Service
from fswatch_supervisor.signals import open_signal_queue
from fswatch_supervisor.statedir import prepare_state_dir
from fswatch_supervisor.store.eventstore import EventStore, FsyncPolicy
from fswatch_supervisor.systemd import sd_notify

log = get_logger(__name__)
SAVE_WAITS_FOR_STATS = 10
"""Housekeeping ticks (seconds) a model save waits for a crawl's background size reads at most."""


class Supervisor:
    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self.state_dir = prepare_state_dir(config.state_dir)
        self.endpoints = (config.endpoints or protocol.Endpoints.from_state_dir(self.state_dir)).with_fanout_in(
            self.state_dir)
        self._stop = asyncio.Event()
        self.restored = asyncio.Event()
        """Set once every watcher's roots were rescanned after start-up."""
        self._writes: set[asyncio.Future[None]] = set()
        """Blocking writes running in threads (``_write_off_loop``); shutdown waits for them."""

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, companions: Callable[[protocol.Endpoints], list[Awaitable[Any]]] | None = None,
                  ready_when: Callable[[], Awaitable[None]] | None = None) -> int:
        """Run until SIGTERM/SIGINT (or ``stop()``); ``companions`` start once the sockets are bound.
        systemd hears READY=1 once the roots are restored and ``ready_when`` (if given) returned."""
        config = self.config
        store = EventStore(self.state_dir / "events", retain_events=config.retain_events,
                           retain_age_s=config.retain_age_s, retain_bytes=config.retain_bytes,
                           fsync=config.fsync)
        try:
            store.open()
        except StoreBusy as exc:
            log.error("supervisor.state_dir_busy", state_dir=str(self.state_dir), error=str(exc))
            return exitcodes.STORE_BUSY
        registry = Registry(self.state_dir / "watchers.log", sync_each=config.fsync is FsyncPolicy.ALWAYS)
        restored = registry.open()
        for orphan in set(store.watchers()) - {w.id for w in restored}:
            store.forget_watcher(orphan)  # deleted while a crash kept the store from hearing of it
        async_context = zmq.asyncio.Context()
        plain_context: zmq.Context[Any] = zmq.Context()
        publisher = Publisher(plain_context, self.endpoints.pub, self.endpoints.fanout)
        pipeline = Pipeline(registry, store, publisher.publish)
        cookies = CookieJar()
        mirror = FsMirror(open_backend(config.backend), needs_dir=registry.needs_dir,
                          on_changes=pipeline.on_changes, on_cookie=cookies.on_cookie)
        pipeline.entries_below = mirror.entries
        await mirror.start()
        service = Service(registry, store, mirror, pipeline, cookies)
        rpc = RpcServer(async_context, self.endpoints.rpc,
                        {op: getattr(service, f"op_{op}") for op in protocol.OPS})
        self.endpoints.record(self.state_dir)
        log.info("supervisor.listening", rpc=self.endpoints.rpc, pub=self.endpoints.pub,
                 watchers=len(restored), last_event_id=store.last_seq, backend=config.backend or "auto",
                 compiled=f"{len(native.compiled_modules())}/{len(native.HOT_PATH)}")
        if stale := native.stale_modules():
            log.warning("supervisor.compiled_modules_stale", modules=stale,
                        note="older than their sources: they run the old code until rebuilt")
        signals = open_signal_queue(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        snapshot_path = self.state_dir / "snapshot.msgpack"
        tasks = [
            asyncio.create_task(rpc.serve(), name="rpc"),
            asyncio.create_task(self._restore(service, mirror, pipeline, registry, snapshot_path), name="restore"),
            asyncio.create_task(self._housekeeping(service, store, mirror, pipeline, registry, snapshot_path),
                                name="housekeeping"),
            # A burst's raw events, changes and records are garbage once it is stored and published.
            asyncio.create_task(trim_after_bursts(), name="trim"),
            asyncio.create_task(self._dispatch_signals(signals), name="signals"),
            asyncio.create_task(self._notify_ready(ready_when), name="notify"),
        ]
        companion_tasks = [asyncio.ensure_future(c) for c in (companions(self.endpoints) if companions else [])]
        try:
            await self._stop.wait()
        finally:
            log.info("supervisor.stopping")
            for task in companion_tasks:
                task.cancel()
            await asyncio.gather(*companion_tasks, return_exceptions=True)
            await rpc.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._writes:  # a late periodic write must neither outlive the files nor replace the last model
                await asyncio.wait(self._writes)
            pipeline.flush()
            with contextlib.suppress(Exception):
                mirror.save(snapshot_path)
            await mirror.close()
            publisher.close()
            store.close()
            registry.close()
            async_context.term()
            plain_context.term()
            log.info("supervisor.stopped")
        return exitcodes.OK

    async def _notify_ready(self, ready_when: Callable[[], Awaitable[None]] | None) -> None:
        await self.restored.wait()
        if ready_when is not None:
            await ready_when()
        sd_notify("READY=1")

    async def _dispatch_signals(self, signals: asyncio.Queue[signal.Signals]) -> None:
        while True:
            sig = await signals.get()
            handler = getattr(self, f"handle_{sig.name.lower()}", None)
            if handler is not None:
                handler()

    def handle_sigterm(self) -> None:
        log.info("supervisor.signal", signal="SIGTERM")
        self.stop()

    def handle_sigint(self) -> None:
        log.info("supervisor.signal", signal="SIGINT")
        self.stop()

    def handle_sighup(self) -> None:
        log.info("supervisor.signal", signal="SIGHUP", note="nothing to reload")

    async def _restore(self, service: Service, mirror: FsMirror, pipeline: Pipeline, registry: Registry,
                       snapshot_path: Any) -> None:
        """Rescan every root against the saved snapshot: what changed while we were down is emitted."""
        baseline = mirror.load(snapshot_path) if snapshot_path.exists() else {}
        started = time.monotonic()
        missing: set[str] = set()
        for watcher in registry.all():
            for root in watcher.roots:
                if root in missing or not os.path.exists(root):
                    missing.add(root)
                    continue
                try:
                    await mirror.add_root(root)
                except Exception as exc:  # one bad root must not stop the others
                    log.error("restore.root_failed", root=root, error=repr(exc))
                    missing.add(root)
        if missing:
            pipeline.on_changes([Change("root-deleted", root, None, time.time_ns()) for root in sorted(missing)])
        roots = [root for root in outermost(registry.roots()) if root not in missing]
        for root in roots:
            records = baseline_for(root, baseline)
            task = asyncio.create_task(mirror.rescan(root, baseline=records))
            service.rescans[root] = task
            try:
                await task
            except Exception as exc:
                log.error("restore.rescan_failed", root=root, error=repr(exc))
        service.ready = True
        collect_cycles_rarely()  # the restored model and the modules are here to stay
        self.restored.set()
        log.info("supervisor.ready", roots=len(roots), seconds=round(time.monotonic() - started, 3),
                 os_watches=mirror.watch_count())

    async def _housekeeping(self, service: Service, store: EventStore, mirror: FsMirror, pipeline: Pipeline,
                            registry: Registry, snapshot_path: Any) -> None:
        saved_at_changes = pipeline.changes_in
        last_save = last_retention = time.monotonic()
        waited_for_stats = 0
        while True:
            await asyncio.sleep(1.0)
            service.expire()
            mirror.check_roots()  # also when no event comes after a root's directory left its path
            if (fd := registry.detach_sync()) is not None:
                await self._write_off_loop(sync_and_close, fd)
            if time.monotonic() - last_retention >= 60:  # count and size limits apply on append already
                store.enforce_retention()
                last_retention = time.monotonic()
            due = time.monotonic() - last_save >= self.config.snapshot_interval_s
            if service.ready and (service.roots_added or due and pipeline.changes_in != saved_at_changes):
                # Right after a crawl its sizes are still being read, a chunk per loop turn; saving
                # now would read them all at once (~50 ms for 15,000) and stall every client.
                if mirror.reading_stats() and waited_for_stats < SAVE_WAITS_FOR_STATS:
                    waited_for_stats += 1
                    continue
                # The model already holds changes that wait in coalescing windows; a snapshot taken
                # now and a crash before they are stored would hide them from the restart's rescan.
                if pipeline.stats()["coalescing_pending"]:
                    if time.monotonic() - last_save < 3 * self.config.snapshot_interval_s:
                        continue
                    pipeline.flush()  # never postpone forever under a constant stream of changes
                waited_for_stats = 0
                roots, records = mirror.saved_form()
                service.roots_added = False  # before the write: a root added meanwhile is saved next time
                saved_at_changes, last_save = pipeline.changes_in, time.monotonic()
                await self._write_off_loop(save_model, snapshot_path, roots, records)

    async def _write_off_loop(self, write: Callable[..., None], *args: Any) -> None:
        """Run a blocking write (fsync: tens of milliseconds on a busy disk, more for a big model) in
        a thread, so events and requests do not wait for it."""
        future = asyncio.ensure_future(asyncio.to_thread(write, *args))
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)
        await asyncio.shield(future)


def baseline_for(root: str, saved: dict[str, list[Record]]) -> list[Record] | None:
    """The saved records below ``root``; ``None`` when nothing about it was saved (then the rescan
    can only compare with what ``add_root`` just found), ``[]`` when it was saved empty."""
    def related(key: str) -> bool:
        return key == root or key.startswith(root + "/") or root.startswith(key.rstrip("/") + "/")
    relevant = [records for key, records in saved.items() if related(key)]
    if not relevant:
        return None
    merged = {r[0]: r for records in relevant for r in records if r[0].startswith(root + "/") or r[0] == root}
    return list(merged.values())
