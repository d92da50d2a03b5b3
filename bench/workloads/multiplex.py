"""Workload 5, multiplexing (tools with one instance serving many watchers): with the tree's root
watched, N more watchers on overlapping subtrees (level-1 directories and the level-2 ones inside
them). OS watches held against the distinct directories covered, RSS growth per watcher, and the
create round trip of each watcher (p50/p95)."""

from __future__ import annotations

import os
import time

from bench.peers.base import Peer
from bench.procstats import inotify_watches
from bench.stats import summary_ms
from bench.workloads.base import Context, Metrics, Workload, watched_tree

SETTLE_BEFORE_S = 2.5
"""How long after the root's watch is ready the baseline RSS is taken: work a tool defers after its
first crawl (fswatch reads the crawl's sizes in the background and saves its model within ~2 s)
belongs to that crawl, not to the watchers created next. The same wait for every tool."""


def overlapping_subtrees(root: str, dirs: list[str], n: int) -> list[str]:
    """The shallowest directories first, so every level-2 pick lies inside a level-1 pick."""
    by_depth = sorted(dirs, key=lambda d: (os.path.relpath(d, root).count(os.sep), d))
    return by_depth[:n]


class Multiplex(Workload):
    name = "multiplex"
    title = "multiplexing"
    key = "watches_per_distinct_dir"

    def applies(self, peer: Peer) -> bool:
        return peer.multiplexes and super().applies(peer)

    def run(self, peer: Peer, ctx: Context) -> Metrics:
        s = ctx.sizes
        with watched_tree(peer, ctx, "multiplex") as w:
            session = w.session
            pids = session.pids()
            time.sleep(SETTLE_BEFORE_S)
            watches_before = inotify_watches(pids)
            rss_before = w.rss.sample()
            subtrees = overlapping_subtrees(w.tree.root, w.tree.dirs, s.multiplex_watchers)
            created = [session.command("create", f"m{i}", path, timeout=s.timeout_s)
                       for i, path in enumerate(subtrees)]
            time.sleep(0.5)  # let lazily started work (crawls of the new watchers) settle
            watches_after = inotify_watches(pids)
            rss_after = w.rss.sample()
            distinct = len(w.tree.dirs) + 1
            create = summary_ms(created)
            return {
                "watchers": len(subtrees) + 1,
                "distinct_dirs": distinct,
                "watches_root_only": watches_before,
                "watches_all": watches_after,
                "watches_per_distinct_dir": round(watches_after / distinct, 3),
                "rss_growth_kb_per_watcher": round((rss_after - rss_before) / 1024 / len(subtrees), 1),
                "create_p50_ms": create["p50"],
                "create_p95_ms": create["p95"],
            }
