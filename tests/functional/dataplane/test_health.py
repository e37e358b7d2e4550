"""Health and statistics through the real service: real HAProxy, real backends, the HTTP API.

The service runs the haproxy provider with local placement (VIPs on
127.0.0.0/8) and a health manager polling every :data:`INTERVAL` seconds;
objects are created and read through the API as a tenant would. Health
monitors use short delays so that a member's fall is seen in about a second.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from lbaas.common import constants as c
from lbaas.config import HaproxySettings, HealthSettings, Settings
from lbaas.service import Service
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port, squat

API = "/v2/lbaas"
INTERVAL = 0.5  # seconds between health polls
QUIET_INTERVAL = 2.0  # seconds an idle HAProxy goes unasked (the default's 5 polls)
DELAY, MAX_RETRIES_DOWN = 1, 1  # health monitor: seconds between checks, failures to go down
DETECTION_BOUND = DELAY * MAX_RETRIES_DOWN + INTERVAL + 1.0  # seconds (the bound)

pytestmark = pytest.mark.timed  # detection within DETECTION_BOUND, a restart within 5 s


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> float:
    """Seconds until ``predicate()`` held; AssertionError after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout} s: {what}")


@dataclass
class Lbaas:
    """A running service and an API client on it."""

    service: Service
    client: TestClient

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(API + path, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def put(self, path: str, body: dict[str, Any]) -> None:
        r = self.client.put(API + path, json=body)
        assert r.status_code == 200, r.text

    def get(self, path: str) -> dict[str, Any]:
        r = self.client.get(API + path)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_active(self, lb_id: str) -> None:
        wait_for(lambda: self.get(f"/loadbalancers/{lb_id}")["loadbalancer"]
                 ["provisioning_status"] == c.ACTIVE, what=f"{lb_id} ACTIVE")

    def statuses(self, lb_id: str) -> dict[str, str]:
        """{object id: operating_status} from the status tree."""
        lb = self.get(f"/loadbalancers/{lb_id}/status")["statuses"]["loadbalancer"]
        out = {lb["id"]: lb["operating_status"]}
        for li in lb["listeners"]:
            out[li["id"]] = li["operating_status"]
            for pool in li["pools"]:
                out[pool["id"]] = pool["operating_status"]
                out.update({mb["id"]: mb["operating_status"] for mb in pool["members"]})
        return out

    def stats(self, path: str) -> dict[str, int]:
        return dict(self.get(path + "/stats")["stats"])


def _settings(state_dir: Path, supervise_interval: float) -> Settings:
    return Settings(state_dir=state_dir, default_provider="haproxy", worker_poll_interval=0.05,
                    haproxy=HaproxySettings(supervise_interval=supervise_interval,
                                            reload_timeout=10.0,
                                            stats_quiet_interval=QUIET_INTERVAL),
                    health=HealthSettings(interval=INTERVAL))


@pytest.fixture
def lbaas(base_path: Path) -> Iterator[Callable[..., Lbaas]]:
    """A factory of services on one state directory (a second one is a restart).

    Teardown stops every service and every HAProxy under the state directory, by PID.
    """
    running: list[tuple[Service, TestClient]] = []

    def start(supervise_interval: float = 0.5) -> Lbaas:
        service = Service(_settings(base_path.parent / "state", supervise_interval))
        service.start()
        client = TestClient(service.app)
        running.append((service, client))
        return Lbaas(service, client)

    yield start
    for service, client in running:
        client.close()
        service.stop()
    if running:
        agent = running[-1][0].agent
        amphorae = agent.amphorae  # type: ignore[union-attr]
        for lb_id in amphorae.lb_ids():
            amphorae.delete(lb_id)


def _http_lb(lb: Lbaas, port: int, *members: Backend) -> dict[str, Any]:
    body = {"loadbalancer": {"name": "web", "listeners": [{
        "protocol": "HTTP", "protocol_port": port, "default_pool": {
            "name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "healthmonitor": {"type": "HTTP", "delay": DELAY, "timeout": 1, "max_retries": 1,
                              "max_retries_down": MAX_RETRIES_DOWN, "url_path": "/"},
            "members": [{"address": "127.0.0.1", "protocol_port": b.port, "name": b.name}
                        for b in members]}}]}}
    created = lb.post("/loadbalancers", body)["loadbalancer"]
    lb.wait_active(created["id"])
    return dict(created)


def test_member_failures_and_recovery_roll_up_and_traffic_keeps_flowing(
        lbaas: Callable[..., Lbaas], backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    lb = lbaas()
    port = free_port()
    created = _http_lb(lb, port, web1, web2)
    lb_id, vip = created["id"], created["vip_address"]
    listener = created["listeners"][0]["id"]
    pool = created["pools"][0]
    m1, m2 = (next(mb["id"] for mb in pool["members"] if mb["name"] == name)
              for name in ("web1", "web2"))
    wait_for(lambda: set(lb.statuses(lb_id).values()) == {c.ONLINE}, what="all ONLINE")

    # The status tree, exactly in Octavia's shape (api-ref "Get the Load Balancer status tree").
    tree = lb.get(f"/loadbalancers/{lb_id}/status")
    lbt = tree["statuses"]["loadbalancer"]
    assert list(tree) == ["statuses"] and list(tree["statuses"]) == ["loadbalancer"]
    assert set(lbt) == {"id", "name", "operating_status", "provisioning_status", "listeners"}
    lit, = lbt["listeners"]
    assert set(lit) == {"id", "name", "operating_status", "provisioning_status", "pools"}
    assert (lit["id"], lit["name"]) == (listener, "")  # no name: "" as Octavia
    pt, = lit["pools"]
    assert set(pt) == {"id", "name", "provisioning_status", "operating_status",
                       "health_monitor", "members"}
    assert set(pt["health_monitor"]) == {"id", "name", "type", "provisioning_status",
                                         "operating_status"}
    assert pt["health_monitor"]["type"] == "HTTP"
    assert pt["health_monitor"]["operating_status"] == c.ONLINE
    assert sorted((mb["name"], mb["address"], mb["protocol_port"], mb["provisioning_status"],
                   mb["operating_status"]) for mb in pt["members"]) == [
        ("web1", "127.0.0.1", web1.port, c.ACTIVE, c.ONLINE),
        ("web2", "127.0.0.1", web2.port, c.ACTIVE, c.ONLINE)]
    assert all(set(mb) == {"id", "name", "operating_status", "provisioning_status", "address",
                           "protocol_port"} for mb in pt["members"])

    def degraded() -> bool:
        st = lb.statuses(lb_id)
        return st[m1] == c.ERROR and st[m2] == c.ONLINE and \
            st[pool["id"]] == st[listener] == st[lb_id] == c.DEGRADED

    web1.stop()
    took = wait_for(degraded, timeout=DETECTION_BOUND + 5, what="web1 ERROR, rest DEGRADED")
    assert took <= DETECTION_BOUND, f"member down seen after {took:.2f} s"
    url = f"http://{vip}:{port}/"
    assert {httpx.get(url, timeout=5).text for _ in range(6)} == {"Welcome to web2\n"}

    web2.stop()
    took = wait_for(lambda: set(lb.statuses(lb_id).values()) == {c.ERROR},
                    timeout=DETECTION_BOUND + 5, what="everything ERROR")
    assert took <= DETECTION_BOUND, f"pool down seen after {took:.2f} s"
    assert httpx.get(url, timeout=5).status_code == 503

    back = [backend("web1", port=web1.port), backend("web2", port=web2.port)]
    took = wait_for(lambda: set(lb.statuses(lb_id).values()) == {c.ONLINE},
                    timeout=DETECTION_BOUND + 5, what="all ONLINE again")
    assert took <= DETECTION_BOUND
    assert {httpx.get(url, timeout=5).text for _ in range(4)} == \
        {f"Welcome to {b.name}\n" for b in back}

    # An admin-down member is OFFLINE; the pool stays ONLINE on the other one.
    lb.put(f"/pools/{pool['id']}/members/{m1}", {"member": {"admin_state_up": False}})
    lb.wait_active(lb_id)
    wait_for(lambda: lb.statuses(lb_id)[m1] == c.OFFLINE, timeout=DETECTION_BOUND,
             what="admin-down member OFFLINE")
    st = lb.statuses(lb_id)
    assert st[m2] == st[pool["id"]] == st[listener] == st[lb_id] == c.ONLINE


def _tcp_exchange(vip: str, port: int, payload: bytes) -> tuple[int, int]:
    """One connection to the echo backend: (bytes sent, bytes received)."""
    with socket.create_connection((vip, port), timeout=5) as sock:
        received = len(sock.recv(100))  # "Welcome to <name>\n"
        sock.sendall(payload)
        while received < len(b"Welcome to web1\n") + len(payload):
            chunk = sock.recv(65536)
            assert chunk
            received += len(chunk)
    return len(payload), received


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            return float(m.group(2))
    raise AssertionError(f"no {name} {labels} in metrics")


def test_counters_follow_traffic_and_survive_reloads_and_restarts(
        lbaas: Callable[..., Lbaas], backend: Callable[..., Backend]) -> None:
    web1 = backend("web1", tcp_port=0, tcp_echo=True)
    lb = lbaas()
    port = free_port()
    created = lb.post("/loadbalancers", {"loadbalancer": {"name": "tcp", "listeners": [{
        "protocol": "TCP", "protocol_port": port, "default_pool": {
            "name": "pool", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": "127.0.0.1", "protocol_port": web1.tcp_port}]}}]}}
                      )["loadbalancer"]
    lb_id, vip = created["id"], created["vip_address"]
    listener = created["listeners"][0]["id"]
    member = created["pools"][0]["members"][0]["id"]
    lb.wait_active(lb_id)
    sent = received = conns = 0

    def traffic(n: int, size: int) -> None:
        nonlocal sent, received, conns
        for i in range(n):
            s, r = _tcp_exchange(vip, port, bytes([65 + i % 26]) * size)
            sent, received, conns = sent + s, received + r, conns + 1

    def counted(who: Lbaas = lb) -> bool:
        st = who.stats(f"/listeners/{listener}")
        return (st["bytes_in"], st["bytes_out"], st["total_connections"]) == \
            (sent, received, conns)

    assert lb.stats(f"/loadbalancers/{lb_id}")["bytes_in"] == 0
    traffic(5, 1000)
    wait_for(counted, what="counters equal to the traffic")
    assert lb.stats(f"/loadbalancers/{lb_id}") == lb.stats(f"/listeners/{listener}")
    assert lb.stats(f"/listeners/{listener}")["active_connections"] == 0

    # Traffic no poll saw before a reload retired its worker is still counted: the agent
    # keeps the retiring worker's counters. (The health manager is paused meanwhile.)
    assert lb.service.health is not None
    lb.service.health.stop()
    workers = lb.service.agent.amphorae.pids(lb_id)[1]  # type: ignore[union-attr]
    traffic(3, 7000)
    lb.put(f"/listeners/{listener}", {"listener": {"timeout_client_data": 40000}})
    lb.wait_active(lb_id)
    assert lb.service.agent.amphorae.pids(lb_id)[1] != workers  # type: ignore[union-attr]
    lb.service.health.start()
    wait_for(counted, what="counters after a reload")

    # Connections open across a reload stay with the old worker, which is read (through
    # the master) until it exits. HAProxy adds a connection's bytes when it ends, so the
    # bytes of the one that ends last die with the old worker: "b" exchanges nothing
    # but its greeting and outlives "a".
    a = socket.create_connection((vip, port), timeout=5)
    b = socket.create_connection((vip, port), timeout=5)
    greeting = len(a.recv(100))
    assert len(b.recv(100)) == greeting
    wait_for(lambda: lb.stats(f"/listeners/{listener}")["active_connections"] == 2,
             what="two active connections")
    lb.put(f"/listeners/{listener}", {"listener": {"timeout_client_data": 30000}})
    lb.wait_active(lb_id)
    wait_for(lambda: lb.stats(f"/listeners/{listener}")["active_connections"] == 2,
             what="two active connections on the old worker")
    a.sendall(b"x" * 5000)
    got = 0
    while got < 5000:
        got += len(a.recv(65536))
    a.close()
    sent, received, conns = sent + 5000, received + greeting + got, conns + 2
    wait_for(counted, what="an old worker's traffic")
    b.close()
    wait_for(lambda: lb.stats(f"/listeners/{listener}")["active_connections"] == 0,
             what="the old worker gone")
    time.sleep(2 * INTERVAL)
    assert counted()

    # The control plane restarts: nothing is lost or counted twice.
    before = lb.stats(f"/listeners/{listener}")
    lb.client.close()
    lb.service.stop()
    again = lbaas()
    time.sleep(3 * INTERVAL)
    assert again.stats(f"/listeners/{listener}") == before
    traffic(2, 300)
    wait_for(lambda: counted(again), what="counters after a control-plane restart")

    # HAProxy is killed and restarted by supervision: the counters do not fall.
    amphorae = again.service.agent.amphorae  # type: ignore[union-attr]
    master, _ = amphorae.pids(lb_id)
    assert master is not None
    before = again.stats(f"/listeners/{listener}")
    os.kill(master, signal.SIGKILL)  # the workers exit with their master
    wait_for(lambda: amphorae.pids(lb_id)[0] not in (None, master), what="HAProxy restarted")
    time.sleep(2 * INTERVAL)
    after = again.stats(f"/listeners/{listener}")
    assert all(after[k] >= before[k] for k in ("bytes_in", "bytes_out", "total_connections"))
    wait_for(lambda: again.statuses(lb_id)[lb_id] == c.ONLINE, what="ONLINE after restart")
    traffic(1, 10)
    wait_for(lambda: counted(again), what="counters after an HAProxy restart")

    text = again.client.get("/metrics").text
    assert _metric(text, "lbaas_listener_bytes_in_total", listener_id=listener) == sent
    assert _metric(text, "lbaas_loadbalancer_bytes_out_total", loadbalancer_id=lb_id) == \
        received
    assert _metric(text, "lbaas_member_connections_total", member_id=member) == conns
    assert _metric(text, "lbaas_member_operating_status", member_id=member,
                   operating_status=c.NO_MONITOR) == 1


def _answers(vip: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{vip}:{port}/", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_a_dead_haproxy_comes_back_and_one_that_cannot_is_error_with_the_reason(
        lbaas: Callable[..., Lbaas], backend: Callable[..., Backend]) -> None:
    """Issue 9 item 8, through the service: restarted from the agent's spec; from the
    database when the host has none left; ERROR with the reason when it cannot start."""
    web1 = backend("web1")
    lb = lbaas(supervise_interval=60.0)  # supervision's own pass is a minute away
    port = free_port()
    created = _http_lb(lb, port, web1)
    lb_id, vip, listener = created["id"], created["vip_address"], created["listeners"][0]["id"]
    wait_for(lambda: lb.statuses(lb_id)[lb_id] == c.ONLINE, what="ONLINE")
    amphorae = lb.service.agent.amphorae  # type: ignore[union-attr]

    # Killed: restarted at once (its exit is an event), from the spec the agent holds.
    master, _ = amphorae.pids(lb_id)
    assert master is not None
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: amphorae.pids(lb_id)[0] not in (None, master) and _answers(vip, port),
             timeout=5, what="restarted at once")
    wait_for(lambda: set(lb.statuses(lb_id).values()) == {c.ONLINE}, what="ONLINE again")

    # Lost: the service restarts and finds nothing of it on this host (HAProxy stopped,
    # its directory gone): the health manager has the worker apply it again.
    lb.client.close()
    lb.service.stop()
    amphorae.delete(lb_id)
    assert not _answers(vip, port)
    again = lbaas(supervise_interval=60.0)
    wait_for(lambda: _answers(vip, port), timeout=INTERVAL + 10, what="applied again")
    wait_for(lambda: set(again.statuses(lb_id).values()) == {c.ONLINE}, what="ONLINE")
    assert again.get(f"/loadbalancers/{lb_id}")["loadbalancer"]["provisioning_status"] == \
        c.ACTIVE

    # Cannot start (another process took its address): ERROR, and the reason is shown.
    again.client.close()
    again.service.stop()
    master, _ = amphorae.pids(lb_id)
    assert master is not None
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: amphorae.pids(lb_id)[0] is None, what="dead")
    squatter = squat(vip, port)
    try:
        third = lbaas(supervise_interval=0.5)

        def shown() -> dict[str, Any]:
            return third.get(f"/loadbalancers/{lb_id}")["loadbalancer"]

        wait_for(lambda: shown()["provisioning_status"] == c.ERROR, timeout=INTERVAL + 10,
                 what="provisioning ERROR")
        assert "cannot bind socket" in shown()["provisioning_status_reason"]
        wait_for(lambda: third.statuses(lb_id)[lb_id] == third.statuses(lb_id)[listener]
                 == c.ERROR, what="operating ERROR")
    finally:
        squatter.close()
    # Supervision keeps trying (with a back-off) and serves again once it can.
    wait_for(lambda: _answers(vip, port), timeout=30, what="serving again")
    wait_for(lambda: third.statuses(lb_id)[lb_id] == c.ONLINE, what="ONLINE again")
