"""An fswatch HTTP client: ``POST /watchers``, then the watcher's SSE stream, one thread each.

``watch NAME PATH [COALESCE_MS]`` creates a watcher and follows its events; ``create`` only creates
(the ack's info is the watcher id). Stamps are taken when a complete SSE event has been read.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

from bench.children import emit

base = sys.argv[1]
MAX_RESUMES = 1000
client = httpx.Client(base_url=base, timeout=httpx.Timeout(30.0, read=None))


def follow(watcher_id: str) -> None:
    """Follow the stream; when the server ends it (a reader too far behind is cut off, as the
    contract says), resume from the last id seen, like a browser's EventSource would."""
    last_id: str | None = None
    for _attempt in range(MAX_RESUMES):
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            with client.stream("GET", f"/watchers/{watcher_id}/events", headers=headers) as resp:
                if resp.status_code != 200:
                    emit.error(f"SSE {resp.status_code}: {resp.read()[:200]!r}")
                    return
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    ts = time.time_ns()
                    ev = json.loads(line[5:])
                    last_id = ev.get("id", last_id)
                    if ev.get("action") == "overflow":
                        emit.overflow(f"overflow event {ev.get('id')}")
                    else:
                        emit.event(str(ev.get("action")), str(ev.get("path")), ev.get("from"), ts=ts)
        except httpx.HTTPError as exc:
            emit.resumed(f"{watcher_id} after {exc!r}")
        else:
            emit.resumed(f"{watcher_id} after the server ended the stream")
        time.sleep(0.05)
    emit.error(f"SSE {watcher_id}: gave up after {MAX_RESUMES} resumes")


def create(path: str, coalesce: str | None) -> str:
    body: dict[str, object] = {"path": path}
    if coalesce not in (None, "", "default"):
        body["coalesce_ms"] = int(str(coalesce))
    resp = client.post("/watchers", json=body)
    if resp.status_code != 201:
        raise RuntimeError(f"POST /watchers {resp.status_code}: {resp.text[:300]}")
    return str(resp.json()["id"])


def main() -> None:
    emit.ready()
    for cmd in emit.commands():
        if cmd[0] not in ("watch", "create"):
            continue
        start = time.perf_counter_ns()
        try:
            watcher_id = create(cmd[2], cmd[3] if len(cmd) > 3 else None)
        except (RuntimeError, httpx.HTTPError) as exc:
            emit.error(f"{cmd[1]}: {exc}")
            continue
        elapsed = time.perf_counter_ns() - start
        if cmd[0] == "watch":
            threading.Thread(target=follow, args=(watcher_id,), daemon=True).start()
        emit.ack(cmd[1], elapsed, watcher_id)


if __name__ == "__main__":
    main()
