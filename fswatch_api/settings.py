"""The front-end's configuration: one frozen value, built by the worker runtime (or a test)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fswatch_supervisor.protocol import Endpoints


@dataclass(frozen=True)
class ApiSettings:
    state_dir: Path
    endpoints: Endpoints
    token: str | None = None
    """The bearer token from ``STATE_DIR/token``; None lets in only loopback peers of ``owner_uid``."""
    owner_uid: int = field(default_factory=os.geteuid)
    """Loopback peers (and Unix-socket peers) of this uid are let in without the token."""
    rpc_timeout_s: float = 10.0
    stream_queue_limit: int = 10_000
    """An SSE stream more than this many live events behind is closed (the client resumes)."""
    keepalive_s: float = 10.0
    """Interval of ``: keep-alive`` comments; the contract asks for at least one every 15 s."""
    stream_send_timeout_s: float = 30.0
    """A stream whose socket accepts nothing for this long is dropped, freeing its task."""
    backlog_page: int = 1000
    health_timeout_s: float = 2.0
