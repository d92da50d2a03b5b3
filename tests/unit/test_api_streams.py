"""The SSE machinery in one process: bounded live queues, the subscriber, and the backlog→live seam."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zmq
import zmq.asyncio

from fswatch_api.sse import LIVE_CHUNK_EVENTS, encode_event, event_frames
from fswatch_api.subscriber import READ_BATCH, RESYNC, LiveBatch, LiveStream, Subscriber
from fswatch_supervisor import protocol
from fswatch_supervisor.errors import NotFound
from fswatch_supervisor.eventmodel import format_id, make_event

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 10))


T0 = 1_700_000_000_000_000_000


def event(seq: int, action: str = "created") -> dict[str, Any]:
    return make_event(seq, action, f"/t/{seq}", "file", T0 + seq)


async def publish_until_delivered(pub: zmq.asyncio.Socket, topic: str, stream: LiveStream) -> int:
    """Publish events 1, 2, ... on ``topic`` until ``stream`` has one: a subscription takes effect
    some time after it is made. Returns the last sequence number published."""
    seq = 0
    while not len(stream):
        seq += 1
        await pub.send_multipart(protocol.encode_fanout([topic], protocol.encode(event(seq))))
        await asyncio.sleep(0.01)
    return seq


def live(seq: int, action: str = "created") -> LiveBatch:
    return batch_of((seq, action))


def batch_of(*events: tuple[int, str]) -> LiveBatch:
    made = [event(seq, action) for seq, action in events]
    return LiveBatch([seq for seq, _ in events], [encode_event(e) for e in made],
                     final=made[-1]["action"] == "watcher-deleted")


class FakeStore:
    """``read_events`` over a list, counting reads; ``fail`` makes reads raise."""

    def __init__(self, seqs: list[int], limit: int = 3) -> None:
        self.events = [event(s) for s in seqs]
        self.limit = limit
        self.reads = 0
        self.fail: Exception | None = None

    async def read(self, after: int | None, limit: int | None = None) -> dict[str, Any]:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        items = [e for e in self.events if after is None or int(e["id"]) > after][: limit or self.limit]
        return {"items": items}


async def collect(frames: AsyncIterator[bytes]) -> list[int]:
    ids = []
    async for chunk in frames:
        for line in chunk.decode().splitlines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
    return ids


class TestLiveStream:
    def test_overflow_closes_a_live_stream(self) -> None:
        async def go() -> None:
            stream = LiveStream("w", 3, confirmed=True)
            stream.reading_store = False
            assert all(stream.push(live(i)) for i in range(3))
            assert not stream.push(live(4))
            assert stream.closed == "overflow"
            assert await stream.next_batch(10) == []
        run(go())

    def test_overflow_while_reading_the_store_asks_for_another_read(self) -> None:
        async def go() -> None:
            stream = LiveStream("w", 3, confirmed=True)
            for i in range(5):
                assert stream.push(live(i))
            assert stream.closed is None
            batch = await stream.next_batch(10)
            assert batch[0] is RESYNC and [b.first for b in batch[1:] if isinstance(b, LiveBatch)] == [3, 4]
        run(go())

    def test_next_batch_waits_for_a_push(self) -> None:
        async def go() -> None:
            stream = LiveStream("w", 10, confirmed=True)
            waiter = asyncio.create_task(stream.next_batch(10))
            await asyncio.sleep(0.01)
            assert not waiter.done()
            stream.push(live(1))
            assert [b.first for b in await waiter if isinstance(b, LiveBatch)] == [1]
        run(go())


class TestSeam:
    def test_backlog_then_live_without_gap_or_duplicate(self) -> None:
        async def go() -> list[int]:
            store = FakeStore([1, 2, 3, 4, 5])
            stream = LiveStream("w", 100, confirmed=True)
            for seq in (4, 5, 6, 7):  # 4 and 5 were published after subscribing, and are also stored
                stream.push(live(seq))
            stream.push(live(8, "watcher-deleted"))
            first = await store.read(None)
            return await collect(event_frames(store.read, stream, after=None, first_page=first, page_limit=3))
        assert run(go()) == [1, 2, 3, 4, 5, 6, 7, 8]

    def test_cursor_skips_what_the_client_has(self) -> None:
        async def go() -> list[int]:
            store = FakeStore([1, 2, 3, 4, 5])
            stream = LiveStream("w", 100, confirmed=True)
            stream.push(live(6, "watcher-deleted"))
            first = await store.read(3)
            return await collect(event_frames(store.read, stream, after=3, first_page=first, page_limit=3))
        assert run(go()) == [4, 5, 6]

    def test_unconfirmed_subscription_rereads_on_its_first_live_event(self) -> None:
        async def go() -> tuple[list[int], int]:
            store = FakeStore([1, 2])
            stream = LiveStream("w", 100, confirmed=False)
            first = await store.read(None)
            # 3 and 4 were stored and published before the subscription took effect: only 5 arrives.
            store.events += [event(3), event(4)]
            stream.push(live(5))
            store.events.append(event(5))
            stream.push(live(6, "watcher-deleted"))
            ids = await collect(event_frames(store.read, stream, after=None, first_page=first, page_limit=3))
            return ids, store.reads
        ids, reads = run(go())
        assert ids == [1, 2, 3, 4, 5, 6]
        assert reads == 2  # the first page, then one catch-up page: it reaches the live batch at 5

    def test_resync_marker_rereads_the_store(self) -> None:
        async def go() -> list[int]:
            store = FakeStore([1])
            stream = LiveStream("w", 100, confirmed=True)
            first = await store.read(None)
            store.events += [event(2), event(3)]  # published while the link was down
            stream.needs_catchup = True
            stream.push(RESYNC)
            stream.push(live(4, "watcher-deleted"))
            return await collect(event_frames(store.read, stream, after=None, first_page=first, page_limit=3))
        assert run(go()) == [1, 2, 3, 4]

    def test_deleted_watcher_still_gets_its_final_event(self) -> None:
        async def go() -> list[int]:
            store = FakeStore([1])
            stream = LiveStream("w", 100, confirmed=False)
            first = await store.read(None)
            store.fail = NotFound("gone")
            stream.push(live(2, "watcher-deleted"))
            return await collect(event_frames(store.read, stream, after=None, first_page=first, page_limit=3))
        assert run(go()) == [1, 2]

    def test_closed_stream_ends_the_body(self) -> None:
        async def go() -> list[int]:
            store = FakeStore([1])
            stream = LiveStream("w", 100, confirmed=True)
            first = await store.read(None)
            stream.close("shutdown")
            return await collect(event_frames(store.read, stream, after=None, first_page=first, page_limit=3))
        assert run(go()) == [1]


def test_sse_frame_shape() -> None:
    frame = encode_event(event(42)).decode()
    assert frame.startswith(f"id: {format_id(42)}\ndata: {{")
    assert frame.endswith("}\n\n")


@contextlib.asynccontextmanager
async def subscribed(tmp_path: Path, capacity: int) -> AsyncIterator[tuple[zmq.asyncio.Socket, Subscriber]]:
    """A PUB socket and a running ``Subscriber`` connected to it."""
    context = zmq.asyncio.Context()
    endpoint = f"ipc://{tmp_path}/pub.ipc"
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.bind(endpoint)
    subscriber = Subscriber(context, endpoint, capacity=capacity, encode=encode_event)
    reader = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.connected.wait(), 5)
        yield pub, subscriber
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        pub.close(linger=0)
        context.destroy(linger=0)


@pytest.mark.timeout(20)
def test_subscriber_fans_out_and_refcounts_topics(tmp_path: Path) -> None:
    async def go() -> None:
        async with subscribed(tmp_path, capacity=100) as (pub, subscriber):
            first, second = subscriber.open("w_a"), subscriber.open("w_a")
            other = subscriber.open("w_b")
            assert first.needs_catchup  # nothing has confirmed the subscription yet
            await publish_until_delivered(pub, "w_a", first)
            assert len(second) == len(first) and not len(other)
            assert not subscriber.open("w_a").needs_catchup  # now confirmed by a delivered message
            subscriber.release(first)
            subscriber.release(first)  # idempotent
            assert subscriber.stream_count == 3
            subscriber.close_all()
            assert second.closed == "shutdown" and subscriber.open("w_c").closed == "shutdown"
    run(go())


@pytest.mark.timeout(20)
def test_a_burst_waiting_on_the_socket_does_not_cut_off_a_reader_that_keeps_up(tmp_path: Path) -> None:
    burst = 20_000  # five fan-outs' worth, all published before the subscriber reads any

    async def go() -> None:
        async with subscribed(tmp_path, capacity=READ_BATCH + 1000) as (pub, subscriber):
            stream = subscriber.open("w_a")
            start = await publish_until_delivered(pub, "w_a", stream)
            for seq in range(start + 1, start + 1 + burst):
                await pub.send_multipart(protocol.encode_fanout(["w_a"], protocol.encode(event(seq))))
            seen: list[int] = []
            while (not seen or seen[-1] < start + burst) and stream.closed is None:
                seen += [seq for item in await stream.next_batch(LIVE_CHUNK_EVENTS)
                         if isinstance(item, LiveBatch) for seq in item.seqs]
            assert stream.closed is None
            assert [seq for seq in seen if seq > start] == list(range(start + 1, start + 1 + burst))
    run(go())



@pytest.mark.timeout(20)
def test_an_event_for_several_watchers_reaches_each_of_their_streams_once(tmp_path: Path) -> None:
    async def go() -> None:
        async with subscribed(tmp_path, capacity=100) as (pub, subscriber):
            a, b, c = subscriber.open("w_a"), subscriber.open("w_b"), subscriber.open("w_c")
            start = await publish_until_delivered(pub, "w_a", a)
            both = event(start + 1)
            await pub.send_multipart(protocol.encode_fanout(["w_a", "w_b"], protocol.encode(both)))
            got_b = [seq for item in await asyncio.wait_for(b.next_batch(100), 5)
                     if isinstance(item, LiveBatch) for seq in item.seqs]
            assert got_b == [start + 1]
            while True:
                items = await asyncio.wait_for(a.next_batch(100), 5)
                seqs = [seq for item in items if isinstance(item, LiveBatch) for seq in item.seqs]
                if start + 1 in seqs:
                    assert seqs.count(start + 1) == 1
                    break
            assert not len(c)
    run(go())
