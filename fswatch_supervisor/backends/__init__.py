"""OS watch backends: ``open_backend`` picks one; ``base`` defines the interface."""

from __future__ import annotations

import sys

from fswatch_supervisor.backends.base import RawEvent, WatchBackend

__all__ = ["RawEvent", "WatchBackend", "open_backend"]


def open_backend(name: str | None = None) -> WatchBackend:
    """``"inotify"`` on Linux by default, ``"watchdog"`` elsewhere or when asked."""
    chosen = name or ("inotify" if sys.platform.startswith("linux") else "watchdog")
    if chosen == "inotify":
        from fswatch_supervisor.backends.inotify import InotifyBackend

        return InotifyBackend()
    if chosen == "watchdog":
        from fswatch_supervisor.backends.watchdog import WatchdogBackend

        return WatchdogBackend()
    raise ValueError(f"unknown watch backend {chosen!r}; expected 'inotify' or 'watchdog'")
