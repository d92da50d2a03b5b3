"""watchdog 7 used directly (Observer, recursive, with an event_filter): ``children/watchdog_child.py``."""

from __future__ import annotations

import os

from bench.install import ensure_pip
from bench.peers.base import Peer
from bench.session import Session, child_python, spawn


class Watchdog(Peer):
    name = "watchdog"

    def prepare(self, allow_install: bool) -> str | None:
        reason = ensure_pip("watchdog", "watchdog>=7", allow_install)
        if reason is None:
            from importlib.metadata import version

            self.version = version("watchdog")
        return reason

    def launch(self, workdir: str) -> Session:
        proc = spawn(child_python("watchdog_child.py"), os.path.join(workdir, "watchdog.err"))
        session = Session(self.name, proc)
        session.wait_ready()
        return session
