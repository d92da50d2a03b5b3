"""The harness side of one running peer: its processes, and everything it reported, with stamps.

A child prints the line protocol of ``children/emit.py``; a reader thread collects it. Stamps are
taken by the child (CLOCK_REALTIME), never here, so a busy harness cannot skew them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHILDREN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "children")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_BYTES = 1 << 20  # the default /proc/sys/fs/pipe-max-size


class PeerError(RuntimeError):
    """The peer could not be started or stopped answering."""


@dataclass(frozen=True, slots=True)
class Event:
    ts: int
    action: str
    path: str
    src: str | None = None


@dataclass
class Reports:
    events: list[Event] = field(default_factory=list)
    overflows: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acks: dict[str, tuple[int, str]] = field(default_factory=dict)
    resumes: int = 0  # streams the client had to resume (the server ended them)
    ready: bool = False


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: the children import ``bench.children.emit`` from the repo."""
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


def child_python(script: str) -> list[str]:
    return [sys.executable, os.path.join(CHILDREN, script)]


class Session:
    """Processes of one peer; ``feed`` is the process whose stdout carries the line protocol."""

    def __init__(
        self,
        name: str,
        feed: subprocess.Popen[bytes],
        *,
        tool_pids: Callable[[], list[int]] | None = None,
        extra: list[subprocess.Popen[bytes]] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.feed = feed
        self._extra = extra or []
        self._tool_pids = tool_pids
        self._on_stop = on_stop
        self.reports = Reports()
        self.last_rx = time.monotonic()  # when the last record arrived (harness clock, for idleness)
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()

    # -- reading -------------------------------------------------------------------------------
    def _read(self) -> None:
        assert self.feed.stdout is not None
        for raw in self.feed.stdout:
            fields = raw.decode("utf-8", "surrogateescape").rstrip("\n").split("\t")
            with self._cond:
                self.last_rx = time.monotonic()
                self._record(fields)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _record(self, f: list[str]) -> None:
        r = self.reports
        kind = f[0]
        if kind == "E" and len(f) >= 4:
            r.events.append(Event(int(f[1]), f[2], f[3], f[4] if len(f) > 4 else None))
        elif kind == "O":
            r.overflows.append((int(f[1]), f[2] if len(f) > 2 else ""))
        elif kind == "A":
            r.acks[f[1]] = (int(f[2]), f[3] if len(f) > 3 else "")
        elif kind == "R":
            r.ready = True
        elif kind == "C":
            r.resumes += 1
        elif kind == "X":
            r.errors.append("\t".join(f[1:]))

    def wait(self, predicate: Callable[[Reports], bool], timeout: float) -> bool:
        """Block until ``predicate(reports)`` holds (True) or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: predicate(self.reports) or self.feed.poll() is not None, timeout
            ) and predicate(self.reports)

    def event_count(self) -> int:
        with self._cond:
            return len(self.reports.events)

    def events_from(self, index: int) -> list[Event]:
        with self._cond:
            return self.reports.events[index:]

    def wait_quiet(self, quiet: float, deadline: float) -> None:
        """Return once nothing arrived for ``quiet`` seconds, or at ``deadline`` (monotonic)."""
        while (now := time.monotonic()) < deadline:
            idle = now - self.last_rx
            if idle >= quiet:
                return
            time.sleep(min(quiet - idle, deadline - now))

    # -- commands ------------------------------------------------------------------------------
    def send(self, *fields: str) -> None:
        if self.feed.stdin is None:
            raise PeerError(f"{self.name} takes no commands")
        self.feed.stdin.write(("\t".join(fields) + "\n").encode())
        self.feed.stdin.flush()

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not self.wait(lambda r: r.ready, timeout):
            raise PeerError(f"{self.name} did not start: {self.stderr_tail()}")

    def command(self, verb: str, name: str, path: str, *options: str, timeout: float = 60.0) -> int:
        """Send ``verb name path`` and wait for its ack; returns the child's round trip in ns."""
        self.send(verb, name, path, *options)
        if not self.wait(lambda r: name in r.acks or bool(r.errors), timeout):
            raise PeerError(f"{self.name}: no ack for {verb} {name}: {self.stderr_tail()}")
        if name not in self.reports.acks:
            raise PeerError(f"{self.name}: {self.reports.errors[-1]}")
        return self.reports.acks[name][0]

    def pids(self) -> list[int]:
        return self._tool_pids() if self._tool_pids else [self.feed.pid]

    def stderr_tail(self) -> str:
        path = getattr(self.feed, "stderr_path", None)
        if not path or not os.path.exists(path):
            return "(no stderr)"
        with open(path, "rb") as fh:
            return fh.read()[-600:].decode("utf-8", "replace").strip()

    # -- stopping ------------------------------------------------------------------------------
    def stop(self) -> None:
        try:
            self.send("quit")
        except (PeerError, OSError):
            pass
        # extras are the tools and servers the feed listens to: they need no goodbye
        for proc in self._extra:
            end_process(proc, grace=0.0)
        end_process(self.feed)
        if self._on_stop is not None:
            self._on_stop()
        self._reader.join(timeout=5)


def end_process(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Wait ``grace`` s, then SIGTERM, then SIGKILL the child's own process group (spawned alone)."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=grace if sig is None else 5.0)
            return
        except subprocess.TimeoutExpired:
            continue


def spawn(argv: list[str], stderr_path: str, *, stdin: int | None = subprocess.PIPE,
          stdout: int | None = subprocess.PIPE, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a child in its own session, stderr kept in a file (read back when it fails)."""
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=err,
                                env=child_env(env), start_new_session=True)
    proc.stderr_path = stderr_path  # type: ignore[attr-defined]
    if proc.stdout is not None:
        # The harness may be busy doing a workload's operations; a child that blocks writing its
        # events to a full 64 KiB pipe stops reading its tool and stamps late. A bigger pipe
        # keeps the harness out of every tool's figures alike.
        with contextlib.suppress(OSError):
            fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    return proc
