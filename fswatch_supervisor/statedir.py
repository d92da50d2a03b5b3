"""Where a daemon keeps its state, and the files in it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/fswatch``, else ``~/.local/state/fswatch``."""
    base = os.environ.get("XDG_STATE_HOME")
    root = Path(base) if base else Path.home() / ".local" / "state"
    return root / "fswatch"


def prepare_state_dir(state_dir: Path) -> Path:
    """Create the state directory and its 0700 socket directory; return the absolute path."""
    state_dir = state_dir.expanduser().absolute()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sock = state_dir / "sock"
    sock.mkdir(exist_ok=True, mode=0o700)
    os.chmod(sock, 0o700)
    return state_dir


def read_or_create_token(state_dir: Path) -> str:
    """The bearer token in ``STATE_DIR/token`` (mode 0600), made on first use."""
    path = state_dir / "token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this daemon made it first
        return path.read_text().strip()
    try:
        os.write(fd, token.encode() + b"\n")
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return token
