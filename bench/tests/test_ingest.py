import argparse
import asyncio
from pathlib import Path

from bench.ingest import measure


def test_a_small_burst_is_measured_stage_by_stage(tmp_path: Path) -> None:
    args = argparse.Namespace(files=200, dirs=5, watchers=3, followed=1, front_ends=1, coalesce_ms=0, batch=50)
    rows = asyncio.run(measure(args, tmp_path))
    assert [name.split(" ")[0] for name, _s, _n in rows] == ["parse", "mirror", "pipeline"]
    # 200 created, then 50 each appended, deleted and renamed, all read in one batch (a few KB): the
    # appends to files created in that batch are no news, so 300 changes and (window 0) 300 events
    assert [n for _name, _s, n in rows] == [300, 300, 300]
    assert all(seconds > 0 for _name, seconds, _n in rows)
