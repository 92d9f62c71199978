"""The network guard (tests/conftest.py): every path off the machine is refused before anything is sent, loopback works.

Each refusal test swaps the guard's underlying real socket call for a spy, so even a broken guard sends nothing: the
test then fails because the spy was reached. Only documentation addresses are used (192.0.2.0/24 TEST-NET-1,
2001:db8::/32, the reserved `.invalid` TLD), which are not routable anyway.
"""

from __future__ import annotations

import socket
import threading

import conftest
import pytest
from conftest import NetworkAccessError

V4 = ("192.0.2.1", 80)
V6 = ("2001:db8::1", 80, 0, 0)


@pytest.fixture
def spies(monkeypatch):
    """Replace every real call behind the guard by a recorder; return the list of calls that got through."""
    calls = []
    for name in list(conftest._real):
        monkeypatch.setitem(conftest._real, name, lambda *a, _n=name, **k: calls.append((_n, a)) or 0)
    return calls


@pytest.mark.parametrize("family,address", [(socket.AF_INET, V4), (socket.AF_INET6, V6)], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("method", ["connect", "connect_ex"])
def test_tcp_connect_to_a_remote_address_is_refused_before_the_call(spies, family, address, method):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkAccessError, match="network connection"):
            getattr(s, method)(address)
    finally:
        s.close()
    assert spies == []


@pytest.mark.parametrize("family,address", [(socket.AF_INET, V4), (socket.AF_INET6, V6)], ids=["ipv4", "ipv6"])
def test_udp_sendto_a_remote_address_is_refused_before_the_call(spies, family, address):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkAccessError, match="datagram"):
            s.sendto(b"x", address)
        with pytest.raises(NetworkAccessError, match="datagram"):
            s.sendto(b"x", 0, address)  # the flags form
        with pytest.raises(NetworkAccessError, match="message"):
            s.sendmsg([b"x"], [], 0, address)
    finally:
        s.close()
    assert spies == []


def test_ipv4_mapped_ipv6_remote_address_is_refused(spies):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkAccessError):
            s.sendto(b"x", ("::ffff:192.0.2.1", 53, 0, 0))
    finally:
        s.close()
    assert spies == []


@pytest.mark.parametrize("host", ["example.invalid", b"example.invalid", "192.0.2.1", "2001:db8::1"])
def test_name_resolution_of_a_remote_host_is_refused_before_any_query(spies, host):
    with pytest.raises(NetworkAccessError, match="resolve"):
        socket.getaddrinfo(host, 80)
    assert spies == []


def test_gethostbyname_and_create_connection_to_a_host_name_are_refused(spies):
    with pytest.raises(NetworkAccessError):
        socket.gethostbyname("example.invalid")
    with pytest.raises(NetworkAccessError):
        socket.gethostbyname_ex("example.invalid")
    with pytest.raises(NetworkAccessError):
        socket.create_connection(("example.invalid", 80), timeout=0.1)  # resolves through the guarded getaddrinfo
    assert spies == []


def test_loopback_names_resolve_and_only_to_loopback():
    infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    assert infos and all(conftest._is_loopback(sa) for *_, sa in infos)
    assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"


def test_loopback_tcp_round_trip_carries_the_bytes():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = []

    def serve():
        conn, _ = server.accept()
        with conn:
            got.append(conn.recv(16))
            conn.sendall(b"pong")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        assert c.connect_ex(server.getsockname()) == 0
        c.sendall(b"ping")
        assert c.recv(16) == b"pong"
    finally:
        c.close()
        t.join(5)
        server.close()
    assert got == [b"ping"] and not t.is_alive()


def test_loopback_udp_datagram_arrives():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert tx.sendto(b"hello", rx.getsockname()) == 5
        data, src = rx.recvfrom(16)
        assert data == b"hello" and src[0] == "127.0.0.1"
    finally:
        tx.close()
        rx.close()


def test_unix_sockets_stay_allowed():
    a, b = socket.socketpair()
    try:
        a.sendall(b"ok")
        assert b.recv(2) == b"ok"
    finally:
        a.close()
        b.close()
