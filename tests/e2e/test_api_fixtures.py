"""Fixtures and checks shared by the front-end's end-to-end modules (no tests of its own).

Import ``daemon_fixture`` / ``http_fixture`` into a module to get the ``daemon`` / ``http`` fixtures.

``daemon`` is one supervisor and one front-end for a whole module: starting them is most of a
test's cost, and each test makes its own watchers, so tests do not see each other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import SupervisorProc, WorkerProc, start_supervisor, start_worker

PROBLEM = "application/problem+json"


@pytest.fixture(name="daemon", scope="module")
def daemon_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SupervisorProc, WorkerProc]]:
    root = tmp_path_factory.mktemp("daemon")
    (root / "state").mkdir()
    supervisor = start_supervisor(root / "state", log_dir=root)
    try:
        worker = start_worker(supervisor.state_dir, log_dir=root)
        try:
            yield supervisor, worker
        finally:
            worker.stop()
    finally:
        supervisor.stop()


@pytest.fixture(name="http")
def http_fixture(daemon: tuple[SupervisorProc, WorkerProc]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon[1].base_url, timeout=15) as client:
        yield client


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 answer with this status, and no stack trace in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    assert isinstance(body["detail"], str) and "Traceback" not in response.text
    return body
