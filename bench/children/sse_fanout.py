"""SSE fan-out clients: C connections to one watcher's stream, in one asyncio process.

Usage: sse_fanout.py HOST PORT WATCHER_ID AFTER_ID CLIENTS DEADLINE_S
Prints ``R`` once every client has its response headers; then reads ``expect <ID>`` on stdin and
prints one JSON line per client when it has seen that id (or at the deadline):
``{"events": count, "last_id": id, "last_ts": ns when the last id arrived}``.
Requests are HTTP/1.0, so the body is the raw event stream (no chunk framing) and counting
``\\nid: `` in the bytes counts events without parsing each one in Python.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from typing import cast

MARK = b"\nid: "


class Client:
    def __init__(self) -> None:
        self.events = 0
        self.last_id = ""
        self.last_ts = 0
        self.tail = b""

    def feed(self, data: bytes, ts: int) -> None:
        window = self.tail + data
        cut = window.rfind(b"\n")
        if cut <= 0:
            self.tail = window
            return
        # count only marks before the last newline: their id lines are complete; the last newline
        # starts the next window, so a mark straddling two reads is counted once, with the later one
        region, self.tail = window[:cut], window[cut:]
        found = region.count(MARK)
        if found:
            self.events += found
            pos = region.rfind(MARK) + len(MARK)
            self.last_id = window[pos:window.index(b"\n", pos)].strip().decode()
            self.last_ts = ts


class StreamProtocol(asyncio.Protocol):
    """One client: a protocol, not a StreamReader, so a read costs a callback and no task switch
    or timeout object (with 200 clients in one process, a reader's own overhead would otherwise
    be most of what the fan-out figure measures)."""

    def __init__(self, request: bytes, state: Client, expect: asyncio.Future[str]) -> None:
        self.request = request
        self.state = state
        self.expect = expect
        self.connected = asyncio.Event()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        ts = time.time_ns()
        if not self.connected.is_set():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 200 " not in self.head.split(b"\r\n", 1)[0]:
                self.fail(RuntimeError(self.head.decode(errors="replace")))
                return
            self.state.tail = b"\n"  # the body starts on a fresh line
            self.connected.set()
            data, self.head = self.head[end + 4:], b""
        if data:
            self.state.feed(data, ts)
            self.close_if_complete()

    def close_if_complete(self) -> None:
        if self.expect.done() and self.state.last_id >= self.expect.result() and self.transport is not None:
            self.transport.close()

    def fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _same(protocol: StreamProtocol) -> StreamProtocol:
    return protocol


async def main(host: str, port: int, watcher: str, after: str, n: int, limit_s: float) -> None:
    loop = asyncio.get_running_loop()
    expect: asyncio.Future[str] = loop.create_future()
    states = [Client() for _ in range(n)]
    request = (f"GET /watchers/{watcher}/events HTTP/1.0\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
               f"Last-Event-ID: {after}\r\n\r\n").encode()
    protocols = [StreamProtocol(request, state, expect) for state in states]
    for protocol in protocols:
        await loop.create_connection(functools.partial(_same, protocol), host, port)
    await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in protocols)), timeout=limit_s)
    print("R", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    expect.set_result(line.split()[1] if line.startswith("expect") else "~")
    for protocol in protocols:
        protocol.close_if_complete()
    await asyncio.wait([p.done for p in protocols], timeout=limit_s)
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    for state in states:
        print(json.dumps({"events": state.events, "last_id": state.last_id, "last_ts": state.last_ts}))


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], int(a[1]), a[2], a[3], int(a[4]), float(a[5])))
