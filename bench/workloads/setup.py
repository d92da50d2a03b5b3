"""Workload 1, setup: watch a fresh tree; time until a change in its deepest directory is reported
(``ready_ms``, probed as ``bench.peers.base.probe_gaps`` says), peak RSS of all the tool's
processes, and inotify watches held. ``ack_ms`` is the watch request's own round trip, where the
tool has one: fswatch's ``POST /watchers`` until its 201, watchman's ``watch-project``; inotifywait
watches from its start (0)."""

from __future__ import annotations

from bench.peers.base import Peer
from bench.procstats import inotify_watches
from bench.workloads.base import Context, Metrics, Workload, mb, ms, watched_tree


class Setup(Workload):
    name = "setup"
    title = "setup"
    key = "ready_ms"

    def run(self, peer: Peer, ctx: Context) -> Metrics:
        with watched_tree(peer, ctx, "setup") as w:
            w.rss.sample()
            return {
                "dirs": ctx.sizes.dirs,
                "ready_ms": ms(w.ready_ts - w.t0),
                "ack_ms": ms(w.session.reports.acks["w0"][0]),
                "peak_rss_mb": mb(w.rss.peak),
                "inotify_watches": inotify_watches(w.session.pids()),
                "watches_per_dir": round(inotify_watches(w.session.pids()) / (ctx.sizes.dirs + 1), 2),
            }
