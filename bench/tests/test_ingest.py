import argparse
import asyncio
from pathlib import Path

from bench.ingest import measure


def test_a_small_burst_is_measured_stage_by_stage(tmp_path: Path) -> None:
    args = argparse.Namespace(files=200, dirs=5, watchers=3, followed=1, front_ends=1, coalesce_ms=0, batch=50)
    rows = asyncio.run(measure(args, tmp_path))
    assert [name.split(" ")[0] for name, _s, _n in rows] == ["parse", "mirror", "pipeline"]
    # 200 created, then 50 each appended, deleted and renamed: 300 changes, plus one for each append
    # read in a later batch than its file's creation (an append in the same batch is no news); the
    # drain thread's reads decide that split. With window 0 every change is one stored event.
    parsed, normalised, stored = (n for _name, _s, n in rows)
    assert 300 <= parsed == normalised == stored <= 350
    assert all(seconds > 0 for _name, seconds, _n in rows)
