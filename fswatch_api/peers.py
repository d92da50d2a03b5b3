"""Who is on the other end of a connection: the uid that owns a loopback TCP peer or a Unix peer.

Linux lists every TCP socket of the network namespace with its owner in ``/proc/net/tcp`` and
``/proc/net/tcp6``. The client's socket is the row whose local address is the peer's address and
whose remote address is ours; its ``uid`` column is the user who opened it. Addresses are hex words
in host byte order, ports hex.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Final

PROC_TCP: Final = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_UID_COLUMN: Final = 7
_ESTABLISHED: Final = "01"


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _hex_words(packed: bytes) -> str:
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words)


def proc_address_forms(host: str, port: int) -> set[str]:
    """Every way ``/proc/net/tcp{,6}`` may spell this endpoint (IPv4, or IPv4 mapped into IPv6)."""
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    forms = set()
    if isinstance(address, ipaddress.IPv4Address):
        forms.add(_hex_words(address.packed))
        forms.add(_hex_words(ipaddress.IPv6Address(f"::ffff:{address}").packed))
    else:
        forms.add(_hex_words(address.packed))
    return {f"{form}:{port:04X}" for form in forms}


def find_owner(rows: Iterable[str], client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid of the socket whose local end is ``client`` and remote end is ``server``."""
    local_forms = proc_address_forms(*client)
    remote_forms = proc_address_forms(*server)
    for row in rows:
        fields = row.split()
        if len(fields) <= _UID_COLUMN or fields[1] not in local_forms or fields[2] not in remote_forms:
            continue
        if fields[3] != _ESTABLISHED:
            continue
        try:
            return int(fields[_UID_COLUMN])
        except ValueError:
            return None
    return None


def tcp_peer_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The owner of a loopback TCP peer, or None when it is not loopback or cannot be found."""
    if not (is_loopback(client[0]) and is_loopback(server[0])):
        return None
    for table in PROC_TCP:
        try:
            with table.open() as rows:
                next(rows, None)  # header line
                uid = find_owner(rows, client, server)
        except (OSError, ValueError):
            continue
        if uid is not None:
            return uid
    return None


def unix_peer_uid(sock: socket.socket) -> int | None:
    """The uid from ``SO_PEERCRED`` of a connected Unix socket (Linux)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)
