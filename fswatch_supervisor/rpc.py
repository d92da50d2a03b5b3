"""The RPC socket: a ROUTER that runs each request as its own task and replies when it is done.

Requests are independent, so a long-poll or a ``sync`` never holds up others. The envelope frames
before the request map are echoed back unchanged, which makes REQ and DEALER clients both work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import zmq
import zmq.asyncio

from fswatch_supervisor import protocol
from fswatch_supervisor.errors import BadRequest, ProtocolError, RequestError
from fswatch_supervisor.logs import get_logger

log = get_logger(__name__)
_MORE = zmq.SNDMORE | zmq.NOBLOCK
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


class Publisher:
    """The PUB socket: ``[watcher id, event]`` per delivered event. Never blocks the pipeline."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, *, high_water_mark: int = 1_000_000) -> None:
        # A plain (blocking-API) socket: publishing is a non-blocking send from the loop thread.
        self._socket: zmq.Socket[Any] = context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(endpoint)
        self.dropped = 0

    def publish(self, watcher_ids: Sequence[str], event: dict[str, Any]) -> None:
        """Send ``event`` on each watcher's topic; it is encoded once, however many watchers share it."""
        payload = protocol.encode(event)
        send = self._socket.send
        for watcher_id in watcher_ids:
            # Two plain sends: ``send_multipart``'s generality cost more than the send itself. A
            # PUB socket queues or drops whole messages, so the first part never goes alone.
            try:
                send(watcher_id.encode(), _MORE)
                send(payload, zmq.NOBLOCK)
            except zmq.Again:
                self.dropped += 1

    def close(self) -> None:
        self._socket.close(linger=0)
