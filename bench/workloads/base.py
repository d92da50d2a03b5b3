"""Shared workload machinery: a fresh tree per run, a watching peer, its RSS sampled throughout."""

from __future__ import annotations

import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.peers.base import Peer, wait_watching
from bench.procstats import PeakRss
from bench.session import Session
from bench.sizes import Sizes
from bench.tree import Tree, make_tree

Metrics = dict[str, Any]


@dataclass
class Context:
    sizes: Sizes
    workdir: str  # this run's scratch directory; each session gets its own below it
    base_dir: str = "/tmp"  # where the watched trees are made


@dataclass
class Watched:
    session: Session
    tree: Tree
    t0: int          # CLOCK_REALTIME ns when the watch was asked for
    ready_ts: int    # arrival stamp of the first probe reported from the deepest directory
    rss: PeakRss


class Workload(ABC):
    name = ""
    title = ""
    key = ""  # the figure the table relates between peers

    def applies(self, peer: Peer) -> bool:
        return peer.only is None or self.name in peer.only

    @abstractmethod
    def run(self, peer: Peer, ctx: Context) -> Metrics:
        """Run on a fresh tree and return the figures (raises PeerError if the peer failed)."""


@contextmanager
def watched_tree(peer: Peer, ctx: Context, label: str, dirs: int | None = None) -> Iterator[Watched]:
    """A fresh tree watched by ``peer``, returned once a change in its deepest directory is seen
    and the probe events have died down; everything is stopped and removed afterwards."""
    tree = make_tree(dirs if dirs is not None else ctx.sizes.dirs, label, ctx.base_dir)
    workdir = tempfile.mkdtemp(dir=ctx.workdir, prefix=f"{peer.name}-{label}-")
    session: Session | None = None
    try:
        session, t0 = peer.start(tree.root, workdir)
        live = session
        with PeakRss(lambda: live.pids()) as rss:
            ready_ts = wait_watching(session, tree.deepest, ctx.sizes.timeout_s)
            session.wait(lambda r: "w0" in r.acks, ctx.sizes.timeout_s)
            # late probe reports name only probe files, which no workload counts
            session.wait_quiet(0.1, time.monotonic() + ctx.sizes.timeout_s)
            yield Watched(session, tree, t0, ready_ts, rss)
    finally:
        if session is not None:
            session.stop()
        tree.remove()


SETTLED_S = 0.3  # once every expected path was reported: idle this long ends a stream's trailing events


def settle(session: Session, start_index: int, expected: set[str], quiet: float, timeout: float) -> set[str]:
    """Wait until the tool is done reporting; returns the paths it named since ``start_index``.

    Done means idle for ``SETTLED_S`` once every expected path was named, else idle for ``quiet``
    (a tool may batch for a long time), or ``timeout`` seconds. Idleness is measured from the
    later of the last event and this call, so a tool that lags a burst is given its time.
    """
    seen: set[str] = set()
    missing = set(expected)
    index = start_index
    begun = time.monotonic()
    deadline = begun + timeout
    while (now := time.monotonic()) < deadline:
        events = session.events_from(index)
        index += len(events)
        for ev in events:
            seen.add(ev.path)
            if ev.src:
                seen.add(ev.src)
        missing -= seen
        idle = now - max(session.last_rx, begun)
        if idle >= (SETTLED_S if not missing else quiet):
            break
        time.sleep(0.02)
    return seen


def reported_paths(session: Session, start_index: int) -> set[str]:
    paths: set[str] = set()
    for ev in session.events_from(start_index):
        paths.add(ev.path)
        if ev.src:
            paths.add(ev.src)
    return paths


def ms(ns: int | float) -> float:
    return round(ns / 1e6, 3)


def mb(n_bytes: int) -> float:
    return round(n_bytes / 1e6, 1)
