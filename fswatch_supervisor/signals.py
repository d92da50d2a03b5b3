"""Signal handling: handlers only enqueue; the main loop dispatches ``handle_<name>``."""

from __future__ import annotations

import asyncio
import signal


def open_signal_queue(*signals: signal.Signals) -> asyncio.Queue[signal.Signals]:
    """Route ``signals`` into a queue read by the main loop (no work inside the handler)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[signal.Signals] = asyncio.Queue()
    for sig in signals:
        loop.add_signal_handler(sig, queue.put_nowait, sig)
    return queue
