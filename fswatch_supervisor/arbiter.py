"""Front-end process supervision for ``fswatchd serve``: spawn, watch, restart with backoff, stop.

The arbiter knows workers only as processes, exit codes and a port: it never imports their code.
A worker that exits with ``BOOT_ERROR`` would fail the same way again, so serve stops instead of
restart-looping; any other exit is a crash, restarted after a backoff that resets once a worker
has stayed up for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from fswatch_supervisor import exitcodes
from fswatch_supervisor.logs import get_logger
from fswatch_supervisor.protocol import Endpoints

log = get_logger(__name__)
BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 15.0
STABLE_AFTER_S = 30.0
GRACEFUL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class WorkerSpec:
    port: int
    host: str
    state_dir: str
    unix_socket: str | None = None
    log_level: str | None = None

    def argv(self, endpoints: Endpoints, parent_pid: int) -> list[str]:
        args = [sys.executable, "-m", "fswatch_worker", "--port", str(self.port), "--host", self.host,
                "--state-dir", self.state_dir, "--rpc", endpoints.rpc, "--pub", endpoints.pub,
                "--fanout", endpoints.fanout,
                "--parent-pid", str(parent_pid)]
        if self.unix_socket:
            args += ["--unix-socket", self.unix_socket]
        if self.log_level:
            args += ["--log-level", self.log_level]
        return args


class Arbiter:
    def __init__(self, specs: list[WorkerSpec], endpoints: Endpoints, parent_pid: int,
                 on_fatal: Callable[[int], None]) -> None:
        self.specs = specs
        self.endpoints = endpoints
        self.parent_pid = parent_pid
        self.on_fatal = on_fatal
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self.first_ready = asyncio.Event()
        """Set when the first front-end accepts connections (systemd's READY=1 waits for it)."""

    async def run(self) -> None:
        """Keep every worker running until cancelled; then stop them with a deadline."""
        try:
            await asyncio.gather(*(self._keep_running(spec) for spec in self.specs))
        finally:
            await self.stop_all()

    async def _keep_running(self, spec: WorkerSpec) -> None:
        backoff = BACKOFF_START_S
        loop = asyncio.get_running_loop()
        while True:
            process = await asyncio.create_subprocess_exec(*spec.argv(self.endpoints, self.parent_pid))
            self.processes[spec.port] = process
            started = loop.time()
            log.info("worker.started", port=spec.port, worker_pid=process.pid)
            probe = loop.create_task(self._announce_when_listening(spec))
            code = await process.wait()
            probe.cancel()
            self.processes.pop(spec.port, None)
            if code == exitcodes.BOOT_ERROR:
                log.error("worker.boot_failed", port=spec.port, exit_code=code,
                          note="not restarting: it would fail the same way again")
                self.on_fatal(exitcodes.BOOT_ERROR)
                return
            if loop.time() - started >= STABLE_AFTER_S:
                backoff = BACKOFF_START_S
            log.warning("worker.exited", port=spec.port, exit_code=code, restart_in_s=backoff)
            self.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _announce_when_listening(self, spec: WorkerSpec) -> None:
        """Set ``first_ready`` once the front-end answers ``/healthz`` with 200 (it is ready: bound,
        subscribed and talking to the supervisor), not merely accepting connections."""
        for _ in range(600):
            if await _healthz_ok(spec.host, spec.port):
                self.first_ready.set()
                return
            await asyncio.sleep(0.05)

    async def stop_all(self) -> None:
        """SIGTERM every worker, wait up to the graceful timeout, then SIGKILL what is left."""
        processes = list(self.processes.values())
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in processes)), GRACEFUL_TIMEOUT_S)
        except TimeoutError:
            for process in processes:
                if process.returncode is None:
                    log.warning("worker.killed", worker_pid=process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in processes))


async def _healthz_ok(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        status_line = await asyncio.wait_for(reader.readline(), 2.0)
        return b" 200 " in status_line
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
