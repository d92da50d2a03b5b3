"""The fast serving paths: stored records to public maps, batched live fan-out, bounded catch-up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from fswatch_api.sse import CATCHUP_PAGE, encode_event, event_frames
from fswatch_api.subscriber import RESYNC, LiveBatch, LiveStream, Subscriber
from fswatch_supervisor import protocol
from fswatch_supervisor.eventmodel import format_id, format_time
from fswatch_supervisor.store import framing
from fswatch_supervisor.store.records import decode_events
from fswatch_worker.runtime import bind_tcp
from tests.unit.test_api_streams import T0, event, publish_until_delivered, run


def batch(*seqs: int, final: bool = False) -> LiveBatch:
    events = [event(s) for s in seqs]
    if final:
        events[-1]["action"] = "watcher-deleted"
    return LiveBatch(list(seqs), [encode_event(e) for e in events], final=final)


def record(seq: int, time_ns: int, extra: dict[str, Any] | None = None) -> bytes:
    return msgpack.packb([seq, time_ns, "created", f"/r/{seq}", "file", extra, ["w1"]], use_bin_type=True)


class TestDecodeEvents:
    def test_public_maps_with_extras_since_and_limit(self) -> None:
        payloads = [record(5, T0), record(7, T0 + 10, {"from": "/r/x", "rescan": True}), record(9, T0 + 20)]
        got = decode_events([5, 7, 9], payloads, since_ns=T0 + 1, limit=1)
        assert got == [{"id": format_id(7), "action": "created", "path": "/r/7", "kind": "file",
                        "time": format_time(T0 + 10), "from": "/r/x", "rescan": True}]
        assert [e["id"] for e in decode_events([5, 7, 9], payloads, None, 10)] == [format_id(s) for s in (5, 7, 9)]

    @pytest.mark.parametrize("payload", [record(6, T0), b"\xc1garbage", msgpack.packb([5, T0])])
    def test_a_record_that_is_not_what_its_place_says_is_an_error(self, payload: bytes) -> None:
        with pytest.raises(ValueError, match="5"):
            decode_events([5], [payload], None, 10)

    def test_ids_and_times_have_their_fixed_public_form(self) -> None:
        assert format_id(42) == "00000000000000000042" and format_id(2**64 - 1) == "18446744073709551615"
        assert format_time(T0 + 123_456_789) == "2023-11-14T22:13:20.123456Z"


def test_payloads_at_reads_many_records_and_rejects_a_damaged_one() -> None:
    records = [framing.encode_record(p) for p in (b"alpha", b"beta", b"gamma")]
    data = b"".join(records)
    starts = [0, len(records[0]), len(records[0]) + len(records[1])]
    assert framing.payloads_at(data, starts) == [b"alpha", b"beta", b"gamma"]
    damaged = data[:-1] + b"X"
    with pytest.raises(ValueError, match="checksum"):
        framing.payloads_at(damaged, starts)


class TestLiveBatch:
    def test_frames_after_cuts_at_an_event_boundary(self) -> None:
        live = batch(3, 5, 8)
        assert live.frame == b"".join(encode_event(event(s)) for s in (3, 5, 8))
        assert live.frames_after(2) == live.frame
        assert live.frames_after(5) == encode_event(event(8))
        assert live.frames_after(8) == b""
        assert (live.first, live.last, len(live)) == (3, 8, 3)

    def test_overflow_while_reading_drops_the_oldest_and_asks_for_a_read(self) -> None:
        stream = LiveStream("w", 5, confirmed=True)
        assert stream.push(batch(1, 2)) and stream.push(batch(3, 4))
        assert stream.push(batch(5, 6))  # over capacity while reading the store: no close
        assert stream.closed is None and stream.first_queued() == 3
        items = run(stream.next_batch(100))
        assert items[0] is RESYNC and [b.first for b in items[1:] if isinstance(b, LiveBatch)] == [3, 5]
        assert len(stream) == 0

    def test_next_batch_takes_about_max_events(self) -> None:
        stream = LiveStream("w", 100, confirmed=True)
        for first in range(0, 40, 10):
            stream.push(batch(*range(first, first + 10)))
        assert len(run(stream.next_batch(15))) == 2
        assert len(stream) == 20


class CountingStore:
    def __init__(self, seqs: list[int]) -> None:
        self.events = [event(s) for s in seqs]
        self.limits: list[int] = []

    async def read(self, after: int | None, limit: int) -> dict[str, Any]:
        self.limits.append(limit)
        return {"items": [e for e in self.events if after is None or int(e["id"]) > after][:limit]}


async def ids_of(frames: AsyncIterator[bytes]) -> list[int]:
    found = []
    async for chunk in frames:
        found += [int(line[4:]) for line in chunk.decode().splitlines() if line.startswith("id: ")]
    return found


class TestCatchUp:
    def test_a_catch_up_reads_only_up_to_the_waiting_live_batch(self) -> None:
        async def go() -> tuple[list[int], list[int]]:
            store = CountingStore(list(range(1, 3)))
            stream = LiveStream("w", 100_000, confirmed=False)
            first = await store.read(None, 1000)
            # A burst: 2..4999 stored; the subscription took effect at 3000, so live batches begin there.
            store.events = [event(s) for s in range(1, 5000)]
            for start in range(3000, 5000, 500):
                stream.push(batch(*range(start, start + 500), final=start == 4500))
            frames = event_frames(store.read, stream, after=None, first_page=first, page_limit=1000)
            return await ids_of(frames), store.limits
        ids, limits = run(go())
        assert ids == list(range(1, 5000))
        # the first page, then one small catch-up read and full pages up to the live batch at 3000
        assert limits == [1000, CATCHUP_PAGE, 1000, 1000, 1000]

    def test_a_live_batch_overlapping_the_cursor_sends_only_the_new_part(self) -> None:
        async def go() -> list[int]:
            store = CountingStore([1, 2, 3, 4])
            stream = LiveStream("w", 100, confirmed=True)
            stream.push(batch(3, 4, 5, 6, final=True))
            first = await store.read(None, 1000)
            return await ids_of(event_frames(store.read, stream, after=None, first_page=first, page_limit=1000))
        assert run(go()) == [1, 2, 3, 4, 5, 6]


@pytest.mark.timeout(20)
def test_subscriber_delivers_a_burst_as_shared_batches(tmp_path: Path) -> None:
    async def go() -> None:
        context = zmq.asyncio.Context()
        endpoint = f"ipc://{tmp_path}/pub.ipc"
        pub = context.socket(zmq.PUB)
        pub.setsockopt(zmq.SNDHWM, 0)
        pub.bind(endpoint)
        subscriber = Subscriber(context, endpoint, capacity=100_000, encode=encode_event)
        reader = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.connected.wait(), 5)
            streams = [subscriber.open("w_a") for _ in range(3)]
            base = await publish_until_delivered(pub, "w_a", streams[0])
            for seq in range(base + 1, base + 2001):
                await pub.send_multipart(protocol.encode_fanout(["w_a"], protocol.encode(event(seq))))
            deleted = protocol.encode(event(base + 2001, "watcher-deleted"))
            await pub.send_multipart(protocol.encode_fanout(["w_a"], deleted))
            items: list[LiveBatch] = []
            while not (items and items[-1].final):
                taken = await asyncio.wait_for(streams[0].next_batch(100_000), 5)
                items += [i for i in taken if isinstance(i, LiveBatch)]
            assert items[-1].final and items[-1].last == base + 2001
            assert [s for b in items for s in b.seqs][-2001:] == list(range(base + 1, base + 2002))
            assert len(items) < 2001 / 2  # bursts arrive in batches, not one item per event
            other = await streams[1].next_batch(100_000)
            assert any(a is b for a in other for b in items)  # one batch object shared by every stream
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            pub.close(linger=0)
            context.destroy(linger=0)
    run(go())


def test_front_end_connections_send_without_nagle_delay() -> None:
    """Without TCP_NODELAY every keep-alive request after the first waited ~40 ms for a delayed ACK."""
    async def go() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=bind_tcp("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await accepted
        finally:
            writer.close()
            server.close()
    assert run(go()) != 0
