"""Placement of amphorae on agents: zone, enabled and alive, fewest first, anti-affinity."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from lbaas.common import constants as c
from lbaas.db import models as m
from lbaas.db.models import utcnow
from lbaas.worker import graph
from lbaas.worker.scheduler import NoAgentAvailable, Scheduler

SCHEDULER = Scheduler(heartbeat_timeout=10)


def add_agent(session: Session, host: str, zone: str | None = None, enabled: bool = True,
              alive: bool = True, silent_for: float = 0.0) -> m.Agent:
    """An agent last heard from ``silent_for`` seconds ago."""
    agent = m.Agent(id=m.new_id(), host=host, availability_zone=zone, admin_state_up=enabled,
                    alive=alive, endpoint=f"https://{host}:9443",
                    heartbeat_timestamp=utcnow() - timedelta(seconds=silent_for))
    session.add(agent)
    session.flush()
    return agent


def add_lb(session: Session, topology: str = c.TOPOLOGY_SINGLE,
           zone: str | None = None) -> m.LoadBalancer:
    lb = m.LoadBalancer(id=m.new_id(), project_id="p", topology=topology,
                        availability_zone=zone, provisioning_status=c.PENDING_CREATE)
    session.add(lb)
    session.flush()
    return lb


def add_zone(session: Session, name: str, profile_data: dict[str, str]) -> None:
    profile = m.AvailabilityZoneProfile(id=m.new_id(), name=f"{name}-profile",
                                        provider_name="haproxy",
                                        availability_zone_data=json.dumps(profile_data))
    session.add_all([profile, m.AvailabilityZone(name=name,
                                                 availability_zone_profile_id=profile.id)])
    session.flush()


def hosts(amphorae: list[m.Amphora], session: Session) -> list[str]:
    return [session.get(m.Agent, a.agent_id).host for a in amphorae]  # type: ignore[union-attr]


def test_fewest_load_balancers_first_then_host_name(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        for host in ("c", "a", "b"):
            add_agent(session, host)
        placed = [hosts(SCHEDULER.place(session, add_lb(session)), session)[0]
                  for _ in range(7)]
    assert placed == ["a", "b", "c", "a", "b", "c", "a"]


def test_only_enabled_agents_heard_from_recently_take_new_amphorae(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        add_agent(session, "disabled", enabled=False)
        add_agent(session, "declared-dead", alive=False)
        add_agent(session, "silent", silent_for=11)
        add_agent(session, "ok", silent_for=5)
        assert {hosts(SCHEDULER.place(session, add_lb(session)), session)[0]
                for _ in range(3)} == {"ok"}


def test_zone_from_the_profiles_compute_zone_or_the_zones_name(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        add_agent(session, "a1", zone="rack-a")
        add_agent(session, "b1", zone="rack-b")
        add_agent(session, "none")
        add_zone(session, "gold", {"compute_zone": "rack-b"})
        add_zone(session, "rack-a", {})
        assert hosts(SCHEDULER.place(session, add_lb(session, zone="gold")), session) == ["b1"]
        assert hosts(SCHEDULER.place(session, add_lb(session, zone="rack-a")), session) == ["a1"]
        # Without a zone: any agent, fewest first (a1 and b1 have one each).
        assert hosts(SCHEDULER.place(session, add_lb(session)), session) == ["none"]
        add_zone(session, "empty", {"compute_zone": "rack-z"})
        with pytest.raises(NoAgentAvailable, match="no enabled and alive agent in "
                                                   "availability zone 'rack-z'"):
            SCHEDULER.place(session, add_lb(session, zone="empty"))


def test_active_standby_amphorae_go_to_two_agents(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        add_agent(session, "a")
        add_agent(session, "b")
        add_agent(session, "c")
        for _ in range(6):
            amphorae = SCHEDULER.place(session, add_lb(session, c.TOPOLOGY_ACTIVE_STANDBY))
            assert [a.role for a in amphorae] == [c.AMPHORA_ROLE_MASTER, c.AMPHORA_ROLE_BACKUP]
            assert len(set(hosts(amphorae, session))) == 2
        load = {a.host: len(a.amphorae) for a in session.query(m.Agent)}
        assert load == {"a": 4, "b": 4, "c": 4}


def test_active_standby_needs_two_agents(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        add_agent(session, "only", zone="z")
        add_zone(session, "z", {})
        with pytest.raises(NoAgentAvailable, match="ACTIVE_STANDBY needs its amphorae on 2 "
                                                   "different agents; 1 enabled and alive in "
                                                   "availability zone 'z'"):
            SCHEDULER.place(session, add_lb(session, c.TOPOLOGY_ACTIVE_STANDBY, zone="z"))


def test_placement_is_sticky_until_the_agent_is_declared_dead(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        a = add_agent(session, "a")
        lb = add_lb(session)
        [amphora] = SCHEDULER.place(session, lb)
        add_agent(session, "b")
        a.admin_state_up = False  # disabled: keeps what it has
        a.heartbeat_timestamp = utcnow() - timedelta(seconds=60)  # late, not yet declared
        assert SCHEDULER.place(session, lb) == [amphora]
        assert hosts([amphora], session) == ["a"]
        a.alive = False
        amphora.agent_id = None  # what declaring it dead does
        assert hosts(SCHEDULER.place(session, lb), session) == ["b"]
        assert [x.id for x in lb.amphorae] == [amphora.id]


def test_the_in_process_agent_hosts_everything(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        local = m.Agent(id=m.new_id(), host="here", binary=c.AGENT_BINARY_IN_PROCESS)
        session.add(local)
        add_agent(session, "elsewhere")
        scheduler = Scheduler(local_agent_id=local.id)
        amphorae = scheduler.place(session, add_lb(session, c.TOPOLOGY_ACTIVE_STANDBY))
        assert [a.agent_id for a in amphorae] == [local.id, local.id]


def test_only_agent_providers_are_placed() -> None:
    assert SCHEDULER.applies_to("haproxy") and SCHEDULER.applies_to("amphora")
    assert not SCHEDULER.applies_to("noop")


def test_the_spec_of_a_graph_placed_now_names_each_amphora_s_host(
        sessions: sessionmaker[Session]) -> None:
    """The worker loads the graph (each amphora with its agent: none yet), places it, then
    builds the spec (before: the agents' hosts were None, and the two agents of an
    ACTIVE_STANDBY pair could not tell their amphorae apart)."""
    with sessions() as session, session.begin():
        add_agent(session, "a")
        add_agent(session, "b")
        lb = add_lb(session, c.TOPOLOGY_ACTIVE_STANDBY)
        lb.amphorae.extend(m.Amphora(id=m.new_id(), role=role, vrrp_priority=priority)
                           for role, priority in c.AMPHORA_ROLE_PRIORITY.items())
        lb_id = lb.id
    with sessions() as session, session.begin():
        lb = graph.load_graph(session, lb_id)
        assert lb is not None and [a.agent for a in lb.amphorae] == [None, None]
        spec = graph.build_spec(lb, None, SCHEDULER.place(session, lb))
        assert sorted(a.host or "" for a in spec.amphorae) == ["a", "b"]
