"""Malformed requests: each gets a 4xx problem-details answer, and the front-end stays up."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_api_fixtures import assert_problem, daemon_fixture, http_fixture  # noqa: F401
from tests.harness import SupervisorProc, WorkerProc

W = "/watchers/{id}"
MALFORMED: list[tuple[str, str, dict[str, Any], int]] = [
    ("POST", "/watchers", {"content": b"{"}, 400),
    ("POST", "/watchers", {"content": b"not json"}, 400),
    ("POST", "/watchers", {"content": b"[]"}, 400),
    ("POST", "/watchers", {"content": b"null"}, 400),
    ("POST", "/watchers", {"content": b'"path"'}, 400),
    ("POST", "/watchers", {"content": b""}, 400),
    ("POST", "/watchers", {"content": b'{"path": "/tmp", "path": 1}'}, 400),
    ("POST", "/watchers", {"content": b"\xff\xfe{}"}, 400),
    ("POST", "/watchers", {"json": {"path": None}}, 400),
    ("POST", "/watchers", {"json": {"path": "/tmp", "tags": []}}, 400),
    ("POST", "/watchers", {"json": {"path": "/tmp", "tags": {"k": None}}}, 400),
    ("POST", "/watchers", {"json": {"path": "/tmp", "coalesce_ms": 1.5}}, 400),
    ("POST", "/watchers", {"json": {"path": "/tmp", "coalesce_ms": True}}, 400),
    ("POST", "/watchers", {"json": {"path": "/tmp", "ttl_s": -5}}, 400),
    ("POST", "/watchers", {"json": {"path": "/tmp\u0000x"}}, 400),
    ("POST", "/watchers", {"json": {"rules": "include-path /tmp"}}, 400),
    ("POST", "/watchers", {"json": {"rules": [["include-path", "/tmp", "extra"]]}}, 400),
    ("POST", "/watchers", {"json": {"rules": [[]]}}, 400),
    ("POST", "/watchers", {"json": {"rules": [[1, 2]]}}, 400),
    ("POST", "/watchers", {"content": b"{" * 100_000}, 400),
    ("POST", "/watchers", {"content": b'{"path": "' + b"a" * 2_000_000 + b'"}'}, 413),
    ("GET", "/watchers", {"params": {"limit": "1e3"}}, 400),
    ("GET", "/watchers", {"params": {"unknown": "1"}}, 400),
    ("GET", "/watchers", {"params": {"cursor": ["a", "b"]}}, 400),
    ("DELETE", "/watchers", {"params": {"tag": "=nokey"}}, 400),
    ("GET", W + "/events", {"params": {"after": "0x10"}}, 400),
    ("GET", W + "/events", {"params": {"since": "2026-13-45T99:99:99Z"}}, 400),
    ("GET", W + "/events", {"params": {"wait": "-1"}}, 400),
    ("GET", W + "/events", {"params": {"limit": ""}}, 400),
    ("GET", W + "/events", {"headers": {"Accept": "text/event-stream", "Last-Event-ID": "x"}}, 400),
    ("GET", W + "/explain", {"params": {"path": ""}}, 400),
    ("POST", W + "/sync", {"content": b"{oops"}, 400),
    ("POST", W + "/sync", {"json": {"timeout_s": "10"}}, 400),
    ("PUT", "/watchers", {}, 405),
    ("PATCH", W, {}, 405),
    ("GET", "/watcher", {}, 404),
    ("GET", "/watchers/../etc/passwd", {}, 404),
]


@pytest.fixture(name="watcher", scope="module")
def watcher_fixture(daemon: tuple[SupervisorProc, WorkerProc], tmp_path_factory: pytest.TempPathFactory) -> str:
    tree = tmp_path_factory.mktemp("malformed")
    response = httpx.post(f"{daemon[1].base_url}/watchers", json={"path": str(tree)})
    return str(response.json()["id"])


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), MALFORMED,
                         ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(MALFORMED)])
def test_malformed_request_is_a_4xx_problem(http: httpx.Client, watcher: str, method: str, path: str,
                                            kwargs: dict[str, Any], status: int) -> None:
    response = http.request(method, path.format(id=watcher), **kwargs)
    assert_problem(response, status)


def test_front_end_is_still_up_after_garbage(daemon: tuple[SupervisorProc, WorkerProc], http: httpx.Client,
                                             tree: Path) -> None:
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /watchers HTTP/1.1\r\n"
                 b"Content-Length: 99999999999\r\n\r\n{"):
        with socket.create_connection(("127.0.0.1", daemon[1].port), timeout=5) as raw:
            raw.sendall(junk)
            raw.shutdown(socket.SHUT_WR)
            raw.recv(4096)
    assert daemon[1].alive()
    assert http.get("/healthz").status_code == 200
    assert http.post("/watchers", json={"path": str(tree)}).status_code == 201
