"""ACTIVE_STANDBY end to end: a real ``lbaas serve`` (namespace placement), built through
the API, a client namespace sending requests all along.

Each test makes its own subnet 198.18.<n>.0/24 (n = 234, 235) with backend and
client hosts in namespaces of their own, and removes everything at the end.
Figures (VIP gaps, time to a rebuilt backup) are printed as ``name value unit``.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from lbaas.dataplane import netns
from lbaas.dataplane.runtime import StatsClient
from tests.support.netns_hosts import NetnsHost, Probe, Subnet, longest_gap
from tests.support.serve import Serve

pytestmark = [
    pytest.mark.root,
    pytest.mark.timed,  # VIP gaps under 3 s
    pytest.mark.skipif(os.geteuid() != 0, reason="namespace placement needs root"),
    pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived not installed"),
]

CONFIG = """\
[haproxy_amphora]
placement = namespace
supervise_interval = 0.5
[controller_worker]
loadbalancer_topology = ACTIVE_STANDBY
[health_manager]
health_check_interval = 1
"""


class Ha:
    """``lbaas serve`` with ACTIVE_STANDBY load balancers, a subnet, two backends, a client."""

    def __init__(self, state_dir: Path, n: int) -> None:
        self.serve = Serve(state_dir, config=CONFIG, provider="haproxy")
        self.serve.start()
        self.c = self.serve.client()
        cidr = ipaddress.IPv4Network(f"198.18.{n}.0/24")
        net = self.call("POST", "/v2.0/networks", 201,
                        json={"network": {"name": "ha-net"}})["network"]
        sub = self.call("POST", "/v2.0/subnets", 201, json={"subnet": {
            "network_id": net["id"], "cidr": str(cidr), "gateway_ip": str(cidr[1]),
            "allocation_pools": [{"start": str(cidr[100]), "end": str(cidr[150])}]}})["subnet"]
        self.subnet = Subnet(sub["id"], cidr, str(cidr[1]))
        netns.ensure_bridge(self.subnet.plan)  # the agent makes the same; hosts plug in
        self.hosts = [NetnsHost(self.subnet, name, self.subnet.host(i)).__enter__()
                      for name, i in (("web1", 21), ("web2", 22), ("client", 31))]
        self.web1, self.web2, self.client = self.hosts
        self.web1.serve_http(8080, "web1")
        self.web2.serve_http(8080, "web2")
        self.seen: set[str] = set()  # amphora ids the API showed

    def leftovers(self) -> list[str]:
        """Namespaces and veths of the amphorae seen that still exist."""
        names = set(netns.list_namespaces(netns.AMPHORA_NAMESPACE_PREFIX))
        left = [n for n in map(netns.amphora_namespace_name, self.seen) if n in names]
        return left + [v for v in (netns.veth_names(a).host for a in self.seen)
                       if netns.link_address(v) is not None]

    def call(self, method: str, path: str, status: int, **kw: Any) -> Any:
        """``path`` under /v2/lbaas, or absolute (/v2.0/..., /v2/octavia/...)."""
        if path.startswith(("/v2.0/", "/v2/octavia/")):
            path = self.serve.url + path
        r = self.c.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def create(self) -> dict[str, Any]:
        lb: dict[str, Any] = self.call("POST", "/loadbalancers", 201, json={"loadbalancer": {
            "name": "ha", "vip_subnet_id": self.subnet.subnet_id, "listeners": [{
                "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                    "name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [
                        {"address": self.web1.address, "protocol_port": 8080}]}}]}}
        )["loadbalancer"]
        assert self.settle(lb["id"])["provisioning_status"] == "ACTIVE"
        return lb

    def lb(self, lb_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("GET", f"/loadbalancers/{lb_id}", 200)["loadbalancer"]
        return body

    def settle(self, lb_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return wait_for(f"{lb_id} settled", lambda: (
            lb if not (lb := self.lb(lb_id))["provisioning_status"].startswith("PENDING_")
            else None), timeout)

    def amphorae(self, lb_id: str) -> dict[str, dict[str, Any]]:
        """{role keepalived last reported: amphora} (needs one MASTER and one BACKUP)."""
        found = self.call("GET", "/v2/octavia/amphorae", 200,
                          params={"loadbalancer_id": lb_id})["amphorae"]
        self.seen.update(a["id"] for a in found)
        return {a["role"]: a for a in found}

    def pair(self, lb_id: str, master: str | None = None,
             timeout: float = 30.0) -> tuple[dict[str, Any], dict[str, Any]]:
        """(MASTER, BACKUP) once the API shows one of each, both ALLOCATED (and amphora
        ``master`` the MASTER, if given)."""
        def seen() -> dict[str, dict[str, Any]] | None:
            r = self.amphorae(lb_id)
            if set(r) != {"MASTER", "BACKUP"} or any(
                    a["status"] != "ALLOCATED" for a in r.values()):
                return None
            return r if master is None or r["MASTER"]["id"] == master else None

        roles = wait_for(f"one MASTER ({master or 'any'}) and one BACKUP", seen, timeout)
        return roles["MASTER"], roles["BACKUP"]

    def amphora_dir(self, lb_id: str, amphora_id: str) -> Path:
        return self.serve.state_dir / "lb" / lb_id / amphora_id

    def kill(self, lb_id: str, amphora_id: str) -> float:
        """SIGKILL the amphora's keepalived (both processes) and HAProxy master."""
        d = self.amphora_dir(lb_id, amphora_id)
        pids = [int((d / name).read_text()) for name in
                ("keepalived.pid", "vrrp.pid", "haproxy.pid")]
        killed = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return killed

    def worker(self, lb_id: str, amphora_id: str) -> str:
        return StatsClient(self.amphora_dir(lb_id, amphora_id) / "stats.sock").show_info()["Pid"]

    def close(self) -> None:
        for lb in self.call("GET", "/loadbalancers", 200)["loadbalancers"]:
            self.c.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"})
        for lb in self.call("GET", "/loadbalancers", 200)["loadbalancers"]:
            wait_for("deleted", lambda lb=lb: self.c.get(
                f"/loadbalancers/{lb['id']}").status_code == 404, 60)
        self.c.close()
        self.serve.stop()
        for host in self.hosts:
            host.close()
        netns.delete_bridge(self.subnet.bridge, only_if_unused=False)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lbe-", dir="/tmp"))  # short: UNIX socket paths
    yield path / "state"
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _ha(state_dir: Path, n: int) -> Iterator[Ha]:
    ha = Ha(state_dir, n)
    try:
        yield ha
    finally:
        ha.close()
    assert ha.seen and ha.leftovers() == []


def _report(name: str, value: float, unit: str) -> None:
    print(f"\n{name} {value:.1f} {unit}")


def test_the_vip_survives_a_killed_master_and_a_cut_one_replaced_on_its_own(
        state_dir: Path) -> None:
    with _ha(state_dir, 234) as ha:
        lb = ha.create()
        master, backup = ha.pair(lb["id"])
        wait_for("ONLINE", lambda: ha.lb(lb["id"])["operating_status"] == "ONLINE", 20)
        assert ha.client.get(f"http://{lb['vip_address']}/") == (200, "Welcome to web1\n")

        # keepalived and HAProxy of the MASTER killed: the BACKUP takes the VIP, the
        # agent starts the killed amphora again and it joins as BACKUP.
        probe = Probe(ha.client, lb["vip_address"], timeout=0.3)
        time.sleep(0.5)
        killed = ha.kill(lb["id"], master["id"])
        now_master, now_backup = ha.pair(lb["id"], master=backup["id"])
        assert now_backup["id"] == master["id"]
        gap = longest_gap(probe.stop(), after=killed)
        _report("e2e_active_standby_master_killed_vip_gap", gap * 1000, "ms")
        assert gap < 3.0

        # The new MASTER's interface deleted: the VIP moves back, the health manager
        # sees the amphora broken (DEGRADED) and fails it over: a new one, BACKUP.
        probe = Probe(ha.client, lb["vip_address"], timeout=0.3)
        time.sleep(0.5)
        with IPRoute() as ipr:
            ipr.link("del", index=ipr.link_lookup(
                ifname=netns.veth_names(now_master["id"]).host)[0])
        cut = time.monotonic()
        wait_for("DEGRADED", lambda: ha.lb(lb["id"])["operating_status"] == "DEGRADED", 20)

        def replaced() -> bool:
            return now_master["id"] not in {a["id"] for a in ha.amphorae(lb["id"]).values()}

        rebuilt = wait_for("a new amphora", replaced, 60)
        _, new_backup = ha.pair(lb["id"], master=master["id"])
        rebuilt_in = time.monotonic() - cut
        assert new_backup["id"] not in (master["id"], backup["id"])
        assert new_backup["vrrp_ip"] == backup["vrrp_ip"] and rebuilt
        assert ha.settle(lb["id"])["provisioning_status"] == "ACTIVE"
        wait_for("ONLINE", lambda: ha.lb(lb["id"])["operating_status"] == "ONLINE", 20)
        results = probe.stop()
        gap = longest_gap(results, after=cut)
        _report("e2e_active_standby_veth_deleted_vip_gap", gap * 1000, "ms")
        _report("e2e_active_standby_time_to_rebuilt_backup", rebuilt_in * 1000, "ms")
        assert gap < 3.0 and results[-1].ok
        assert netns.amphora_namespace_name(now_master["id"]) not in netns.list_namespaces()


def test_changes_fail_no_request_and_a_failover_no_new_connection_under_load(
        state_dir: Path) -> None:
    with _ha(state_dir, 235) as ha:
        lb = ha.create()
        master, backup = ha.pair(lb["id"])
        [listener] = lb["listeners"]
        [pool] = lb["pools"]
        workers = {a["id"]: ha.worker(lb["id"], a["id"]) for a in (master, backup)}
        probe = Probe(ha.client, lb["vip_address"], timeout=5.0, interval=0.01)
        time.sleep(0.3)
        events = [("listener change", time.monotonic())]
        ha.call("PUT", f"/listeners/{listener['id']}", 200,
                json={"listener": {"timeout_client_data": 30000}})
        ha.settle(lb["id"])
        reloaded = {a["id"]: ha.worker(lb["id"], a["id"]) for a in (master, backup)}
        assert all(reloaded[a] != workers[a] for a in workers)  # both reloaded
        member = None
        events.append(("member changes", time.monotonic()))
        for i in range(20):
            if member is None:
                member = ha.call("POST", f"/pools/{pool['id']}/members", 201, json={"member": {
                    "address": ha.web2.address, "protocol_port": 8080}})["member"]
            elif i % 4 == 1:
                ha.call("PUT", f"/pools/{pool['id']}/members/{member['id']}", 200,
                        json={"member": {"weight": 1 + i}})
            else:
                ha.call("DELETE", f"/pools/{pool['id']}/members/{member['id']}", 204)
                member = None
            assert ha.settle(lb["id"])["provisioning_status"] == "ACTIVE"
        # Member changes went through the runtime API of both: no new worker.
        assert {a: ha.worker(lb["id"], a) for a in reloaded} == reloaded

        started = time.monotonic()
        events.append(("failover", started))
        ha.call("PUT", f"/loadbalancers/{lb['id']}/failover", 202)
        assert ha.settle(lb["id"])["provisioning_status"] == "ACTIVE"
        events.append(("failover done", time.monotonic()))
        _report("e2e_active_standby_failover", (time.monotonic() - started) * 1000, "ms")
        new = ha.pair(lb["id"])
        assert {a["id"] for a in new}.isdisjoint({master["id"], backup["id"]})
        time.sleep(0.5)
        results = probe.stop()
        _report("e2e_active_standby_under_load_requests", len(results), "requests")
        _report("e2e_active_standby_under_load_slowest",
                max(r.end - r.start for r in results) * 1000, "ms")
        # The changes: not one request fails.
        changing = [r for r in results if r.end < started]
        assert [r for r in changing if not r.ok] == [], events
        # The failover: not one request fails, not even one in flight when the VIP
        # moves (its next packets reach the new MASTER, which sends them back to the
        # old one for the handover).
        failing_over = [r for r in results if r.end >= started]
        assert [r for r in failing_over if not r.ok] == [], events
        assert {r.text for r in results if r.ok} <= {"Welcome_to_web1", "Welcome_to_web2"}
