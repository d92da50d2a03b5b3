"""``/openapi.json``, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from fswatch_api.backend import call
from fswatch_api.metrics import CONTENT_TYPE, Metrics
from fswatch_api.operations import Handler, Operation, Reply, json_response
from fswatch_api.problems import unavailable
from fswatch_api.schemas import Health
from fswatch_api.settings import ApiSettings
from fswatch_api.subscriber import Subscriber
from fswatch_supervisor.errors import BusError, RequestError


async def openapi(request: Request, _query: None, _body: None) -> Response:
    document: bytes = request.state.openapi
    return Response(document, media_type="application/json")


async def healthz(request: Request, _query: None, _body: None) -> Response:
    settings: ApiSettings = request.state.settings
    subscriber: Subscriber = request.state.subscriber
    try:
        pong = await call(request, "ping", timeout=settings.health_timeout_s)
    except (BusError, RequestError) as exc:
        return unavailable(f"the supervisor does not answer: {exc}")
    if not subscriber.connected.is_set():
        return unavailable("the event subscription is not connected yet")
    if not pong.get("ready", True):
        return unavailable("the supervisor is starting (recovering its store or rescanning)")
    return json_response({"status": "ok"})


async def metrics(request: Request, _query: None, _body: None) -> Response:
    registry: Metrics = request.state.metrics
    registry.sse_clients.set(request.state.subscriber.stream_count)
    try:
        status = await asyncio.wait_for(call(request, "status"), request.state.settings.health_timeout_s)
    except (BusError, RequestError, TimeoutError):
        status = {"up": 0}
    else:
        status = {"up": 1, **status}
    return Response(registry.render(status), media_type=CONTENT_TYPE)


OPENAPI = Operation("GET", "/openapi.json", "openapi", "This document", tag="service",
                    replies={200: Reply("The OpenAPI 3.1 document.", media_type="application/json",
                                        schema={"type": "object"})})
HEALTHZ = Operation("GET", "/healthz", "healthz", "Health of the front-end and the supervisor", tag="service",
                    authenticated=False, replies={200: Reply("Both answer.", Health)}, problems=(503,))
METRICS = Operation("GET", "/metrics", "metrics", "Prometheus metrics", tag="service",
                    replies={200: Reply("Prometheus text exposition format.", media_type="text/plain",
                                        schema={"type": "string"})})

ROUTES: list[tuple[Operation, Handler]] = [(OPENAPI, openapi), (HEALTHZ, healthz), (METRICS, metrics)]
