"""The supervisor's ingest cost per stage, in one process, on a real burst's raw inotify events.

``python -m bench.ingest [--files N] [--dirs N] [--watchers N] [--followed N] [--coalesce-ms N]``

A developer's tool beside ``bench/run`` (which measures end to end against other tools): it makes the
benchmark's burst (``bench.workloads.burst.run_burst``: files created across ``--dirs`` directories,
then a quarter each appended, deleted and renamed), keeps the raw inotify bytes, then times
what the supervisor does with them: parsing and the mirror (raw events to changes), and the
pipeline (coalescing, routing, storing in a real store, publishing on a real XPUB socket with
``--followed`` SUB sockets subscribed) with ``--watchers`` watchers over the tree (default rules, at
three different roots) and ``--front-ends`` subscribers of the front-ends' fanout socket. It reaches
into the supervisor's internals on purpose: that is what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import zmq

from bench.workloads.burst import run_burst
from fswatch_supervisor.backends.inotify import InotifyBackend
from fswatch_supervisor.changes import Change
from fswatch_supervisor.mirror import FsMirror
from fswatch_supervisor.pipeline import Pipeline
from fswatch_supervisor.registry import Registry
from fswatch_supervisor.rpc import Publisher
from fswatch_supervisor.rules import RuleSet
from fswatch_supervisor.store.eventstore import EventStore
from fswatch_supervisor.watchers import Watcher


async def captured_burst(backend: InotifyBackend, dirs: list[str], files: int) -> list[list[bytes]]:
    """Do the benchmark's burst (``run_burst``); return the raw inotify bytes it produced, in the
    slices the backend's drain thread hands the loop (it keeps the kernel queue from overflowing
    meanwhile), so they can be fed to the mirror in the same batches as in the supervisor."""
    drainer = backend._drainer
    assert drainer is not None
    chunks: list[list[bytes]] = []
    drainer._on_chunks = chunks.append  # kept for this tool instead of handed to the mirror
    run_burst(dirs, files)  # blocks the loop: only the thread reads, into its backlog
    quiet = 0
    while quiet < 10:  # until the thread has read everything and handed it over
        before = len(chunks)
        await asyncio.sleep(0.01)
        quiet = quiet + 1 if len(chunks) == before and not drainer.backlog_bytes() else 0
    drainer.stop()
    return chunks


class _Clock:
    """Stands in for the pipeline's wall clock: the time of the changes being fed, so coalescing
    windows open and close as they did when the burst happened."""

    def __init__(self) -> None:
        self.now = 0

    def time_ns(self) -> int:
        return self.now


def pipeline_cpu(changes: list[Change], registry: Registry, store: EventStore,
                 publish: Callable[[Any], None], batch: int) -> float:
    """CPU seconds the pipeline takes for ``changes``, fed ``batch`` at a time in their own time."""
    import fswatch_supervisor.pipeline as pipeline_module

    pipeline = Pipeline(registry, store, publish)
    clock = _Clock()
    with mock.patch.object(pipeline_module, "time", clock):
        fed = [copy.copy(c) for c in changes]
        start = time.process_time()
        for i in range(0, len(fed), batch):
            clock.now = fed[i].time_ns
            pipeline.on_changes(fed[i:i + batch])
            if pipeline._timer is not None:
                pipeline._timer.cancel()
                pipeline._timer = None
                pipeline.run_due()
        pipeline.flush()
        return time.process_time() - start


async def measure(args: argparse.Namespace, work: Path) -> list[tuple[str, float, int]]:
    root = work / "tree"
    dirs = [str(root / f"d{i:04d}") for i in range(args.dirs)]
    for d in dirs:
        os.makedirs(d)
    changes: list[Change] = []
    backend = InotifyBackend()
    mirror = FsMirror(backend, needs_dir=lambda _d: True, on_changes=changes.extend)
    await mirror.start()
    try:
        await mirror.add_root(str(root))
        chunks = await captured_burst(backend, dirs, args.files)
        start = time.process_time()
        for batch in chunks:
            for chunk in batch:
                backend._parse(chunk, [])
        parse_s = time.process_time() - start
        start = time.process_time()
        for batch in chunks:
            backend._on_chunks(batch)
        mirror._pairer.flush() if mirror._pairer is not None else None
        mirror_s = time.process_time() - start
    finally:
        await mirror.close()

    registry = Registry(work / "watchers.log", sync_each=False)
    registry.open()
    roots = [str(root), str(work), str(work.parent)]
    for k in range(args.watchers):
        path = roots[k % len(roots)]
        registry.add(Watcher(id=f"w_{k:04d}", serial=k + 1, rules=RuleSet.for_path(path), path=path, tags={},
                             coalesce_ms=args.coalesce_ms, ttl_s=None, created_ns=0))
    store = EventStore(work / "events", retain_events=10_000_000, retain_bytes=8 * 2**30)
    store.open()
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    publisher = Publisher(context, f"ipc://{work}/pub.ipc", f"ipc://{work}/fanout.ipc")
    followers = []
    for _ in range(args.front_ends):  # a front-end takes every event once, with its watcher ids
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(f"ipc://{work}/fanout.ipc")
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        followers.append(sub)
    for k in range(args.followed):
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.connect(f"ipc://{work}/pub.ipc")
        sub.setsockopt(zmq.SUBSCRIBE, f"w_{k:04d}".encode())
        followers.append(sub)
    try:
        await asyncio.sleep(0.3)  # subscriptions reach the XPUB socket
        events_before = store.last_seq
        routed_s = pipeline_cpu(changes, registry, store, publisher.publish, args.batch)
        events = store.last_seq - events_before
    finally:
        for sub in followers:
            sub.close(linger=0)
        publisher.close()
        store.close()
        registry.close()
        context.term()
    out = len(changes)
    return [("parse (raw bytes to events)", parse_s, out), ("mirror (parse + pair + normalise)", mirror_s, out),
            (f"pipeline ({args.watchers} watchers, {args.followed} followed, {args.front_ends} front-ends)",
             routed_s, events)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--dirs", type=int, default=500)
    parser.add_argument("--watchers", type=int, default=1)
    parser.add_argument("--followed", type=int, default=0, help="watchers with a ZeroMQ subscriber")
    parser.add_argument("--front-ends", type=int, default=0,
                        help="subscribers of the front-ends' fanout socket (each event once, however many watchers)")
    parser.add_argument("--coalesce-ms", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500, help="changes per pipeline call")
    parser.add_argument("--base-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fswatch-ingest-", dir=args.base_dir))
    try:
        rows = asyncio.run(measure(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'stage':45s} {'CPU ms':>8s} {'items':>8s} {'µs/item':>8s}")
    for name, seconds, items in rows:
        print(f"{name:45s} {seconds * 1000:8.0f} {items:8d} {seconds * 1e6 / max(items, 1):8.1f}")


if __name__ == "__main__":
    main()
