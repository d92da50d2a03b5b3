"""Helper process for the kill -9 test: append batches forever, acknowledging each on stdout.

Usage: ``python -m tests.unit.store_crash_writer STORE_DIR FSYNC_POLICY SEGMENT_BYTES``

For each batch that ``append`` returned, prints ``ACK <batch> <first seq> <last seq>`` and flushes,
so every line the parent reads names events that the store acknowledged. Event ``i`` of batch ``b``
has path ``/crash/<b>/<i>`` and goes to watcher ``all`` and to ``odd`` or ``even`` by ``i``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fswatch_supervisor.store import EventStore, FsyncPolicy, NewEvent

BATCH = 400


def batch_events(batch: int) -> list[NewEvent]:
    now = time.time_ns()
    return [NewEvent("created", f"/crash/{batch}/{i}" + "x" * (i % 50), "file", now,
                     ("all", "odd" if i % 2 else "even")) for i in range(BATCH)]


def main() -> None:
    directory, policy, segment_bytes = Path(sys.argv[1]), FsyncPolicy(sys.argv[2]), int(sys.argv[3])
    store = EventStore(directory, fsync=policy, segment_bytes=segment_bytes, fsync_interval_s=0.05)
    store.open()
    print("READY", store.last_seq, flush=True)
    batch = 0
    while True:
        appended = store.append(batch_events(batch))
        print("ACK", batch, appended[0][0], appended[-1][0], flush=True)
        batch += 1


if __name__ == "__main__":
    main()
