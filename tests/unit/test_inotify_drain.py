"""The drain thread keeps the kernel queue empty while the event loop is busy."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from fswatch_supervisor.backends.drain import DELIVER_BYTES, READ_SIZE, QueueDrainer
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


@async_test
async def test_a_backlog_reaches_the_loop_a_slice_at_a_time() -> None:
    # A backlog handed over whole would be processed as one batch, and nothing would leave the
    # supervisor (no event, no timer, no reply) until all of it was done.
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    turns = 0
    slices: list[tuple[int, int]] = []  # (bytes, loop turns seen so far)

    def tick() -> None:
        nonlocal turns
        turns += 1
        loop.call_soon(tick)

    drainer = QueueDrainer(read_end, loop, lambda chunks: slices.append((sum(map(len, chunks)), turns)))
    drainer.start()
    try:
        backlog = 20 * DELIVER_BYTES
        os.set_blocking(write_end, True)
        written = 0
        while written < backlog:  # the loop is blocked meanwhile: only the thread reads
            written += os.write(write_end, b"x" * min(65536, backlog - written))
        deadline = time.monotonic() + 10
        while drainer.backlog_bytes() < backlog and time.monotonic() < deadline:
            time.sleep(0.01)  # noqa: ASYNC251 - the loop must stay blocked while the backlog builds
        tick()
        while sum(n for n, _ in slices) < backlog:
            assert time.monotonic() < deadline, slices
            await asyncio.sleep(0.01)
        assert len(slices) >= backlog // (DELIVER_BYTES + READ_SIZE)
        assert all(n < DELIVER_BYTES + READ_SIZE for n, _ in slices)
        seen = [t for _, t in slices]
        assert seen == sorted(seen) and len(set(seen)) == len(seen), "other callbacks run between slices"
    finally:
        drainer.stop()
        os.close(read_end)
        os.close(write_end)
