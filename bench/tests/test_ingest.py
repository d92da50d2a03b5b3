import argparse
import asyncio
from pathlib import Path

from bench.ingest import measure


def test_a_small_burst_is_measured_stage_by_stage(tmp_path: Path) -> None:
    args = argparse.Namespace(files=200, dirs=5, watchers=3, followed=1, front_ends=1, coalesce_ms=0, batch=50)
    rows = asyncio.run(measure(args, tmp_path))
    assert [name.split(" ")[0] for name, _s, _n in rows] == ["parse", "mirror", "pipeline"]
    # 200 created, 50 appended, 50 deleted, 50 renamed: one change and (window 0) one event each
    assert [n for _name, _s, n in rows] == [350, 350, 350]
    assert all(seconds > 0 for _name, seconds, _n in rows)
