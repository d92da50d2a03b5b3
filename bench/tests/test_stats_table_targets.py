from bench.stats import percentile, summary_ms
from bench.table import workload_table
from bench.targets import check_targets


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([], 50) is None
    assert summary_ms([1_000_000, 3_000_000])["p50"] == 1.0


def test_table_relates_each_peer_to_fswatch_and_shows_failures() -> None:
    text = workload_table("setup", "ready_ms", {
        "fswatch": {"ready_ms": 100.0},
        "watchman": {"ready_ms": 250.0},
        "chokidar": {"error": "did not start"},
    })
    lines = text.splitlines()
    assert "ready_ms ÷ fswatch" in lines[2]
    assert any("watchman" in line and "2.50x" in line for line in lines)
    assert any("chokidar" in line and "failed: did not start" in line for line in lines)


def test_table_falls_back_to_inotifywait_as_reference() -> None:
    text = workload_table("burst", "drain_ms", {"inotifywait": {"drain_ms": 2.0}, "watchdog": {"drain_ms": 6.0}})
    assert "drain_ms ÷ inotifywait" in text and "3.00x" in text


def test_targets_compare_against_limits_and_peers_of_the_same_run() -> None:
    results = {
        "burst": {"fswatch": {"files": 20000, "completeness_pct": 99.5, "drain_ms": 10.0, "rss_after_mb": 80.0},
                  "watchman": {"drain_ms": 40.0, "rss_after_mb": 60.0}},
        "latency": {"fswatch-c0": {"p50_ms": 1.2, "p99_ms": 12.0}},
    }
    verdicts = {row["target"]: row["verdict"] for row in check_targets(results)}
    assert verdicts["burst completeness 100 %"] == "MISSED"
    assert verdicts["burst drain (20k files) <= watchman's"] == "met"
    assert verdicts["latency coalesce_ms 0: p50 <= 2 ms"] == "met"
    assert verdicts["latency coalesce_ms 0: p99 <= 10 ms"] == "MISSED"
    assert verdicts["RSS after the burst <= 1.5x watchman's"] == "met"
    assert verdicts["setup <= watchman's"] == "n/a"


def test_the_drain_target_applies_to_the_20k_burst_only() -> None:
    results = {"burst": {"fswatch": {"files": 100000, "drain_ms": 3000.0}, "watchman": {"drain_ms": 2000.0}}}
    row = next(r for r in check_targets(results) if r["target"].startswith("burst drain"))
    assert (row["value"], row["limit"], row["verdict"]) == (3000.0, None, "n/a")
