"""The haproxy provider end to end: a real ``lbaas serve``, real HAProxy, real backends.

Everything is built through the HTTP API, as a tenant would; traffic goes
to the VIP on 127.0.0.0/8 (local placement) or into ``qlbaas-<lb_id>``
(namespace placement, root only) on a 198.18.0.0/15 subnet the test makes.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lbaas.dataplane import netns
from lbaas.dataplane.runtime import StatsClient
from lbaas.testing.backend import Backend
from tests.support.serve import Serve, free_port

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None and
                                not Path("/usr/sbin/haproxy").exists(),
                                reason="haproxy not installed")


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short: HAProxy's UNIX socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="lbe-", dir="/tmp"))
    yield path / "state"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def make(name: str, **kwargs: Any) -> Backend:
        b = Backend(name, **kwargs).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


class Lbaas:
    """A running ``lbaas serve`` (haproxy provider) and an HTTP client on it."""

    def __init__(self, state_dir: Path, config: str = "") -> None:
        self.serve = Serve(state_dir, config=config, provider="haproxy")
        self.http: httpx.Client | None = None

    def start(self) -> Lbaas:
        self.serve.start()
        self.http = self.serve.client()
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        self.serve.stop()

    @property
    def c(self) -> httpx.Client:
        assert self.http is not None
        return self.http

    def call(self, method: str, path: str, status: int, **kw: Any) -> Any:
        r = self.c.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def lb(self, lb_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("GET", f"/loadbalancers/{lb_id}", 200)["loadbalancer"]
        return body

    def settle(self, lb_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.c.get(f"/loadbalancers/{lb_id}")
            if r.status_code == 404:
                return {"provisioning_status": "DELETED"}
            lb: dict[str, Any] = r.json()["loadbalancer"]
            if not lb["provisioning_status"].startswith("PENDING_"):
                return lb
            time.sleep(0.05)
        raise AssertionError(f"{lb_id} still pending")

    def stats_socket(self, lb_id: str) -> StatsClient:
        return StatsClient(self.serve.state_dir / "lb" / lb_id / "stats.sock")

    def worker_pid(self, lb_id: str) -> int:
        return int(self.stats_socket(lb_id).show_info()["Pid"])

    def master_pid(self, lb_id: str) -> int:
        return int((self.serve.state_dir / "lb" / lb_id / "haproxy.pid").read_text())


@pytest.fixture
def lbaas(state_dir: Path) -> Iterator[Lbaas]:
    service = Lbaas(state_dir).start()
    yield service
    _delete_everything(service)
    service.stop()


def _delete_everything(service: Lbaas) -> None:
    """Cascade-delete every load balancer (stops their HAProxy) before the service goes."""
    if service.http is None:
        return
    for lb in service.c.get("/loadbalancers").json()["loadbalancers"]:
        service.c.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"})
    for lb in service.c.get("/loadbalancers").json()["loadbalancers"]:
        service.settle(lb["id"])


def _graph(port: int, members: list[tuple[str, int]], **pool: Any) -> dict[str, Any]:
    return {"loadbalancer": {"name": "web", "listeners": [{
        "name": "http", "protocol": "HTTP", "protocol_port": port,
        "default_pool": {"name": "web-pool", "protocol": "HTTP",
                         "lb_algorithm": "ROUND_ROBIN",
                         "members": [{"address": a, "protocol_port": p} for a, p in members],
                         **pool}}]}}


def _names(url: str, n: int) -> list[str]:
    """The backend names answering ``n`` requests on new connections."""
    names = []
    for _ in range(n):
        r = httpx.get(url, timeout=5)
        assert r.status_code == 200, r.text
        names.append(r.text.strip().removeprefix("Welcome to "))
    return names


def test_traffic_through_a_load_balancer_built_with_the_api(
        lbaas: Lbaas, backends: Callable[..., Backend]) -> None:
    web1, web2, web3 = backends("web1"), backends("web2"), backends("web3")
    port = free_port()
    body = _graph(port, [("127.0.0.1", web1.port), ("127.0.0.1", web2.port)])
    lb = lbaas.call("POST", "/loadbalancers", 201, json=body)["loadbalancer"]
    assert lbaas.settle(lb["id"])["provisioning_status"] == "ACTIVE"
    url = f"http://{lb['vip_address']}:{port}/"
    names = _names(url, 6)
    assert sorted(set(names)) == ["web1", "web2"]
    assert all(a != b for a, b in itertools.pairwise(names))  # alternation

    # A new member arrives through the runtime API: no reload, same worker.
    pool_id = lb["pools"][0]["id"]
    worker = lbaas.worker_pid(lb["id"])
    lbaas.call("POST", f"/pools/{pool_id}/members", 201,
               json={"member": {"address": "127.0.0.1", "protocol_port": web3.port}})
    assert lbaas.settle(lb["id"])["provisioning_status"] == "ACTIVE"
    assert "web3" in _names(url, 6)
    assert lbaas.worker_pid(lb["id"]) == worker

    # A listener timeout needs a reload: a new worker, still serving.
    listener_id = lb["listeners"][0]["id"]
    lbaas.call("PUT", f"/listeners/{listener_id}", 200,
               json={"listener": {"timeout_client_data": 20000}})
    assert lbaas.settle(lb["id"])["provisioning_status"] == "ACTIVE"
    assert lbaas.worker_pid(lb["id"]) != worker
    assert len(_names(url, 3)) == 3

    # Deleting the load balancer stops its HAProxy and removes its directory.
    master = lbaas.master_pid(lb["id"])
    lbaas.call("DELETE", f"/loadbalancers/{lb['id']}", 204, params={"cascade": "true"})
    assert lbaas.settle(lb["id"])["provisioning_status"] == "DELETED"
    assert not Path(f"/proc/{master}").exists() or \
        Path(f"/proc/{master}/stat").read_text().split()[2] == "Z"
    assert not (lbaas.serve.state_dir / "lb" / lb["id"]).exists()


def test_a_failed_apply_keeps_the_old_config_serving_and_says_why(
        lbaas: Lbaas, backends: Callable[..., Backend]) -> None:
    web1 = backends("web1")
    port, taken = free_port(), free_port()
    lb = lbaas.call("POST", "/loadbalancers", 201,
                    json=_graph(port, [("127.0.0.1", web1.port)]))["loadbalancer"]
    lbaas.settle(lb["id"])
    url = f"http://{lb['vip_address']}:{port}/"
    with socket.socket() as squatter:  # someone else holds VIP:taken
        squatter.bind((lb["vip_address"], taken))
        squatter.listen()
        lbaas.call("POST", "/listeners", 201, json={"listener": {
            "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": taken}})
        failed = lbaas.settle(lb["id"])
        assert failed["provisioning_status"] == "ERROR"
        assert "bind" in failed["provisioning_status_reason"].lower()
        assert _names(url, 2) == ["web1", "web1"]  # the old configuration still serves
        broken = next(li for li in lbaas.call("GET", "/listeners", 200)["listeners"]
                      if li["protocol_port"] == taken)
        assert broken["provisioning_status"] == "ERROR"
        # the tenant fixes it by deleting what broke it
        lbaas.call("DELETE", f"/listeners/{broken['id']}", 204)
        fixed = lbaas.settle(lb["id"])
    assert fixed["provisioning_status"] == "ACTIVE"
    assert fixed["provisioning_status_reason"] is None
    assert _names(url, 1) == ["web1"]


def test_the_local_placement_refuses_a_vip_it_cannot_bind(lbaas: Lbaas) -> None:
    base = lbaas.serve.url
    net = lbaas.c.post(base + "/v2.0/networks", json={"network": {"name": "elsewhere"}}
                       ).json()["network"]
    sub = lbaas.c.post(base + "/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "198.18.232.0/24"}}).json()["subnet"]
    r = lbaas.c.post("/loadbalancers", json={"loadbalancer": {"vip_subnet_id": sub["id"]}})
    assert r.status_code == 501
    assert "is not an address of this host" in r.json()["faultstring"]
    assert lbaas.c.get("/loadbalancers").json()["loadbalancers"] == []
    # Nor ACTIVE_STANDBY (two amphorae need a namespace each), and the capability list
    # does not offer it.
    r = lbaas.c.post("/flavorprofiles", json={"flavorprofile": {
        "name": "ha", "provider_name": "haproxy",
        "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}})
    assert r.status_code == 501
    assert "ACTIVE_STANDBY topology needs the namespace placement" in r.json()["faultstring"]
    caps = lbaas.c.get("/providers/haproxy/flavor_capabilities").json()["flavor_capabilities"]
    topology = next(c["description"] for c in caps if c["name"] == "loadbalancer_topology")
    assert "SINGLE" in topology and "ACTIVE_STANDBY" not in topology


def test_tenants_cannot_take_the_hosts_addresses_or_ports(lbaas: Lbaas) -> None:
    """Issue 9 item 2: no VIP on 127.0.0.1, no listener on a well-known port of the host."""
    tenant = {"X-Project-Id": "evil", "X-Roles": "member"}
    r = lbaas.c.post("/loadbalancers", json={"loadbalancer": {"vip_address": "127.0.0.1"}},
                     headers=tenant)
    assert r.status_code == 400, r.text
    lb = lbaas.call("POST", "/loadbalancers", 201, json={"loadbalancer": {}},
                    headers=tenant)["loadbalancer"]
    lbaas.settle(lb["id"])
    r = lbaas.c.post("/listeners", headers=tenant, json={"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 25}})
    assert r.status_code == 501, r.text
    assert "local_listener_ports" in r.json()["faultstring"]
    assert lbaas.lb(lb["id"])["listeners"] == []


class LoadLoop:
    """Requests to ``url`` from two threads (new connections, keep-alive) until stopped.

    Bounded: stops by itself after ``limit`` seconds.
    """

    def __init__(self, url: str, limit: float = 60.0) -> None:
        self.url = url
        self.limit = limit
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(keep,), daemon=True)
                         for keep in (False, True)]

    def _run(self, keep_alive: bool) -> None:
        deadline = time.monotonic() + self.limit
        client = httpx.Client(timeout=5) if keep_alive else None
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                r = (client.get(self.url) if client else httpx.get(self.url, timeout=5))
                if r.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(f"HTTP {r.status_code}")
            except httpx.HTTPError as e:
                self.failed.append(repr(e))
            time.sleep(0.002)
        if client:
            client.close()

    def __enter__(self) -> LoadLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def test_kill_9_of_the_control_plane_loses_no_request(
        state_dir: Path, backends: Callable[..., Backend]) -> None:
    web1, web2 = backends("web1"), backends("web2")
    port = free_port()
    service = Lbaas(state_dir).start()
    try:
        lb = service.call("POST", "/loadbalancers", 201, json=_graph(
            port, [("127.0.0.1", web1.port), ("127.0.0.1", web2.port)]))["loadbalancer"]
        service.settle(lb["id"])
        master = service.master_pid(lb["id"])
        with LoadLoop(f"http://{lb['vip_address']}:{port}/") as load:
            time.sleep(1.0)
            service.serve.kill()
            time.sleep(1.0)  # the data plane serves alone
            served_alone = load.ok
            service.http = None
            service.start()  # adopts the running HAProxy
            time.sleep(1.0)
        assert load.failed == [] and load.ok > served_alone > 0
        assert service.master_pid(lb["id"]) == master
        assert service.lb(lb["id"])["provisioning_status"] == "ACTIVE"
        # and the restarted control plane still drives it
        service.call("POST", f"/pools/{lb['pools'][0]['id']}/members", 201, json={
            "member": {"address": "127.0.0.1", "protocol_port": backends("web3").port}})
        assert service.settle(lb["id"])["provisioning_status"] == "ACTIVE"
        assert "web3" in _names(f"http://{lb['vip_address']}:{port}/", 6)
    finally:
        _delete_everything(service)
        service.stop()


# -- namespace placement ------------------------------------------------------------

def _leftovers(lb_id: str) -> list[str]:
    names = [n for n in netns.list_namespaces() if n == netns.namespace_name(lb_id)]
    veth = netns.veth_names(lb_id).host
    links = [veth] if netns.link_address(veth) is not None else []
    return names + links


@pytest.mark.skipif(os.geteuid() != 0, reason="namespace placement needs root")
def test_namespace_placement_serves_a_vip_inside_qlbaas(state_dir: Path) -> None:
    from tests.support.netns_hosts import NetnsHost, Subnet

    config = "[haproxy_amphora]\nplacement = namespace\n"
    service = Lbaas(state_dir, config=config).start()
    cidr = ipaddress.IPv4Network("198.18.231.0/24")
    subnet = None
    try:
        net = service.c.post(service.serve.url + "/v2.0/networks",
                             json={"network": {"name": "lb-net"}}).json()["network"]
        sub = service.c.post(service.serve.url + "/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": str(cidr), "gateway_ip": "198.18.231.1",
            "allocation_pools": [{"start": "198.18.231.100", "end": "198.18.231.150"}],
        }}).json()["subnet"]
        subnet = Subnet(sub["id"], cidr, "198.18.231.1")
        netns.ensure_bridge(subnet.plan)  # the agent makes the same bridge; hosts plug in
        with NetnsHost(subnet, "web1", subnet.host(11)) as h1, \
                NetnsHost(subnet, "web2", subnet.host(12)) as h2:
            h1.serve_http(8080, "web1")
            h2.serve_http(8080, "web2")
            started = time.monotonic()
            lb = service.call("POST", "/loadbalancers", 201, json={"loadbalancer": {
                "vip_subnet_id": sub["id"], **_graph(
                    80, [(h1.address, 8080), (h2.address, 8080)])["loadbalancer"]}}
                )["loadbalancer"]
            assert lb["vip_address"] == "198.18.231.100"
            assert service.settle(lb["id"])["provisioning_status"] == "ACTIVE"
            assert netns.namespace_name(lb["id"]) in netns.list_namespaces()
            names = _names(f"http://{lb['vip_address']}:80/", 4)
            first_200 = time.monotonic() - started
            assert sorted(set(names)) == ["web1", "web2"]
            # a client on the subnet reaches the VIP too
            status, text = h1.get(f"http://{lb['vip_address']}:80/")
            assert status == 200 and text.startswith("Welcome to web")
            print(f"namespace: POST to first 200 in {first_200:.2f} s")
            service.call("DELETE", f"/loadbalancers/{lb['id']}", 204,
                         params={"cascade": "true"})
            assert service.settle(lb["id"])["provisioning_status"] == "DELETED"
            assert _leftovers(lb["id"]) == []
            assert not (service.serve.state_dir / "lb" / lb["id"]).exists()
    finally:
        _delete_everything(service)
        service.stop()
        if subnet is not None:
            netns.delete_bridge(subnet.bridge, only_if_unused=False)
