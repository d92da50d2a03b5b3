"""The supervisor's RPC operations over a real ZeroMQ socket, and its PUB socket."""

from __future__ import annotations

import os
from pathlib import Path

import msgpack
import pytest
import zmq

from fswatch_supervisor import protocol
from fswatch_supervisor.errors import BadRequest, NotFound, RequestError, Unprocessable
from tests.harness import SupervisorProc, events_of, wait_until


def test_create_describe_list_delete(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        made = rpc.call("create_watcher", path=str(tree), tags={"team": "exo"})
        assert made["id"].startswith("w_")
        assert made["rules"] == [["include-path", str(tree)], ["exclude-hidden"]]
        assert made["coalesce_ms"] == 50 and made["ttl_s"] is None
        assert made["oldest_event_id"] is None and made["latest_event_id"] is None
        assert rpc.call("get_watcher", id=made["id"])["tags"] == {"team": "exo"}
        other = rpc.call("create_watcher", path=str(tree), tags={"team": "dexo"})
        listed = rpc.call("list_watchers", tags={"team": "exo"})
        assert [w["id"] for w in listed["items"]] == [made["id"]]
        assert rpc.call("delete_watchers", tags={"team": "dexo"})["deleted"] == [other["id"]]
        assert rpc.call("delete_watcher", id=made["id"])["deleted"] == [made["id"]]
        with pytest.raises(NotFound):
            rpc.call("get_watcher", id=made["id"])


def test_list_pages_with_cursor(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        ids = [rpc.call("create_watcher", path=str(tree))["id"] for _ in range(5)]
        seen: list[str] = []
        cursor = None
        while True:
            page = rpc.call("list_watchers", limit=2, cursor=cursor)
            seen.extend(w["id"] for w in page["items"])
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == ids


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"path": "relative/dir"}, Unprocessable),
        ({"path": "/does/not/exist/at/all"}, Unprocessable),
        ({"path": "/dev/null"}, Unprocessable),
        ({"path": 42}, BadRequest),
        ({"rules": [["include-path"]]}, BadRequest),
        ({"rules": [["exclude-hidden"]]}, BadRequest),
        ({"path": "/tmp", "rules": [["include-path", "/tmp"]]}, BadRequest),
        ({}, BadRequest),
        ({"path": "/tmp", "colour": "blue"}, BadRequest),
        ({"path": "/tmp", "coalesce_ms": -1}, BadRequest),
        ({"path": "/tmp", "ttl_s": 0}, BadRequest),
        ({"path": "/tmp", "tags": {"a": 1}}, BadRequest),
    ],
)
def test_bad_create_is_an_error_and_changes_nothing(supervisor: SupervisorProc, args: dict[str, object],
                                                    error: type[RequestError]) -> None:
    with supervisor.client() as rpc:
        with pytest.raises(error):
            rpc.call("create_watcher", **args)
        assert rpc.call("list_watchers")["items"] == []
        assert rpc.call("ping")["ready"] is True


def test_read_events_argument_errors(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree))["id"]
        for bad in ({"after": "x1"}, {"after": "1" * 21}, {"since": "yesterday"}, {"limit": 0},
                    {"limit": 10_001}, {"wait": 61}):
            with pytest.raises(BadRequest):
                rpc.call("read_events", id=wid, **bad)
        with pytest.raises(NotFound):
            rpc.call("read_events", id="w_nope")


def test_unknown_op_and_garbage_frames_do_not_hurt(supervisor: SupervisorProc) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(supervisor.endpoints.rpc)
    try:
        sock.send(b"\xc1 not msgpack")
        assert sock.poll(5000)
        reply = msgpack.unpackb(sock.recv_multipart()[-1])
        assert reply["ok"] is False and reply["error"]["status"] == 400
        sock.send(msgpack.packb({"op": "explode"}))
        assert sock.poll(5000)
        reply = msgpack.unpackb(sock.recv_multipart()[-1])
        assert reply["error"]["status"] == 400 and "unknown op" in reply["error"]["detail"]
    finally:
        sock.close()
        context.term()
    with supervisor.client() as rpc:
        assert rpc.call("ping")["pid"] == supervisor.pid


def test_events_are_stored_then_published_with_the_watcher_as_topic(supervisor: SupervisorProc, tree: Path) -> None:
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(supervisor.endpoints.pub)
    try:
        with supervisor.client() as rpc:
            wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
            sub.setsockopt_string(zmq.SUBSCRIBE, wid)
            wait_until(lambda: _probe(rpc, wid, tree, sub), 10, 0.1, "the SUB socket to receive")
            (tree / "a.txt").write_text("hello")
            rpc.call("sync", id=wid)
            stored = events_of(rpc, wid)
            assert any(e["action"] == "created" and e["path"] == str(tree / "a.txt") and e["kind"] == "file"
                       for e in stored)
            ids = [e["id"] for e in stored]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            published: list[dict[str, object]] = []
            while sub.poll(2000) and not any(e["id"] == ids[-1] for e in published):
                topic, event = protocol.decode_event(sub.recv_multipart())
                assert topic == wid
                published.append(event)
            assert ids[-1] in [e["id"] for e in published]
    finally:
        sub.close()
        context.term()


def _probe(rpc: object, wid: str, tree: Path, sub: zmq.Socket[bytes]) -> bool:
    """Touch a probe file until the slow-joining SUB socket hears about it."""
    (tree / "probe").write_text("x")
    if sub.poll(200):
        while sub.poll(50):
            sub.recv_multipart()
        return True
    return False


def test_long_poll_returns_when_an_event_arrives(supervisor: SupervisorProc, tree: Path) -> None:
    import threading
    import time

    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), coalesce_ms=0)["id"]
        latest = rpc.call("sync", id=wid)["latest_event_id"]
        # Created empty: one raw change, so exactly one event at coalesce_ms 0.
        threading.Timer(0.3, lambda: os.close(os.open(tree / "late.txt", os.O_CREAT | os.O_WRONLY))).start()
        started = time.monotonic()
        page = rpc.call("read_events", id=wid, after=latest, wait=10, timeout=20)
        assert page["items"] and page["items"][0]["path"] == str(tree / "late.txt")
        assert time.monotonic() - started < 5
        empty = rpc.call("read_events", id=wid, after=page["next_after"], wait=0.3, timeout=5)
        assert empty["items"] == [] and empty["next_after"] == page["next_after"]


def test_ttl_expires_an_untouched_watcher(supervisor: SupervisorProc, tree: Path) -> None:
    with supervisor.client() as rpc:
        wid = rpc.call("create_watcher", path=str(tree), ttl_s=1)["id"]

        assert rpc.call("status")["watchers"] == 1
        # status touches no watcher, so only the clock decides.
        wait_until(lambda: rpc.call("status")["watchers"] == 0, 10, 0.2, "the watcher to expire")
        with pytest.raises(NotFound):
            rpc.call("get_watcher", id=wid)
