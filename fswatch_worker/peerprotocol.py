"""uvicorn's h11 protocol, plus the peer's uid computed once per connection.

The uid (from ``SO_PEERCRED`` on a Unix socket, from ``/proc/net/tcp`` for a loopback TCP peer)
goes into the connection's copy of the lifespan state, where ``fswatch_api.auth`` finds it as
``scope["state"]["peer_uid"]``; a keep-alive connection's requests then cost no lookup at all.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

from fswatch_api.peers import tcp_peer_uid, unix_peer_uid


class PeerH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, "peer_uid": self._peer_uid(transport)}

    def _peer_uid(self, transport: asyncio.Transport) -> int | None:
        sock = transport.get_extra_info("socket")
        if sock is None:
            return None
        if sock.family == socket.AF_UNIX:
            return unix_peer_uid(sock)
        if self.client is None or self.server is None or self.server[1] is None:
            return None
        return tcp_peer_uid(self.client, (self.server[0], self.server[1]))
