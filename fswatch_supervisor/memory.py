"""Give the heap that a burst leaves behind back to the OS, collect cycles less often, and keep
optional imports out of a process.

A burst (20,000 files changed at once) makes both processes allocate tens of MB of short-lived
objects. CPython's small-object allocator returns its arenas as soon as they empty, but glibc's
``malloc`` keeps freed chunks (larger objects, ZeroMQ's message buffers) in its heaps until told
otherwise, so the resident size after a burst stays near its peak. ``malloc_trim(0)`` hands every
free page back (also from the middle of a heap). It walks the heap, so it runs once a burst is
over, not per event: ``trim_after_bursts`` watches a progress counter the caller already keeps.

On a libc without ``malloc_trim`` (musl, macOS) trimming is a no-op.

Each event allocates a handful of container objects (a change, a record, tuples and lists), almost
all freed by reference counting. CPython's default cycle collector still runs every 700 of them,
and its older generations rescan the long-lived state (the mirror's model of a large tree, the
modules) again and again during a burst: about 9 % of the supervisor's ingest CPU on a 20,000-file
burst. ``collect_cycles_rarely`` raises the first threshold and moves the state built at startup out
of the collector's sight (``gc.freeze``); cycles are still collected, just in larger steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import sys
import time
from collections.abc import Callable, Iterator
from typing import Final

BURST_CPU_S: Final = 0.1
"""CPU time (all threads) since the last trim that makes the next quiet moment worth a trim. A trim
takes under a millisecond after a 20,000-file burst, so even this low bar costs below 1 %, and a
front-end fans such a burst out in about 0.2 s of CPU."""
QUIET_CPU_SHARE: Final = 0.05
"""A poll interval in which the process used less than this share of one core counts as quiet."""
IDLE_POLL_S: Final = 0.25
BUSY_POLL_S: Final = 0.1
"""An idle process checks its CPU time every ``IDLE_POLL_S`` (a few microseconds each), a working
one every ``BUSY_POLL_S``: a burst's freed memory goes back within about 0.35 s of its end, before
anyone looking at the process after the burst would see it."""


YOUNG_THRESHOLD: Final = 20_000
"""Allocations of container objects between two young collections (CPython's default: 700)."""


def collect_cycles_rarely(*, young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Collect cycles in larger steps, and freeze what exists now (call once startup state is built;
    calling again also freezes what was built since)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    gc.freeze()


def _load_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    result: Callable[[int], int] = trim
    return result


_malloc_trim = _load_malloc_trim()


def release_free_heap() -> bool:
    """Return the C heap's free pages to the OS; False when this libc cannot."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


async def trim_after_bursts(*, burst_cpu_s: float = BURST_CPU_S, quiet_cpu_share: float = QUIET_CPU_SHARE,
                            idle_poll_s: float = IDLE_POLL_S, busy_poll_s: float = BUSY_POLL_S) -> None:
    """Forever: once the process has used ``burst_cpu_s`` of CPU since the last trim and then goes
    quiet, call ``release_free_heap``.

    CPU time is the measure of a burst because it counts every kind of work without the caller
    having to (events fanned out, pages read, a rescan) and stands still in an idle process. An idle
    process wakes once per ``idle_poll_s``; once it works, every ``busy_poll_s``, so a burst's end
    is noticed within that; a long burst trims once, at its end.
    """
    if _malloc_trim is None:
        return
    trimmed_at = last = time.process_time()
    working = False
    while True:
        await asyncio.sleep(interval := busy_poll_s if working else idle_poll_s)
        now = time.process_time()
        used, last = now - last, now
        working = used >= quiet_cpu_share * interval
        if working:
            continue
        if last - trimmed_at >= burst_cpu_s:
            release_free_heap()
            trimmed_at = last = time.process_time()
        else:
            trimmed_at += used  # the small work of quiet moments never adds up to a burst


@contextlib.contextmanager
def optional_imports_hidden(*names: str) -> Iterator[None]:
    """Make ``import NAME`` fail inside the block, for packages that a library imports only to offer
    something this process never uses (structlog's rich tracebacks, uvicorn's watchfiles reloader).
    A package already imported stays; outside the block everything imports normally again."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # the documented "import fails" marker
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
