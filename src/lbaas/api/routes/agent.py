"""Agents: /v2.0/agents, after Neutron's networking API v2.0 ("Agents"), admin only.

One row per data-plane host's agent (:mod:`lbaas.worker.agents` records
them from heartbeats): list and show them with their host, availability
zone, liveness and last heartbeat; ``PUT`` ``admin_state_up`` false
disables one (no new load balancer is placed on it; what it hosts stays
until it is declared dead or the load balancer fails over), ``description``
names it; ``DELETE`` removes the record of an agent that hosts nothing (409
otherwise; one that is still running registers again at its next heartbeat,
as in Neutron). ``GET /v2.0/agents/{id}/agent-loadbalancers`` lists the load
balancers it hosts (neutron-lbaas's path).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.schemas import agent as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.db.models import utcnow

router = APIRouter(tags=["Agents"])
RESOURCE = "agent"
COLUMNS = columns_of(m.Agent)


def _instances(db: Session, agent_ids: list[str]) -> dict[str, int]:
    """Load balancers hosted per agent id."""
    return {str(agent_id): int(n) for agent_id, n in db.execute(
        select(m.Amphora.agent_id, func.count(func.distinct(m.Amphora.load_balancer_id)))
        .where(m.Amphora.agent_id.in_(agent_ids)).group_by(m.Amphora.agent_id))}


def _dumper(db: Session, state: deps.ApiState) -> Any:
    cutoff = utcnow() - timedelta(seconds=state.settings.agents.heartbeat_timeout)
    counts: dict[str, int] | None = None

    def dump(agent: m.Agent) -> dict[str, Any]:
        nonlocal counts
        if counts is None:  # one query for the whole page
            counts = _instances(db, [a.id for a in db.scalars(select(m.Agent))])
        alive = agent.alive and agent.heartbeat_timestamp is not None and \
            agent.heartbeat_timestamp >= cutoff
        configurations = {**(agent.configurations or {}), "instances": counts.get(agent.id, 0)}
        return s.AgentResponse.dump(agent, alive=alive, topic=None, resources_synced=None,
                                    configurations=configurations)
    return dump


@router.get("/agents", response_model=s.AgentPage)
def list_agents(ctx: Ctx, listing: Listing, db: Db, state: State) -> JSONResponse:
    """List agents (filter by ``host``, ``availability_zone``, ``admin_state_up``...)."""
    ctx.authorize(RESOURCE, "get_all")
    return listing.respond("agents", select(m.Agent), m.Agent, COLUMNS, _dumper(db, state))


@router.get("/agents/{agent_id}", response_model=s.AgentRoot)
def show_agent(agent_id: str, fields: Fields, ctx: Ctx, db: Db, state: State) -> JSONResponse:
    """Show one agent."""
    ctx.authorize(RESOURCE, "get_one")
    agent = deps.get_or_404(db, m.Agent, agent_id, shown_as="Agent")
    return deps.respond("agent", _dumper(db, state)(agent), fields=fields)


@router.put("/agents/{agent_id}", response_model=s.AgentRoot)
def update_agent(agent_id: str, body: s.AgentUpdateRoot, ctx: Ctx, db: Db,
                 state: State) -> JSONResponse:
    """Enable or disable an agent (``admin_state_up``), or describe it."""
    ctx.authorize(RESOURCE, "put")
    agent = deps.get_or_404(db, m.Agent, agent_id, shown_as="Agent")
    changes: dict[str, Any] = body.agent.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("admin_state_up",))
    deps.apply_changes(agent, changes, keep_on_null=())
    db.commit()
    return deps.respond("agent", _dumper(db, state)(agent))


@router.delete("/agents/{agent_id}", status_code=204, response_class=Response)
def delete_agent(agent_id: str, ctx: Ctx, db: Db) -> Response:
    """Forget an agent that hosts no load balancer (409 otherwise)."""
    ctx.authorize(RESOURCE, "delete")
    agent = deps.get_or_404(db, m.Agent, agent_id, shown_as="Agent")
    in_use = exc.Conflict(detail=f"Agent {agent.id} hosts load balancers; disable it and "
                                 f"fail them over first.")
    return deps.delete_unused(db, agent, deps.used_by(db, m.Amphora.agent_id, agent.id), in_use)


@router.get("/agents/{agent_id}/agent-loadbalancers", response_model=s.AgentLoadBalancerPage)
def agent_load_balancers(agent_id: str, ctx: Ctx, db: Db) -> JSONResponse:
    """The load balancers the agent hosts."""
    ctx.authorize(RESOURCE, "get_one")
    deps.get_or_404(db, m.Agent, agent_id, shown_as="Agent")
    lbs = db.scalars(select(m.LoadBalancer).where(m.LoadBalancer.id.in_(
        select(m.Amphora.load_balancer_id).where(m.Amphora.agent_id == agent_id)))
        .order_by(m.LoadBalancer.created_at, m.LoadBalancer.id))
    return JSONResponse({"loadbalancers": [s.AgentLoadBalancer.dump(lb) for lb in lbs],
                         "loadbalancers_links": []})
