"""Workload 2, burst: N files created as fast as possible across the tree, then a quarter each
modified, deleted and renamed. Completeness = share of touched paths (every created path and every
rename target) named by at least one event; net completeness = the same share over the paths whose
state at the end differs from the start (files still there, rename targets): a file created and then
deleted or renamed within a tool's coalescing window has no net effect, so a coalescing tool may
rightly stay silent about it; drain = last event's arrival minus the last operation's return;
whether the tool said it lost events (overflow)."""

from __future__ import annotations

import os
import time

from bench.peers.base import Peer
from bench.procstats import inotify_watches, pss_bytes
from bench.workloads.base import Context, Metrics, Workload, mb, ms, settle, watched_tree


def run_burst(dirs: list[str], n_files: int) -> tuple[list[str], list[str], int, int]:
    """Do the operations; returns (created, rename targets, start ns, last-operation-return ns)."""
    created = [os.path.join(dirs[i % len(dirs)], f"b{i}.dat") for i in range(n_files)]
    q = n_files // 4
    moved = [p[:-4] + ".moved" for p in created[2 * q:3 * q]]
    payload = b"burst\n"
    start = time.time_ns()
    for path in created:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        os.close(fd)
    for path in created[:q]:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, payload)
        os.close(fd)
    for path in created[q:2 * q]:
        os.unlink(path)
    for src, dst in zip(created[2 * q:3 * q], moved, strict=True):
        os.rename(src, dst)
    return created, moved, start, time.time_ns()


class Burst(Workload):
    name = "burst"
    title = "burst"
    key = "drain_ms"

    def run(self, peer: Peer, ctx: Context) -> Metrics:
        s = ctx.sizes
        with watched_tree(peer, ctx, "burst") as w:
            session = w.session
            base = session.event_count()
            overflows_before = len(session.reports.overflows)
            resumes_before = session.reports.resumes
            created, moved, start, last_op = run_burst(w.tree.dirs, s.burst_files)
            touched = set(created) | set(moved)
            quarter = s.burst_files // 4
            net = set(created[:quarter]) | set(created[3 * quarter:]) | set(moved)
            seen = settle(session, base, touched, s.quiet_s, s.timeout_s)
            events = session.events_from(base)
            # the drain ends with the last event about the burst (late probe reports do not count)
            last = max((e.ts for e in events if e.path in touched or e.src in touched), default=None)
            w.rss.sample()
            return {
                "files": s.burst_files,
                "ops_s": round((last_op - start) / 1e9, 3),
                "completeness_pct": round(100 * len(touched & seen) / len(touched), 2),
                "net_completeness_pct": round(100 * len(net & seen) / len(net), 2),
                "missed": len(touched - seen),
                "events": len(events),
                "overflow": len(session.reports.overflows) > overflows_before,
                "stream_resumes": session.reports.resumes - resumes_before,
                "drain_ms": ms(last - last_op) if last is not None else None,
                "rss_after_mb": mb(w.rss.last),
                "pss_after_mb": mb(pss_bytes(session.pids())),
                "peak_rss_mb": mb(w.rss.peak),
                "inotify_watches": inotify_watches(session.pids()),
            }
