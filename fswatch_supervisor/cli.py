"""``fswatchd``: the command line. ``serve`` (supervisor + front-ends), ``supervisor``, ``worker``.

Parsing uses the standard library's argparse: sub-commands, typed options and generated ``--help``
are all it needs to do, and it adds no dependency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from fswatch_supervisor import __version__
from fswatch_supervisor.arbiter import Arbiter, WorkerSpec
from fswatch_supervisor.config import SupervisorConfig, parse_duration, parse_size
from fswatch_supervisor.daemon import Supervisor
from fswatch_supervisor.logs import configure_logging
from fswatch_supervisor.protocol import Endpoints
from fswatch_supervisor.statedir import default_state_dir
from fswatch_supervisor.store.eventstore import FsyncPolicy


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fswatchd", description="Watch files once, serve many clients.")
    parser.add_argument("--version", action="version", version=f"fswatchd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--state-dir", type=Path, default=default_state_dir(),
                         help="state directory (default: $XDG_STATE_HOME/fswatch or ~/.local/state/fswatch)")
        sub.add_argument("--log-level", default=None, help="debug, info, warning, error (default info)")

    def supervisor_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--backend", choices=["inotify", "watchdog"], default=None,
                         help="OS watch backend (default: inotify on Linux, watchdog elsewhere)")
        sub.add_argument("--retain-events", type=int, default=1_000_000, help="keep at most this many events")
        sub.add_argument("--retain-age", type=_duration, default=7 * 86400.0,
                         help="drop events older than this (e.g. 12h, 7d; default 7d)")
        sub.add_argument("--retain-bytes", type=_size, default=512 * 2**20,
                         help="keep the store under this size (e.g. 512MiB, default)")
        sub.add_argument("--fsync", choices=[p.value for p in FsyncPolicy], default=FsyncPolicy.INTERVAL.value,
                         help="when events reach the disk: always (before publishing), interval (default: "
                              "written before publishing, fdatasync every 0.2 s), never")
        sub.add_argument("--zmq-rpc-port", type=int, default=None,
                         help="serve ZeroMQ on tcp://127.0.0.1 instead of ipc sockets (needs --zmq-pub-port)")
        sub.add_argument("--zmq-pub-port", type=int, default=None)

    def frontend_options(sub: argparse.ArgumentParser, *, port_default: int | None) -> None:
        sub.add_argument("--host", default="127.0.0.1",
                         help="address to bind (default 127.0.0.1; anything else requires the bearer token)")
        sub.add_argument("--port", type=int, default=port_default, required=port_default is None)
        sub.add_argument("--unix-socket", default=None, help="also serve the API on this Unix socket (0600)")

    serve = commands.add_parser("serve", help="run the supervisor and HTTP front-ends (restarted if they crash)")
    common(serve)
    supervisor_options(serve)
    frontend_options(serve, port_default=3000)
    serve.add_argument("--workers", type=int, default=1, help="front-ends on ports PORT … PORT+N-1")

    supervisor = commands.add_parser("supervisor", help="run the supervisor alone")
    common(supervisor)
    supervisor_options(supervisor)

    worker = commands.add_parser("worker", help="run one HTTP front-end alone")
    common(worker)
    frontend_options(worker, port_default=None)
    return parser


def config_from(args: argparse.Namespace) -> SupervisorConfig:
    endpoints = None
    if args.zmq_rpc_port is not None or args.zmq_pub_port is not None:
        if args.zmq_rpc_port is None or args.zmq_pub_port is None:
            raise SystemExit("fswatchd: --zmq-rpc-port and --zmq-pub-port go together")
        endpoints = Endpoints.tcp("127.0.0.1", args.zmq_rpc_port, args.zmq_pub_port)
    return SupervisorConfig(
        state_dir=args.state_dir, endpoints=endpoints, backend=args.backend,
        retain_events=args.retain_events, retain_age_s=args.retain_age, retain_bytes=args.retain_bytes,
        fsync=FsyncPolicy(args.fsync),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "worker":
        return _exec_worker(args)
    if args.command == "serve" and not 1 <= args.workers <= 64:
        raise SystemExit("fswatchd: --workers must be 1..64")
    configure_logging("supervisor", level=args.log_level)
    if args.command == "serve":
        _own_process_group()
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    supervisor = Supervisor(config_from(args))
    fatal: list[int] = []
    arbiters: list[Arbiter] = []

    def companions(endpoints: Endpoints) -> list[Awaitable[Any]]:
        if args.command != "serve":
            return []
        specs = [WorkerSpec(port=args.port + i, host=args.host, state_dir=str(supervisor.state_dir),
                            unix_socket=args.unix_socket if i == 0 else None, log_level=args.log_level)
                 for i in range(args.workers)]

        def halt(code: int) -> None:
            fatal.append(code)
            supervisor.stop()

        arbiters.append(Arbiter(specs, endpoints, os.getpid(), halt))
        return [arbiters[0].run()]

    async def first_front_end_ready() -> None:
        if arbiters:
            await arbiters[0].first_ready.wait()

    code = await supervisor.run(companions=companions, ready_when=first_front_end_ready)
    return fatal[0] if fatal else code


def _exec_worker(args: argparse.Namespace) -> NoReturn:
    """``fswatchd worker`` is ``python -m fswatch_worker``: the supervisor package never imports it."""
    argv = [sys.executable, "-m", "fswatch_worker", "--port", str(args.port), "--host", args.host,
            "--state-dir", str(args.state_dir)]
    if args.unix_socket:
        argv += ["--unix-socket", args.unix_socket]
    if args.log_level:
        argv += ["--log-level", args.log_level]
    os.execv(sys.executable, argv)


def _own_process_group() -> None:
    """Lead a process group of our own, so one signal to the group reaches every front-end too.
    In a terminal's foreground job we already do (and must stay there for Ctrl-C to reach us)."""
    if os.getpgrp() == os.getpid():
        return
    with contextlib.suppress(OSError):
        if os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp():
            return
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)


if __name__ == "__main__":
    sys.exit(main())
