"""What every peer adapter offers the workloads."""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod

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


def wait_watching(session: Session, directory: str, timeout: float, start_index: int = 0) -> int:
    """Write new probe files into ``directory`` until the tool reports one; returns its arrival stamp.

    A tool still crawling may miss early probes; the first one it reports marks the moment changes
    there are seen. The gaps grow (10 ms, x1.5, at most 250 ms): a tool that waits for a quiet
    moment before reporting (watchman's settle) would never report under a steady 10 ms drumbeat.
    """
    deadline = time.monotonic() + timeout
    prefix = os.path.join(directory, "probe-")
    seen = start_index
    n = 0
    interval = 0.01
    while time.monotonic() < deadline:
        with open(f"{prefix}{n}.txt", "wb") as fh:
            fh.write(b"p")
        n += 1
        known = seen
        if session.wait(lambda r: len(r.events) > known, interval):  # noqa: B023 (used at once)
            for ev in session.events_from(seen):
                if ev.path.startswith(prefix) or (ev.src or "").startswith(prefix):
                    return ev.ts
            seen = session.event_count()
        if session.feed.poll() is not None:
            break
        interval = min(interval * 1.5, 0.25)
    raise PeerError(f"{session.name} reported no change in {directory} within {timeout:.0f} s "
                    f"({session.stderr_tail()})")
