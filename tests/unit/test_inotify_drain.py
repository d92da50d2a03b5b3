"""The drain thread keeps the kernel queue empty while the event loop is busy."""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.test_mirror_rescan import max_queued_events
from tests.unit.test_mirror_support import Running, async_test, make_tree


@async_test
async def test_a_blocked_loop_does_not_overflow_the_kernel_queue(tmp_path: Path) -> None:
    count = max_queued_events() + 2000
    root = tmp_path / "root"
    make_tree(root, ["d"])
    async with Running() as r:
        await r.mirror.add_root(str(root))
        # The loop is blocked for the whole burst; only the drain thread reads the inotify fd.
        for i in range(count):
            os.close(os.open(f"{root}/d/n{i}", os.O_CREAT | os.O_WRONLY, 0o644))
        await r.settle(root, timeout=60)
        assert not [c for c in r.changes if c.action == "overflow"]
        assert len(set(r.paths("created"))) == count
        assert not [c for c in r.changes if c.rescan]
