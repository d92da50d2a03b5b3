"""Pulling events, snapshot, explain and sync through a real front-end: the seed session and every
query parameter and error status of ``/watchers/{id}/events``."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_api_fixtures import assert_problem, daemon_fixture, http_fixture  # noqa: F401
from tests.harness import start_supervisor, start_worker, wait_until


def make_watcher(http: httpx.Client, tree: Path, **extra: Any) -> str:
    response = http.post("/watchers", json={"path": str(tree), "coalesce_ms": 10, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def settle(http: httpx.Client, watcher: str) -> str | None:
    response = http.post(f"/watchers/{watcher}/sync")
    assert response.status_code == 200, response.text
    latest: str | None = response.json()["latest_event_id"]
    return latest


def test_seed_session(http: httpx.Client, tree: Path) -> None:
    created = http.post("/watchers", json={"path": str(tree)})
    assert created.status_code == 201
    location = created.headers["location"]
    assert http.get(location).json()["path"] == str(tree)
    (tree / "a.py").write_text("x")
    (tree / ".hidden").write_text("x")
    settle(http, created.json()["id"])
    page = http.get(f"{location}/events").json()
    assert [(e["action"], e["path"], e["kind"]) for e in page["items"]] == [("created", str(tree / "a.py"), "file")]
    first = page["items"][0]
    assert len(first["id"]) == 20 and first["time"].endswith("Z")
    assert page["next_after"] == first["id"] == page["oldest_event_id"] == page["latest_event_id"]
    (tree / "b.py").write_text("y")
    settle(http, created.json()["id"])
    after = http.get(f"{location}/events", params={"after": first["id"]}).json()
    assert [e["path"] for e in after["items"]] == [str(tree / "b.py")]
    assert int(after["items"][0]["id"]) > int(first["id"])


def test_limit_paging_and_empty_pages(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    for i in range(7):
        (tree / f"f{i}").write_text("x")
    settle(http, watcher)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    after = None
    while True:
        page = http.get(f"/watchers/{watcher}/events", params=params).json()
        assert len(page["items"]) <= 3
        if not page["items"]:
            assert page["next_after"] == after
            break
        seen += [e["path"] for e in page["items"]]
        after = params["after"] = page["next_after"]
    assert sorted(seen) == sorted(str(tree / f"f{i}") for i in range(7))


def test_since_filters_by_time(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    (tree / "old").write_text("x")
    settle(http, watcher)
    time.sleep(0.05)  # the two events must be apart in time for 'since' to tell them apart
    cut = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.05)
    (tree / "new").write_text("x")
    settle(http, watcher)
    page = http.get(f"/watchers/{watcher}/events", params={"since": "2000-01-01T00:00:00Z"}).json()
    assert len(page["items"]) == 2
    page = http.get(f"/watchers/{watcher}/events", params={"since": cut}).json()
    assert [e["path"] for e in page["items"]] == [str(tree / "new")]


def test_long_poll_returns_when_an_event_arrives(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    timer = threading.Timer(0.5, (tree / "late").write_text, args=("x",))
    started = time.monotonic()
    timer.start()
    page = http.get(f"/watchers/{watcher}/events", params={"wait": 20}).json()
    assert [e["path"] for e in page["items"]] == [str(tree / "late")]
    assert 0.3 < time.monotonic() - started < 10


def test_long_poll_times_out_empty(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    started = time.monotonic()
    page = http.get(f"/watchers/{watcher}/events", params={"wait": 0.5}).json()
    assert page["items"] == [] and 0.4 < time.monotonic() - started < 5


def test_bad_event_queries_are_400(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    for params in ({"after": "abc"}, {"after": "-1"}, {"after": "1" * 21}, {"after": "99999999999999999999"},
                   {"since": "yesterday"}, {"since": "2026-01-01"}, {"limit": 0}, {"limit": 10_001},
                   {"wait": 61}, {"wait": "soon"}, {"stream": "maybe"}, {"after": ["1", "2"]}):
        assert_problem(http.get(f"/watchers/{watcher}/events", params=params), 400)


def test_snapshot_then_follow(http: httpx.Client, tree: Path) -> None:
    (tree / "d").mkdir()
    (tree / "d" / "x.txt").write_text("12345")
    watcher = make_watcher(http, tree)
    snap = http.get(f"/watchers/{watcher}/snapshot").json()
    items = {i["path"]: i for i in snap["items"]}
    assert items[str(tree / "d" / "x.txt")]["size"] == 5 and items[str(tree / "d")]["kind"] == "dir"
    (tree / "d" / "y.txt").write_text("y")
    settle(http, watcher)
    follow = http.get(f"/watchers/{watcher}/events", params={"after": snap["after"]}).json()
    assert [e["path"] for e in follow["items"]] == [str(tree / "d" / "y.txt")]
    page = http.get(f"/watchers/{watcher}/snapshot", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next"]
    assert_problem(http.get(f"/watchers/{watcher}/snapshot", params={"limit": 0}), 400)


def snapshot_pages(http: httpx.Client, watcher: str, limit: int) -> list[str]:
    paths: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(100):  # a cursor that does not advance must fail the test, not hang it
        page = http.get(f"/watchers/{watcher}/snapshot", params=params).json()
        paths += [item["path"] for item in page["items"]]
        if not page["next"]:
            return paths
        params["cursor"] = page["next"]
    raise AssertionError(f"the snapshot did not end: {paths}")


def test_snapshot_of_several_roots_lists_each_entry_once_whatever_the_page_size(
        http: httpx.Client, tmp_path: Path) -> None:
    outer, elsewhere = tmp_path / "outer", tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "sub" / "kept.txt").write_text("x")
    (outer / "in" / "deep").mkdir(parents=True)
    (outer / "in" / "deep" / "d.txt").write_text("d")
    (outer / "plain.txt").write_text("y")
    (outer / "link").symlink_to(elsewhere)  # the outer root's walk does not follow it
    rules = [["include-path", str(outer)], ["include-path", str(outer / "link" / "sub")],
             ["include-path", str(outer / "in")]]  # nested and reached: not walked twice
    created = http.post("/watchers", json={"rules": rules})
    assert created.status_code == 201, created.text
    watcher = created.json()["id"]
    whole = snapshot_pages(http, watcher, 1000)
    assert sorted(whole) == sorted([str(outer / "plain.txt"), str(outer / "link"), str(outer / "in"),
                                    str(outer / "in" / "deep"), str(outer / "in" / "deep" / "d.txt"),
                                    str(outer / "link" / "sub" / "kept.txt")])
    for limit in (1, 2, 3):
        assert snapshot_pages(http, watcher, limit) == whole


def test_explain(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    hidden = http.get(f"/watchers/{watcher}/explain", params={"path": str(tree / ".git")}).json()
    assert hidden["selected"] is False and hidden["rule"] == ["exclude-hidden"]
    shown = http.get(f"/watchers/{watcher}/explain", params={"path": str(tree / "a.py")}).json()
    assert shown["selected"] is True and shown["os_watched"] is True
    assert_problem(http.get(f"/watchers/{watcher}/explain"), 400)


def test_sync_accepts_an_optional_deadline(http: httpx.Client, tree: Path) -> None:
    watcher = make_watcher(http, tree)
    (tree / "z").write_text("z")
    response = http.post(f"/watchers/{watcher}/sync", json={"timeout_s": 20})
    assert response.status_code == 200
    assert response.json()["latest_event_id"] == http.get(f"/watchers/{watcher}").json()["latest_event_id"]
    assert_problem(http.post(f"/watchers/{watcher}/sync", json={"timeout_s": 0}), 400)
    assert_problem(http.post(f"/watchers/{watcher}/sync", json={"wait": 1}), 400)


def test_cursor_behind_retention_is_410_with_oldest_id(tmp_path: Path, tree: Path) -> None:
    state = tmp_path / "small"
    state.mkdir()
    supervisor = start_supervisor(state, "--retain-events", "8", log_dir=tmp_path)
    worker = start_worker(state, log_dir=tmp_path)
    try:
        with httpx.Client(base_url=worker.base_url, timeout=15) as http:
            watcher = make_watcher(http, tree)
            (tree / "first").write_text("x")
            first = settle(http, watcher)
            for i in range(40):
                (tree / f"f{i}").write_text("x")
            settle(http, watcher)
            response = wait_until(lambda: (r := http.get(f"/watchers/{watcher}/events",
                                                          params={"after": first})).status_code == 410 and r,
                                  message="retention to discard the first events")
            body = assert_problem(response, 410)
            oldest = body["oldest_event_id"]  # null when retention kept nothing of this watcher
            assert oldest is None or int(oldest) > int(first or 0)
    finally:
        worker.stop()
        supervisor.stop()
