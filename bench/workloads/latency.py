"""Workload 3, latency: appends to distinct existing files at a fixed pace; for each, the first
event naming that file minus the return of the write(2) call."""

from __future__ import annotations

import os
import time

from bench.peers.base import Peer
from bench.stats import summary_ms
from bench.workloads.base import Context, Metrics, Workload, settle, watched_tree


def paced_appends(files: list[str], interval_s: float) -> list[tuple[str, int, int]]:
    """Append once to each file, one every ``interval_s``; (path, ns before write, ns at return)."""
    done: list[tuple[str, int, int]] = []
    start = time.monotonic()
    for i, path in enumerate(files):
        delay = start + i * interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        before = time.time_ns()
        os.write(fd, b"latency\n")
        returned = time.time_ns()
        os.close(fd)
        done.append((path, before, returned))
    return done


class Latency(Workload):
    name = "latency"
    title = "latency"
    key = "p50_ms"

    def run(self, peer: Peer, ctx: Context) -> Metrics:
        s = ctx.sizes
        with watched_tree(peer, ctx, "latency") as w:
            session = w.session
            all_files = w.tree.files()
            step = max(len(all_files) // s.latency_writes, 1)
            files = all_files[::step][: s.latency_writes]
            base = session.event_count()
            writes = paced_appends(files, s.latency_interval_ms / 1000)
            settle(session, base, set(files), s.quiet_s, s.timeout_s)
            first: dict[str, int] = {}
            for ev in session.events_from(base):
                first.setdefault(ev.path, ev.ts)
            lat = [first[path] - returned for path, _before, returned in writes if path in first]
            return {
                "writes": len(writes),
                "reported": len(lat),
                **{f"{k}_ms": v for k, v in summary_ms(lat).items() if k != "n"},
            }
