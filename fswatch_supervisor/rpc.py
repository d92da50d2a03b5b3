"""The RPC socket: a ROUTER that runs each request as its own task and replies when it is done.

Requests are independent, so a long-poll or a ``sync`` never holds up others. The envelope frames
before the request map are echoed back unchanged, which makes REQ and DEALER clients both work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import zmq
import zmq.asyncio

from fswatch_supervisor import protocol
from fswatch_supervisor.errors import BadRequest, ProtocolError, RequestError
from fswatch_supervisor.logs import get_logger

log = get_logger(__name__)
_MORE = zmq.SNDMORE | zmq.NOBLOCK
_UNKNOWN: Any = object()
_TOPICS_MAX = 65536
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class RpcServer:
    def __init__(self, context: zmq.asyncio.Context, endpoint: str, handlers: dict[str, Handler]) -> None:
        self._socket = context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._socket.bind(endpoint)
        self._handlers = handlers
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.errors = 0

    async def serve(self) -> None:
        """Receive forever; cancel to stop."""
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) < 2:
                continue
            task = asyncio.get_running_loop().create_task(self._answer(frames[:-1], frames[-1]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, envelope: list[bytes], frame: bytes) -> None:
        self.requests += 1
        rid: Any = None
        try:
            request = protocol.decode(frame)
            rid = request.get("rid")
            op = request.get("op")
            handler = self._handlers.get(op) if isinstance(op, str) else None
            if handler is None:
                raise BadRequest(f"unknown op {op!r}; known: {', '.join(sorted(self._handlers))}")
            reply = protocol.make_reply(rid, await handler(request))
        except ProtocolError as exc:
            reply = protocol.make_error_reply(rid, BadRequest(str(exc)))
        except RequestError as exc:
            reply = protocol.make_error_reply(rid, exc)
        except Exception as exc:  # a bug must cost one request, never the supervisor
            self.errors += 1
            log.exception("rpc.handler_failed", error=repr(exc))
            reply = protocol.make_error_reply(
                rid, RequestError.from_dict({"status": 500, "detail": "internal error in the supervisor"}))
        try:
            await self._socket.send_multipart([*envelope, protocol.encode(reply)])
        except zmq.ZMQError as exc:
            log.warning("rpc.reply_failed", error=str(exc))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._socket.close(linger=0)


class _Subscriptions:
    """What the subscribers of an XPUB socket asked for. XPUB reports a topic's first subscription
    and its last unsubscription (also when a subscriber goes away); SUB sockets cannot tell it from
    a PUB."""

    def __init__(self, socket: zmq.Socket[Any]) -> None:
        self._socket = socket
        self.prefixes: set[bytes] = set()
        """Subscribed topic prefixes (b"" is everything)."""

    def take(self) -> bool:
        """Read what arrived; whether anything changed."""
        changed = False
        while int(self._socket.get(zmq.EVENTS)) & zmq.POLLIN:
            message = self._socket.recv(zmq.NOBLOCK)
            if message[:1] == b"\x01":
                self.prefixes.add(message[1:])
            elif message[:1] == b"\x00":
                self.prefixes.discard(message[1:])
            changed = True
        return changed


def _xpub(context: zmq.Context[Any], endpoint: str, high_water_mark: int) -> zmq.Socket[Any]:
    # A plain (blocking-API) socket: publishing is a non-blocking send from the loop thread.
    socket: zmq.Socket[Any] = context.socket(zmq.XPUB)
    socket.setsockopt(zmq.SNDHWM, high_water_mark)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(endpoint)
    return socket


class Publisher:
    """The PUB socket, ``[watcher id, event]`` per delivered event, and the front-ends' fanout
    socket, ``[watcher ids, event]`` once per event. Never blocks the pipeline.

    Both are XPUB sockets, so they learn what someone subscribed to: a message for a topic nobody
    wants is not sent at all. A plain PUB drops those too, but only after Python has paid for the
    send: with a hundred watchers over one tree and a few of them followed, that was most of the
    supervisor's time in a burst. And a front-end following a hundred watchers takes each event
    once from the fanout socket instead of a hundred times from the PUB socket.
    """

    def __init__(self, context: zmq.Context[Any], endpoint: str, fanout_endpoint: str | None = None, *,
                 high_water_mark: int = 1_000_000) -> None:
        self._socket = _xpub(context, endpoint, high_water_mark)
        self._subscriptions = _Subscriptions(self._socket)
        self._fanout: tuple[zmq.Socket[Any], _Subscriptions] | None = None
        if fanout_endpoint:
            fanout = _xpub(context, fanout_endpoint, high_water_mark)
            self._fanout = (fanout, _Subscriptions(fanout))
        self._topics: dict[str, bytes | None] = {}
        """Per watcher id: its topic when some prefix wants it, else None (cleared on a change)."""
        self._id_frames: dict[tuple[str, ...], bytes] = {}
        """Per set of watcher ids, its fanout frame: a burst's events go to a few sets."""
        self.sent = 0
        self.unwanted = 0
        self.dropped = 0

    def publish(self, deliveries: Iterable[tuple[Sequence[str], dict[str, Any]]]) -> None:
        """Send each event on its watchers' topics that someone subscribed to, and once on the
        fanout socket if a front-end listens; an event is encoded once, and not at all when nobody
        wants it."""
        if self._subscriptions.take():
            self._topics.clear()
        fanout = self._fanout_if_listened()
        topics, send = self._topics, self._socket.send
        sent = unwanted = 0
        for watcher_ids, event in deliveries:
            payload: bytes | None = None
            if fanout is not None:
                payload = protocol.encode(event)
                try:  # two plain sends, as below: ``send_multipart`` costs a microsecond more
                    fanout.send(self._id_frame(watcher_ids), _MORE)
                    fanout.send(payload, zmq.NOBLOCK)
                except zmq.Again:
                    self.dropped += 1
            for watcher_id in watcher_ids:
                topic = topics.get(watcher_id, _UNKNOWN)
                if topic is _UNKNOWN:
                    if len(topics) >= _TOPICS_MAX:  # deleted watchers' ids would pile up
                        topics.clear()
                    topic = topics[watcher_id] = self._topic_if_wanted(watcher_id)
                if topic is None:
                    unwanted += 1
                    continue
                if payload is None:
                    payload = protocol.encode(event)
                # Two plain sends: ``send_multipart``'s generality cost more than the send itself.
                # A PUB socket queues or drops whole messages, so the first part never goes alone.
                try:
                    send(topic, _MORE)
                    send(payload, zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    self.dropped += 1
        self.sent += sent
        self.unwanted += unwanted

    def _id_frame(self, watcher_ids: Sequence[str]) -> bytes:
        key = tuple(watcher_ids)
        frame = self._id_frames.get(key)
        if frame is None:
            if len(self._id_frames) >= _TOPICS_MAX:
                self._id_frames.clear()
            frame = self._id_frames[key] = protocol.encode_watcher_ids(key)
        return frame

    def _fanout_if_listened(self) -> zmq.Socket[Any] | None:
        if self._fanout is None:
            return None
        socket, subscriptions = self._fanout
        subscriptions.take()
        return socket if subscriptions.prefixes else None

    def _topic_if_wanted(self, watcher_id: str) -> bytes | None:
        topic = watcher_id.encode()
        return topic if any(topic.startswith(prefix) for prefix in self._subscriptions.prefixes) else None

    def close(self) -> None:
        self._socket.close(linger=0)
        if self._fanout is not None:
            self._fanout[0].close(linger=0)
