"""Server-Sent Events end to end: backlog then live with no gap or duplicate, resumption,
keep-alives, and how a stream ends (watcher deleted, front-end stopping, supervisor restarting)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_api_fixtures import daemon_fixture, http_fixture  # noqa: F401
from tests.harness import SupervisorProc, WorkerProc, start_supervisor, start_worker, wait_until

SSE = {"Accept": "text/event-stream"}


def events(response: httpx.Response, comments: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Parse an SSE body: yield each event's data, checking that its ``id:`` line matches."""
    event_id = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
            assert data["id"] == event_id
            yield data
        elif line.startswith(":") and comments is not None:
            comments.append(line)


def make_watcher(http: httpx.Client, tree: Path) -> str:
    return str(http.post("/watchers", json={"path": str(tree), "coalesce_ms": 5}).json()["id"])


def pull_all(http: httpx.Client, watcher: str) -> list[dict[str, Any]]:
    http.post(f"/watchers/{watcher}/sync")
    return list(http.get(f"/watchers/{watcher}/events", params={"limit": 10_000}).json()["items"])


@pytest.mark.parametrize("how", ["accept", "query"])
def test_stream_sends_headers_at_once_then_backlog_then_live(http: httpx.Client, tree: Path, how: str) -> None:
    watcher = make_watcher(http, tree)
    (tree / "before").write_text("x")
    http.post(f"/watchers/{watcher}/sync")
    headers, params = (SSE, {}) if how == "accept" else ({}, {"stream": "true"})
    with http.stream("GET", f"/watchers/{watcher}/events", headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        stream = events(response)
        assert next(stream)["path"] == str(tree / "before")
        (tree / "after").write_text("x")
        assert next(stream)["path"] == str(tree / "after")


def test_last_event_id_wins_over_after(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    for name in ("a", "b", "c"):
        (tree / name).write_text("x")
        http.post(f"/watchers/{watcher}/sync")
    ids = [e["id"] for e in pull_all(http, watcher)]
    with http.stream("GET", f"/watchers/{watcher}/events", params={"after": ids[0]},
                     headers={**SSE, "Last-Event-ID": ids[1]}) as response:
        assert next(events(response))["id"] == ids[2]


def test_stream_errors_are_statuses_not_streams(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    assert http.get("/watchers/w_unknown/events", headers=SSE).status_code == 404
    bad = http.get(f"/watchers/{watcher}/events", headers={**SSE, "Last-Event-ID": "not-an-id"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")


def test_backlog_to_live_seam_under_a_write_burst(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    for i in range(300):
        (tree / f"early{i}").write_text("x")
    http.post(f"/watchers/{watcher}/sync")

    def burst() -> None:
        for i in range(700):
            (tree / f"late{i}").write_text("x")

    writer = threading.Thread(target=burst)
    received: list[dict[str, Any]] = []
    with http.stream("GET", f"/watchers/{watcher}/events", headers=SSE) as response:
        writer.start()  # the burst races the backlog, the subscription and the seam between them
        expected = {str(tree / f"early{i}") for i in range(300)} | {str(tree / f"late{i}") for i in range(700)}
        for event in events(response):
            received.append(event)
            expected.discard(event["path"])
            if not expected:
                break
    writer.join()
    ids = [int(e["id"]) for e in received]
    assert ids == sorted(set(ids)), "ids must strictly increase: no duplicate, no reordering"
    stored = [e["id"] for e in pull_all(http, watcher)]
    assert [e["id"] for e in received] == stored[: len(received)], "no gap against the store"


def test_deleting_the_watcher_ends_its_stream(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    timer = threading.Timer(0.3, http.delete, args=(f"/watchers/{watcher}",))
    with http.stream("GET", f"/watchers/{watcher}/events", headers=SSE) as response:
        timer.start()
        received = list(events(response))  # returns only when the server ends the stream
    timer.join()
    assert [e["action"] for e in received] == ["watcher-deleted"]


@pytest.fixture
def own_worker(daemon: tuple[SupervisorProc, WorkerProc], tmp_path: Path) -> Iterator[WorkerProc]:
    worker = start_worker(daemon[0].state_dir, None, "--keepalive", "0.3", log_dir=tmp_path)
    try:
        yield worker
    finally:
        worker.stop()


def test_keep_alive_comments(own_worker: WorkerProc, tree: Path) -> None:
    with httpx.Client(base_url=own_worker.base_url, timeout=10) as http:
        watcher = make_watcher(http, tree)
        comments: list[str] = []
        with http.stream("GET", f"/watchers/{watcher}/events", headers=SSE) as response:
            stream = events(response, comments)
            timer = threading.Timer(1.0, (tree / "x").write_text, args=("x",))
            timer.start()
            next(stream)
            timer.join()
    assert comments and set(comments) == {": keep-alive"}


def test_stopping_the_front_end_ends_its_streams(own_worker: WorkerProc, tree: Path) -> None:
    with httpx.Client(base_url=own_worker.base_url, timeout=10) as http:
        watcher = make_watcher(http, tree)
        with http.stream("GET", f"/watchers/{watcher}/events", headers=SSE) as response:
            started = time.monotonic()
            own_worker.signal(signal.SIGTERM)
            assert list(events(response)) == []
            assert time.monotonic() - started < 5
    assert own_worker.popen is not None and own_worker.popen.wait(10) == 0


@pytest.mark.timeout(60)
def test_stream_survives_a_supervisor_restart(tmp_path: Path, tree: Path) -> None:
    """What was published while the front-end's subscription was down is read back from the store."""
    state = tmp_path / "restart"
    state.mkdir()
    supervisor = start_supervisor(state, log_dir=tmp_path)
    worker = start_worker(state, None, "--rpc-timeout", "1", log_dir=tmp_path)
    try:
        with httpx.Client(base_url=worker.base_url, timeout=15) as http:
            watcher = make_watcher(http, tree)
            with http.stream("GET", f"/watchers/{watcher}/events", headers=SSE) as response:
                stream = events(response)
                (tree / "one").write_text("x")
                assert next(stream)["path"] == str(tree / "one")
                supervisor.stop()
                assert http.get("/healthz").status_code == 503
                assert http.get(f"/watchers/{watcher}").status_code == 503
                (tree / "while-down").write_text("x")
                supervisor = start_supervisor(state, log_dir=tmp_path)
                wait_until(lambda: http.get("/healthz").status_code == 200, message="front-end to reconnect")
                (tree / "two").write_text("x")
                paths = {next(stream)["path"], next(stream)["path"]}
                assert paths == {str(tree / "while-down"), str(tree / "two")}
    finally:
        worker.stop()
        supervisor.stop()
