"""Three data-plane hosts and two control planes on one PostgreSQL (issue 12's layout).

Three ``lbaas agent serve``, each in a network namespace of its own acting
as a host (:mod:`tests.support.agent_hosts`: a management network, and the
VIP subnet's wire joining the hosts' bridges), and two ``lbaas serve``
processes (no agent inside) on the run's PostgreSQL, both polling the three
agents over HTTPS with mutual TLS (certificates from ``lbaas agent
certificate issue``). Load balancers made through either API are spread
over the three hosts (fewest first) and serve traffic, and an
ACTIVE_STANDBY one has its MASTER and BACKUP on two hosts, keepalived's
VRRP between them. When a host dies (unplugged, every process of it
killed) its SINGLE load balancer is rebuilt on another and serves again,
the ACTIVE_STANDBY VIP moves to the BACKUP's host by itself, and the lost
amphora is placed again on the third host: the times from the death are
printed (``name value unit``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lbaas.agent import pki
from tests.support.agent_hosts import AgentHosts
from tests.support.netns_hosts import NetnsHost, Subnet
from tests.support.serve import Serve

pytestmark = [
    pytest.mark.timed,  # heartbeat_timeout 5 s, failover times
    pytest.mark.slow, pytest.mark.root, pytest.mark.postgres,
    pytest.mark.skipif(os.geteuid() != 0, reason="hosts in network namespaces need root"),
]

HEARTBEAT_TIMEOUT = 5.0
MGMT, VIPS = 242, 243  # 198.18.<n>.0/24: the hosts' management network, the VIP subnet


def control_plane_config(hosts: AgentHosts, ca_dir: Path) -> str:
    """``lbaas serve`` with the hosts' agents (no agent inside)."""
    return ("[controller_worker]\namphora_driver = amphora_haproxy_rest_driver\n"
            f"agent_endpoints = {','.join(h.endpoint for h in hosts.hosts)}\n"
            "poll_interval = 0.2\n"
            f"[haproxy_amphora]\nplacement = namespace\n"
            f"client_cert = {ca_dir / 'controller.pem'}\nserver_ca = {ca_dir / pki.CA_CERT}\n"
            f"[health_manager]\nheartbeat_interval = 0.5\n"
            f"heartbeat_timeout = {HEARTBEAT_TIMEOUT}\n")


@dataclass
class Deployment:
    hosts: AgentHosts
    serves: list[Serve]
    tls: ssl.SSLContext  # the controller's client context
    ca_dir: Path
    subnet: Subnet
    web: NetnsHost


@pytest.fixture
def deployment(database: str) -> Iterator[Deployment]:
    base = Path(tempfile.mkdtemp(prefix="lbh-", dir="/tmp"))  # short: UNIX socket paths
    ca_dir = base / "ca"
    serves: list[Serve] = []
    web: NetnsHost | None = None
    try:
        with AgentHosts(base, 3, MGMT) as hosts:
            hosts.issue_certificates(ca_dir)
            tls = ssl.create_default_context(cafile=ca_dir / pki.CA_CERT)
            tls.load_cert_chain(ca_dir / "controller.pem")
            for side in ("a", "b"):
                (base / side).mkdir()
                serves.append(Serve(base / side / "state", provider="haproxy",
                                    config=control_plane_config(hosts, ca_dir),
                                    extra=("--database-url", database)))
            with ThreadPoolExecutor(5) as pool:
                started = [pool.submit(hosts.start, ca_dir, tls),
                           *(pool.submit(s.start, 120) for s in serves)]
                for f in started:
                    f.result()
            with serves[0].client() as c:
                net = c.post(serves[0].url + "/v2.0/networks",
                             json={"network": {"name": "vips"}}).json()["network"]
                sub = c.post(serves[0].url + "/v2.0/subnets", json={"subnet": {
                    "network_id": net["id"], "cidr": f"198.18.{VIPS}.0/24",
                    "gateway_ip": f"198.18.{VIPS}.1", "allocation_pools": [
                        {"start": f"198.18.{VIPS}.100", "end": f"198.18.{VIPS}.150"}]}}
                ).json()["subnet"]
            subnet = Subnet(sub["id"], ipaddress.IPv4Network(sub["cidr"]),
                            sub["gateway_ip"])
            hosts.plug(subnet)
            web = NetnsHost(subnet, "web", subnet.host(21)).__enter__()
            web.serve_http(8080, "web")
            yield Deployment(hosts, serves, tls, ca_dir, subnet, web)
            _stop(serves)  # before the hosts go: nothing left to fail over
    finally:
        _stop(serves)
        if web is not None:
            web.close()
        shutil.rmtree(base, ignore_errors=True)


def _stop(serves: list[Serve]) -> None:
    """SIGKILL what still runs (the test stops them in order; this is for a failed one)."""
    for s in serves:
        if s.proc is not None and s.proc.poll() is None:
            s.kill()


def _wait_active(c: httpx.Client, lb_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lb = c.get(f"/loadbalancers/{lb_id}").json()["loadbalancer"]
        if lb["provisioning_status"] == "ACTIVE":
            return dict(lb)
        assert lb["provisioning_status"] != "ERROR", (lb["name"], lb["provisioning_status_reason"])
        time.sleep(0.05)
    raise AssertionError(f"{lb_id} not ACTIVE")


def _agent_list(serve: Serve) -> list[dict[str, Any]]:
    """``lbaas agent list -f json`` against ``serve``."""
    out = subprocess.run([sys.executable, "-m", "lbaas", "--os-endpoint", serve.url, "agent",
                          "list", "-f", "json"], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def _hosts_of(serve: Serve, lb_id: str) -> list[str]:
    """The hosts of ``lb_id``'s amphorae (``compute_id`` is ``<host>:<namespace>``)."""
    amphorae = httpx.get(serve.url + "/v2/octavia/amphorae", params={"loadbalancer_id": lb_id},
                         timeout=10).json()["amphorae"]
    return sorted(str(a["compute_id"]).split(":")[0] for a in amphorae)


def _served(url: str) -> bool:
    try:
        r = httpx.get(url, timeout=0.5)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.text == "Welcome to web\n"


def _amphorae(serve: Serve, lb_id: str) -> dict[str, dict[str, Any]]:
    """{role keepalived last reported: amphora}."""
    found = httpx.get(serve.url + "/v2/octavia/amphorae", params={"loadbalancer_id": lb_id},
                      timeout=10).json()["amphorae"]
    return {a["role"]: a for a in found}


def _wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return value


def test_three_hosts_two_control_planes_and_a_host_that_dies(deployment: Deployment) -> None:
    d = deployment
    a, b = d.serves
    with a.client() as ca, b.client() as cb:
        def create(client: httpx.Client, name: str, **extra: Any) -> str:
            r = client.post("/loadbalancers", json={"loadbalancer": {
                "name": name, "vip_subnet_id": d.subnet.subnet_id, **extra, "listeners": [{
                    "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                        "name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": d.web.address, "protocol_port": 8080}]}}]}})
            assert r.status_code == 201, r.text
            return str(r.json()["loadbalancer"]["id"])

        # Every agent heard from by both control planes before the first placement (an
        # agent answering is not yet an agent alive in the database).
        for serve in (a, b):
            _wait_for(f"three agents alive for {serve.url}", lambda s=serve: sorted(
                x["host"] for x in httpx.get(s.url + "/v2.0/agents", timeout=10)
                .json()["agents"] if x["alive"]) == ["agent-1", "agent-2", "agent-3"])
        # One after another: two workers placing at the same moment may pick the same
        # agent (the scheduler's balance is approximate, see worker/scheduler.py).
        lbs = [_wait_active(ca, create(ca if i % 2 else cb, f"lb{i}")) for i in range(3)]
        # fewest load balancers first: one on each host, and each serves
        on = {_hosts_of(a, lb["id"])[0]: lb for lb in lbs}
        assert sorted(on) == ["agent-1", "agent-2", "agent-3"]
        for lb in lbs:
            assert _served(f"http://{lb['vip_address']}/"), lb

        # ACTIVE_STANDBY: its two amphorae on two hosts, keepalived's VRRP across the wire
        profile = ca.post("/flavorprofiles", json={"flavorprofile": {
            "name": "ha", "provider_name": "haproxy",
            "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}})
        assert profile.status_code == 201, profile.text
        flavor = ca.post("/flavors", json={"flavor": {
            "name": "ha", "flavor_profile_id": profile.json()["flavorprofile"]["id"]}})
        assert flavor.status_code == 201, flavor.text
        ha = _wait_active(cb, create(cb, "ha", flavor_id=flavor.json()["flavor"]["id"]))
        ha_url = f"http://{ha['vip_address']}/"
        assert _served(ha_url)
        master, backup = _wait_for("a MASTER and a BACKUP", lambda: (
            (r["MASTER"], r["BACKUP"]) if set(r := _amphorae(a, ha["id"])) ==
            {"MASTER", "BACKUP"} else None))
        assert master["compute_id"].startswith("agent-1:")  # built as MASTER, placed first
        assert backup["compute_id"].startswith("agent-2:")

        # only a client with a certificate of the CA gets through
        agent = d.hosts.hosts[0]
        with pytest.raises(httpx.HTTPError):
            httpx.get(agent.endpoint + "/v1/heartbeat",
                      verify=ssl.create_default_context(cafile=d.ca_dir / pki.CA_CERT),
                      timeout=5)
        other = pki.issue(d.ca_dir.parent / "other-ca", "controller")
        stranger = ssl.create_default_context(cafile=d.ca_dir / pki.CA_CERT)
        stranger.load_cert_chain(other)
        with pytest.raises(httpx.HTTPError):
            httpx.get(agent.endpoint + "/v1/heartbeat", verify=stranger, timeout=5)
        # the agent keeps no database, and holds only its own load balancers
        assert not list(agent.state_dir.rglob("*.sqlite*"))
        held = httpx.get(agent.endpoint + "/v1/heartbeat", verify=d.tls, timeout=5).json()
        assert sorted(held["load_balancers"]) == sorted([on["agent-1"]["id"], ha["id"]])
        assert {(x["host"], x["alive"], x["admin_state_up"]) for x in _agent_list(b)} == {
            ("agent-1", True, True), ("agent-2", True, True), ("agent-3", True, True)}

        # agent-1's host dies: the ACTIVE_STANDBY VIP moves to the BACKUP on agent-2 (VRRP),
        # the SINGLE load balancer is rebuilt on another host, the lost amphora on agent-3
        lb = on["agent-1"]
        url = f"http://{lb['vip_address']}/"
        died = time.monotonic()
        agent.kill()
        times: dict[str, float] = {}
        while len(times) < 2:
            for name, target in (("single", url), ("active_standby", ha_url)):
                if name not in times and _served(target):
                    times[name] = time.monotonic() - died
            assert time.monotonic() - died < 60, f"not served again within 60 s: {times}"
            time.sleep(0.02)
        _wait_active(cb, lb["id"])
        assert _hosts_of(b, lb["id"])[0] in ("agent-2", "agent-3")
        for other_lb in lbs:
            assert _served(f"http://{other_lb['vip_address']}/"), other_lb
        assert {x["host"]: x["alive"] for x in _agent_list(a)} == {
            "agent-1": False, "agent-2": True, "agent-3": True}

        rebuilt = _wait_for("the lost amphora on agent-3, BACKUP", lambda: (
            r if set(r := _amphorae(a, ha["id"])) == {"MASTER", "BACKUP"}
            and r["BACKUP"]["compute_id"].startswith("agent-3:")
            and r["BACKUP"]["status"] == "ALLOCATED" else None))
        rebuilt_in = time.monotonic() - died
        assert rebuilt["MASTER"]["id"] == backup["id"]
        assert rebuilt["BACKUP"]["id"] == master["id"]  # placed again, same id and address
        assert rebuilt["BACKUP"]["vrrp_ip"] == master["vrrp_ip"]
        assert _wait_active(ca, ha["id"])["provisioning_status"] == "ACTIVE" and _served(ha_url)
        print(f"\nagent_failover_single_served_again {times['single']:.2f} s "
              f"(heartbeat_timeout {HEARTBEAT_TIMEOUT} s)"
              f"\nagent_failover_active_standby_vip_back {times['active_standby']:.2f} s"
              f"\nagent_failover_active_standby_backup_rebuilt {rebuilt_in:.2f} s")

    # an orderly stop does not wait for a heartbeat hung on the dead host (before: up to
    # heartbeat_timeout; tests/e2e/test_serve.py has the deterministic case)
    with ThreadPoolExecutor(2) as pool:
        stopped = list(pool.map(lambda s: (time.monotonic(), s.terminate(), time.monotonic()),
                                d.serves))
    assert [code for _, code, _ in stopped] == [0, 0]
    slowest = max(end - start for start, _, end in stopped)
    print(f"serve_sigterm_polling_a_dead_host {slowest:.2f} s")
    assert slowest < 3.0
