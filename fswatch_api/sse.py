"""The SSE body of ``GET /watchers/{id}/events``: retained events after the cursor, then live ones.

The order of operations is what makes the seam exact. The live stream is opened (topic subscribed)
before the first read of the store; the store is paged until it is drained; then live events are
sent, skipping any id not greater than the last one sent. Ids within a watcher's stream increase and
are published in order, so "greater than the last sent" is the whole de-duplication rule; the
catch-up reads described in ``subscriber`` close the window in which a subscription is not yet
effective. The ``watcher-deleted`` event is the last one a stream ever sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.types import Receive, Scope, Send

from fswatch_api.subscriber import LiveEvent, LiveStream
from fswatch_supervisor.errors import BusError, NotFound, RequestError
from fswatch_supervisor.logs import get_logger

_log = get_logger(__name__)
Reader = Callable[[int | None], Awaitable[dict[str, Any]]]
"""Reads one page of the store after an event id (None: from the oldest retained)."""

LIVE_BATCH = 512
KEEPALIVE = ServerSentEvent(comment="keep-alive", sep="\n")


def encode_event(event: dict[str, Any]) -> bytes:
    return ServerSentEvent(orjson.dumps(event).decode(), id=event["id"], sep="\n").encode()


class _Cursor:
    """The id of the last event sent, and whether the stream has delivered its final event."""

    def __init__(self, after: int | None) -> None:
        self.last = after
        self.finished = False

    def frames(self, events: list[dict[str, Any]]) -> bytes:
        out = []
        for event in events:
            seq = int(event["id"])
            if self.last is not None and seq <= self.last:
                continue
            out.append(encode_event(event))
            self.last = seq
            if event.get("action") == "watcher-deleted":
                self.finished = True
                break
        return b"".join(out)

    def covers(self, seq: int) -> bool:
        return self.last is not None and seq <= self.last

    def take(self, item: LiveEvent, out: list[bytes]) -> None:
        """Append a live event's frame unless the client already has it."""
        if not self.covers(item.seq):
            out.append(item.frame)
            self.last = item.seq
            self.finished = item.event.get("action") == "watcher-deleted"

    def done(self) -> bool:
        # A method, not an attribute read, since the drain helpers change it behind the caller's back.
        return self.finished


async def _drain_store(read: Reader, stream: LiveStream, cursor: _Cursor, page_limit: int,
                       first: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
    stream.reading_store = True
    try:
        page = first if first is not None else await read(cursor.last)
        while True:
            chunk = cursor.frames(page["items"])
            if chunk:
                yield chunk
            if cursor.done() or len(page["items"]) < page_limit:
                return
            page = await read(cursor.last)
    finally:
        stream.reading_store = False


async def event_frames(read: Reader, stream: LiveStream, *, after: int | None,
                       first_page: dict[str, Any], page_limit: int) -> AsyncIterator[bytes]:
    """The body of one SSE response. Ends on watcher deletion, overflow, shutdown or a failed read."""
    cursor = _Cursor(after)
    try:
        async for chunk in _drain_store(read, stream, cursor, page_limit, first_page):
            yield chunk
        while not cursor.done():
            batch = await stream.next_batch(LIVE_BATCH)
            if not batch:
                _log.info("stream closed", topic=stream.topic, reason=stream.closed)
                return
            out: list[bytes] = []
            gone = False
            for item in batch:
                if isinstance(item, LiveEvent) and (not stream.needs_catchup or cursor.covers(item.seq)):
                    # It reached us, so the subscription was in effect when it was published.
                    stream.needs_catchup = False
                    cursor.take(item, out)
                    if cursor.done():
                        break
                    continue
                # A resync marker, or the first live event of a subscription not known to be in
                # effect: events published before it may have been missed, and the store has them.
                if isinstance(item, LiveEvent):
                    stream.needs_catchup = False
                if out:
                    yield b"".join(out)
                    out = []
                try:
                    async for chunk in _drain_store(read, stream, cursor, page_limit):
                        yield chunk
                except NotFound:
                    gone = True  # deleted meanwhile; its final event may be this very item
                except BusError:
                    if isinstance(item, LiveEvent):
                        raise
                    # A precautionary re-read while the supervisor is away: the reconnection
                    # will ask for another one, and the next live event re-reads anyway.
                    stream.needs_catchup = True
                    continue
                if isinstance(item, LiveEvent):
                    cursor.take(item, out)
                if gone or cursor.done():
                    break
            if out:
                yield b"".join(out)
            if gone:
                return
    except (RequestError, BusError) as exc:
        # 404 after a deletion we did not see, 410 after retention, or the supervisor went away:
        # end the stream; the client reconnects with Last-Event-ID and gets a proper status.
        _log.info("stream ended by a failed read", topic=stream.topic, error=str(exc))


class StreamResponse(EventSourceResponse):
    """An SSE response that hands its live stream back to the subscriber however it ends
    (a HEAD request or an early disconnect never starts the body generator)."""

    def __init__(self, frames: AsyncIterator[bytes], *, on_close: Callable[[], None], keepalive_s: float,
                 send_timeout_s: float) -> None:
        super().__init__(frames, ping=keepalive_s, ping_message_factory=lambda: KEEPALIVE, sep="\n",
                         send_timeout=send_timeout_s, headers={"Cache-Control": "no-store"})
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
