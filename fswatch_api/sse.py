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

from fswatch_api.subscriber import Item, LiveBatch, LiveStream
from fswatch_supervisor.errors import BusError, NotFound, RequestError
from fswatch_supervisor.logs import get_logger

_log = get_logger(__name__)
Reader = Callable[[int | None, int], Awaitable[dict[str, Any]]]
"""Reads one page of at most ``limit`` stored events after an event id (None: from the oldest retained)."""
CATCHUP_PAGE = 64
"""The first read of a catch-up that ends at a waiting live batch asks for this many: the gap it
fills is usually empty or small, and in a burst every stream makes such a read at once."""

LIVE_CHUNK_EVENTS = 2048
"""A stream writes queued live batches in chunks of about this many events."""
KEEPALIVE = ServerSentEvent(comment="keep-alive", sep="\n")


def encode_event(event: dict[str, Any]) -> bytes:
    """``id: ID\ndata: JSON\n\n``. orjson writes no newline (it escapes control characters in
    strings), so the JSON is one valid ``data`` line as it is; eight times cheaper than building a
    ``ServerSentEvent`` per event, which a backlog read does for every event and every stream."""
    return b"id: %s\ndata: %s\n\n" % (event["id"].encode(), orjson.dumps(event))


class _Cursor:
    """The id of the last event sent, and whether the stream has delivered its final event."""

    def __init__(self, after: int | None) -> None:
        self.last = after
        self.finished = False

    def frames(self, events: list[dict[str, Any]], before: int | None = None) -> tuple[bytes, bool]:
        """The frames of stored ``events`` the client does not have, up to (not including) id
        ``before``; and whether ``before`` was reached (live batches carry the rest)."""
        out: list[bytes] = []
        for event in events:
            seq = int(event["id"])
            if before is not None and seq >= before:
                return b"".join(out), True
            if self.last is not None and seq <= self.last:
                continue
            out.append(encode_event(event))
            self.last = seq
            if event.get("action") == "watcher-deleted":
                self.finished = True
                break
        return b"".join(out), False

    def covers(self, seq: int) -> bool:
        return self.last is not None and seq <= self.last

    def take(self, batch: LiveBatch, out: list[bytes]) -> None:
        """Append the frames of the batch's events that the client does not have yet."""
        last = self.last
        if last is not None and batch.last <= last:
            return
        out.append(batch.frame if last is None or batch.first > last else batch.frames_after(last))
        self.last = batch.last
        self.finished = batch.final

    def done(self) -> bool:
        # A method, not an attribute read, since the drain helpers change it behind the caller's back.
        return self.finished


async def _drain_store(read: Reader, stream: LiveStream, cursor: _Cursor, page_limit: int,
                       first: dict[str, Any] | None = None, before: int | None = None) -> AsyncIterator[bytes]:
    """Send stored events after the cursor until the store is drained or, when a live batch is
    waiting (``before``, else the stream's first queued one), until that batch's first id. Anything
    that reached the live queue was published while the subscription was in effect, so the queue
    holds everything from there on: a catch-up then costs one read, not a re-read of a whole burst."""
    stream.reading_store = True
    try:
        limit = page_limit
        if first is None:
            if before is not None or stream.first_queued() is not None:
                limit = min(CATCHUP_PAGE, page_limit)
            first = await read(cursor.last, limit)
        page = first
        while True:
            chunk, reached = cursor.frames(page["items"], before if before is not None else stream.first_queued())
            if chunk:
                yield chunk
            if reached or cursor.done() or len(page["items"]) < limit:
                return
            limit = page_limit
            page = await read(cursor.last, limit)
    finally:
        stream.reading_store = False


def _first_live(pending: list[Item], stream: LiveStream) -> int | None:
    """The first id of the next live batch: in ``pending`` (taken off the queue), else still queued."""
    for item in pending:
        if isinstance(item, LiveBatch):
            return item.first
    return stream.first_queued()


async def event_frames(read: Reader, stream: LiveStream, *, after: int | None,
                       first_page: dict[str, Any], page_limit: int) -> AsyncIterator[bytes]:
    """The body of one SSE response. Ends on watcher deletion, overflow, shutdown or a failed read."""
    cursor = _Cursor(after)
    try:
        async for chunk in _drain_store(read, stream, cursor, page_limit, first_page):
            yield chunk
        while not cursor.done():
            batch = await stream.next_batch(LIVE_CHUNK_EVENTS)
            if not batch:
                _log.info("stream closed", topic=stream.topic, reason=stream.closed)
                return
            out: list[bytes] = []
            gone = False
            for index, item in enumerate(batch):
                if isinstance(item, LiveBatch) and (not stream.needs_catchup or cursor.covers(item.first)):
                    # It reached us, so the subscription was in effect when it was published.
                    stream.needs_catchup = False
                    cursor.take(item, out)
                    if cursor.done():
                        break
                    continue
                # A resync marker, or the first live event of a subscription not known to be in
                # effect: events published before it may have been missed, and the store has them.
                if isinstance(item, LiveBatch):
                    stream.needs_catchup = False
                if out:
                    yield b"".join(out)
                    out = []
                before = item.first if isinstance(item, LiveBatch) else _first_live(batch[index + 1:], stream)
                try:
                    async for chunk in _drain_store(read, stream, cursor, page_limit, before=before):
                        yield chunk
                except NotFound:
                    gone = True  # deleted meanwhile; its final event may be this very item
                except BusError:
                    if isinstance(item, LiveBatch):
                        raise
                    # A precautionary re-read while the supervisor is away: the reconnection
                    # will ask for another one, and the next live event re-reads anyway.
                    stream.needs_catchup = True
                    continue
                if isinstance(item, LiveBatch):
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
