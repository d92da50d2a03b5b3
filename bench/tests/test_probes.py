"""The setup probe schedule: one for every tool, precise to ~10 %, and quiet enough for watchman."""

import itertools

from bench.peers.base import probe_gaps


def writes(until_s: float) -> list[float]:
    """When the probes are written (s after the watch was asked for), up to ``until_s``."""
    times, now = [], 0.0
    for gap in probe_gaps():
        times.append(now)
        if now > until_s:
            return times
        now += gap
    raise AssertionError("unreachable")


def test_a_tool_ready_at_t_is_probed_within_5_ms_plus_10_percent() -> None:
    probes = writes(3.0)
    for ready_ms in range(1, 3000):
        t = ready_ms / 1000
        late = min(p for p in probes if p >= t) - t
        assert late <= 0.005 + 0.1 * t + 1e-9, (t, late)


def test_gaps_grow_past_a_20_ms_settle_by_200_ms_and_stay_bounded() -> None:
    gaps = list(itertools.islice(probe_gaps(), 200))
    assert gaps[0] == 0.005
    assert gaps == sorted(gaps) and max(gaps) == 0.25
    elapsed = 0.0
    for gap in gaps:
        if elapsed >= 0.2:
            assert gap >= 0.02
        elapsed += gap
