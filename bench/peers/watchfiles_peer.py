"""watchfiles with its defaults (Rust notify): ``children/watchfiles_child.py``."""

from __future__ import annotations

import os

from bench.install import ensure_pip
from bench.peers.base import Peer
from bench.session import Session, child_python, spawn


class Watchfiles(Peer):
    name = "watchfiles"

    def prepare(self, allow_install: bool) -> str | None:
        reason = ensure_pip("watchfiles", "watchfiles", allow_install)
        if reason is None:
            from importlib.metadata import version

            self.version = version("watchfiles")
        return reason

    def launch(self, workdir: str) -> Session:
        proc = spawn(child_python("watchfiles_child.py"), os.path.join(workdir, "watchfiles.err"))
        session = Session(self.name, proc)
        session.wait_ready()
        return session
