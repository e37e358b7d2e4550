"""A failover that finds no agent is retried when an agent can take the load balancers.

Two real ``lbaas agent serve`` on loopback (local placement, mutual TLS
with certificates from :mod:`lbaas.agent.pki`) and one ``lbaas serve``
polling them, with a short heartbeat timeout. agent-2 is disabled, so the
load balancers go to agent-1; agent-1's host dies (the agent and its HAProxy
processes SIGKILLed): the failover finds no enabled and alive agent, and the
load balancers are ERROR with the reason. Then:

- agent-1 comes back: it is an agent like any other, the load balancers
  are rebuilt from the database on it and serve again;
- agent-1 dies again, and agent-2 is enabled: they are rebuilt on agent-2
  and serve again; the time from the ``PUT`` to traffic is printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lbaas.agent import pki
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port
from tests.support.serve import Serve
from tests.support.state_dirs import processes_in

pytestmark = [pytest.mark.slow, pytest.mark.timed]  # a live agent silent for 3 s is dead

HEARTBEAT_TIMEOUT = 3.0


@dataclass
class Agent:
    """``lbaas agent serve`` named ``host`` on 127.0.0.1:``port``, its state in ``root``."""

    host: str
    port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, ca_dir: Path) -> None:
        config = self.root / "agent.conf"
        config.write_text(
            f"[DEFAULT]\nhost = {self.host}\n[amphora_agent]\nbind_host = 127.0.0.1\n"
            f"bind_port = {self.port}\nagent_server_cert = {ca_dir / (self.host + '.pem')}\n"
            f"agent_server_ca = {ca_dir / pki.CA_CERT}\n"
            "[haproxy_amphora]\nsupervise_interval = 0.5\n")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lbaas", "agent", "serve", "--config-file", str(config),
             "--state-dir", str(self.root / "state")],
            stdout=(self.root / "agent.log").open("ab"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def die(self) -> None:
        """The host dies: the agent and every HAProxy it started, SIGKILLed by PID."""
        for pid in processes_in(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)


@pytest.fixture
def agents(base_path: Path) -> Iterator[tuple[Serve, Agent, Agent]]:
    """agent-1, agent-2 and the control plane polling them (SQLite)."""
    root = base_path.parent
    ca_dir = root / "ca"
    pki.issue(ca_dir, "controller")
    pair = []
    for name in ("agent-1", "agent-2"):
        pki.issue(ca_dir, name, ("127.0.0.1",))
        (root / name).mkdir()
        pair.append(Agent(name, free_port(), root / name))
    octet = 1 + os.getpid() % 250  # a VIP pool of this test's own on loopback
    serve = Serve(root / "serve", provider="haproxy", config=(
        "[controller_worker]\namphora_driver = amphora_haproxy_rest_driver\n"
        f"agent_endpoints = {','.join(a.endpoint for a in pair)}\npoll_interval = 0.2\n"
        f"[haproxy_amphora]\nclient_cert = {ca_dir / 'controller.pem'}\n"
        f"server_ca = {ca_dir / pki.CA_CERT}\n"
        f"[health_manager]\nheartbeat_interval = 0.5\nheartbeat_timeout = {HEARTBEAT_TIMEOUT}\n"
        f"[networking]\ndefault_subnet_cidr = 127.208.{octet}.0/24\n"
        f"default_subnet_pool_start = 127.208.{octet}.1\n"
        f"default_subnet_pool_end = 127.208.{octet}.254\n"))
    try:
        for agent in pair:
            agent.start(ca_dir)
        serve.start(120)
        yield serve, pair[0], pair[1]
    finally:
        serve.stop()
        for agent in pair:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    agent.proc.wait(15)


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return value


def test_a_failover_without_an_agent_is_retried_when_an_agent_is_back_or_enabled(
        agents: tuple[Serve, Agent, Agent], backend: Callable[..., Backend]) -> None:
    serve, one, _ = agents
    web = backend("web")
    admin = httpx.Client(base_url=serve.url, timeout=10)
    client = serve.client()

    def agent_rows() -> dict[str, dict[str, Any]]:
        return {a["host"]: a for a in admin.get("/v2.0/agents").json()["agents"]}

    def lbs() -> dict[str, dict[str, Any]]:
        return {lb_id: client.get(f"/loadbalancers/{lb_id}").json()["loadbalancer"]
                for lb_id in ids}

    def hosts() -> set[str]:
        return {a["compute_id"] for a in admin.get("/v2/octavia/amphorae").json()["amphorae"]}

    def served(lb: dict[str, Any]) -> bool:
        try:
            return httpx.get(f"http://{lb['vip_address']}:{lb['port']}/", timeout=0.5
                             ).status_code == 200
        except httpx.HTTPError:
            return False

    def all_served() -> bool:
        return all(served(lb) for lb in vips)

    def settled(state: str, field: str = "provisioning_status",
                ) -> dict[str, dict[str, Any]] | None:
        now = lbs()
        return now if {lb[field] for lb in now.values()} == {state} else None

    try:
        def two_alive() -> dict[str, dict[str, Any]] | None:
            found = agent_rows()
            return found if len(found) == 2 and all(a["alive"] for a in found.values()) \
                else None

        rows = _wait_for("two alive agents", two_alive, 60)
        r = admin.put(f"/v2.0/agents/{rows['agent-2']['id']}",
                      json={"agent": {"admin_state_up": False}})
        assert r.status_code == 200, r.text
        [subnet] = admin.get("/v2.0/subnets", params={"name": "lb-vip-subnet"}
                             ).json()["subnets"]
        ids, vips = [], []
        for i in range(2):
            port = free_port()
            r = client.post("/loadbalancers", json={"loadbalancer": {
                "name": f"lb{i}", "vip_subnet_id": subnet["id"], "listeners": [{
                    "protocol": "HTTP", "protocol_port": port, "default_pool": {"name": "web",
                        "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                        "members": [{"address": "127.0.0.1", "protocol_port": web.port}]}}]}})
            assert r.status_code == 201, r.text
            ids.append(r.json()["loadbalancer"]["id"])
            vips.append({"vip_address": r.json()["loadbalancer"]["vip_address"], "port": port})
        _wait_for("ACTIVE", lambda: settled("ACTIVE"))
        assert hosts() == {"agent-1"} and all_served()

        # agent-1's host dies; agent-2 is disabled: the failover finds no agent
        one.die()
        _wait_for("ERROR", lambda: settled("ERROR"))
        failed = _wait_for("operating_status ERROR", lambda: settled("ERROR", "operating_status"))
        for lb in failed.values():
            assert lb["provisioning_status_reason"] == (
                "no enabled and alive agent in any zone; failed over again as soon as an "
                "agent can take it")
        assert {a["status"] for a in admin.get("/v2/octavia/amphorae").json()["amphorae"]} \
            == {"ERROR"}
        assert not agent_rows()["agent-1"]["alive"] and not any(served(lb) for lb in vips)

        # agent-1 comes back (restarting the HAProxy processes of its state directory, which
        # it is told to delete): the load balancers are rebuilt on it from the database
        back = time.monotonic()
        one.start(one.root.parent / "ca")
        _wait_for("ACTIVE again", lambda: settled("ACTIVE"), 60)
        _wait_for("served again on agent-1", all_served)
        served_after_restart = time.monotonic() - back
        assert hosts() == {"agent-1"}

        # agent-1 dies again; agent-2 is enabled: rebuilt on agent-2
        one.die()
        _wait_for("ERROR again", lambda: settled("ERROR"))
        assert not any(served(lb) for lb in vips)
        enabled = time.monotonic()
        r = admin.put(f"/v2.0/agents/{rows['agent-2']['id']}",
                      json={"agent": {"admin_state_up": True}})
        assert r.status_code == 200, r.text
        _wait_for("served on agent-2", all_served)
        served_after_enable = time.monotonic() - enabled
        _wait_for("ACTIVE on agent-2", lambda: settled("ACTIVE"))
        assert hosts() == {"agent-2"}
        _wait_for("ONLINE", lambda: settled("ONLINE", "operating_status"))
        assert {a["status"] for a in admin.get("/v2/octavia/amphorae").json()["amphorae"]} \
            == {"ALLOCATED"}
        print(f"\nagent_enabled_to_served {served_after_enable:.2f} s (2 load balancers, "
              f"heartbeat_interval 0.5 s)"
              f"\ndead_agent_restarted_to_served {served_after_restart:.2f} s")
    finally:
        admin.close()
        client.close()
