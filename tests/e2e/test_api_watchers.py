"""``/watchers``: create, describe, list, delete, through a real front-end and supervisor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_api_fixtures import assert_problem, daemon_fixture, http_fixture  # noqa: F401
from tests.harness import SupervisorProc, WorkerProc, start_worker


def test_create_answers_201_with_location_and_description(http: httpx.Client, tree: Path) -> None:
    response = http.post("/watchers", json={"path": str(tree), "tags": {"team": "exo"}})
    assert response.status_code == 201
    watcher = response.json()
    assert response.headers["location"] == f"/watchers/{watcher['id']}"
    assert watcher["path"] == str(tree)
    assert watcher["rules"] == [["include-path", str(tree)], ["exclude-hidden"]]
    assert watcher["tags"] == {"team": "exo"} and watcher["coalesce_ms"] == 50 and watcher["ttl_s"] is None
    assert watcher["oldest_event_id"] is None and watcher["latest_event_id"] is None
    described = http.get(response.headers["location"])
    assert described.status_code == 200 and described.json() == watcher


def test_create_with_rules(http: httpx.Client, tree: Path) -> None:
    rules = [["include-path", str(tree)], ["exclude-glob", "**/*.pyc"], ["include-hidden"]]
    response = http.post("/watchers", json={"rules": rules, "coalesce_ms": 0, "ttl_s": 60})
    assert response.status_code == 201, response.text
    assert response.json()["rules"] == rules and response.json()["ttl_s"] == 60


@pytest.mark.parametrize("body", [
    {"path": "relative/dir"},
    {"path": "/definitely/not/here"},
    {"path": "/dev/null"},
])
def test_semantic_path_errors_are_422(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_problem(http.post("/watchers", json=body), 422)


@pytest.mark.parametrize("body", [
    {}, {"path": "/tmp", "rules": [["include-path", "/tmp"]]}, {"path": "/tmp", "color": "red"},
    {"path": 5}, {"path": "/tmp", "coalesce_ms": -1}, {"path": "/tmp", "coalesce_ms": "50"},
    {"path": "/tmp", "ttl_s": 0}, {"path": "/tmp", "tags": {"a": 1}}, {"rules": []},
    {"rules": [["exclude-hidden"]]}, {"rules": [["include-path"]]}, {"rules": [["frobnicate", "/tmp"]]},
    {"rules": [["include-path", "/tmp"], ["include-glob", "[unclosed"]]},
])
def test_malformed_bodies_are_400(http: httpx.Client, body: dict[str, Any]) -> None:
    assert_problem(http.post("/watchers", json=body), 400)


def test_list_filters_by_id_and_tag_and_pages(http: httpx.Client, tree: Path) -> None:
    made = [http.post("/watchers", json={"path": str(tree), "tags": {"n": str(i), "all": "listing"}}).json()
            for i in range(5)]
    ids = [w["id"] for w in made]
    assert [w["id"] for w in http.get("/watchers", params={"id": ids[1:3]}).json()["items"]] == ids[1:3]
    assert [w["id"] for w in http.get("/watchers", params={"tag": ["n=3", "all=listing"]}).json()["items"]] == [ids[3]]
    assert http.get("/watchers", params={"tag": ["n=3", "all=other"]}).json()["items"] == []
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, "tag": "all=listing"}
    while True:
        page = http.get("/watchers", params=params).json()
        assert len(page["items"]) <= 2
        seen += [w["id"] for w in page["items"]]
        if page["next"] is None:
            break
        params["cursor"] = page["next"]
    assert seen == ids
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"tag": "novalue"}, {"limit": ["1", "2"]}):
        assert_problem(http.get("/watchers", params=bad), 400)


def test_delete_one_and_by_selector(http: httpx.Client, tree: Path) -> None:
    a, b, c = (http.post("/watchers", json={"path": str(tree), "tags": {"g": g}}).json()["id"]
               for g in ("x", "y", "y"))
    assert http.delete(f"/watchers/{a}").status_code == 204
    assert_problem(http.get(f"/watchers/{a}"), 404)
    assert_problem(http.delete(f"/watchers/{a}"), 404)
    response = http.delete("/watchers", params={"tag": "g=y"})
    assert response.status_code == 200 and sorted(response.json()["deleted"]) == sorted([b, c])
    assert http.delete("/watchers", params={"id": "w_nothing"}).json() == {"deleted": []}
    assert_problem(http.delete("/watchers"), 400)


def test_unknown_watcher_is_404_everywhere(http: httpx.Client) -> None:
    for path in ("/watchers/w_nope", "/watchers/w_nope/events", "/watchers/w_nope/snapshot",
                 "/watchers/w_nope/explain?path=/tmp", "/watchers/not%20an%20id"):
        assert_problem(http.get(path), 404)
    assert_problem(http.post("/watchers/w_nope/sync"), 404)


def test_two_front_ends_see_the_same_watchers(daemon: tuple[SupervisorProc, WorkerProc], tree: Path,
                                              tmp_path: Path) -> None:
    supervisor, api = daemon
    second = start_worker(supervisor.state_dir, log_dir=tmp_path)
    try:
        created = httpx.post(f"{api.base_url}/watchers", json={"path": str(tree)}).json()
        assert httpx.get(f"{second.base_url}/watchers/{created['id']}").json() == created
        assert httpx.delete(f"{second.base_url}/watchers/{created['id']}").status_code == 204
        assert httpx.get(f"{api.base_url}/watchers/{created['id']}").status_code == 404
    finally:
        second.stop()
