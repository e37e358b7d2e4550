"""The service wires the haproxy provider to an in-process agent that outlives it.

Only load balancer routes are used here (listener/pool routes are tested by
the API suites); the data plane is checked through the agent.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from lbaas.agent.local import LocalAgent
from lbaas.config import AgentSettings, Settings
from lbaas.db import models as m
from lbaas.drivers.haproxy import HaproxyDriver
from lbaas.service import Service


def _settings(base_path: Path) -> Settings:
    return Settings(state_dir=base_path.parent / "state", default_provider="haproxy",
                    worker_poll_interval=0.05)


def _wait_status(client: TestClient, lb_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v2/lbaas/loadbalancers/{lb_id}")
        current = r.json()["loadbalancer"]["provisioning_status"] if r.status_code == 200 \
            else "DELETED"
        if current == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{lb_id} never reached {status}")


def test_haproxy_provider_end_to_end_and_the_data_plane_outlives_the_service(
        base_path: Path) -> None:
    service = Service(_settings(base_path))
    assert isinstance(service.drivers["haproxy"], HaproxyDriver)
    assert isinstance(service.agent, LocalAgent)
    service.start()
    try:
        with TestClient(service.app) as client:
            r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {"name": "web"}})
            assert r.status_code == 201, r.text
            lb_id = r.json()["loadbalancer"]["id"]
            _wait_status(client, lb_id, "ACTIVE")
        health = service.agent.health(lb_id)
        assert health.alive and health.master_pid
    finally:
        service.stop()
    assert service.agent.health(lb_id).alive  # stopping lbaas leaves HAProxy serving

    again = Service(_settings(base_path))
    again.start()  # adopts: same processes
    try:
        assert again.agent is not None
        adopted = again.agent.health(lb_id)
        assert (adopted.master_pid, adopted.worker_pids) == (health.master_pid,
                                                             health.worker_pids)
        with TestClient(again.app) as client:
            assert client.delete(f"/v2/lbaas/loadbalancers/{lb_id}").status_code == 204
            _wait_status(client, lb_id, "DELETED")
        assert not again.agent.health(lb_id).alive
        assert not (again.settings.haproxy_base_path / lb_id).exists()
    finally:
        again.stop()


def test_the_in_process_agent_hosts_every_amphora_and_deletes_what_the_database_forgot(
        base_path: Path) -> None:
    settings = _settings(base_path).replace(
        agents=AgentSettings(host="serve-1", heartbeat_interval=0.1))
    service = Service(settings)
    service.start()
    try:
        with TestClient(service.app) as client:
            ids = []
            for name in ("kept", "forgotten"):
                r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {"name": name}})
                assert r.status_code == 201, r.text
                ids.append(r.json()["loadbalancer"]["id"])
            for lb_id in ids:
                _wait_status(client, lb_id, "ACTIVE")
        kept, forgotten = ids
        with service.sessions() as session, session.begin():
            [agent] = session.scalars(select(m.Agent)).all()
            assert (agent.host, agent.binary, agent.endpoint, agent.alive) == (
                "serve-1", "lbaas-serve", None, True)
            for lb_id in ids:
                lb = session.get(m.LoadBalancer, lb_id)
                assert lb is not None
                assert [(a.role, a.agent_id) for a in lb.amphorae] == [("STANDALONE", agent.id)]
            # The database loses one (restored from a backup, say): its HAProxy must go.
            session.execute(delete(m.Port).where(m.Port.device_id == forgotten))
            session.execute(delete(m.LoadBalancer).where(m.LoadBalancer.id == forgotten))
        assert service.agent is not None
        # The agent stops the HAProxy, then removes its directory: wait for both.
        def gone() -> bool:
            assert service.agent is not None
            return not service.agent.health(forgotten).alive and \
                not (settings.haproxy_base_path / forgotten).exists()
        deadline = time.monotonic() + 10
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not service.agent.health(forgotten).alive
        assert not (settings.haproxy_base_path / forgotten).exists()
        assert service.agent.health(kept).alive
    finally:
        service.stop()
        if service.agent is not None:
            for lb_id in ids:
                service.agent.delete(lb_id)
