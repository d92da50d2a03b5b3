"""The route table's unit: an ``Operation`` names its method, path, models and responses once.

``bind`` turns it into a starlette ``Route`` whose wrapper validates the query string and body with
exactly the models the OpenAPI document is generated from, so the document cannot drift from what
the server accepts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import msgspec.inspect
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fswatch_api.schemas import WATCHER_ID_PATTERN
from fswatch_supervisor.errors import BadRequest, NotFound

MAX_BODY_BYTES: Final = 1024 * 1024
_WATCHER_ID = re.compile(WATCHER_ID_PATTERN)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`")
_MISSING_FIELD = re.compile(r"Object missing required field `(.*)`")
_LONG_RULE = re.compile(r"Expected `array` of at most length (\d+)")
"""msgspec's words for an ``array_like`` struct (a rule) with elements left over; the count it
names leaves out the tag (the rule's name), and it gives no location."""
_LOCATED = re.compile(r"(.*) - at `\$\.?(.*)`")
_KIND_OF: Final[dict[type, type]] = {msgspec.inspect.ListType: list, msgspec.inspect.IntType: int}

Handler = Callable[[Request, Any, Any], Awaitable[Response]]


@dataclass(frozen=True)
class Reply:
    """One documented success response."""

    description: str
    model: type[msgspec.Struct] | None = None
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
    query: type[msgspec.Struct] | None = None
    body: type[msgspec.Struct] | None = None
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
    list_fields, int_fields = _fields_of_type(op.query, list), _fields_of_type(op.query, int)

    async def endpoint(request: Request) -> Response:
        watcher_id = request.path_params.get("id")
        if watcher_id is not None and not _WATCHER_ID.fullmatch(watcher_id):
            raise NotFound(f"no watcher {watcher_id!r}")
        query = parse_query(request, op.query, list_fields, int_fields) if op.query else None
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


def _fields_of_type(struct: type[msgspec.Struct] | None, wanted: type) -> frozenset[str]:
    """The names of ``struct``'s fields of type ``wanted`` (optional or not; ``list``: any list)."""
    if struct is None:
        return frozenset()
    names = set()
    for info in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
        options = info.type.types if isinstance(info.type, msgspec.inspect.UnionType) else (info.type,)
        if any(_KIND_OF.get(type(_unannotated(option))) is wanted for option in options):
            names.add(info.encode_name)
    return frozenset(names)


def _unannotated(info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """The type itself under any ``Annotated[..., Meta(description=...)]`` around it."""
    while isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    return info


def parse_query(request: Request, struct: type[msgspec.Struct], list_fields: frozenset[str],
                int_fields: frozenset[str] = frozenset()) -> Any:
    values: dict[str, Any] = {}
    for key in request.query_params:
        items = request.query_params.getlist(key)
        if key in list_fields:
            values[key] = items
        elif len(items) > 1:
            raise BadRequest(f"query parameter {key!r} given {len(items)} times; it takes one value")
        elif key in int_fields and not _INTEGER.fullmatch(items[0]):
            # The lenient conversion would take "1e3" or "5.0"; an integer parameter is digits.
            raise BadRequest(f"query parameter {key!r}: Expected `int`, got {items[0][:40]!r}")
        else:
            values[key] = items[0]
    try:
        return msgspec.convert(values, type=struct, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(describe(exc, "query parameter")) from None


async def parse_body(request: Request, struct: type[msgspec.Struct], *, required: bool) -> Any:
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
        return msgspec.json.decode(raw, type=struct)
    except msgspec.DecodeError as exc:
        raise BadRequest(describe(exc, "body")) from None


class _TooLarge(BadRequest):
    status = 413
    title = "Content Too Large"
    type_slug = "too-large"

    def __init__(self) -> None:
        super().__init__(f"the request body exceeds {MAX_BODY_BYTES} bytes")


def describe(exc: msgspec.DecodeError, where: str) -> str:
    """msgspec's message, worded for a problem detail: which parameter or key, and what is wrong
    with it (never the offending input in full). A ``ValidationError`` is a ``DecodeError``."""
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return f"malformed JSON: {message.removeprefix('JSON is malformed: ')}"
    if unknown := _UNKNOWN_FIELD.fullmatch(message):
        return f"unknown {where} {unknown[1]!r}"
    if missing := _MISSING_FIELD.fullmatch(message):
        return f"missing {where} {missing[1]!r}"
    if long_rule := _LONG_RULE.fullmatch(message):
        arguments = int(long_rule[1])
        return f"{where} 'rules': a rule has more elements than its name and {arguments} argument(s)"
    if located := _LOCATED.fullmatch(message):
        return f"{where} {located[2]!r}: {located[1]}"
    return message


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type="application/json")
