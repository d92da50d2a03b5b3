"""RFC 9457 problem details: the one shape every error response of the API takes.

A small module rather than ``starlette-problem``: our errors already carry status, slug, title and
detail (``RequestError.to_dict``), and the library's catch-all handler copies ``str(exc)`` of
unexpected exceptions into ``detail``, which is exactly the leak the contract forbids.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from fswatch_supervisor.errors import BusError, RequestError
from fswatch_supervisor.logs import get_logger

MEDIA_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:fswatch:problem:"

_log = get_logger(__name__)

# Slugs for statuses that starlette itself raises (routing) or that we raise outside RequestError.
_HTTP_SLUGS: Final = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
    405: "method-not-allowed", 406: "not-acceptable", 410: "cursor-expired", 413: "too-large",
    415: "unsupported-media-type", 422: "unprocessable-path", 500: "internal-error",
    503: "supervisor-unavailable", 504: "sync-timeout", 507: "watch-limit",
}


def problem_type(slug: str) -> str:
    return TYPE_PREFIX + slug


def problem_body(status: int, detail: str, *, slug: str | None = None, title: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    return {
        "type": problem_type(slug or _HTTP_SLUGS.get(status, "error")),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_response(status: int, detail: str, *, headers: dict[str, str] | None = None,
                     slug: str | None = None, title: str | None = None, **extra: Any) -> Response:
    body = problem_body(status, detail, slug=slug, title=title, **extra)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def from_request_error(exc: RequestError) -> Response:
    data = exc.to_dict()
    status = int(data.pop("status"))
    slug = str(data.pop("type", "")) or None
    title = str(data.pop("title", "")) or None
    if type(exc) is RequestError and status != RequestError.status:
        # Rebuilt from a bare status on the wire: name it by that status, not by the base class.
        slug, title = _HTTP_SLUGS.get(status, "error"), None
    detail = str(data.pop("detail", ""))
    # Extra members (e.g. ``oldest_event_id`` of a 410) pass through; reserved names cannot be overridden.
    return problem_response(status, detail, slug=slug, title=title, **data)


def unavailable(detail: str) -> Response:
    return problem_response(503, detail, headers={"Retry-After": "1"})


async def handle_request_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return from_request_error(exc)


async def handle_bus_error(_request: Request, exc: Exception) -> Response:
    return unavailable(f"the supervisor is not answering: {exc}")


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    _log.error("unhandled error", path=request.url.path, method=request.method, exc_info=exc)
    return problem_response(500, "the front-end failed to handle this request; see its log")


EXCEPTION_HANDLERS: Final = {
    RequestError: handle_request_error,
    BusError: handle_bus_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
