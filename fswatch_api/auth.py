"""Who may call the API: a loopback or Unix-socket peer of the daemon's own uid, or a bearer token.

Pure ASGI middleware. It writes the caller's uid to ``scope["state"]["user"]`` so every RPC can carry
it (system mode will filter by it). The uid of the peer comes from ``scope["state"]["peer_uid"]``
when the server computed it once per connection (the worker does); otherwise it is looked up here.
"""

from __future__ import annotations

import hmac
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from fswatch_api.peers import tcp_peer_uid
from fswatch_api.problems import problem_response

OPEN_PATHS: Final = frozenset({"/healthz"})


class PeerAuthMiddleware:
    def __init__(self, app: ASGIApp, *, owner_uid: int, token: str | None) -> None:
        self.app = app
        self.owner_uid = owner_uid
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        user = self.authenticate(scope)
        if user is None and scope["path"] not in OPEN_PATHS:
            response = problem_response(
                401, "this daemon serves only its own user: connect from that user on loopback, "
                     "or send 'Authorization: Bearer TOKEN' with the token from STATE_DIR/token",
                headers={"WWW-Authenticate": 'Bearer realm="fswatch"'})
            await response(scope, receive, send)
            return
        state["user"] = user
        await self.app(scope, receive, send)

    def authenticate(self, scope: Scope) -> int | None:
        """The caller's uid when let in, else None."""
        uid = self.peer_uid(scope)
        if uid is not None and uid == self.owner_uid:
            return uid
        if self._token is not None and self._bearer(scope):
            return self.owner_uid
        return None

    @staticmethod
    def peer_uid(scope: Scope) -> int | None:
        state = scope.get("state") or {}
        if "peer_uid" in state:
            known = state["peer_uid"]
            return known if isinstance(known, int) else None
        client, server = scope.get("client"), scope.get("server")
        if not client or not server or server[1] is None:
            return None
        return tcp_peer_uid((str(client[0]), int(client[1])), (str(server[0]), int(server[1])))

    def _bearer(self, scope: Scope) -> bool:
        assert self._token is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = bytes(value).partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self._token):
                    return True
        return False
