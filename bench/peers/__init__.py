"""One adapter per watched tool; ``all_peers()`` is the order of the table's columns."""

from __future__ import annotations

from bench.peers.base import Peer
from bench.peers.fswatch import Fswatch
from bench.peers.inotifywait import Inotifywait
from bench.peers.node import Chokidar, ParcelWatcher
from bench.peers.watchdog_peer import Watchdog
from bench.peers.watchfiles_peer import Watchfiles
from bench.peers.watchman import Watchman


def all_peers() -> list[Peer]:
    return [
        Fswatch(coalesce_ms=None),
        Fswatch(coalesce_ms=0),
        Inotifywait(),
        Watchman(),
        Watchdog(),
        Watchfiles(),
        ParcelWatcher(),
        Chokidar(),
    ]
