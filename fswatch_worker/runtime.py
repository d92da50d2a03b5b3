"""The front-end process: boot, serve, stop.

Boot binds every listening socket before anything else, so a port in use is ``BIND_ERROR`` and never
a restart loop. Signal handlers only queue the signal; the main task dispatches ``handle_<name>``:
the first SIGTERM/SIGINT ends every event stream (``begin_drain``) and asks uvicorn to stop, which
then waits up to ``--graceful-timeout`` for open responses; a second one forces the exit. The worker
also stops on its own when ``--parent-pid`` disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from fswatch_supervisor.memory import collect_cycles_rarely, optional_imports_hidden, trim_after_bursts

# uvicorn imports watchfiles (when installed) for its --reload supervisor, which a worker never
# runs; its first import in the process must not load it (about 1 MB).
with optional_imports_hidden("watchfiles"):
    import uvicorn

from starlette.applications import Starlette

from fswatch_api import ApiSettings, begin_drain, create_app
from fswatch_supervisor.logs import configure_logging, get_logger
from fswatch_supervisor.statedir import read_or_create_token
from fswatch_worker import exitcodes
from fswatch_worker.config import ConfigError, WorkerConfig, parse_args
from fswatch_worker.peerprotocol import PeerH11Protocol

log = get_logger(__name__)
PARENT_POLL_S = 1.0
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # every keep-alive request after the first waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def bind_unix(path: Path) -> socket.socket:
    """A Unix listening socket that only its owner can connect to (0600 from the start)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()  # a stale socket of an earlier run; anything else is left for bind to refuse
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    return sock


class Worker:
    def __init__(self, config: WorkerConfig, app: Starlette, sockets: list[socket.socket]) -> None:
        self.config = config
        self.app = app
        self.sockets = sockets
        self.server = _Server(uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=config.access_log, http=PeerH11Protocol,
            loop="asyncio", proxy_headers=False, server_header=False,
            timeout_graceful_shutdown=math.ceil(config.graceful_timeout_s), timeout_keep_alive=30,
        ))
        self._signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
        self._stopping = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self._signals.put_nowait, sig)
        collect_cycles_rarely()
        try:
            async with asyncio.TaskGroup() as group:
                serving = group.create_task(self.server.serve(self.sockets))
                helpers = [group.create_task(self._dispatch_signals()), group.create_task(self._watch_parent()),
                           group.create_task(trim_after_bursts())]
                await serving
                for helper in helpers:
                    helper.cancel()
        finally:
            for sig in HANDLED_SIGNALS:
                loop.remove_signal_handler(sig)
        return exitcodes.OK

    async def _dispatch_signals(self) -> None:
        while True:
            sig = await self._signals.get()
            getattr(self, f"handle_{sig.name.lower()}")()

    def handle_sigterm(self) -> None:
        if self._stopping:
            log.warning("second stop signal: forcing exit")
            self.server.force_exit = True
        self.stop("signal")

    handle_sigint = handle_sigterm

    def stop(self, reason: str) -> None:
        if not self._stopping:
            self._stopping = True
            log.info("worker stopping", reason=reason)
        begin_drain(self.app)
        self.server.should_exit = True

    async def _watch_parent(self) -> None:
        parent = self.config.parent_pid
        if parent is None:
            return
        direct = os.getppid() == parent
        while True:
            await asyncio.sleep(PARENT_POLL_S)
            if (direct and os.getppid() != parent) or not _alive(parent):
                self.stop("parent process gone")
                return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def settings_for(config: WorkerConfig) -> ApiSettings:
    try:
        token = read_or_create_token(config.state_dir)
    except OSError as exc:
        if not config.loopback_only:
            raise ConfigError(f"--host {config.host} needs the bearer token, which cannot be read: {exc}") from exc
        log.warning("no bearer token; only the daemon's own user on loopback can connect", error=str(exc))
        token = None
    return ApiSettings(state_dir=config.state_dir, endpoints=config.endpoints, token=token,
                       stream_queue_limit=config.stream_queue_limit, keepalive_s=config.keepalive_s,
                       rpc_timeout_s=config.rpc_timeout_s, health_timeout_s=min(2.0, config.rpc_timeout_s))


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ConfigError as exc:
        configure_logging("worker")
        log.error("bad worker configuration", error=str(exc))
        return exitcodes.CONFIG_ERROR
    configure_logging("worker", level=config.log_level)
    try:
        settings = settings_for(config)
    except ConfigError as exc:
        log.error("bad worker configuration", error=str(exc))
        return exitcodes.CONFIG_ERROR
    sockets: list[socket.socket] = []
    try:
        sockets.append(bind_tcp(config.host, config.port))
        if config.unix_socket is not None:
            sockets.append(bind_unix(config.unix_socket))
    except OSError as exc:
        log.error("cannot bind", host=config.host, port=config.port, unix_socket=str(config.unix_socket),
                  error=str(exc))
        for sock in sockets:
            sock.close()
        return exitcodes.BIND_ERROR
    if not config.loopback_only:
        log.warning("serving beyond loopback: every request from another host needs the bearer token",
                    host=config.host)
    log.info("worker starting", host=config.host, port=config.port, unix_socket=str(config.unix_socket),
             rpc=config.endpoints.rpc, pub=config.endpoints.pub)
    try:
        return asyncio.run(Worker(config, create_app(settings), sockets).run())
    finally:
        for sock in sockets:
            sock.close()
        if config.unix_socket is not None:
            with contextlib.suppress(OSError):
                config.unix_socket.unlink()
