"""inotifywait -m -r (Debian inotify-tools): raw inotify, the practical limit.

It asks for the change events only (not open/access/close-nowrite, which its own crawl would
generate); its output goes through ``children/stamp.py`` for arrival stamps.
"""

from __future__ import annotations

import os
import subprocess
import time

from bench.install import command_version, ensure_command
from bench.peers.base import Peer
from bench.session import Session, child_env, child_python, spawn

EVENTS = "create,modify,attrib,close_write,moved_from,moved_to,delete,delete_self,move_self"


class Inotifywait(Peer):
    name = "inotifywait"

    def prepare(self, allow_install: bool) -> str | None:
        reason = ensure_command("inotifywait", "inotify-tools", allow_install)
        if reason is None:
            self.version = command_version(["inotifywait", "--help"]).split()[-1]
        return reason

    def launch(self, workdir: str) -> Session:
        raise NotImplementedError("inotifywait starts watching when it starts: use start()")

    def start(self, root: str, workdir: str) -> tuple[Session, int]:
        t0 = time.time_ns()
        tool = spawn(["inotifywait", "-m", "-r", "-q", "-e", EVENTS, "--format", "%e\t%w%f", root],
                     os.path.join(workdir, "inotifywait.err"), stdin=subprocess.DEVNULL)
        assert tool.stdout is not None
        relay = subprocess.Popen(child_python("stamp.py") + ["inotifywait"], stdin=tool.stdout,
                                 stdout=subprocess.PIPE, start_new_session=True, env=child_env())
        tool.stdout.close()  # the relay owns the read end now
        relay.stderr_path = tool.stderr_path  # type: ignore[attr-defined]
        session = Session(self.name, relay, tool_pids=lambda: [tool.pid], extra=[tool])
        session.wait_ready()
        return session, t0
