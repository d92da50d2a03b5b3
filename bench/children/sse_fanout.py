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
import json
import sys
import time

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


async def run_client(host: str, port: int, path: str, after: str, state: Client,
                     connected: asyncio.Event, expect: asyncio.Future[str], deadline: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write((f"GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                  f"Last-Event-ID: {after}\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.decode(errors="replace"))
    state.tail = b"\n"  # the body starts on a fresh line
    connected.set()
    try:
        while time.monotonic() < deadline:
            if expect.done() and state.last_id >= expect.result():
                break
            try:
                data = await asyncio.wait_for(reader.read(1 << 16), timeout=0.2)
            except TimeoutError:
                continue
            if not data:
                break
            state.feed(data, time.time_ns())
    finally:
        writer.close()


async def main(host: str, port: int, watcher: str, after: str, n: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    loop = asyncio.get_running_loop()
    expect: asyncio.Future[str] = loop.create_future()
    states = [Client() for _ in range(n)]
    flags = [asyncio.Event() for _ in range(n)]
    path = f"/watchers/{watcher}/events"
    async with asyncio.TaskGroup() as group:
        for state, flag in zip(states, flags, strict=True):
            group.create_task(run_client(host, port, path, after, state, flag, expect, deadline))
        await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), timeout=limit_s)
        print("R", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        expect.set_result(line.split()[1] if line.startswith("expect") else "~")
    for state in states:
        print(json.dumps({"events": state.events, "last_id": state.last_id, "last_ts": state.last_ts}))


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], int(a[1]), a[2], a[3], int(a[4]), float(a[5])))
