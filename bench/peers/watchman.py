"""watchman (Debian package): a private server per session, subscriptions with the default settle.

The server gets its own socket, state and log files in the session's work directory, so a run
never touches (or is disturbed by) a watchman the user may already have.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from bench.install import command_version, ensure_command
from bench.peers.base import Peer
from bench.session import PeerError, Session, child_python, spawn

START_TIMEOUT = 20.0


def _answers(sockname: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(sockname)
            sock.sendall(json.dumps(["version"]).encode() + b"\n")
            return b"version" in sock.recv(4096)
    except OSError:
        return False


class Watchman(Peer):
    name = "watchman"
    multiplexes = True

    def prepare(self, allow_install: bool) -> str | None:
        reason = ensure_command("watchman", "watchman", allow_install)
        if reason is None:
            self.version = command_version(["watchman", "--version"])
        return reason

    def launch(self, workdir: str) -> Session:
        sockname = os.path.join(workdir, "watchman.sock")
        server = spawn(
            ["watchman", "--foreground", "--no-save-state", f"--sockname={sockname}",
             f"--logfile={os.path.join(workdir, 'watchman.log')}",
             f"--statefile={os.path.join(workdir, 'watchman.state')}",
             f"--pidfile={os.path.join(workdir, 'watchman.pid')}"],
            os.path.join(workdir, "watchman.err"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(sockname):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise PeerError(f"watchman server did not start (see {workdir}/watchman.log)")
            time.sleep(0.05)
        client = spawn(child_python("watchman_child.py") + [sockname],
                       os.path.join(workdir, "watchman-client.err"))
        session = Session(self.name, client, tool_pids=lambda: [server.pid], extra=[server])
        session.wait_ready()
        return session
