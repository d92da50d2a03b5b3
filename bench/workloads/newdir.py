"""Workload 4, new-directory race: ``mkdir -p raceN/b/c`` then files in all three new directories at
once; the share of those files that the tool reports. A watcher that adds its watch on a new
directory only after it sees the directory misses files made in between unless it rescans."""

from __future__ import annotations

import os

from bench.peers.base import Peer
from bench.workloads.base import Context, Metrics, Workload, settle, watched_tree

FILES_PER_DIR = 2


def race(root: str, rounds: int) -> tuple[list[str], list[str]]:
    """Make the directories and files; returns (directories, files) created."""
    dirs: list[str] = []
    files: list[str] = []
    for r in range(rounds):
        a = os.path.join(root, f"race{r}")
        levels = [a, os.path.join(a, "b"), os.path.join(a, "b", "c")]
        os.makedirs(levels[-1])
        dirs.extend(levels)
        for d in levels:
            for i in range(FILES_PER_DIR):
                path = os.path.join(d, f"r{i}.txt")
                with open(path, "wb") as fh:
                    fh.write(b"race\n")
                files.append(path)
    return dirs, files


class NewDirRace(Workload):
    name = "newdir"
    title = "new-dir race"
    key = "reported_pct"

    def run(self, peer: Peer, ctx: Context) -> Metrics:
        s = ctx.sizes
        with watched_tree(peer, ctx, "newdir") as w:
            base = w.session.event_count()
            dirs, files = race(w.tree.root, s.race_rounds)
            seen = settle(w.session, base, set(files) | set(dirs), s.quiet_s, s.timeout_s)
            deepest = [f for f in files if os.sep + os.path.join("b", "c") + os.sep in f]
            return {
                "files": len(files),
                "reported_pct": round(100 * len(set(files) & seen) / len(files), 2),
                "deepest_reported_pct": round(100 * len(set(deepest) & seen) / len(deepest), 2),
                "dirs_reported_pct": round(100 * len(set(dirs) & seen) / len(dirs), 2),
            }
