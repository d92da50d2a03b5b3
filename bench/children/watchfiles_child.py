"""watchfiles with its defaults (Rust notify; batches changes: step 50 ms, debounce 1600 ms)."""

from __future__ import annotations

import threading
import time

import watchfiles

from bench.children import emit

stop = threading.Event()


def follow(path: str) -> None:
    try:
        for changes in watchfiles.watch(path, stop_event=stop, raise_interrupt=False):
            ts = time.time_ns()
            for change, changed in changes:
                emit.event(change.name, changed, ts=ts)
    except Exception as exc:  # report, don't die silently: the harness counts what arrived
        emit.error(repr(exc))


def main() -> None:
    emit.ready()
    threads: list[threading.Thread] = []
    for cmd in emit.commands():
        if cmd[0] in ("watch", "create"):
            start = time.perf_counter_ns()
            thread = threading.Thread(target=follow, args=(cmd[2],), daemon=True)
            thread.start()
            threads.append(thread)
            emit.ack(cmd[1], time.perf_counter_ns() - start)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


if __name__ == "__main__":
    main()
