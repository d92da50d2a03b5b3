"""Relay that timestamps another tool's output (inotifywait) into the harness line protocol.

It reads whatever is available at once and stamps every line of one read with the same arrival
time, so the stamp is when the line left the tool's pipe, not when this relay got round to it.
"""

from __future__ import annotations

import os
import sys
import time

from bench.children import emit


def relay_inotifywait() -> None:
    emit.ready()
    emit.ack("w0", 0, "inotifywait watches from its start; there is no separate request")
    pending = b""
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return
        ts = time.time_ns()
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            mask, _, path = line.decode("utf-8", "surrogateescape").partition("\t")
            if "Q_OVERFLOW" in mask:
                emit.overflow("IN_Q_OVERFLOW")
            elif path:
                emit.event(mask, path, ts=ts)


if __name__ == "__main__":
    if sys.argv[1:] != ["inotifywait"]:
        raise SystemExit("usage: stamp.py inotifywait")
    relay_inotifywait()
