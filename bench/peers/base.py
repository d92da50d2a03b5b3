"""What every peer adapter offers the workloads."""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator

from bench.session import PeerError, Session


class Peer(ABC):
    name: str = ""
    #: one tool instance serves many watchers (workload 5, multiplexing)
    multiplexes: bool = False
    #: runs the serving workload (HTTP pull, SSE fan-out)
    serves: bool = False
    #: workload names this peer takes part in (None: all that fit its flags)
    only: frozenset[str] | None = None

    def __init__(self) -> None:
        self.version = "?"

    @abstractmethod
    def prepare(self, allow_install: bool) -> str | None:
        """Install or find the tool; ``None`` if usable, else why it is skipped. Sets ``version``."""

    @abstractmethod
    def launch(self, workdir: str) -> Session:
        """Start the tool (and any server it needs), not yet watching; return once it takes commands."""

    def start(self, root: str, workdir: str) -> tuple[Session, int]:
        """Start the tool and have it watch ``root`` recursively; returns the session and the
        CLOCK_REALTIME ns at which the watch was asked for (the start of the setup time)."""
        session = self.launch(workdir)
        t0 = time.time_ns()
        session.send("watch", "w0", root)
        return session, t0


PROBE_FIRST_S = 0.005
PROBE_GROWTH = 1.1
PROBE_MAX_S = 0.25


def probe_gaps() -> Iterator[float]:
    """How long ``wait_watching`` waits after each probe: 5 ms, growing x1.1, at most 250 ms.

    A probe is written every ``gap`` and the first one reported counts, so a tool ready at ``t``
    is measured at most one gap late: 5 ms + 10 % of ``t`` (e.g. <= 15 ms at 100 ms, <= 35 ms at
    300 ms), the same for every tool. The gaps must still grow: a tool that waits for a quiet
    moment before reporting (watchman's 20 ms settle) never reports under a steady drumbeat
    shorter than that; here the gaps pass 20 ms at ~150 ms.
    """
    gap = PROBE_FIRST_S
    while True:
        yield gap
        gap = min(gap * PROBE_GROWTH, PROBE_MAX_S)


def wait_watching(session: Session, directory: str, timeout: float, start_index: int = 0) -> int:
    """Write new probe files into ``directory`` until the tool reports one; returns its arrival stamp.

    A tool still crawling may miss early probes; the first one it reports marks the moment changes
    there are seen. The probes follow ``probe_gaps``, the same schedule for every tool.
    """
    deadline = time.monotonic() + timeout
    prefix = os.path.join(directory, "probe-")
    seen = start_index
    for n, interval in enumerate(probe_gaps()):
        if time.monotonic() >= deadline:
            break
        with open(f"{prefix}{n}.txt", "wb") as fh:
            fh.write(b"p")
        known = seen
        if session.wait(lambda r: len(r.events) > known, interval):  # noqa: B023 (used at once)
            for ev in session.events_from(seen):
                if ev.path.startswith(prefix) or (ev.src or "").startswith(prefix):
                    return ev.ts
            seen = session.event_count()
        if session.feed.poll() is not None:
            break
    raise PeerError(f"{session.name} reported no change in {directory} within {timeout:.0f} s "
                    f"({session.stderr_tail()})")
