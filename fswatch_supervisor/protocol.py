"""The supervisor's ZeroMQ wire protocol. Nothing else in fswatch imports msgpack.

Sockets (in ``STATE_DIR/sock/``, a 0700 directory; rpc and pub on tcp loopback when configured)::

    rpc.ipc     ROUTER  request/reply; each request is one msgpack map
    pub.ipc     XPUB    multipart [topic = watcher id (UTF-8), msgpack event map]
    fanout.ipc  XPUB    internal, for the front-ends: [msgpack list of watcher ids, msgpack event map]

A REQ socket works as is (the envelope frames are echoed back). A DEALER socket may keep many
requests in flight: it sends one frame, the request map, with a ``rid`` that the reply echoes.

Request map: ``{"op": OP, "rid": ANY?, "user": UID?, ...arguments}``. Reply map:
``{"ok": true, "rid": ..., "result": {...}}`` or
``{"ok": false, "rid": ..., "error": {"status", "type", "title", "detail", ...}}``; ``status`` is the
HTTP status the front-end answers with.

Ops and their arguments (ids are the public 20-digit strings; absent means the default):

    ping             -> {"pid", "version", "state_dir", "started_at", "ready"}
    create_watcher   path | rules, tags, coalesce_ms, ttl_s            -> watcher description
    get_watcher      id                                                  -> watcher description
    list_watchers    ids: [str], tags: {k: v}, limit, cursor             -> {"items", "next"}
    delete_watcher   id                                                  -> {"deleted": [id]}
    delete_watchers  ids: [str], tags: {k: v}   (one selector needed)    -> {"deleted": [ids]}
    read_events      id, after, since (RFC 3339), limit, wait (seconds)  -> {"items", "next_after",
                                                                             "oldest_event_id",
                                                                             "latest_event_id"}
                     format="json": the same page as a JSON document     -> {"json": bytes}
    snapshot         id, limit, cursor                                   -> {"items", "next", "after"}
    explain          id, path                                            -> {"path", "selected", "rule",
                                                                             "os_watched"}
    sync             id, timeout_s (seconds)                             -> {"latest_event_id"}
    status           -> counters and gauges for /metrics (see Supervisor.status)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import msgpack

from fswatch_supervisor.errors import ProtocolError, RequestError
from fswatch_supervisor.packing import pack

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
OPS: Final = frozenset({
    "ping", "create_watcher", "get_watcher", "list_watchers", "delete_watcher", "delete_watchers",
    "read_events", "snapshot", "explain", "sync", "status",
})


def encode(message: dict[str, Any]) -> bytes:
    return pack(message)


def decode(frame: bytes) -> dict[str, Any]:
    """Decode one msgpack map; anything else is a ``ProtocolError``."""
    value = _unpack(frame)
    if not isinstance(value, dict):
        raise ProtocolError(f"expected a msgpack map, got {type(value).__name__}")
    return value


def _unpack(frame: bytes) -> Any:
    if len(frame) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(frame)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise ProtocolError(f"not a msgpack message: {exc}") from exc


def make_request(op: str, rid: Any = None, **args: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"op": op, **{k: v for k, v in args.items() if v is not None}}
    if rid is not None:
        request["rid"] = rid
    return request


def make_reply(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "rid": rid, "result": result}


def make_error_reply(rid: Any, error: RequestError) -> dict[str, Any]:
    return {"ok": False, "rid": rid, "error": error.to_dict()}


def unwrap_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Return the result of a reply or raise the ``RequestError`` it carries."""
    if reply.get("ok") is True and isinstance(reply.get("result"), dict):
        return reply["result"]  # type: ignore[no-any-return]
    error = reply.get("error")
    if reply.get("ok") is False and isinstance(error, dict):
        raise RequestError.from_dict(error)
    raise ProtocolError(f"malformed reply: {reply!r:.200}")


def encode_fanout(watcher_ids: Sequence[str], payload: bytes) -> list[bytes]:
    """The internal fanout frames for one event (``payload`` = its encoded map) and its watchers."""
    return [encode_watcher_ids(watcher_ids), payload]


def encode_watcher_ids(watcher_ids: Sequence[str]) -> bytes:
    """The first fanout frame: the ids of the watchers an event goes to."""
    return pack(list(watcher_ids))


def decode_fanout(frames: list[bytes]) -> tuple[list[str], dict[str, Any]]:
    if len(frames) != 2:
        raise ProtocolError(f"expected [watcher ids, event] frames, got {len(frames)} frames")
    ids = _unpack(frames[0])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ProtocolError("expected a list of watcher ids")
    return ids, decode(frames[1])


def decode_event(frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    if len(frames) != 2:
        raise ProtocolError(f"expected [topic, event] frames, got {len(frames)} frames")
    return frames[0].decode(), decode(frames[1])


@dataclass(frozen=True)
class Endpoints:
    """Where a supervisor listens. ``from_state_dir`` gives the default ipc endpoints.

    ``fanout`` is internal, for the front-ends: one message per event, ``[watcher ids, event]``
    (``encode_fanout``), so a front-end following many watchers decodes each event once, while the
    public ``pub`` socket carries one message per event per watcher, as the contract says. It is
    always an ipc socket in the state directory: front-ends run on the supervisor's host."""

    rpc: str
    pub: str
    fanout: str = ""

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> Endpoints:
        sock_dir = socket_dir(state_dir)
        return cls(rpc=f"ipc://{sock_dir / 'rpc.ipc'}", pub=f"ipc://{sock_dir / 'pub.ipc'}",
                   fanout=f"ipc://{sock_dir / 'fanout.ipc'}")

    @classmethod
    def tcp(cls, host: str, rpc_port: int, pub_port: int) -> Endpoints:
        return cls(rpc=f"tcp://{host}:{rpc_port}", pub=f"tcp://{host}:{pub_port}")

    def with_fanout_in(self, state_dir: Path) -> Endpoints:
        """These endpoints, with the default fanout socket of ``state_dir`` when none is set."""
        return self if self.fanout else replace(self, fanout=Endpoints.from_state_dir(state_dir).fanout)

    @classmethod
    def resolve(cls, state_dir: Path) -> Endpoints:
        """The endpoints a running supervisor wrote to ``STATE_DIR/sock/endpoints``, else the default."""
        recorded = socket_dir(state_dir) / "endpoints"
        try:
            rpc, pub, *fanout = recorded.read_text().split()
            return cls(rpc=rpc, pub=pub, fanout=fanout[0] if fanout else "").with_fanout_in(state_dir)
        except (OSError, ValueError):
            return cls.from_state_dir(state_dir)

    def record(self, state_dir: Path) -> None:
        target = socket_dir(state_dir) / "endpoints"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(f"{self.rpc}\n{self.pub}\n{self.fanout}\n")
        os.replace(tmp, target)


def socket_dir(state_dir: Path) -> Path:
    return state_dir / "sock"
