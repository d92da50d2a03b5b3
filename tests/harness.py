"""Real processes for end-to-end tests: a supervisor, front-ends, ``fswatchd serve``.

Each process runs in its own session (so a test can signal its whole group), logs to a file in
the test's directory (printed on failure), and is stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from fswatch_supervisor.client import SupervisorClient
from fswatch_supervisor.errors import SupervisorGone
from fswatch_supervisor.protocol import Endpoints

T = TypeVar("T")
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error on timeout
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f} s waiting for {message}"
                         + (f" (last error: {last_error!r})" if last_error else ""))


@dataclass
class Proc:
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        env = {**os.environ, "FSWATCH_LOG_LEVEL": os.environ.get("FSWATCH_LOG_LEVEL", "info"), **self.env}
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill9(self) -> None:
        """SIGKILL the process alone (its children, if any, live on)."""
        self.signal(signal.SIGKILL)
        assert self.popen is not None
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait, then SIGKILL it."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers in the group
        return self.popen.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class SupervisorProc(Proc):
    state_dir: Path = Path()

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints.from_state_dir(self.state_dir)

    def client(self, timeout: float = 10.0) -> SupervisorClient:
        return SupervisorClient(self.endpoints, timeout=timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> SupervisorProc:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"supervisor exited:\n{self.log_text()[-4000:]}")
            with self.client(timeout=0.5) as client:
                try:
                    return bool(client.call("ping")["ready"])
                except SupervisorGone:
                    return False
        wait_until(ready, timeout, 0.05, "the supervisor to be ready")
        return self


@dataclass
class WorkerProc(Proc):
    port: int = 0
    state_dir: Path = Path()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> WorkerProc:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"worker exited:\n{self.log_text()[-4000:]}")
            return httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200
        wait_until(ready, timeout, 0.05, f"the front-end on port {self.port}")
        return self


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start_supervisor(state_dir: Path, *extra: str, log_dir: Path | None = None) -> SupervisorProc:
    log_dir = log_dir or state_dir.parent
    proc = SupervisorProc(python_module("fswatch_supervisor", "supervisor", "--state-dir", str(state_dir), *extra),
                          log_dir / f"supervisor-{state_dir.name}.log", state_dir=state_dir)
    proc.start()
    return proc.wait_ready()


def start_worker(state_dir: Path, port: int | None = None, *extra: str, log_dir: Path | None = None) -> WorkerProc:
    port = port or free_port()
    log_dir = log_dir or state_dir.parent
    proc = WorkerProc(python_module("fswatch_worker", "--port", str(port), "--state-dir", str(state_dir), *extra),
                      log_dir / f"worker-{port}.log", port=port, state_dir=state_dir)
    proc.start()
    return proc.wait_ready()


@contextlib.contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


def count_inotify_watches(pid: int) -> int:
    """``inotify wd:`` lines across every fd of ``pid`` (what the kernel really holds)."""
    total = 0
    fd_dir = Path(f"/proc/{pid}/fdinfo")
    for entry in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            total += sum(1 for line in entry.read_text().splitlines() if line.startswith("inotify wd:"))
    return total


def events_of(client: SupervisorClient, watcher_id: str, after: str | None = None, **args: Any) -> list[dict[str, Any]]:
    """Every event of a watcher after ``after`` (paging through)."""
    items: list[dict[str, Any]] = []
    while True:
        page = client.call("read_events", id=watcher_id, after=after, limit=10_000, **args)
        items.extend(page["items"])
        if not page["items"]:
            return items
        after = page["next_after"]
