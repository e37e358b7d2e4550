"""Agents: /v2.0/agents, in the shape of Neutron's agent API (admin only).

Agents register by heartbeat (:class:`lbaas.worker.agents.AgentRegistry`);
here the registry of the test service records them, as its poller would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from lbaas.agent.heartbeat import Heartbeat
from lbaas.common import constants as c
from lbaas.db import models as m
from lbaas.db.models import utcnow
from lbaas.worker.scheduler import put_on
from tests.api.base import GHOST, Api

PATH = "/v2.0/agents"
FIELDS = {"id", "agent_type", "binary", "host", "topic", "availability_zone", "admin_state_up",
          "alive", "description", "configurations", "resources_synced", "created_at",
          "started_at", "heartbeat_timestamp"}


def register(api: Api, host: str, zone: str = "az1") -> str:
    return api.service.registry.heartbeat(
        Heartbeat(host=host, binary=c.AGENT_BINARY, availability_zone=zone, port=9443,
                  started_at="2026-12-01T10:00:00+00:00",
                  configurations={"placement": "local"}),
        endpoint=f"https://{host}.example:9443").agent_id


def agents(api: Api, **params: Any) -> list[dict[str, Any]]:
    return list(api.get(PATH, params=params, status=200).json()["agents"])


def test_list_show_and_the_load_balancers_each_hosts(api: Api) -> None:
    one, two = register(api, "host-1"), register(api, "host-2", zone="az2")
    lb = api.create_lb(provider="haproxy", name="web")
    with api.service.sessions() as session, session.begin():
        amphora = session.scalars(select(m.Amphora).where(
            m.Amphora.load_balancer_id == lb["id"])).one()
        put_on(amphora, session.get(m.Agent, one))  # type: ignore[arg-type]
    listed = {a["host"]: a for a in agents(api)}
    assert set(listed) == {"host-1", "host-2"}
    first = listed["host-1"]
    assert set(first) == FIELDS
    assert (first["id"], first["agent_type"], first["binary"], first["availability_zone"],
            first["admin_state_up"], first["alive"]) == (
        one, "Loadbalancer agent", "lbaas-agent", "az1", True, True)
    assert first["configurations"] == {"placement": "local", "instances": 1}
    assert listed["host-2"]["configurations"]["instances"] == 0
    assert first["started_at"] == "2026-12-01 10:00:00"  # Neutron's time format
    assert len(first["heartbeat_timestamp"]) == 19
    assert api.get(f"{PATH}/{one}", status=200).json()["agent"] == first
    assert [a["host"] for a in agents(api, availability_zone="az2")] == ["host-2"]
    hosted = api.get(f"{PATH}/{one}/agent-loadbalancers", status=200).json()["loadbalancers"]
    assert [(h["id"], h["name"], h["provisioning_status"]) for h in hosted] == [
        (lb["id"], "web", "ACTIVE")]
    assert api.get(f"{PATH}/{two}/agent-loadbalancers", status=200).json()[
        "loadbalancers"] == []
    # Neutron lists its resources at /v2.0/
    assert "agents" in {r["collection"] for r in
                        api.get("/v2.0/", status=200).json()["resources"]}


def test_alive_turns_false_when_silent_or_declared_dead(api: Api) -> None:
    agent_id = register(api, "host-1")
    with api.service.sessions() as session, session.begin():
        agent = session.get(m.Agent, agent_id)
        assert agent is not None
        agent.heartbeat_timestamp = utcnow() - timedelta(seconds=3600)
    assert api.get(f"{PATH}/{agent_id}", status=200).json()["agent"]["alive"] is False


def test_disable_enable_and_describe(api: Api) -> None:
    agent_id = register(api, "host-1")
    r = api.put(f"{PATH}/{agent_id}", {"agent": {"admin_state_up": False,
                                                  "description": "maintenance"}}, status=200)
    assert (r.json()["agent"]["admin_state_up"], r.json()["agent"]["description"]) == (
        False, "maintenance")
    # a disabled agent takes no new load balancer
    lb = api.create_lb(provider="haproxy")
    with api.service.sessions() as session:
        from lbaas.worker.scheduler import usable_agents

        assert [a.host for a in usable_agents(session, 20.0)] == []
        del lb
    api.put(f"{PATH}/{agent_id}", {"agent": {"admin_state_up": True}}, status=200)
    assert agents(api)[0]["admin_state_up"] is True
    api.put(f"{PATH}/{agent_id}", {"agent": {"admin_state_up": None}}, status=400)
    api.put(f"{PATH}/{agent_id}", {"agent": {"host": "other"}}, status=400)


def test_delete_only_an_agent_that_hosts_nothing(api: Api) -> None:
    busy, idle = register(api, "host-1"), register(api, "host-2")
    lb = api.create_lb(provider="haproxy")
    with api.service.sessions() as session, session.begin():
        amphora = session.scalars(select(m.Amphora).where(
            m.Amphora.load_balancer_id == lb["id"])).one()
        put_on(amphora, session.get(m.Agent, busy))  # type: ignore[arg-type]
    api.delete(f"{PATH}/{busy}", status=409)
    api.delete(f"{PATH}/{idle}", status=204)
    assert [a["host"] for a in agents(api)] == ["host-1"]


def test_unknown_agent_is_404(api: Api) -> None:
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""),
                           ("GET", "/agent-loadbalancers")):
        r = api.request(method, f"{PATH}/{GHOST}{suffix}", status=404,
                        json={"agent": {}} if method == "PUT" else None)
        assert api.fault(r) == f"Agent {GHOST} not found."


@pytest.mark.parametrize("roles", ["load-balancer_member", "member", "reader",
                                   "load-balancer_global_observer"])
def test_admin_only(api: Api, roles: str) -> None:
    agent_id = register(api, "host-1")
    api.get(PATH, project="p1", roles=roles, status=403)
    for method, suffix in (("GET", ""), ("PUT", ""), ("DELETE", ""),
                           ("GET", "/agent-loadbalancers")):
        api.request(method, f"{PATH}/{agent_id}{suffix}", project="p1", roles=roles,
                    status=403, json={"agent": {}} if method == "PUT" else None)
    api.get(PATH, project="p9", roles="admin", status=200)
