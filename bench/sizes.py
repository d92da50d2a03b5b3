"""Workload sizes: presets (``--smoke``, default, ``--large``) and per-size flags override them."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Sizes:
    dirs: int = 5000                 # setup / burst / latency / race / multiplex tree
    burst_files: int = 20000         # burst: files created, then 1/4 each modified, deleted, renamed
    latency_writes: int = 200        # latency: appends to existing files ...
    latency_interval_ms: int = 20    # ... this far apart
    race_rounds: int = 50            # new-dir race: rounds of mkdir -p a/b/c + files inside
    multiplex_watchers: int = 100    # multiplexing: watchers on overlapping subtrees
    pull_events: int = 50000         # serving: events pulled over HTTP in pages of 1,000
    foreign_events: int = 200000     # serving: other watchers' events in the store for the quiet pull
    sse_clients: int = 200           # serving: SSE fan-out clients ...
    sse_events: int = 10000          # ... each receiving a burst of this many events
    quiet_s: float = 2.0             # an event stream counts as drained after this long without events
    timeout_s: float = 120.0         # bound on every wait of a workload


SMOKE = Sizes(dirs=200, burst_files=1000, latency_writes=30, latency_interval_ms=10, race_rounds=5,
              multiplex_watchers=10, pull_events=3000, foreign_events=6000, sse_clients=10, sse_events=500,
              quiet_s=0.6, timeout_s=30.0)
DEFAULT = Sizes()
LARGE = Sizes(dirs=50000, burst_files=100000, foreign_events=1000000, quiet_s=10.0)
"""A tool may go quiet for seconds while it takes in a 100k burst (watchman reports after settling)."""
PRESETS = {"smoke": SMOKE, "default": DEFAULT, "large": LARGE}


def size_fields() -> list[tuple[str, type]]:
    return [(f.name, float if f.type in ("float", float) else int) for f in fields(Sizes)]


def with_overrides(base: Sizes, overrides: dict[str, Any]) -> Sizes:
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
