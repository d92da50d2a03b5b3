"""``/watchers/{id}/events`` (pull, long-poll and SSE), ``snapshot``, ``explain`` and ``sync``."""

from __future__ import annotations

import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fswatch_api.backend import call
from fswatch_api.operations import Handler, Operation, Reply, json_response
from fswatch_api.schemas import (
    EventPage,
    EventsQuery,
    ExplainQuery,
    Explanation,
    SnapshotPage,
    SnapshotQuery,
    SyncBody,
    SyncResult,
)
from fswatch_api.settings import ApiSettings
from fswatch_api.sse import StreamResponse, event_frames
from fswatch_api.subscriber import Subscriber
from fswatch_supervisor.errors import BadRequest, Unavailable
from fswatch_supervisor.eventmodel import format_id, parse_id, parse_time

RPC_GRACE_S = 5.0
"""How much longer than a long-poll's own wait the front-end waits for the supervisor's answer."""


def _cursor(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_id(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def wants_stream(request: Request, query: EventsQuery) -> bool:
    return query.stream or "text/event-stream" in request.headers.get("accept", "")


async def read_events(request: Request, query: EventsQuery, _body: None) -> Response:
    after = _cursor("after", query.after)
    if query.since is not None:
        try:
            parse_time(query.since)
        except ValueError as exc:
            raise BadRequest(f"since: {exc}") from None
    if wants_stream(request, query):
        last_event_id = request.headers.get("last-event-id")
        if last_event_id:
            after = _cursor("Last-Event-ID", last_event_id.strip())
        return await _open_stream(request, query, after)
    args = _read_args(request, query)
    # The supervisor answers with the JSON body itself (see protocol.read_events): no decoding here.
    if query.wait > 0:
        result = await call(request, "read_events", timeout=query.wait + RPC_GRACE_S, after=query.after,
                            wait=query.wait, format="json", **args)
    else:
        result = await call(request, "read_events", after=query.after, format="json", **args)
    return Response(result["json"], media_type="application/json")


def _read_args(request: Request, query: EventsQuery) -> dict[str, Any]:
    return {"id": request.path_params["id"], "since": query.since, "limit": query.limit}


async def _open_stream(request: Request, query: EventsQuery, after: int | None) -> Response:
    settings: ApiSettings = request.state.settings
    subscriber: Subscriber = request.state.subscriber
    watcher_id = request.path_params["id"]

    async def read(cursor: int | None, limit: int) -> dict[str, Any]:
        return await call(request, "read_events", id=watcher_id, since=query.since, limit=limit,
                          after=None if cursor is None else format_id(cursor))

    # Subscribe first, then read: whatever is published from now on is queued for this stream.
    stream = subscriber.open(request.path_params["id"])
    release = functools.partial(subscriber.release, stream)
    try:
        if stream.closed is not None:
            raise Unavailable("this front-end is shutting down; reconnect to continue")
        first = await read(after, settings.backlog_page)  # before any header, so 404 and 410 are real statuses
    except BaseException:
        release()
        raise
    frames = event_frames(read, stream, after=after, first_page=first, page_limit=settings.backlog_page)
    return StreamResponse(frames, on_close=release, keepalive_s=settings.keepalive_s,
                          send_timeout_s=settings.stream_send_timeout_s)


async def snapshot(request: Request, query: SnapshotQuery, _body: None) -> Response:
    return json_response(await call(request, "snapshot", id=request.path_params["id"], limit=query.limit,
                                    cursor=query.cursor))


async def explain(request: Request, query: ExplainQuery, _body: None) -> Response:
    return json_response(await call(request, "explain", id=request.path_params["id"], path=query.path))


async def sync(request: Request, _query: None, body: SyncBody) -> Response:
    # The supervisor answers 504 itself when the changes do not settle within timeout_s.
    return json_response(await call(request, "sync", timeout=body.timeout_s + RPC_GRACE_S,
                                    id=request.path_params["id"], timeout_s=body.timeout_s))


EVENTS = Operation(
    "GET", "/watchers/{id}/events", "readEvents", "Read, long-poll or stream a watcher's events",
    description=(
        "JSON pages by default. With `Accept: text/event-stream` or `stream=true` the answer is a "
        "Server-Sent Events stream: the retained events after the cursor, then live ones, with no gap "
        "and no duplicate; `Last-Event-ID` wins over `after`; a `: keep-alive` comment at least every "
        "15 s. A stream that falls too far behind is closed; reconnect with `Last-Event-ID`."),
    query=EventsQuery,
    headers={"Last-Event-ID": "For streams: resume after this event id (wins over `after`)."},
    replies={200: Reply("A page of events (JSON) or an event stream (SSE).", EventPage, event_stream=True)},
    problems=(400, 404, 410),
)
SNAPSHOT = Operation(
    "GET", "/watchers/{id}/snapshot", "snapshot", "List the files the watcher selects now",
    description="Follow changes with events after `after`: snapshot + those events is the live state.",
    query=SnapshotQuery, replies={200: Reply("A page of the snapshot.", SnapshotPage)}, problems=(400, 404),
)
EXPLAIN = Operation(
    "GET", "/watchers/{id}/explain", "explain", "Explain which rule selects a path",
    query=ExplainQuery, replies={200: Reply("The verdict for the path.", Explanation)}, problems=(400, 404),
)
SYNC = Operation(
    "POST", "/watchers/{id}/sync", "sync", "Wait until earlier changes are visible",
    description="Answers once every change made before the request is visible in the watcher's events. "
                "The body is optional.",
    body=SyncBody, body_required=False,
    replies={200: Reply("Settled.", SyncResult)}, problems=(400, 404, 504),
)

ROUTES: list[tuple[Operation, Handler]] = [
    (EVENTS, read_events), (SNAPSHOT, snapshot), (EXPLAIN, explain), (SYNC, sync),
]
