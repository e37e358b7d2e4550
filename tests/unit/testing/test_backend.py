"""The test backend's raw TCP service: greet and close (``nc`` returns), or echo."""

from __future__ import annotations

import socket

from lbaas.testing.backend import Backend


def _read_all(port: int) -> bytes:
    """Everything the server sends until it closes (a 5 s timeout fails the test)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_tcp_greets_and_closes() -> None:
    with Backend("web1", tcp_port=0) as b:
        assert _read_all(b.tcp_port) == b"Welcome to web1\n"


def test_tcp_echo_keeps_the_connection_and_echoes() -> None:
    with Backend("web1", tcp_port=0, tcp_echo=True) as b, \
            socket.create_connection(("127.0.0.1", b.tcp_port), timeout=5) as sock:
        assert sock.recv(100) == b"Welcome to web1\n"
        sock.sendall(b"ping\n")
        assert sock.recv(100) == b"ping\n"
