"""Test-wide guards and fixtures.

- No test may reach the network: every socket operation that could send a packet off the machine is refused before
  anything is sent (TCP `connect` / `connect_ex`, UDP `sendto` / `sendmsg`, IPv4 and IPv6) unless the address is a
  loopback address, and name resolution (`getaddrinfo`, `gethostbyname`, `gethostbyname_ex`) is refused for anything
  but loopback names and literal loopback addresses (a DNS query is itself a packet). Unix sockets stay allowed.
- Hugging Face libraries run offline.
- Every test runs with one torch intra-op thread (restored after it): the test models are tiny, and on the shared
  2-core machine two OpenMP threads waiting for each other make them many times slower.
- `tiny_prior_dir`: one tiny pixel-space diffusers prior folder for the session (core/priors/testing.py); tests that
  change a prior copy it first, and each module loads its own `Prior` from it.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


class NetworkAccessError(RuntimeError):
    pass


def _is_loopback_host(host) -> bool:
    """True for a loopback name or a literal loopback address (IPv4, IPv6, IPv4-mapped IPv6); False otherwise,
    host names included (resolving one would need DNS)."""
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard / loopback, no resolution
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).split("%", 1)[0]  # drop an IPv6 zone id
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _is_loopback(address) -> bool:
    if isinstance(address, (tuple, list)) and address:
        return _is_loopback_host(address[0])
    return False


def _check(sock: socket.socket, address, what: str) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkAccessError(f"test tried to {what} {address!r}")


_real = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "sendto": socket.socket.sendto,
    "sendmsg": socket.socket.sendmsg,
    "getaddrinfo": socket.getaddrinfo,
    "gethostbyname": socket.gethostbyname,
    "gethostbyname_ex": socket.gethostbyname_ex,
}


def _guarded_connect(self, address):
    _check(self, address, "open a network connection to")
    return _real["connect"](self, address)


def _guarded_connect_ex(self, address):
    _check(self, address, "open a network connection to")
    return _real["connect_ex"](self, address)


def _guarded_sendto(self, data, *args):
    address = args[-1]  # sendto(data, address) or sendto(data, flags, address)
    _check(self, address, "send a datagram to")
    return _real["sendto"](self, data, *args)


def _guarded_sendmsg(self, buffers, ancdata=(), flags=0, address=None):
    if address is not None:
        _check(self, address, "send a message to")
        return _real["sendmsg"](self, buffers, ancdata, flags, address)
    return _real["sendmsg"](self, buffers, ancdata, flags)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_loopback_host(host):
        raise NetworkAccessError(f"test tried to resolve the host name {host!r}")
    return _real["getaddrinfo"](host, *args, **kwargs)


def _guarded_gethostbyname(host):
    if not _is_loopback_host(host):
        raise NetworkAccessError(f"test tried to resolve the host name {host!r}")
    return _real["gethostbyname"](host)


def _guarded_gethostbyname_ex(host):
    if not _is_loopback_host(host):
        raise NetworkAccessError(f"test tried to resolve the host name {host!r}")
    return _real["gethostbyname_ex"](host)


def install_network_guard(monkeypatch) -> None:
    """Patch the socket module for the duration of one test (see the module docstring)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", _guarded_sendto)
    monkeypatch.setattr(socket.socket, "sendmsg", _guarded_sendmsg)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", _guarded_gethostbyname)
    monkeypatch.setattr(socket, "gethostbyname_ex", _guarded_gethostbyname_ex)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    install_network_guard(monkeypatch)
    yield


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_prior_dir(tmp_path_factory):
    """A tiny pixel-space prior folder (diffusers layout), built once per session; load it with load_prior."""
    from tristudio.core.priors.testing import build_tiny_pixel_prior

    return build_tiny_pixel_prior(tmp_path_factory.mktemp("pix") / "prior")
