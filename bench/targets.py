"""The issue's targets for fswatch, checked against the figures of the same run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Results = dict[str, dict[str, dict[str, Any]]]  # workload -> peer -> metrics
Check = Callable[[Results], tuple[float | None, float | None]]  # -> (fswatch value, limit)


def _get(results: Results, workload: str, peer: str, key: str) -> float | None:
    value = results.get(workload, {}).get(peer, {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Target:
    text: str
    check: Check
    at_most: bool = True


def _vs(workload: str, key: str, peer: str, factor: float = 1.0, mine: str = "fswatch") -> Check:
    def check(r: Results) -> tuple[float | None, float | None]:
        other = _get(r, workload, peer, key)
        return _get(r, workload, mine, key), None if other is None else other * factor
    return check


def _at_size(check: Check, workload: str, size_key: str, size: int) -> Check:
    """``check``, with no limit when the run's ``workload`` was not of the size the issue names
    (its figure is still shown)."""
    def sized(r: Results) -> tuple[float | None, float | None]:
        value, limit = check(r)
        return value, limit if _get(r, workload, "fswatch", size_key) == size else None
    return sized


def _fixed(workload: str, key: str, limit: float, peer: str = "fswatch") -> Check:
    return lambda r: (_get(r, workload, peer, key), limit)


TARGETS = [
    Target("burst completeness 100 %", _fixed("burst", "completeness_pct", 100.0), at_most=False),
    Target("burst net-effect completeness 100 %", _fixed("burst", "net_completeness_pct", 100.0), at_most=False),
    # The issue sets the drain target for 20k files; a --large run shows its figure without one.
    Target("burst drain (20k files) <= watchman's",
           _at_size(_vs("burst", "drain_ms", "watchman"), "burst", "files", 20000)),
    Target("latency coalesce_ms 0: p50 <= 2 ms", _fixed("latency", "p50_ms", 2.0, "fswatch-c0")),
    Target("latency coalesce_ms 0: p99 <= 10 ms", _fixed("latency", "p99_ms", 10.0, "fswatch-c0")),
    Target("latency default coalesce: p99 <= 50 + 15 ms", _fixed("latency", "p99_ms", 65.0)),
    Target("setup <= watchman's", _vs("setup", "ready_ms", "watchman")),
    Target("setup <= 1.5x inotifywait's", _vs("setup", "ready_ms", "inotifywait", 1.5)),
    # inotifywait has no window to wait out; at coalesce_ms 0 neither has fswatch (both rows shown).
    Target("setup, coalesce_ms 0: <= 1.5x inotifywait's",
           _vs("setup", "ready_ms", "inotifywait", 1.5, mine="fswatch-c0")),
    Target("new-dir race 100 %", _fixed("newdir", "reported_pct", 100.0), at_most=False),
    Target("OS watches, overlapping watchers: 1.0x distinct dirs",
           _fixed("multiplex", "watches_per_distinct_dir", 1.0)),
    Target("watcher create p95 <= 5 ms", _fixed("multiplex", "create_p95_ms", 5.0)),
    Target("RSS growth <= 50 KB/watcher", _fixed("multiplex", "rss_growth_kb_per_watcher", 50.0)),
    Target("pull >= 100,000 events/s", _fixed("serving", "pull_events_per_s", 100000.0), at_most=False),
    Target("quiet-watcher pull <= 10 ms (p99)", _fixed("serving", "quiet_pull_p99_ms", 10.0)),
    Target("SSE fan-out: 0 clients lost events", _fixed("serving", "sse_clients_lost_events", 0.0)),
    Target("SSE fan-out: last event <= 1 s after the burst", _fixed("serving", "sse_last_delivery_ms", 1000.0)),
    Target("RSS after the burst <= 1.5x watchman's", _vs("burst", "rss_after_mb", "watchman", 1.5)),
]


def check_targets(results: Results) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
        value, limit = target.check(results)
        if value is None or limit is None:
            verdict = "n/a"
        else:
            verdict = "met" if (value <= limit if target.at_most else value >= limit) else "MISSED"
        rows.append({"target": target.text, "value": value, "limit": limit, "verdict": verdict})
    return rows
