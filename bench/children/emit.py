"""The line protocol every peer child speaks to the harness (stdout), shared by the Python children.

Lines are tab-separated, one record each, flushed at once:
  R                               loaded, waiting for commands on stdin
  A <name> <elapsed_ns> [<info>]  command ``watch``/``create`` for <name> done (elapsed: its round trip)
  E <ts_ns> <action> <path> [<from>]  one event, ts = CLOCK_REALTIME when the child received it
  O <ts_ns> <detail>              the tool said it lost events (queue overflow, recrawl)
  X <detail>                      an error
  C <detail>                      the tool's stream ended and the client resumed it (fswatch SSE)
Commands (stdin, tab-separated): ``watch <name> <path> [<option>]``, ``create ...`` (no stream), ``quit``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

_lock = threading.Lock()
_out = sys.stdout.buffer


def _write(fields: list[str]) -> None:
    line = ("\t".join(fields) + "\n").encode("utf-8", "surrogateescape")
    with _lock:
        _out.write(line)
        _out.flush()


def ready() -> None:
    _write(["R"])


def ack(name: str, elapsed_ns: int, info: str = "") -> None:
    _write(["A", name, str(elapsed_ns), info])


def event(action: str, path: str, src: str | None = None, ts: int | None = None) -> None:
    fields = ["E", str(ts if ts is not None else time.time_ns()), action, path]
    if src:
        fields.append(src)
    _write(fields)


def overflow(detail: str) -> None:
    _write(["O", str(time.time_ns()), detail.replace("\t", " ").replace("\n", " ")])


def error(detail: str) -> None:
    _write(["X", detail.replace("\t", " ").replace("\n", " ")])


def resumed(detail: str) -> None:
    _write(["C", detail.replace("\t", " ").replace("\n", " ")])


def commands() -> Iterator[list[str]]:
    """Commands from the harness until ``quit`` or end of input."""
    for raw in sys.stdin:
        fields = raw.rstrip("\n").split("\t")
        if fields[0] == "quit":
            return
        yield fields
