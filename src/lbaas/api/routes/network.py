"""Networks: /v2.0/networks, after Neutron's networking API v2.0 ("Networks").

Admins create, change and delete networks; every caller with read access
lists and shows the networks of its project and the shared ones (others'
are 404, as in Neutron). The default network that lbaas creates on first
start (``lb-vip-network``: shared, no project) is one of them, and like any
other it can be deleted only while no VIP is on it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
from lbaas.api.schemas import network as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Networks"])
RESOURCE = "network"
COLUMNS = columns_of(m.Network, aliases={"tenant_id": m.Network.project_id})


def network_visible(ctx: RequestContext, network: m.Network) -> bool:
    """True if ``ctx`` may see ``network``: shared, its project's, or an admin's view."""
    return network.shared or ctx.can_see(network.project_id)


def get_network(db: Session, ctx: RequestContext, network_id: str) -> m.Network:
    """The network ``network_id`` if the caller may see it, else NotFound (404)."""
    network = db.get(m.Network, network_id)
    if network is None or not network_visible(ctx, network):
        raise exc.NotFound(resource="Network", id=network_id)
    return network


@router.get("/networks", response_model=s.NetworkPage)
def list_networks(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List the networks the caller may see (its project's and the shared ones)."""
    ctx.authorize(RESOURCE, "get_all")
    stmt = select(m.Network).options(selectinload(m.Network.subnets))
    if not ctx.sees_all_projects:
        stmt = stmt.where(or_(m.Network.shared.is_(True),
                              m.Network.project_id == ctx.project_id))
    return listing.respond("networks", stmt, m.Network, COLUMNS, s.NetworkResponse.dump)


@router.post("/networks", status_code=201, response_model=s.NetworkRoot)
def create_network(body: s.NetworkCreateRoot, ctx: Ctx, db: Db) -> JSONResponse:
    """Create a network (admin), in the caller's project unless another is named."""
    ctx.authorize(RESOURCE, "post")
    data = body.network
    network = m.Network(id=m.new_id(),
                        project_id=deps.resolve_project(ctx, data.project_id or data.tenant_id),
                        name=data.name, description=data.description,
                        admin_state_up=data.admin_state_up, shared=data.shared)
    db.add(network)
    db.commit()
    return deps.respond("network", s.NetworkResponse.dump(network), 201)


@router.get("/networks/{network_id}", response_model=s.NetworkRoot)
def show_network(network_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one network."""
    network = get_network(db, ctx, network_id)
    ctx.authorize(RESOURCE, "get_one")
    return deps.respond("network", s.NetworkResponse.dump(network), fields=fields)


@router.put("/networks/{network_id}", response_model=s.NetworkRoot)
def update_network(network_id: str, body: s.NetworkUpdateRoot, ctx: Ctx,
                   db: Db) -> JSONResponse:
    """Change name, description, admin_state_up or shared (admin).

    Unsharing a network on which other projects have VIPs is a 409, in
    Neutron's words.
    """
    network = get_network(db, ctx, network_id)
    ctx.authorize(RESOURCE, "put")
    changes: dict[str, Any] = body.network.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("admin_state_up", "shared"))
    if changes.get("shared") is False and network.shared and _other_projects_on(db, network):
        raise exc.Conflict(detail=f"Unable to reconfigure sharing settings for network "
                                  f"{network.id}. Multiple tenants are using it.")
    deps.apply_changes(network, changes, keep_on_null=())
    db.commit()
    return deps.respond("network", s.NetworkResponse.dump(network))


def _other_projects_on(db: Session, network: m.Network) -> bool:
    """True if a load balancer of another project has a VIP on ``network``."""
    owners = db.scalars(
        select(m.LoadBalancer.project_id).distinct()
        .join(m.Port, m.Port.device_id == m.LoadBalancer.id)
        .where(m.Port.network_id == network.id))
    return any(owner != network.project_id for owner in owners)


@router.delete("/networks/{network_id}", status_code=204, response_class=Response)
def delete_network(network_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete a network and its subnets (admin); a 409 while VIPs are on it."""
    network = get_network(db, ctx, network_id)
    ctx.authorize(RESOURCE, "delete")
    # Neutron's NetworkInUse.
    in_use = exc.Conflict(detail=f"Unable to complete operation on network {network.id}. "
                                 "There are one or more ports still in use on the network.")
    return deps.delete_unused(db, network, deps.used_by(db, m.Port.network_id, network.id),
                              in_use)
