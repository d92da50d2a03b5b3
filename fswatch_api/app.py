"""The ASGI application. It knows nothing about processes: the worker runtime (or a test) builds
``ApiSettings`` and serves ``create_app(settings)``.

Process-wide resources (the ZeroMQ context, the RPC client, the SUB fan-out) belong to the lifespan
and reach routes through ``request.state``. ``begin_drain(app)`` ends every open event stream; the
runtime calls it when asked to stop, because uvicorn waits for open responses before it runs the
lifespan's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import anyio.lowlevel
import orjson
import zmq.asyncio
from starlette.applications import Starlette
from starlette.middleware import Middleware

from fswatch_api.auth import PeerAuthMiddleware
from fswatch_api.metrics import Metrics, MetricsMiddleware
from fswatch_api.openapi import build_openapi
from fswatch_api.operations import build_routes
from fswatch_api.problems import EXCEPTION_HANDLERS
from fswatch_api.routes import TABLE
from fswatch_api.settings import ApiSettings
from fswatch_api.sse import encode_event
from fswatch_api.subscriber import Subscriber
from fswatch_supervisor import __version__
from fswatch_supervisor.client import AsyncSupervisorClient
from fswatch_supervisor.logs import get_logger

_log = get_logger(__name__)


class Drain:
    """Callbacks run once when the process starts to stop."""

    def __init__(self) -> None:
        self.started = False
        self._callbacks: list[Callable[[], None]] = []

    def add(self, callback: Callable[[], None]) -> None:
        if self.started:
            callback()
        else:
            self._callbacks.append(callback)

    def begin(self) -> None:
        if not self.started:
            self.started = True
            for callback in self._callbacks:
                callback()


def begin_drain(app: Starlette) -> None:
    """End every event stream of ``app`` now and refuse new ones (the process is stopping)."""
    drain: Drain = app.state.drain
    drain.begin()


def create_app(settings: ApiSettings) -> Starlette:
    routes = build_routes(TABLE)
    document = orjson.dumps(build_openapi(TABLE, version=__version__))
    metrics = Metrics()
    drain = Drain()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, object]]:
        # anyio loads its asyncio backend on first use: here, not in the first event stream (~10 ms).
        await anyio.lowlevel.checkpoint()
        context = zmq.asyncio.Context()
        client = AsyncSupervisorClient(settings.endpoints, timeout=settings.rpc_timeout_s, context=context)
        subscriber = Subscriber(context, settings.endpoints.fanout, capacity=settings.stream_queue_limit,
                                encode=encode_event)
        reader = asyncio.create_task(subscriber.run(), name="fswatch-subscriber")
        reader.add_done_callback(_report_reader_exit)
        drain.add(subscriber.close_all)
        try:
            yield {"settings": settings, "client": client, "subscriber": subscriber, "metrics": metrics,
                   "openapi": document}
        finally:
            drain.begin()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            client.close()
            context.destroy(linger=0)

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics, routes=routes),
            Middleware(PeerAuthMiddleware, owner_uid=settings.owner_uid, token=settings.token),
        ],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    app.state.drain = drain
    return app


def _report_reader_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("the event subscriber stopped", exc_info=task.exception())
