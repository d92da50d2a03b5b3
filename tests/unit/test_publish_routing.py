"""Routing decides once per distinct rule set; the PUB socket sends only topics someone follows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from fswatch_supervisor import protocol
from fswatch_supervisor.changes import Change
from fswatch_supervisor.pipeline import Pipeline
from fswatch_supervisor.registry import Registry
from fswatch_supervisor.rpc import Publisher
from fswatch_supervisor.rules import RuleSet
from fswatch_supervisor.store.eventstore import NewEvent
from fswatch_supervisor.watchers import Watcher


class KeptStore:
    def __init__(self) -> None:
        self.events: list[NewEvent] = []

    def append(self, events: Sequence[NewEvent]) -> list[tuple[int, dict[str, Any]]]:
        self.events += events
        return [(len(self.events) + i, {"id": str(i)}) for i, _ in enumerate(events)]


def watcher(serial: int, rules: list[list[str]]) -> Watcher:
    return Watcher(id=f"w_{serial}", serial=serial, rules=RuleSet.parse(rules), path=rules[0][1], tags={},
                   coalesce_ms=0, ttl_s=None, created_ns=0)


def test_each_watcher_gets_a_change_once_and_equal_rules_decide_once(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "watchers.log", sync_each=False)
    registry.open()
    same = [["include-path", "/r"], ["exclude-hidden"]]
    for w in (watcher(1, same), watcher(2, same),
              watcher(3, [["include-path", "/r"], ["include-path", "/r/sub"]])):  # found once per root
        registry.add(w)
    # Routing asks each group's rules once: two distinct rule sets, not three watchers (or four roots).
    groups = registry.rule_groups("/r/sub/f.txt", 0)
    assert sorted(ids for _, ids in groups) == [("w_1", "w_2"), ("w_3",)]
    store = KeptStore()
    pipeline = Pipeline(registry, store, lambda deliveries: None)
    pipeline.on_changes([Change("created", "/r/sub/f.txt", "file", time.time_ns())])
    assert [sorted(e.watchers) for e in store.events] == [["w_1", "w_2", "w_3"]]
    pipeline.on_changes([Change("created", "/r/.hidden", "file", time.time_ns())])
    assert [sorted(e.watchers) for e in store.events][-1] == ["w_3"]
    registry.close()


def test_an_overflow_is_one_event_per_watcher_however_its_roots_nest(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "watchers.log", sync_each=False)
    registry.open()
    for w in (watcher(1, [["include-path", "/r"]]), watcher(2, [["include-path", "/r/d"]]),
              watcher(3, [["include-path", "/r/e"], ["include-path", "/r/d"]]), watcher(4, [["include-path", "/x"]])):
        registry.add(w)
    store = KeptStore()
    pipeline = Pipeline(registry, store, lambda deliveries: None)
    now = time.time_ns()
    # The mirror reports an overflow once per followed root, in one batch.
    pipeline.on_changes([Change("overflow", root, None, now) for root in ("/r", "/r/d", "/r/e", "/x")])
    told = sorted((watcher_id, e.path) for e in store.events for watcher_id in e.watchers)
    assert told == [("w_1", "/r"), ("w_2", "/r/d"), ("w_3", "/r/e"), ("w_4", "/x")]
    registry.close()


def test_root_deleted_is_news_for_that_roots_watchers_only_and_their_last_there(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "watchers.log", sync_each=False)
    registry.open()
    outer, inner, both = (watcher(1, [["include-path", "/r"]]), watcher(2, [["include-path", "/r/a/b"]]),
                          watcher(3, [["include-path", "/r/a/b"], ["include-path", "/r/c"]]))
    for w in (outer, inner, both):
        registry.add(w)
    store = KeptStore()
    pipeline = Pipeline(registry, store, lambda deliveries: None)
    pipeline.on_changes([Change("root-deleted", "/r/a/b", "dir", time.time_ns())])
    assert [(e.action, sorted(e.watchers)) for e in store.events] == [("root-deleted", ["w_2", "w_3"])]
    # Recreated there, and another watcher (w_1) still follows the tree: the others do not.
    pipeline.on_changes([Change("created", "/r/a/b/f", "file", time.time_ns()),
                         Change("created", "/r/c/g", "file", time.time_ns())])
    assert [(e.path, sorted(e.watchers)) for e in store.events[1:]] == [("/r/a/b/f", ["w_1"]),
                                                                          ("/r/c/g", ["w_1", "w_3"])]
    assert not registry.follows(inner, "/r/a/b") and registry.follows(both, "/r/c")
    registry.close()


def _receive(sub: zmq.Socket[bytes]) -> list[bytes]:
    topics = []
    while sub.poll(50):
        topics.append(sub.recv_multipart()[0])
    return topics


def _publish_until(publisher: Publisher, sub: zmq.Socket[bytes], topic: bytes) -> list[bytes]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        publisher.publish([(["w_a", "w_b"], {"id": "1"})])
        got = _receive(sub)
        if topic in got:
            return got
    raise AssertionError(f"{topic!r} never arrived")


def test_the_pub_socket_sends_only_topics_someone_subscribed_to(tmp_path: Path) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    publisher = Publisher(context, f"ipc://{tmp_path}/pub.ipc")
    one = context.socket(zmq.SUB)
    everything = context.socket(zmq.SUB)
    try:
        one.connect(f"ipc://{tmp_path}/pub.ipc")
        one.setsockopt(zmq.SUBSCRIBE, b"w_a")
        assert set(_publish_until(publisher, one, b"w_a")) == {b"w_a"}
        assert publisher.unwanted > 0  # w_b: nobody follows it, so it was never sent

        everything.connect(f"ipc://{tmp_path}/pub.ipc")
        everything.setsockopt(zmq.SUBSCRIBE, b"")
        _publish_until(publisher, everything, b"w_b")
        unwanted = publisher.unwanted
        publisher.publish([(["w_a", "w_b"], {"id": "2"})])
        assert publisher.unwanted == unwanted

        everything.close(linger=0)  # its subscriptions end with it
        deadline = time.monotonic() + 10
        while publisher.unwanted == unwanted:
            assert time.monotonic() < deadline, "the departed subscriber's topics were still sent"
            publisher.publish([(["w_b"], {"id": "3"})])
            time.sleep(0.01)
    finally:
        one.close(linger=0)
        everything.close(linger=0)
        publisher.close()
        context.term()


def test_the_fanout_socket_carries_each_event_once_with_all_its_watchers(tmp_path: Path) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    publisher = Publisher(context, f"ipc://{tmp_path}/pub.ipc", f"ipc://{tmp_path}/fanout.ipc")
    front_end = context.socket(zmq.SUB)
    try:
        front_end.connect(f"ipc://{tmp_path}/fanout.ipc")
        front_end.setsockopt(zmq.SUBSCRIBE, b"")
        deadline = time.monotonic() + 10
        while not front_end.poll(20):
            assert time.monotonic() < deadline, "the fanout subscriber never heard anything"
            publisher.publish([(["w_a", "w_b", "w_c"], {"id": "1"})])
        messages = []
        while front_end.poll(50):
            messages.append(protocol.decode_fanout(front_end.recv_multipart()))
        assert messages and all(m == (["w_a", "w_b", "w_c"], {"id": "1"}) for m in messages)
        assert publisher.sent == 0  # nobody follows any watcher on the public socket
    finally:
        front_end.close(linger=0)
        publisher.close()
        context.term()
