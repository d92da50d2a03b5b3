"""Clients of the supervisor's RPC socket: an asyncio one (front-ends) and a blocking one (tools, tests).

Both use a DEALER socket and correlate replies by ``rid``, so a slow long-poll never blocks other
requests on the same connection. ZeroMQ reconnects by itself when the supervisor restarts; a request
that was in flight then simply times out as ``SupervisorGone``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import zmq
import zmq.asyncio

from fswatch_supervisor import protocol
from fswatch_supervisor.errors import BusClosed, ProtocolError, SupervisorGone
from fswatch_supervisor.protocol import Endpoints


def _dealer(context: zmq.Context[Any], endpoint: str) -> zmq.Socket[Any]:
    sock: zmq.Socket[Any] = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.connect(endpoint)
    return sock


class AsyncSupervisorClient:
    """Many concurrent requests over one DEALER socket, for use inside one asyncio loop."""

    def __init__(self, endpoints: Endpoints, *, timeout: float = 10.0,
                 context: zmq.asyncio.Context | None = None) -> None:
        self.endpoints = endpoints
        self.timeout = timeout
        self._context = context or zmq.asyncio.Context.instance()
        self._socket: zmq.asyncio.Socket | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._rids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    async def call(self, op: str, *, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one request and return its result map, or raise the error it carries."""
        if self._closed:
            raise BusClosed("the supervisor client was closed")
        sock = self._ensure_socket()
        rid = next(self._rids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            await sock.send(protocol.encode(protocol.make_request(op, rid=rid, **args)))
            deadline = self.timeout if timeout is None else timeout
            try:
                reply = await asyncio.wait_for(future, deadline)
            except TimeoutError:
                raise SupervisorGone(f"no reply to {op!r} within {deadline:.1f} s") from None
        finally:
            self._pending.pop(rid, None)
        return protocol.unwrap_reply(reply)

    def _ensure_socket(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            self._socket = _dealer(self._context, self.endpoints.rpc)  # type: ignore[assignment]
            self._reader = asyncio.get_running_loop().create_task(self._read_replies())
        assert self._socket is not None
        return self._socket

    async def _read_replies(self) -> None:
        assert self._socket is not None
        while True:
            frames = await self._socket.recv_multipart()
            try:
                reply = protocol.decode(frames[-1])
            except ProtocolError:
                continue
            future = self._pending.get(reply.get("rid"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(reply)

    def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
        if self._socket is not None:
            self._socket.close(linger=0)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BusClosed("the supervisor client was closed"))


class SupervisorClient:
    """A blocking client: one request at a time. For tools, scripts and tests."""

    def __init__(self, endpoints: Endpoints, *, timeout: float = 10.0) -> None:
        self.endpoints = endpoints
        self.timeout = timeout
        self._context: zmq.Context[Any] = zmq.Context()
        self._socket = _dealer(self._context, endpoints.rpc)
        self._rids = itertools.count(1)

    def call(self, op: str, *, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        if self._socket.closed:
            raise BusClosed("the supervisor client was closed")
        rid = next(self._rids)
        self._socket.send(protocol.encode(protocol.make_request(op, rid=rid, **args)))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (remaining := deadline - time.monotonic()) > 0:
            if not self._socket.poll(int(remaining * 1000) + 1):
                break
            reply = protocol.decode(self._socket.recv_multipart()[-1])
            if reply.get("rid") == rid:
                return protocol.unwrap_reply(reply)
        # A late reply would confuse the next call: start over on a fresh socket.
        self._socket.close(linger=0)
        self._socket = _dealer(self._context, self.endpoints.rpc)
        raise SupervisorGone(f"no reply to {op!r} within the deadline")

    def close(self) -> None:
        self._socket.close(linger=0)
        self._context.term()

    def __enter__(self) -> SupervisorClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
