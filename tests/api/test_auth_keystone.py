"""auth_strategy = keystone: tokens validated by keystonemiddleware against a real Keystone.

The identity is only what auth_token sets: headers the client adds are
ignored; no token, a bad token or an unreachable Keystone never reach a
handler.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from lbaas.api.auth import KEYSTONE_UNAVAILABLE
from lbaas.service import Service
from lbaas.testing.keystone import Keystone
from tests.conftest import fresh_database, make_settings

LBS = "/v2/lbaas/loadbalancers"


def keystone_service(tmp_path: Path, template: Path, authtoken: str) -> Service:
    """A service (noop provider, SQLite) with auth_strategy = keystone."""
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\nauth_strategy = keystone\n" + authtoken)
    fresh_database(tmp_path, "", template)
    from tests.api.base import HeldNoopDriver

    noop = HeldNoopDriver()
    return Service(make_settings(tmp_path, auth_strategy="keystone", config_files=(str(conf),)),
                   drivers={"noop": noop, "haproxy": noop})


@pytest.fixture
def client(tmp_path: Path, keystone: Keystone, sqlite_template: Path) -> Iterator[TestClient]:
    svc = keystone_service(tmp_path, sqlite_template, keystone.authtoken_config())
    svc.start()
    with TestClient(svc.app, raise_server_exceptions=False) as c:
        yield c
    svc.stop()


def as_user(keystone: Keystone, user: str, **extra: str) -> dict[str, str]:
    return {"X-Auth-Token": keystone.token(user), **extra}


def test_requests_without_a_valid_token_are_401(client: TestClient) -> None:
    for headers in ({}, {"X-Auth-Token": "garbage"}, {"X-Auth-Token": ""},
                    {"X-Project-Id": "p1", "X-Roles": "admin"}):
        r = client.get(LBS, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Keystone uri=")
    assert client.post(LBS, json={"loadbalancer": {}}).status_code == 401
    assert client.get(LBS, headers={"X-Auth-Token": ""}).status_code == 401


def test_version_discovery_and_healthcheck_need_no_token(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/healthcheck").status_code == 200


def test_the_token_is_the_identity(client: TestClient, keystone: Keystone) -> None:
    member = as_user(keystone, "lb-one-member")
    lb = client.post(LBS, json={"loadbalancer": {"name": "a"}}, headers=member).json()
    assert lb["loadbalancer"]["project_id"] == keystone.info["projects"]["lb-one"]
    r = client.get(LBS, headers=member)
    assert [x["id"] for x in r.json()["loadbalancers"]] == [lb["loadbalancer"]["id"]]


def test_identity_headers_from_the_client_are_ignored(client: TestClient,
                                                       keystone: Keystone) -> None:
    admin = as_user(keystone, "admin")
    lb = client.post(LBS, json={"loadbalancer": {"project_id": "victim"}},
                     headers=admin).json()["loadbalancer"]
    # A reader of lb-one claims to be an admin of project "victim".
    spoof: dict[str, Any] = as_user(keystone, "lb-one-reader", **{
        "X-Roles": "admin", "X-Project-Id": "victim", "X-Tenant-Id": "victim",
        "X-Identity-Status": "Confirmed", "X-Is-Admin-Project": "True",
        "X_ROLES": "admin"})
    assert client.get(LBS, headers=spoof).json()["loadbalancers"] == []
    assert client.get(f"{LBS}/{lb['id']}", headers=spoof).status_code == 403
    assert client.delete(f"{LBS}/{lb['id']}", headers=spoof).status_code == 403
    assert client.post(LBS, json={"loadbalancer": {}}, headers=spoof).status_code == 403


def test_a_system_scoped_token_is_refused(client: TestClient, keystone: Keystone) -> None:
    """Every rule is for project-scoped tokens, as in Octavia (scope_types = project)."""
    system = {"X-Auth-Token": keystone.system_token("admin")}
    assert client.get(LBS, headers=system).status_code == 403
    assert client.post(LBS, json={"loadbalancer": {}}, headers=system).status_code == 403


class KeystoneGate:
    """A loopback TCP relay in front of the real Keystone, to take it away.

    ``forward``: connections reach Keystone. ``hang``: connections are
    accepted and never answered. ``fail``: each request gets a 500. ``close``:
    nothing listens any more (connection refused, as a stopped Keystone).
    Changing mode drops the relayed connections (no kept-alive way around it).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "forward"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._open.append(conn)
            if self.mode == "forward":
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self._open.append(upstream)
                for a, b in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            elif self.mode == "fail":
                threading.Thread(target=self._fail, args=(conn,), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _fail(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request and (data := conn.recv(65536)):
                request += data
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            conn.close()

    def set(self, mode: str) -> None:
        self.mode = mode
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._open.clear()
        if mode == "close":
            self.listener.close()


def test_keystone_down_is_503_never_a_pass_through(tmp_path: Path, keystone: Keystone,
                                                  sqlite_template: Path) -> None:
    """The real Keystone stopped, hanging or failing: 503 in Octavia's fault body,
    nothing done; a token validated before the outage stays valid (token cache)."""
    gate = KeystoneGate(keystone.info["port"])
    # keystonemiddleware finds Keystone through the catalog: its region's
    # identity endpoint is the gate too.
    keystone.add_endpoint("identity", gate.url, region="KeystoneGate")
    authtoken = (keystone.authtoken_config().replace(keystone.auth_url, gate.url)
                 .replace("http_connect_timeout = 5", "http_connect_timeout = 1")
                 + "region_name = KeystoneGate\n")
    svc = keystone_service(tmp_path, sqlite_template, authtoken)
    svc.start()
    cached = as_user(keystone, "admin")
    try:
        with TestClient(svc.app, raise_server_exceptions=False) as c:
            assert c.get(LBS, headers=cached).status_code == 200
            for mode in ("hang", "fail", "close"):
                gate.set(mode)
                for user in ("lb-one-member", "lb-two-member"):
                    r = c.post(LBS, json={"loadbalancer": {}}, headers=as_user(keystone, user))
                    assert r.status_code == 503, (mode, r.text)
                    assert r.headers["content-type"] == "application/json", mode
                    assert r.json() == {"faultcode": "Server", "debuginfo": None,
                                        "faultstring": KEYSTONE_UNAVAILABLE}, mode
                r = c.get(LBS, headers={"X-Auth-Token": "garbage", "X-Roles": "admin"})
                assert r.status_code == 503, (mode, r.text)
                assert c.get(LBS, headers=cached).status_code == 200, mode
                assert c.get("/healthcheck").status_code == 200
        with svc.sessions() as session:
            from lbaas.db import models as m

            assert session.query(m.LoadBalancer).count() == 0
    finally:
        svc.stop()
        gate.set("close")


def test_a_real_server_validates_tokens(tmp_path: Path, keystone: Keystone) -> None:
    """Through uvicorn (not the test client): the bridge runs in a worker thread."""
    from tests.support.serve import Serve

    serve = Serve(tmp_path / "state",
                  config="[api_settings]\nauth_strategy = keystone\n"
                         + keystone.authtoken_config())
    serve.start()
    try:
        url = serve.url + LBS
        assert httpx.get(url).status_code == 401
        r = httpx.get(url, headers=as_user(keystone, "lb-one-member"))
        assert r.status_code == 200, r.text
    finally:
        serve.stop()
