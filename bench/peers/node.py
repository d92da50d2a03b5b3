"""@parcel/watcher (inotify backend) and chokidar from npm, both driven by ``children/node_child.mjs``."""

from __future__ import annotations

import json
import os

from bench.install import ensure_npm, node_dir
from bench.peers.base import Peer
from bench.session import CHILDREN, Session, spawn


class _NodePeer(Peer):
    package = ""
    mode = ""

    def prepare(self, allow_install: bool) -> str | None:
        reason = ensure_npm(self.package, allow_install)
        if reason is None:
            manifest = os.path.join(node_dir(), "node_modules", self.package, "package.json")
            with open(manifest) as fh:
                self.version = str(json.load(fh).get("version", "?"))
        return reason

    def launch(self, workdir: str) -> Session:
        proc = spawn(["node", os.path.join(CHILDREN, "node_child.mjs"), self.mode],
                     os.path.join(workdir, f"{self.mode}.err"),
                     env={"BENCH_NODE_MODULES": os.path.join(node_dir(), "node_modules")})
        session = Session(self.name, proc)
        session.wait_ready()
        return session


class ParcelWatcher(_NodePeer):
    name = "parcel"
    package = "@parcel/watcher"
    mode = "parcel"


class Chokidar(_NodePeer):
    name = "chokidar"
    package = "chokidar"
    mode = "chokidar"
