"""``lbaas agent serve`` processes as data-plane hosts of one ``lbaas serve`` (issue 12).

Two agents and one control plane, each a process of its own on loopback
ports: the control plane talks to the agents over HTTPS with mutual TLS
(certificates from ``lbaas agent certificate issue``), places each load
balancer on the agent with the fewest, pulls heartbeats, and, when an agent
dies (the process and its HAProxy processes killed, as a host that
vanishes), rebuilds its load balancers on the other agent. The time from
the kill to traffic served again is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lbaas.agent import pki
from lbaas.testing.backend import Backend
from tests.support.serve import Serve, free_port

pytestmark = [pytest.mark.slow]

HEARTBEAT_TIMEOUT = 5.0


@dataclass
class Agent:
    """One ``lbaas agent serve`` on 127.0.0.1:``port`` as host ``host``."""

    host: str
    port: int
    state_dir: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state_dir.parent / f"agent-{self.host}.log"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbaas", "agent", "serve", "--config-file", str(self.config),
             "--state-dir", str(self.state_dir)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait(self, tls: ssl.SSLContext, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.endpoint + "/v1/heartbeat", verify=tls,
                             timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"agent did not answer: {self.log.read_text()[-3000:]}")

    def haproxy_pids(self) -> list[int]:
        pids = []
        for pid_file in (self.state_dir / "lb").glob("*/haproxy.pid"):
            pids += [int(p) for p in pid_file.read_text().split()]
        return pids

    def kill_host(self) -> None:
        """The host vanishes: its agent and every HAProxy it started, SIGKILL."""
        assert self.proc is not None
        haproxies = self.haproxy_pids()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        for pid in haproxies:  # started by this test's agent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in self.haproxy_pids():  # the data plane outlives the agent: stop it here
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Deployment:
    serve: Serve
    agents: list[Agent]
    tls: ssl.SSLContext  # the controller's client context
    ca_dir: Path


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    ca_dir = tmp_path / "ca"
    issued = subprocess.run(
        [sys.executable, "-m", "lbaas", "agent", "certificate", "issue", "controller",
         "--ca-dir", str(ca_dir)], capture_output=True, text=True, check=True)
    assert f"certificate and key: {ca_dir / 'controller.pem'}" in issued.stdout
    ca = str(ca_dir / pki.CA_CERT)
    agents = []
    for i in (1, 2):
        host = f"agent-{i}"
        pki.issue(ca_dir, host, ("127.0.0.1",))
        (tmp_path / host).mkdir()
        config = tmp_path / f"{host}.conf"
        port = free_port()
        config.write_text(f"[DEFAULT]\nhost = {host}\n[amphora_agent]\nbind_port = {port}\n"
                          f"agent_server_cert = {ca_dir / (host + '.pem')}\n"
                          f"agent_server_ca = {ca}\n")
        agents.append(Agent(host, port, tmp_path / host / "state", config))
    (tmp_path / "control").mkdir()
    serve = Serve(tmp_path / "control" / "state", provider="haproxy", config=(
        "[controller_worker]\namphora_driver = amphora_haproxy_rest_driver\n"
        f"agent_endpoints = {','.join(a.endpoint for a in agents)}\n"
        f"[haproxy_amphora]\nclient_cert = {ca_dir / 'controller.pem'}\nserver_ca = {ca}\n"
        f"[health_manager]\nheartbeat_interval = 0.5\nheartbeat_timeout = {HEARTBEAT_TIMEOUT}\n"))
    tls = ssl.create_default_context(cafile=ca)
    tls.load_cert_chain(ca_dir / "controller.pem")
    try:
        for a in agents:
            a.start()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda a: a.wait(tls), agents))
            serve.start()
        yield Deployment(serve, agents, tls, ca_dir)
    finally:
        serve.stop()
        for a in agents:
            a.stop()


def _wait_active(c: httpx.Client, lb_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lb = c.get(f"/loadbalancers/{lb_id}").json()["loadbalancer"]
        if lb["provisioning_status"] == "ACTIVE":
            return dict(lb)
        assert lb["provisioning_status"] != "ERROR", lb
        time.sleep(0.05)
    raise AssertionError(f"{lb_id} not ACTIVE")


def _agent_list(serve: Serve) -> list[dict[str, Any]]:
    """``lbaas agent list -f json`` against ``serve``."""
    out = subprocess.run([sys.executable, "-m", "lbaas", "--os-endpoint", serve.url, "agent",
                          "list", "-f", "json"], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def _host_of(c: httpx.Client, lb_id: str) -> str:
    amphorae = c.get(str(c.base_url).rstrip("/").replace("/v2/lbaas", "/v2/octavia/amphorae"),
                     params={"loadbalancer_id": lb_id}).json()["amphorae"]
    assert len(amphorae) == 1, amphorae
    return str(amphorae[0]["compute_id"])


def test_agents_serve_the_data_plane_over_mutual_tls_and_fail_over(
        deployment: Deployment) -> None:
    d = deployment
    with Backend("web1") as web, d.serve.client() as c:
        lbs = []
        for i in range(2):
            port = free_port()
            lb = c.post("/loadbalancers", json={"loadbalancer": {
                "name": f"lb{i}", "listeners": [{
                    "protocol": "HTTP", "protocol_port": port,
                    "default_pool": {"name": "web", "protocol": "HTTP",
                                 "lb_algorithm": "ROUND_ROBIN",
                                     "members": [{"address": "127.0.0.1",
                                                  "protocol_port": web.port}]}}]}})
            assert lb.status_code == 201, lb.text
            lbs.append((_wait_active(c, lb.json()["loadbalancer"]["id"]), port))
        # fewest load balancers first: one on each agent, and each serves
        hosts = {_host_of(c, lb["id"]): (lb, port) for lb, port in lbs}
        assert sorted(hosts) == ["agent-1", "agent-2"]
        for lb, port in lbs:
            r = httpx.get(f"http://{lb['vip_address']}:{port}/", timeout=5)
            assert r.status_code == 200 and "Welcome to web1" in r.text

        # only a client with a certificate of the CA gets through
        agent = d.agents[0]
        with pytest.raises(httpx.HTTPError):
            httpx.get(agent.endpoint + "/v1/heartbeat",
                      verify=ssl.create_default_context(cafile=d.ca_dir / pki.CA_CERT),
                      timeout=5)
        other = pki.issue(d.ca_dir.parent / "other-ca", "controller")
        stranger = ssl.create_default_context(cafile=d.ca_dir / pki.CA_CERT)
        stranger.load_cert_chain(other)
        with pytest.raises(httpx.HTTPError):
            httpx.get(agent.endpoint + "/v1/heartbeat", verify=stranger, timeout=5)
        # the agent keeps no database, and holds only its own load balancer
        assert not list(agent.state_dir.rglob("*.sqlite*"))
        held = httpx.get(agent.endpoint + "/v1/heartbeat", verify=d.tls, timeout=5).json()
        assert list(held["load_balancers"]) == [hosts["agent-1"][0]["id"]]

        listed = _agent_list(d.serve)
        assert {(a["host"], a["alive"], a["admin_state_up"]) for a in listed} == {
            ("agent-1", True, True), ("agent-2", True, True)}

        # agent-1's host dies: its load balancer is rebuilt on agent-2
        lb, port = hosts["agent-1"]
        killed = time.monotonic()
        agent.kill_host()
        url = f"http://{lb['vip_address']}:{port}/"
        while True:
            try:
                if httpx.get(url, timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - killed < 60, "not served again within 60 s"
            time.sleep(0.05)
        served_again = time.monotonic() - killed
        _wait_active(c, lb["id"])
        assert _host_of(c, lb["id"]) == "agent-2"
        assert {a["host"]: a["alive"] for a in _agent_list(d.serve)} == {
            "agent-1": False, "agent-2": True}
        print(f"agent failover: traffic served again {served_again:.2f} s after the host died "
              f"(heartbeat_timeout {HEARTBEAT_TIMEOUT} s)")
