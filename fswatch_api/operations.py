"""The route table's unit: an ``Operation`` names its method, path, models and responses once.

``bind`` turns it into a starlette ``Route`` whose wrapper validates the query string and body with
exactly the models the OpenAPI document is generated from, so the document cannot drift from what
the server accepts.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fswatch_api.schemas import WATCHER_ID_PATTERN
from fswatch_supervisor.errors import BadRequest, NotFound

MAX_BODY_BYTES: Final = 1024 * 1024
_WATCHER_ID = re.compile(WATCHER_ID_PATTERN)
_TYPE_TAG = re.compile(r"[\[\]]|^(none|function-\w+)$")

Handler = Callable[[Request, Any, Any], Awaitable[Response]]


@dataclass(frozen=True)
class Reply:
    """One documented success response."""

    description: str
    model: type[BaseModel] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Header name → description."""
    event_stream: bool = False
    media_type: str | None = None
    """For a body not described by a model: its media type (with ``schema``)."""
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    replies: dict[int, Reply]
    problems: tuple[int, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    description: str = ""
    tag: str = "watchers"
    authenticated: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    """Documented request headers: name → description."""

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def bind(op: Operation, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for one operation: validate, then call ``handler(request, query, body)``."""
    list_fields = _list_fields(op.query) if op.query else frozenset()

    async def endpoint(request: Request) -> Response:
        watcher_id = request.path_params.get("id")
        if watcher_id is not None and not _WATCHER_ID.fullmatch(watcher_id):
            raise NotFound(f"no watcher {watcher_id!r}")
        query = parse_query(request, op.query, list_fields) if op.query else None
        body = await parse_body(request, op.body, required=op.body_required) if op.body else None
        return await handler(request, query, body)

    return endpoint


def build_routes(table: list[tuple[Operation, Handler]]) -> list[Route]:
    """One route per path, dispatching on the method, so a 405 lists every method of the path."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for op, handler in table:
        by_path.setdefault(op.path, {})[op.method] = bind(op, handler)
    routes = []
    for path, endpoints in by_path.items():
        if "GET" in endpoints:
            endpoints["HEAD"] = endpoints["GET"]

        async def dispatch(request: Request, endpoints: dict[str, Any] = endpoints) -> Response:
            response: Response = await endpoints[request.method](request)
            return response

        routes.append(Route(path, dispatch, methods=list(endpoints)))
    return routes


def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, info in model.model_fields.items()
                     if typing.get_origin(info.annotation) is list)


def parse_query(request: Request, model: type[BaseModel], list_fields: frozenset[str]) -> Any:
    values: dict[str, Any] = {}
    for key in request.query_params:
        items = request.query_params.getlist(key)
        if key in list_fields:
            values[key] = items
        elif len(items) > 1:
            raise BadRequest(f"query parameter {key!r} given {len(items)} times; it takes one value")
        else:
            values[key] = items[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise BadRequest(describe(exc, "query parameter")) from None


async def parse_body(request: Request, model: type[BaseModel], *, required: bool) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge()
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _TooLarge()
    if not raw.strip():
        if required:
            raise BadRequest("a JSON object body is required")
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise BadRequest(describe(exc, "body")) from None


class _TooLarge(BadRequest):
    status = 413
    title = "Content Too Large"
    type_slug = "too-large"

    def __init__(self) -> None:
        super().__init__(f"the request body exceeds {MAX_BODY_BYTES} bytes")


def describe(exc: ValidationError, where: str) -> str:
    """A one-line, readable summary of pydantic's errors (never the offending input in full)."""
    parts = []
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    # A null branch of an optional field adds "Input should be null" to every real complaint.
    errors = [e for e in errors if e["type"] != "none_required"] or errors
    for error in errors[:5]:
        # Union members appear in ``loc`` as type descriptions ("list[union[...]]"); they are noise.
        location = ".".join(str(part) for part in error["loc"] if not _TYPE_TAG.search(str(part)))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "json_invalid":
            parts.append(f"malformed JSON: {message.removeprefix('Invalid JSON: ')}")
        elif error["type"] == "extra_forbidden":
            parts.append(f"unknown {where} {location!r}")
        elif location:
            parts.append(f"{where} {location!r}: {message}")
        else:
            parts.append(message)
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")
