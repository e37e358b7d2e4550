"""Agent shapes, after Neutron's networking API v2.0 ("Agents"), admin only.

``{"agent": {...}}`` with Neutron's fields; ``agent_type`` is "Loadbalancer
agent", ``binary`` ``lbaas-agent`` (``lbaas agent serve``) or ``lbaas-serve``
(the agent inside a standalone ``lbaas serve``). ``configurations`` is what
the agent reports of itself plus ``instances``, the number of load balancers
it hosts (as neutron-lbaas's agent reported it). Timestamps are Neutron's
``2017-09-12 19:39:56`` (UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import PlainSerializer

from lbaas.api.schemas.common import (
    Description,
    RequestModel,
    ResponseModel,
    envelope,
    page_envelope,
)


def _agent_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


AgentTimestamp = Annotated[datetime | None, PlainSerializer(_agent_time, return_type=str | None)]


class AgentUpdate(RequestModel):
    """PUT /v2.0/agents/{id} (admin): ``admin_state_up`` False stops new placements on
    the agent (what it hosts stays); ``description``."""

    admin_state_up: bool | None = None
    description: Description | None = None


class AgentUpdateRoot(RequestModel):
    """``{"agent": {...}}`` of a PUT."""

    agent: AgentUpdate


class AgentResponse(ResponseModel):
    """An agent as Neutron shows one. ``alive``: not declared dead and heard from within
    ``[health_manager] heartbeat_timeout`` seconds."""

    id: str
    agent_type: str
    binary: str
    host: str
    topic: str | None = None
    availability_zone: str | None
    admin_state_up: bool
    alive: bool
    description: str | None
    configurations: dict[str, Any]
    resources_synced: bool | None = None
    created_at: AgentTimestamp
    started_at: AgentTimestamp
    heartbeat_timestamp: AgentTimestamp


class AgentLoadBalancer(ResponseModel):
    """A load balancer an agent hosts (GET /v2.0/agents/{id}/agent-loadbalancers)."""

    id: str
    name: str | None
    project_id: str | None
    vip_address: str | None
    provisioning_status: str
    operating_status: str
    provider: str


AgentRoot = envelope("agent", AgentResponse)
AgentPage = page_envelope("agents", AgentResponse)
AgentLoadBalancerPage = page_envelope("loadbalancers", AgentLoadBalancer)
