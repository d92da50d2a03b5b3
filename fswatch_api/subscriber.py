"""One SUB socket per front-end process, fanned out to bounded per-stream queues.

Topics (watcher ids) are subscribed while at least one stream wants them. The reader task decodes
each message once, encodes its SSE frame once, and appends it to every interested stream without
awaiting; a stream that is more than ``capacity`` events behind is closed instead of buffered, so a
slow reader never delays the others or the supervisor.

ZeroMQ gives no acknowledgement of a subscription, and it drops what was published while a link was
down. So a stream remembers whether its topic was *confirmed* (a message for it has arrived since it
was subscribed) when it opened; if not, its first live event tells the SSE loop to re-read the store
before going on (``needs_catchup``). A reconnection (a restarted supervisor) marks every stream that
way and also queues a ``RESYNC`` marker so the loop re-reads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from fswatch_supervisor import protocol
from fswatch_supervisor.errors import ProtocolError
from fswatch_supervisor.logs import get_logger

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    seq: int
    event: dict[str, Any]
    frame: bytes
    """The event's SSE frame, encoded once for every stream."""


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = _Resync()
Item = LiveEvent | _Resync


class LiveStream:
    """The live tail of one SSE response: a bounded queue the subscriber fills."""

    __slots__ = ("_items", "_wakeup", "capacity", "closed", "confirmed_at_open", "needs_catchup", "reading_store",
                 "topic")

    def __init__(self, topic: str, capacity: int, *, confirmed: bool) -> None:
        self.topic = topic
        self.capacity = capacity
        self.closed: str | None = None
        self.needs_catchup = not confirmed
        self.confirmed_at_open = confirmed
        self.reading_store = True
        """Set by the SSE loop while it pages through the store (see ``push``)."""
        self._items: deque[Item] = deque()
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def push(self, item: Item) -> bool:
        """Queue one item; False (and the stream closed) when it is already ``capacity`` behind.

        While the stream is reading the store, its queue only repeats what that read returns, so
        then an overflow discards the queue and asks for one more read instead of closing."""
        if self.closed is not None:
            return False
        if len(self._items) >= self.capacity:
            if not self.reading_store:
                self.close("overflow")
                return False
            self._items.clear()
            self._items.append(RESYNC)
        self._items.append(item)
        self._wakeup.set()
        return True

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._items.clear()
            self._wakeup.set()

    async def next_batch(self, max_items: int) -> list[Item]:
        """Wait for items; return up to ``max_items`` of them, or ``[]`` once the stream is closed."""
        while not self._items and self.closed is None:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closed is not None:
            return []
        count = min(max_items, len(self._items))
        return [self._items.popleft() for _ in range(count)]


RECHECK_AFTER_S = (0.25, 1.0, 3.0)


class Subscriber:
    """Owns the SUB socket. ``run()`` is the reader; it lives as long as the app's lifespan."""

    def __init__(self, context: zmq.asyncio.Context, endpoint: str, *, capacity: int,
                 encode: Callable[[dict[str, Any]], bytes]) -> None:
        self.endpoint = endpoint
        self.capacity = capacity
        self._encode = encode
        self._context = context
        self._socket: zmq.asyncio.Socket | None = None
        self._topics: dict[str, set[LiveStream]] = {}
        self._confirmed: set[str] = set()
        self.connected = asyncio.Event()
        """Set once the SUB socket first connected to the supervisor (part of readiness)."""
        self.reconnects = 0
        self.overflows = 0
        self._closing = False

    @property
    def stream_count(self) -> int:
        return sum(len(streams) for streams in self._topics.values())

    def open(self, topic: str) -> LiveStream:
        """Subscribe ``topic`` (if no stream had) and return a new stream for it."""
        stream = LiveStream(topic, self.capacity, confirmed=topic in self._confirmed)
        if self._closing or self._socket is None:
            stream.close("shutdown")
            return stream
        streams = self._topics.get(topic)
        if streams is None:
            streams = self._topics[topic] = set()
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        streams.add(stream)
        if not stream.confirmed_at_open:
            self._recheck_later(lambda: [stream] if stream in self._topics.get(topic, ()) else [])
        return stream

    def _recheck_later(self, streams: Callable[[], list[LiveStream]]) -> None:
        """Queue RESYNC markers a little later too. A subscription takes effect at the PUB socket
        some time after it is sent, and an event published before that is dropped; if no later
        event follows, only a re-read of the store reveals it."""
        loop = asyncio.get_running_loop()
        for delay in RECHECK_AFTER_S:
            loop.call_later(delay, lambda: [stream.push(RESYNC) for stream in streams()])

    def release(self, stream: LiveStream) -> None:
        """Forget ``stream``; unsubscribe its topic when it was the last. Idempotent."""
        streams = self._topics.get(stream.topic)
        if streams is None or stream not in streams:
            return
        streams.discard(stream)
        if not streams:
            del self._topics[stream.topic]
            self._confirmed.discard(stream.topic)
            if self._socket is not None and not self._socket.closed:
                self._socket.setsockopt(zmq.UNSUBSCRIBE, stream.topic.encode())

    def close_all(self, reason: str = "shutdown") -> None:
        """End every stream (the app is shutting down); refuse new ones."""
        self._closing = True
        for streams in list(self._topics.values()):
            for stream in list(streams):
                stream.close(reason)

    async def run(self) -> None:
        sock: zmq.asyncio.Socket = self._context.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)  # a drop here would be a silent gap; streams bound memory instead
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED)
        sock.connect(self.endpoint)
        self._socket = sock
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch_links(monitor))
                group.create_task(self._read(sock))
        finally:
            self.close_all()
            with contextlib.suppress(zmq.ZMQError):
                sock.disable_monitor()
            monitor.close(linger=0)
            sock.close(linger=0)

    async def _watch_links(self, monitor: zmq.asyncio.Socket) -> None:
        while True:
            message = parse_monitor_message(await monitor.recv_multipart())
            if message["event"] != zmq.EVENT_CONNECTED:
                continue
            if self.connected.is_set():
                self._resync_all()
            else:
                self.connected.set()
                _log.info("subscriber connected", endpoint=self.endpoint)

    def _resync_all(self) -> None:
        """A new link to the supervisor: what was published meanwhile is lost, so every stream re-reads."""
        self.reconnects += 1
        self._confirmed.clear()
        _log.info("subscriber reconnected; resynchronising streams", streams=self.stream_count)
        for streams in self._topics.values():
            for stream in streams:
                stream.needs_catchup = True
                stream.push(RESYNC)
        self._recheck_later(lambda: [stream for streams in self._topics.values() for stream in streams])

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            streams = self._topics.get(frames[0].decode(errors="replace"))
            if not streams:
                continue
            try:
                topic, event = protocol.decode_event(frames)
                item = LiveEvent(int(event["id"]), event, self._encode(event))
            except (ProtocolError, KeyError, ValueError, TypeError) as exc:
                _log.warning("dropped a malformed PUB message", error=str(exc))
                continue
            self._confirmed.add(topic)
            for stream in list(streams):
                if not stream.push(item):
                    self.overflows += 1
                    _log.info("closed a stream that fell behind", topic=topic, capacity=self.capacity)
                    self.release(stream)
