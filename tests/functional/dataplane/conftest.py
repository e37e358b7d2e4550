"""Fixtures for data-plane tests against real HAProxy processes on loopback.

Each test gets its own short state directory under /tmp (UNIX socket paths
are limited to 107 bytes), its own free ports, and real backends
(:mod:`lbaas.testing.backend`). Teardown stops every HAProxy it started by
PID (``Amphorae.delete``, then anything left running in the state directory,
even after an interrupted run: :mod:`tests.support.state_dirs`), never by
name: other people run HAProxy here too.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.testing.backend import Backend
from tests.support.state_dirs import make_state_dir, remove_state_dir

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy not installed")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def squat(host: str, port: int, timeout: float = 10.0) -> socket.socket:
    """A listening socket on ``host:port`` without SO_REUSEPORT, so that HAProxy cannot bind
    beside it; waits for the port to be free (a killed master's worker may still hold it)."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket()
        try:
            sock.bind((host, port))
            sock.listen()
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def base_path() -> Iterator[Path]:
    """``<state dir>/lb``; whatever still runs in it afterwards is stopped by PID
    (:mod:`tests.support.state_dirs`, which also covers an interrupted run)."""
    path = make_state_dir()
    try:
        yield path / "lb"
    finally:
        remove_state_dir(path)


def _cleanup(amphorae: Amphorae) -> None:
    for lb_id in amphorae.lb_ids():
        amphorae.delete(lb_id)


@pytest.fixture
def amphorae(base_path: Path) -> Iterator[Amphorae]:
    am = Amphorae(AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY, drain_timeout=1.0))
    try:
        yield am
    finally:
        _cleanup(am)


@pytest.fixture
def backend() -> Iterator[Callable[..., Backend]]:
    """A factory of started backends: ``backend("web1", tcp_port=0)``."""
    started: list[Backend] = []

    def make(name: str, **kwargs: object) -> Backend:
        b = Backend(name, **kwargs).start()  # type: ignore[arg-type]
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()
