"""Hundreds of concurrent streams on one front-end; a reader that stops reading holds up nobody."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx

from tests.harness import WorkerProc

STREAMS = 200
FILES = 100


async def _follow(client: httpx.AsyncClient, url: str, want: int, opened: asyncio.Event,
                  counter: list[int]) -> list[str]:
    ids: list[str] = []
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        counter[0] += 1
        if counter[0] == STREAMS:
            opened.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["action"] == "created":
                    ids.append(event["id"])
                    if len(ids) == want:
                        return ids
    return ids


def test_two_hundred_streams_each_get_every_event_in_order(api: WorkerProc, tree: Path) -> None:
    async def scenario() -> list[list[str]]:
        limits = httpx.Limits(max_connections=STREAMS + 10)
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30, limits=limits) as client:
            created = await client.post("/watchers", json={"path": str(tree), "coalesce_ms": 0})
            url = f"/watchers/{created.json()['id']}/events"
            opened, counter = asyncio.Event(), [0]
            tasks = [asyncio.create_task(_follow(client, url, FILES, opened, counter)) for _ in range(STREAMS)]
            await asyncio.wait_for(opened.wait(), 30)
            for i in range(FILES):
                fd = (tree / f"f{i:03d}").open("w")
                fd.close()
            return await asyncio.wait_for(asyncio.gather(*tasks), 60)

    results = asyncio.run(scenario())
    assert len(results) == STREAMS
    expected = results[0]
    assert len(expected) == FILES and expected == sorted(expected)
    assert all(ids == expected for ids in results), "some stream missed, repeated or reordered an event"


def test_a_reader_that_stops_reading_does_not_delay_another(api: WorkerProc, tree: Path) -> None:
    watcher = httpx.post(f"{api.base_url}/watchers", json={"path": str(tree), "coalesce_ms": 0}).json()["id"]
    # A raw socket that asks for the stream and then never reads a byte.
    stalled = socket.create_connection(("127.0.0.1", api.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f"GET /watchers/{watcher}/events?stream=true HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    try:
        started = time.monotonic()
        with httpx.Client(base_url=api.base_url, timeout=30) as client, \
                client.stream("GET", f"/watchers/{watcher}/events", params={"stream": "true"}) as response:
            for i in range(2000):
                (tree / f"g{i}").touch()
            seen = 0
            for line in response.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["action"] == "created":
                    seen += 1
                    if seen == 2000:
                        break
        assert seen == 2000
        assert time.monotonic() - started < 30
        assert httpx.get(f"{api.base_url}/healthz").status_code == 200
    finally:
        stalled.close()
