"""Placement: which agent runs each amphora of a load balancer.

The worker calls :meth:`Scheduler.place` before it applies a change (not
before a delete), in a transaction of its own; the spec it then builds
names each amphora's agent, and the haproxy provider sends the spec to
those agents only.

A load balancer has one amphora per role of its topology
(:data:`~lbaas.common.constants.TOPOLOGY_ROLES`: STANDALONE, or MASTER
and BACKUP). An amphora keeps its agent while that agent is not declared
dead (placement is sticky: disabling an agent stops new placements only);
one without an agent (new, or its agent was declared dead) is placed on:

- an agent that is enabled (``admin_state_up``) and alive (not declared
  dead, and heard from within ``heartbeat_timeout`` seconds);
- in the load balancer's availability zone: agents whose
  ``availability_zone`` is the zone profile's ``compute_zone`` (Octavia's
  amphora key for "the compute availability zone": here the agents are
  the compute), or the zone's own name when the profile has none; a load
  balancer without a zone may go to any agent;
- not already hosting another amphora of the same load balancer (the two
  amphorae of an ACTIVE_STANDBY load balancer on two hosts);
- with the fewest amphorae first (neutron-lbaas's least-loaded
  scheduler), the host name breaking ties.

Two workers placing at the same moment may pick the same agent: the
balance is approximate, never wrong.

The standalone ``lbaas serve`` has one agent, inside its own process: a
:class:`Scheduler` given ``local_agent_id`` puts every amphora there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas.common import constants as c
from lbaas.common.exceptions import DriverError
from lbaas.db import models as m
from lbaas.db.models import utcnow
from lbaas.worker import amphorae

ZONE_KEY = "compute_zone"  # the availability zone profile key naming the agents' zone


class NoAgentAvailable(DriverError):
    """No agent can take an amphora; ``reason`` says which zone and why."""


@dataclass(frozen=True)
class Scheduler:
    """Places amphorae on agents (see the module docstring).

    ``heartbeat_timeout`` (seconds) is how recent an agent's last heartbeat
    must be for it to take new amphorae; ``local_agent_id`` is the
    in-process agent of a standalone service, which then hosts everything.
    ``providers`` are the providers whose load balancers run on agents.
    """

    heartbeat_timeout: float = 20.0
    local_agent_id: str | None = None
    providers: frozenset[str] = frozenset({c.PROVIDER_HAPROXY})

    def applies_to(self, provider: str) -> bool:
        """True if load balancers of ``provider`` (aliases resolved) run on agents."""
        return c.PROVIDER_ALIASES.get(provider, provider) in self.providers

    def place(self, session: Session, lb: m.LoadBalancer) -> list[m.Amphora]:
        """Give ``lb`` one amphora per role of its topology, each on an agent.

        Creates missing amphorae, places unplaced ones, removes those of
        roles the topology does not have; the caller commits. Returns the
        amphorae by role. Raises :class:`NoAgentAvailable` (nothing is
        changed then, once the caller rolls back).
        """
        roles = c.TOPOLOGY_ROLES.get(lb.topology, (c.AMPHORA_ROLE_STANDALONE,))
        by_role = {_built_as(a): a for a in lb.amphorae}
        for role, amphora in list(by_role.items()):
            if role not in roles:
                lb.amphorae.remove(amphora)
                del by_role[role]
        for role in roles:
            if role not in by_role:
                by_role[role] = m.Amphora(id=m.new_id(), role=role,
                                          status=c.AMPHORA_PENDING_CREATE,
                                          ha_ip=lb.vip_address, ha_port_id=lb.vip_port_id)
                lb.amphorae.append(by_role[role])
        amphorae = [by_role[role] for role in roles]
        for amphora in amphorae:
            if amphora.agent_id is not None and self._keeps(session, amphora.agent_id):
                continue
            agent = self._choose(session, lb, exclude={a.agent_id for a in amphorae
                                                       if a is not amphora and a.agent_id})
            put_on(amphora, agent)
        session.flush()
        return amphorae

    def _keeps(self, session: Session, agent_id: str) -> bool:
        if self.local_agent_id is not None:
            return agent_id == self.local_agent_id
        agent = session.get(m.Agent, agent_id)
        return agent is not None and agent.alive

    def _choose(self, session: Session, lb: m.LoadBalancer, exclude: set[str]) -> m.Agent:
        if self.local_agent_id is not None:
            agent = session.get(m.Agent, self.local_agent_id)
            if agent is None:
                raise NoAgentAvailable("the in-process agent is not registered")
            return agent
        zone = agent_zone(session, lb.availability_zone)
        candidates = usable_agents(session, self.heartbeat_timeout, zone)
        free = [a for a in candidates if a.id not in exclude]
        if not free:
            where = f"availability zone {zone!r}" if zone is not None else "any zone"
            if candidates:
                raise NoAgentAvailable(
                    f"{lb.topology} needs its amphorae on {len(exclude) + 1} different agents; "
                    f"{len(candidates)} enabled and alive in {where}")
            raise NoAgentAvailable(f"no enabled and alive agent in {where}")
        load = dict(session.execute(
            select(m.Amphora.agent_id, func.count()).where(
                m.Amphora.agent_id.in_([a.id for a in free])).group_by(m.Amphora.agent_id)).all())
        return min(free, key=lambda a: (load.get(a.id, 0), a.host))


def _built_as(amphora: m.Amphora) -> str:
    """The role ``amphora`` holds in its topology: STANDALONE, or for ACTIVE_STANDBY the
    one it was built for (its ``role`` column is what keepalived last reported, and may
    say BACKUP for both for a moment)."""
    if amphora.role == c.AMPHORA_ROLE_STANDALONE:
        return amphora.role
    return amphorae.built_as(amphora)


def put_on(amphora: m.Amphora, agent: m.Agent) -> None:
    """Place ``amphora`` on ``agent``: its agent, zone, compute id (the host, and the
    load balancer's namespace in namespace placement) and management address."""
    # the relationship too: graph.load_graph loads it with the amphora (None before the
    # first placement), and the spec reads the agent's host from it
    amphora.agent, amphora.agent_id = agent, agent.id
    amphora.cached_zone = agent.availability_zone
    amphora.compute_id = agent.host
    if (agent.configurations or {}).get("placement") == "namespace":
        amphora.compute_id += f":{c.AMPHORA_NAMESPACE_PREFIX}{amphora.id}" \
            if amphora.role != c.AMPHORA_ROLE_STANDALONE \
            else f":{c.NAMESPACE_PREFIX}{amphora.load_balancer_id}"
    amphora.lb_network_ip = urlsplit(agent.endpoint).hostname if agent.endpoint else None


def agent_zone(session: Session, zone_name: str | None) -> str | None:
    """The agents' availability zone serving load balancers of zone ``zone_name``.

    The zone profile's ``compute_zone``, else the zone's name; None for no zone.
    """
    if zone_name is None:
        return None
    zone = session.get(m.AvailabilityZone, zone_name)
    if zone is None:
        return zone_name
    try:
        data = json.loads(zone.availability_zone_profile.availability_zone_data or "{}")
    except ValueError:
        data = {}
    value = data.get(ZONE_KEY) if isinstance(data, dict) else None
    return str(value) if value else zone_name


def usable_agents(session: Session, heartbeat_timeout: float,
                  zone: str | None = None) -> Sequence[m.Agent]:
    """Agents that may take new amphorae: enabled, alive, heard from within
    ``heartbeat_timeout`` seconds, in ``zone`` (None: any), by host name."""
    stmt = select(m.Agent).where(
        m.Agent.admin_state_up.is_(True), m.Agent.alive.is_(True),
        m.Agent.heartbeat_timestamp >= utcnow() - timedelta(seconds=heartbeat_timeout))
    if zone is not None:
        stmt = stmt.where(m.Agent.availability_zone == zone)
    return session.scalars(stmt.order_by(m.Agent.host)).all()
