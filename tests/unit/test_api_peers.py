"""Finding who is on the other end of a connection (``fswatch_api.peers``)."""

from __future__ import annotations

import os
import socket

from fswatch_api.peers import find_owner, is_loopback, proc_address_forms, tcp_peer_uid, unix_peer_uid

ROW = "{sl}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000  {uid}        0 12345 1"


def test_proc_forms_spell_ipv4_in_host_order_and_mapped_ipv6() -> None:
    forms = proc_address_forms("127.0.0.1", 3000)
    assert "0100007F:0BB8" in forms
    assert "0000000000000000FFFF00000100007F:0BB8" in forms


def test_find_owner_picks_the_client_end_not_the_server_end() -> None:
    client, server = ("127.0.0.1", 40000), ("127.0.0.1", 3000)
    rows = [
        ROW.format(sl=0, local="0100007F:0BB8", remote="00000000:0000", state="0A", uid=0),     # listener
        ROW.format(sl=1, local="0100007F:0BB8", remote="0100007F:9C40", state="01", uid=0),     # accepted end
        ROW.format(sl=2, local="0100007F:9C40", remote="0100007F:0BB8", state="01", uid=1234),  # client end
    ]
    assert find_owner(rows, client, server) == 1234


def test_find_owner_ignores_other_states_and_unknown_peers() -> None:
    rows = [ROW.format(sl=0, local="0100007F:9C40", remote="0100007F:0BB8", state="06", uid=7)]
    assert find_owner(rows, ("127.0.0.1", 40000), ("127.0.0.1", 3000)) is None
    assert find_owner([], ("127.0.0.1", 40000), ("127.0.0.1", 3000)) is None


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.5")
    assert not is_loopback("10.0.0.1") and not is_loopback("example.org")


def test_a_real_loopback_connection_belongs_to_us() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()):
        accepted, peer = server.accept()
        with accepted:
            assert tcp_peer_uid(peer, accepted.getsockname()) == os.geteuid()


def test_non_loopback_peers_have_no_uid() -> None:
    assert tcp_peer_uid(("10.1.2.3", 5555), ("127.0.0.1", 3000)) is None


def test_unix_peer_credentials() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert unix_peer_uid(left) == os.geteuid()
