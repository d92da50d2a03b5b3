"""The worker's command line, parsed once into a frozen ``WorkerConfig``.

A bad option is a ``ConfigError`` (exit ``CONFIG_ERROR``), not argparse's exit status 2, so the
arbiter does not restart-loop a front-end that can never start.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from fswatch_api.peers import is_loopback
from fswatch_supervisor.protocol import Endpoints
from fswatch_supervisor.statedir import default_state_dir


class ConfigError(Exception):
    """The command line or the environment cannot give a working front-end."""


@dataclass(frozen=True)
class WorkerConfig:
    port: int
    host: str
    unix_socket: Path | None
    state_dir: Path
    endpoints: Endpoints
    parent_pid: int | None
    log_level: str | None
    access_log: bool
    stream_queue_limit: int
    keepalive_s: float
    graceful_timeout_s: float
    rpc_timeout_s: float

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.host) or self.host == "localhost"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fswatch_worker", description="One fswatch HTTP/SSE front-end process.")
    parser.add_argument("--port", type=int, required=True, help="TCP port to serve on")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; anything else requires the bearer token)")
    parser.add_argument("--unix-socket", type=Path, default=None, help="also serve on this Unix socket (0600)")
    parser.add_argument("--state-dir", type=Path, default=None, help="the daemon's state directory")
    parser.add_argument("--rpc", default=None, help="supervisor RPC endpoint (default: from the state dir)")
    parser.add_argument("--pub", default=None, help="supervisor PUB endpoint (default: from the state dir)")
    parser.add_argument("--fanout", default=None,
                        help="supervisor's internal fanout endpoint (default: from the state dir)")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--log-level", default=None)
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--stream-queue-limit", type=int, default=int(os.environ.get(
        "FSWATCH_STREAM_QUEUE_LIMIT", "10000")), help="close an SSE stream this many events behind")
    parser.add_argument("--keepalive", type=float, default=10.0, help="seconds between SSE keep-alives (≤ 15)")
    parser.add_argument("--rpc-timeout", type=float, default=10.0,
                        help="seconds to wait for the supervisor before answering 503")
    parser.add_argument("--graceful-timeout", type=float, default=5.0,
                        help="seconds open responses get to finish on SIGTERM")
    return parser


def parse_args(argv: list[str] | None = None) -> WorkerConfig:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    if args.stream_queue_limit < 1:
        raise ConfigError("--stream-queue-limit must be at least 1")
    if not 0 < args.keepalive <= 15:
        raise ConfigError("--keepalive must be in (0, 15] seconds")
    if (args.rpc is None) != (args.pub is None):
        raise ConfigError("give both --rpc and --pub, or neither")
    if args.rpc_timeout <= 0 or args.graceful_timeout < 0:
        raise ConfigError("--rpc-timeout must be positive and --graceful-timeout not negative")
    state_dir = (args.state_dir or default_state_dir()).expanduser().absolute()
    endpoints = (Endpoints(args.rpc, args.pub, args.fanout or "").with_fanout_in(state_dir) if args.rpc
                 else Endpoints.resolve(state_dir))
    return WorkerConfig(
        port=args.port, host=args.host, unix_socket=args.unix_socket, state_dir=state_dir,
        endpoints=endpoints, parent_pid=args.parent_pid, log_level=args.log_level,
        access_log=args.access_log, stream_queue_limit=args.stream_queue_limit,
        keepalive_s=args.keepalive, graceful_timeout_s=args.graceful_timeout, rpc_timeout_s=args.rpc_timeout,
    )
