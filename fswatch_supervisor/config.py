"""The supervisor's settings: one frozen dataclass, filled from the command line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fswatch_supervisor.protocol import Endpoints
from fswatch_supervisor.statedir import default_state_dir
from fswatch_supervisor.store.eventstore import FsyncPolicy

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 3600, 90m, 12h, 7d)")
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * scale


def parse_size(text: str) -> int:
    """``1048576``, ``512MiB``, ``2G`` → bytes (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 512MiB, 2GiB)")
    unit = match.group(2).lower()[:1]
    scale = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[unit]
    return int(float(match.group(1)) * scale)


@dataclass(frozen=True)
class SupervisorConfig:
    state_dir: Path = field(default_factory=default_state_dir)
    endpoints: Endpoints | None = None
    """None: ipc sockets in STATE_DIR/sock."""
    backend: str | None = None
    """None: the best for this platform (inotify on Linux, watchdog elsewhere)."""
    retain_events: int = 1_000_000
    retain_age_s: float = 7 * 86400.0
    retain_bytes: int = 512 * 2**20
    fsync: FsyncPolicy = FsyncPolicy.INTERVAL
    snapshot_interval_s: float = 30.0
