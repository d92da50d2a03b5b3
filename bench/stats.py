"""Small statistics helpers (nearest-rank percentiles, no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def summary_ms(values_ns: Sequence[int]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds of a list of nanosecond durations."""
    ms = [v / 1e6 for v in values_ns]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else None,
    }
