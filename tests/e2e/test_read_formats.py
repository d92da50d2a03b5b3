"""``read_events`` answered as the HTTP body itself (``format="json"``), and the pull path that uses it."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from fswatch_supervisor.errors import BadRequest
from tests.harness import SupervisorProc, WorkerProc, events_of, wait_until


def test_json_format_is_the_map_page_encoded(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        for name in ("a", "b", "c"):
            (tree / name).write_text(name)
        wait_until(lambda: len(events_of(rpc, wid)) >= 3, message="three events")
        page = rpc.call("read_events", id=wid, limit=2)
        as_json = rpc.call("read_events", id=wid, limit=2, format="json")
        assert set(as_json) == {"json"} and orjson.loads(as_json["json"]) == page
        assert rpc.call("read_events", id=wid, limit=2, format="map") == page
        with pytest.raises(BadRequest, match="format"):
            rpc.call("read_events", id=wid, format="xml")


def test_http_pull_pages_are_unchanged(api: WorkerProc, tree: Path) -> None:
    with httpx.Client(base_url=api.base_url, timeout=10) as http:
        wid = http.post("/watchers", json={"path": str(tree), "coalesce_ms": 0}).json()["id"]
        for i in range(5):
            (tree / f"f{i}").write_text("x")
        http.post(f"/watchers/{wid}/sync")
        first = http.get(f"/watchers/{wid}/events", params={"limit": 3})
        assert first.status_code == 200 and first.headers["content-type"] == "application/json"
        body = first.json()
        assert len(body["items"]) == 3 and body["next_after"] == body["items"][-1]["id"]
        rest = http.get(f"/watchers/{wid}/events", params={"after": body["next_after"]}).json()
        items = body["items"] + rest["items"]
        assert {e["path"] for e in items} == {str(tree / f"f{i}") for i in range(5)}
        assert [e["id"] for e in items] == sorted({e["id"] for e in items})  # ascending, no repeats
        assert rest["latest_event_id"] == rest["items"][-1]["id"]
        empty = http.get(f"/watchers/{wid}/events", params={"after": rest["next_after"], "wait": "0.2"}).json()
        assert empty["items"] == [] and empty["next_after"] == rest["next_after"]
