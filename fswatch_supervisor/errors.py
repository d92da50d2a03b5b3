"""The fswatch exception tree.

Every error that crosses a module boundary is one of these; third-party errors (zmq, OSError from
the watch backends, msgpack) are translated where they enter, with ``raise ... from exc``.

    FswatchError
    ├── ProtocolError           a message on the wire is malformed or too large
    ├── RequestError            the caller asked for something invalid; carries an HTTP status
    │   ├── BadRequest          400: wrong types, unknown keys, bad rule or glob
    │   ├── Forbidden           403: the caller may not read that path
    │   ├── NotFound            404: unknown watcher
    │   ├── Gone                410: the cursor points before what retention kept
    │   ├── Unprocessable       422: path not absolute, missing, or not a dir/file
    │   ├── InsufficientStorage 507: the OS refused more watches
    │   ├── Unavailable         503: the supervisor does not answer (front-end only)
    │   └── SyncTimeout         504: ``sync`` did not settle in time
    ├── StoreError              the event store failed
    │   ├── StoreClosed         our own code closed it
    │   ├── StoreBusy           another process holds the store's lock
    │   └── StoreCorrupt        a segment cannot be read even after cutting a torn tail
    ├── WatchError              the OS watch layer failed
    │   ├── WatchLimitReached   inotify max_user_watches (or similar) exhausted
    │   └── WatchPermission     a directory cannot be read
    └── BusError                the ZeroMQ link failed
        ├── SupervisorGone      no reply from the supervisor within the deadline
        └── BusClosed           our own code closed the client
"""

from __future__ import annotations

from typing import Any, ClassVar


class FswatchError(Exception):
    """Base class of every fswatch error."""


class ProtocolError(FswatchError):
    """A wire message could not be decoded, or is not a well-formed envelope."""


class RequestError(FswatchError):
    """The request is invalid. ``status`` and ``type_slug`` map it to RFC 9457 problem details."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"
    type_slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The error as it travels over the RPC socket (and becomes a problem-details body)."""
        return {
            "status": self.status,
            "type": self.type_slug,
            "title": self.title,
            "detail": self.detail,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestError:
        status = int(data.get("status", 500))
        klass = _BY_STATUS.get(status, RequestError)
        extra = {k: v for k, v in data.items() if k not in {"status", "type", "title", "detail"}}
        err = klass(str(data.get("detail", "")), **extra)
        if klass is RequestError and status != 400:
            err.status = status  # type: ignore[misc]
        return err


class BadRequest(RequestError):
    status = 400
    title = "Bad Request"
    type_slug = "bad-request"


class Unauthorized(RequestError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(RequestError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(RequestError):
    status = 404
    title = "Not Found"
    type_slug = "not-found"


class Gone(RequestError):
    status = 410
    title = "Gone"
    type_slug = "cursor-expired"


class Unprocessable(RequestError):
    status = 422
    title = "Unprocessable Content"
    type_slug = "unprocessable-path"


class InsufficientStorage(RequestError):
    status = 507
    title = "Insufficient Storage"
    type_slug = "watch-limit"


class Unavailable(RequestError):
    status = 503
    title = "Service Unavailable"
    type_slug = "supervisor-unavailable"


class SyncTimeout(RequestError):
    status = 504
    title = "Gateway Timeout"
    type_slug = "sync-timeout"


_BY_STATUS: dict[int, type[RequestError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Gone, Unprocessable, InsufficientStorage,
                Unavailable, SyncTimeout)
}


class StoreError(FswatchError):
    """The event store failed."""


class StoreClosed(StoreError):
    """The store was used after our own code closed it."""


class StoreBusy(StoreError):
    """Another process already holds this state directory's store."""


class StoreCorrupt(StoreError):
    """A segment is unreadable beyond what cutting a torn tail can repair."""


class WatchError(FswatchError):
    """The OS watch layer failed for one directory or for the whole backend."""


class WatchLimitReached(WatchError):
    """The OS refused another watch (inotify ``max_user_watches``)."""


class WatchPermission(WatchError):
    """A directory could not be read or watched for lack of permission."""


class WatchedElsewhere(WatchError):
    """The directory is already watched under another name: it was renamed, and the rename's events
    have not been read yet."""


class BusError(FswatchError):
    """The ZeroMQ link to the supervisor failed."""


class SupervisorGone(BusError):
    """The supervisor did not answer within the deadline."""


class BusClosed(BusError):
    """The client was used after our own code closed it."""
