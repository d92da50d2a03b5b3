"""One SUB socket per front-end process, on the supervisor's fanout socket, fanned out to bounded
per-stream queues.

The fanout socket carries each event once with the ids of every watcher that receives it, so a
front-end following a hundred watchers decodes an event once, not a hundred times (the public PUB
socket has one message per watcher). The reader task takes every message already waiting on the
socket, decodes each once, encodes its SSE frame once, joins the frames of one watcher into a
``LiveBatch`` and appends that to every stream of that watcher without awaiting; a stream that is
more than ``capacity`` events behind is closed instead of buffered, so a slow reader never delays
the others or the supervisor.

ZeroMQ gives no acknowledgement of a subscription, and it drops what was published while a link was
down. So a stream remembers whether the link was *confirmed* (a message has arrived on it since it
connected) when it opened; if not, its first live event tells the SSE loop to re-read the store
before going on (``needs_catchup``). A reconnection (a restarted supervisor) marks every stream that
way and also queues a ``RESYNC`` marker so the loop re-reads at once.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from fswatch_supervisor import protocol
from fswatch_supervisor.errors import ProtocolError
from fswatch_supervisor.logs import get_logger

_log = get_logger(__name__)


class LiveBatch:
    """Consecutive live events of one topic, taken off the SUB socket in one go.

    The unit of fan-out: a stream's queue and its SSE loop handle a batch as one item, so delivering
    a burst to many streams costs per stream one append and one write per batch, not work per event.
    Only what the streams need is kept (ids, and the frames joined once): a decoded event map would
    cost several times the frame's memory, for every event queued.
    """

    __slots__ = ("ends", "final", "first", "frame", "last", "seqs")

    def __init__(self, seqs: list[int], frames: list[bytes], *, final: bool = False) -> None:
        self.seqs = seqs
        self.first = seqs[0]
        self.last = seqs[-1]
        self.frame = b"".join(frames)
        """Every event's SSE frame, joined once for all streams."""
        self.ends = list(itertools.accumulate(map(len, frames)))
        """Where each event's frame ends in ``frame``."""
        self.final = final
        """The last event is ``watcher-deleted``: the stream ends with it."""

    def __len__(self) -> int:
        return len(self.seqs)

    def frames_after(self, seq: int) -> bytes:
        """The frames of the events whose id is greater than ``seq``."""
        index = bisect.bisect_right(self.seqs, seq)
        return self.frame if index == 0 else self.frame[self.ends[index - 1]:]


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = _Resync()
Item = LiveBatch | _Resync


def _weight(item: Item) -> int:
    return len(item) if isinstance(item, LiveBatch) else 1


class LiveStream:
    """The live tail of one SSE response: a bounded queue the subscriber fills."""

    __slots__ = ("_items", "_queued", "_wakeup", "capacity", "closed", "confirmed_at_open", "needs_catchup",
                 "reading_store", "topic")

    def __init__(self, topic: str, capacity: int, *, confirmed: bool) -> None:
        self.topic = topic
        self.capacity = capacity
        self.closed: str | None = None
        self.needs_catchup = not confirmed
        self.confirmed_at_open = confirmed
        self.reading_store = True
        """Set by the SSE loop while it pages through the store (see ``push``)."""
        self._items: deque[Item] = deque()
        self._queued = 0
        """Events (and markers) in ``_items``: what ``capacity`` bounds."""
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return self._queued

    def push(self, item: Item) -> bool:
        """Queue one item; False (and the stream closed) when that would put it more than
        ``capacity`` events behind.

        While the stream is reading the store, its queue only repeats what the store holds, so then
        an overflow drops the oldest items and asks for one more read instead of closing."""
        if self.closed is not None:
            return False
        weight = _weight(item)
        if self._queued + weight > self.capacity:
            if not self.reading_store:
                self.close("overflow")
                return False
            # Drop the oldest; the RESYNC in front makes the loop read them back from the store
            # (only them: that read stops at the first batch still queued).
            items = self._items
            while items and self._queued + weight > self.capacity - 1:
                self._queued -= _weight(items.popleft())
            items.appendleft(RESYNC)
            self._queued += 1
        self._items.append(item)
        self._queued += weight
        self._wakeup.set()
        return True

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            self._items.clear()
            self._queued = 0
            self._wakeup.set()

    def first_queued(self) -> int | None:
        """The first id of the first live batch in the queue, if any."""
        for item in self._items:
            if isinstance(item, LiveBatch):
                return item.first
        return None

    async def next_batch(self, max_events: int) -> list[Item]:
        """Wait for items; return queued items holding about ``max_events`` events (at least one
        item), or ``[]`` once the stream is closed."""
        while not self._items and self.closed is None:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closed is not None:
            return []
        taken: list[Item] = []
        weight = 0
        items = self._items
        while items and weight < max_events:
            item = items.popleft()
            taken.append(item)
            weight += _weight(item)
        self._queued -= weight
        return taken


RECHECK_AFTER_S = (0.25, 1.0, 3.0)
READ_BATCH: Final = 4096
"""At most this many PUB messages make one fan-out batch."""
BATCH_WINDOW_PER_STREAM_S: Final = 50e-6
BATCH_WINDOW_MAX_S: Final = 0.01
"""While events follow each other closely, a fan-out waits until this long after the previous one
(per open stream, at most the max): a lone event goes out at once, a burst in batches. Writing to a
stream costs tens of microseconds however little is written, so with 200 streams a burst would
otherwise cost a write per event per stream."""


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
        self._live = False
        """A message arrived since the socket last connected: the subscription is in effect."""
        self.connected = asyncio.Event()
        """Set once the SUB socket first connected to the supervisor (part of readiness)."""
        self.reconnects = 0
        self.overflows = 0
        self._closing = False

    @property
    def stream_count(self) -> int:
        return sum(len(streams) for streams in self._topics.values())

    def open(self, topic: str) -> LiveStream:
        """A new stream of the events of watcher ``topic``."""
        stream = LiveStream(topic, self.capacity, confirmed=self._live)
        if self._closing or self._socket is None:
            stream.close("shutdown")
            return stream
        streams = self._topics.setdefault(topic, set())
        streams.add(stream)
        if not stream.confirmed_at_open:
            self._recheck_later(lambda: [stream] if stream in self._topics.get(topic, ()) else [])
        return stream

    def _recheck_later(self, streams: Callable[[], list[LiveStream]]) -> None:
        """Queue RESYNC markers a little later too. A subscription takes effect at the supervisor's
        socket some time after it is sent, and an event published before that is dropped; if no
        later event follows, only a re-read of the store reveals it."""
        loop = asyncio.get_running_loop()
        for delay in RECHECK_AFTER_S:
            # Once a live batch reached a stream (needs_catchup cleared), its subscription is known
            # to work and the catch-up at that batch already covered what came before it.
            loop.call_later(delay, lambda: [stream.push(RESYNC) for stream in streams() if stream.needs_catchup])

    def release(self, stream: LiveStream) -> None:
        """Forget ``stream``. Idempotent."""
        streams = self._topics.get(stream.topic)
        if streams is None or stream not in streams:
            return
        streams.discard(stream)
        if not streams:
            del self._topics[stream.topic]

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
        sock.setsockopt(zmq.SUBSCRIBE, b"")  # every event: each names its watchers
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
        self._live = False
        _log.info("subscriber reconnected; resynchronising streams", streams=self.stream_count)
        for streams in self._topics.values():
            for stream in streams:
                stream.needs_catchup = True
                stream.push(RESYNC)
        self._recheck_later(lambda: [stream for streams in self._topics.values() for stream in streams])

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        loop = asyncio.get_running_loop()
        last_fan_out = -1e9
        # The same socket through the plain API, for what is already waiting: the asyncio API
        # builds a future per message even when one is ready (a 35k-event burst cost the front-end
        # 0.30 s of CPU that way, 0.21 s this way). Only the wait for a batch's first message
        # needs the event loop.
        waiting: zmq.Socket[bytes] = zmq.Socket.shadow(sock.underlying)
        while True:
            messages = [await sock.recv_multipart()]
            window = min(BATCH_WINDOW_MAX_S, BATCH_WINDOW_PER_STREAM_S * self.stream_count)
            wait = last_fan_out + window - loop.time()
            if wait > 0:
                # Events keep coming: let them gather for a moment, so that each stream writes
                # one chunk per window instead of one per event (the cost of a write is per write).
                await asyncio.sleep(wait)
            while len(messages) < READ_BATCH:
                try:
                    messages.append(waiting.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
            self._fan_out(messages)
            last_fan_out = loop.time()
            # Awaiting a socket that has messages waiting does not yield to the loop: without this,
            # a burst is read and queued to the end before any stream writes, and a stream that
            # reads fast enough is cut off as "behind" by events it was never offered.
            await asyncio.sleep(0)

    def _fan_out(self, messages: list[list[bytes]]) -> None:
        self._live = True
        topics = self._topics
        by_topic: dict[str, tuple[list[int], list[bytes]]] = {}
        ended: set[str] = set()
        for frames in messages:
            try:
                watcher_ids, event = protocol.decode_fanout(frames)
                wanted = [w for w in watcher_ids if w in topics and w not in ended]
                if not wanted:
                    continue
                seq, frame = int(event["id"]), self._encode(event)
            except (ProtocolError, KeyError, ValueError, TypeError) as exc:
                _log.warning("dropped a malformed fanout message", error=str(exc))
                continue
            final = event.get("action") == "watcher-deleted"  # nothing follows a watcher's deletion
            for topic in wanted:
                seqs, encoded = by_topic.setdefault(topic, ([], []))
                seqs.append(seq)
                encoded.append(frame)
                if final:
                    ended.add(topic)
        for topic, (seqs, encoded) in by_topic.items():
            batch = LiveBatch(seqs, encoded, final=topic in ended)
            for stream in list(topics.get(topic, ())):
                if not stream.push(batch):
                    self.overflows += 1
                    _log.info("closed a stream that fell behind", topic=topic, capacity=self.capacity)
                    self.release(stream)
