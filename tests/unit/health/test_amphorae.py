"""The health manager and ACTIVE_STANDBY amphorae: roles as keepalived reports them,
DEGRADED while one is down, and a broken one failed over (real database, canned stats)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas.config import HealthSettings
from lbaas.dataplane.runtime import AmphoraHealth, LoadBalancerStats, StatRow
from lbaas.health.manager import HealthManager
from lbaas.service import Service
from tests.conftest import fresh_database, make_settings
from tests.unit.health.test_manager import Canned

API = "/v2/lbaas"


@dataclass
class Pair:
    service: Service
    client: TestClient
    driver: Canned
    lb: str
    listener: str

    def amphorae(self) -> list[dict[str, Any]]:
        found = self.client.get("/v2/octavia/amphorae",
                                params={"loadbalancer_id": self.lb}).json()["amphorae"]
        return sorted(found, key=lambda a: -a["vrrp_priority"])

    def lb_status(self) -> tuple[str, str]:
        lb = self.client.get(f"{API}/loadbalancers/{self.lb}").json()["loadbalancer"]
        return lb["provisioning_status"], lb["operating_status"]

    def answer(self, *amphorae: AmphoraHealth) -> None:
        self.driver.answer = LoadBalancerStats(
            lb_id=self.lb, running=True, worker="100@1", amphorae=amphorae, rows=(
                StatRow(proxy=self.listener, name="FRONTEND", type="frontend", status="OPEN"),))


@pytest.fixture
def pair(tmp_path: Path, sqlite_template: Path) -> Iterator[Pair]:
    fresh_database(tmp_path, "", sqlite_template)
    driver = Canned()
    service = Service(make_settings(tmp_path, health=HealthSettings(interval=0),
                                    loadbalancer_topology="ACTIVE_STANDBY"),
                      drivers={"noop": driver, "haproxy": driver})
    service.start()
    with TestClient(service.app) as client:
        net = client.post("/v2.0/networks", json={"network": {"name": "n"}}).json()["network"]
        sub = client.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "198.18.121.0/24"}}).json()["subnet"]
        r = client.post(f"{API}/loadbalancers", json={"loadbalancer": {
            "vip_subnet_id": sub["id"], "provider": "haproxy",
            "listeners": [{"protocol": "HTTP", "protocol_port": 80}]}})
        assert r.status_code == 201, r.text
        assert service.reconciler.wait_idle()
        lb = r.json()["loadbalancer"]
        yield Pair(service, client, driver, lb["id"], lb["listeners"][0]["id"])
    service.stop()


def test_roles_follow_keepalived_and_one_amphora_down_is_degraded(pair: Pair) -> None:
    hm = HealthManager(pair.service.sessions, {"haproxy": pair.driver})
    master, backup = pair.amphorae()
    assert (master["role"], backup["role"]) == ("MASTER", "BACKUP")
    pair.answer(AmphoraHealth(master["id"], True, "MASTER"),
                AmphoraHealth(backup["id"], True, "BACKUP"))
    hm.poll_once()
    assert pair.lb_status() == ("ACTIVE", "ONLINE")
    # The master died; the other took the VIP: roles as keepalived says, DEGRADED.
    pair.answer(AmphoraHealth(master["id"], False, None),
                AmphoraHealth(backup["id"], True, "MASTER"))
    hm.poll_once()
    assert [a["role"] for a in pair.amphorae()] == ["MASTER", "MASTER"]
    assert pair.lb_status() == ("ACTIVE", "DEGRADED")
    # Back, as BACKUP (nopreempt): ONLINE.
    pair.answer(AmphoraHealth(master["id"], True, "BACKUP"),
                AmphoraHealth(backup["id"], True, "MASTER"))
    hm.poll_once()
    assert [a["role"] for a in pair.amphorae()] == ["BACKUP", "MASTER"]
    assert pair.lb_status() == ("ACTIVE", "ONLINE")
    # FAULT or no report says nothing about the role.
    pair.answer(AmphoraHealth(master["id"], True, "FAULT"),
                AmphoraHealth(backup["id"], True, None))
    hm.poll_once()
    assert [a["role"] for a in pair.amphorae()] == ["BACKUP", "MASTER"]


def test_a_broken_amphora_is_failed_over_once(pair: Pair) -> None:
    asked: list[tuple[str, str]] = []

    def failover(lb_id: str, amphora_id: str) -> bool:
        asked.append((lb_id, amphora_id))
        return pair.service.reconciler.failover_amphora(lb_id, amphora_id)

    hm = HealthManager(pair.service.sessions, {"haproxy": pair.driver}, failover=failover)
    master, backup = pair.amphorae()
    broken = AmphoraHealth(master["id"], False, "FAULT",
                           error=f"its interface lbn-x in amphora-{master['id']} is gone")
    pair.answer(broken, AmphoraHealth(backup["id"], True, "MASTER"))
    hm.poll_once()
    assert pair.lb_status()[1] == "DEGRADED"
    hm.poll_once()  # still reported broken while the worker replaces it: asked once
    assert asked == [(pair.lb, master["id"])]
    assert pair.service.reconciler.wait_idle()
    new, same = pair.amphorae()
    assert same == backup | {"role": "MASTER", "updated_at": same["updated_at"]}
    assert new["id"] != master["id"] and new["vrrp_ip"] == master["vrrp_ip"]
    assert (new["status"], pair.lb_status()[0]) == ("ALLOCATED", "ACTIVE")
