"""``/openapi.json``, ``/healthz``, ``/metrics``, and the front-end without its supervisor."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.test_api_fixtures import assert_problem, daemon_fixture, http_fixture  # noqa: F401
from tests.harness import start_supervisor, start_worker, wait_until

CONTRACT_OPERATIONS = {
    ("post", "/watchers"), ("get", "/watchers"), ("delete", "/watchers"), ("get", "/watchers/{id}"),
    ("delete", "/watchers/{id}"), ("get", "/watchers/{id}/events"), ("get", "/watchers/{id}/snapshot"),
    ("get", "/watchers/{id}/explain"), ("post", "/watchers/{id}/sync"), ("get", "/openapi.json"),
    ("get", "/healthz"), ("get", "/metrics"),
}


def test_openapi_documents_every_operation_with_problems(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    served = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served == CONTRACT_OPERATIONS
    create = document["paths"]["/watchers"]["post"]
    assert "Location" in create["responses"]["201"]["headers"]
    assert {"400", "401", "403", "422", "507"} <= set(create["responses"])
    problem = create["responses"]["422"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"} and problem["example"]["status"] == 422
    events = document["paths"]["/watchers/{id}/events"]["get"]
    assert {p["name"] for p in events["parameters"]} == {"id", "after", "since", "limit", "wait", "stream",
                                                         "Last-Event-ID"}
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "410" in events["responses"]
    assert document["components"]["schemas"]["CreateWatcher"]["additionalProperties"] is False


def test_healthz_and_metrics(http: httpx.Client, tree: Path) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    watcher = http.post("/watchers", json={"path": str(tree)}).json()["id"]
    with http.stream("GET", f"/watchers/{watcher}/events", headers={"Accept": "text/event-stream"}):
        text = http.get("/metrics").text
    for name in ("fswatch_http_requests_total", "fswatch_http_request_seconds_bucket", "fswatch_sse_clients 1.0",
                 "fswatch_supervisor_watchers", "fswatch_supervisor_os_watches", "fswatch_supervisor_store_bytes",
                 "fswatch_supervisor_up 1.0"):
        assert name in text
    assert 'route="/watchers/{id}/events"' in text


def test_front_end_without_supervisor_answers_503_then_recovers(tmp_path: Path, tree: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    supervisor = start_supervisor(state, log_dir=tmp_path)
    worker = start_worker(state, None, "--rpc-timeout", "1", log_dir=tmp_path)
    try:
        with httpx.Client(base_url=worker.base_url, timeout=10) as http:
            supervisor.stop()
            started = time.monotonic()
            health = http.get("/healthz")
            assert_problem(health, 503)
            assert_problem(http.post("/watchers", json={"path": str(tree)}), 503)
            assert time.monotonic() - started < 8, "a request must not hang while the supervisor is gone"
            assert "fswatch_supervisor_up 0.0" in http.get("/metrics").text
            supervisor = start_supervisor(state, log_dir=tmp_path)
            wait_until(lambda: http.get("/healthz").status_code == 200, message="the front-end to reconnect")
            assert http.post("/watchers", json={"path": str(tree)}).status_code == 201
    finally:
        worker.stop()
        supervisor.stop()
