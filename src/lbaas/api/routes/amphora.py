"""Amphorae: /v2/octavia/amphorae (api-ref "Amphorae"), admin only.

An amphora is one HAProxy instance serving a load balancer of the haproxy
provider (``amphora`` is its Octavia name): one per SINGLE load balancer,
role STANDALONE; two per ACTIVE_STANDBY one, each with its own port on the
VIP's subnet (``vrrp_ip``, ``vrrp_port_id``), a VRRP priority (100 for the
one built as MASTER, 90 for the BACKUP, as Octavia) and ``vrrp_id`` 1, in a
namespace ``amphora-<id>`` (``compute_id`` ``<host>:amphora-<id>``); their
``role`` is MASTER or BACKUP as keepalived last reported it (the health
manager writes it). Load balancers of other providers (noop) have none, as
Octavia lists none for a provider without amphorae. Rows are made with their
load balancer (:func:`add_amphorae`); their ``status`` follows it
(:mod:`lbaas.worker.status`).

- ``PUT {id}/config`` re-applies the load balancer's configuration (the
  HAProxy config is rendered again from the database and reloaded), 202;
- ``PUT {id}/failover`` rebuilds it from scratch, as a load balancer
  failover, 202 (ACTIVE_STANDBY: that amphora only, replaced by a new one
  on its port while the other serves, as Octavia);
- ``GET {id}/stats``: the counters of each listener it serves.

Both PUTs lock the load balancer (409 while a change is in flight).
"""

from __future__ import annotations

import secrets
import socket

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
from lbaas.api.schemas import amphora as s
from lbaas.common import constants as c
from lbaas.db import models as m
from lbaas.worker import amphorae, status

router = APIRouter(tags=["Amphorae"])
RESOURCE = "amphora"
COLUMNS = columns_of(m.Amphora, aliases={"loadbalancer_id": m.Amphora.load_balancer_id})
STAT_KEYS = ("active_connections", "bytes_in", "bytes_out", "request_errors",
             "total_connections")


def add_amphorae(db: Db, ctx: RequestContext, state: ApiState, lb: m.LoadBalancer) -> None:
    """Give new load balancer ``lb`` its amphorae if its provider runs HAProxy for it.

    ACTIVE_STANDBY: two, each with a port on the VIP's subnet from the
    network driver, and the load balancer's VRRP group (a random
    ``vrrp_auth_pass``, ``advert_int`` from ``[keepalived_vrrp]``). Raises
    the network driver's errors (IPAddressExhausted 409...).
    """
    if deps.driver_name(lb.provider) != c.PROVIDER_HAPROXY:
        return
    if lb.topology != c.TOPOLOGY_ACTIVE_STANDBY:
        compute_id = socket.gethostname()
        if state.settings.haproxy.placement == "namespace":
            compute_id += f":{c.NAMESPACE_PREFIX}{lb.id}"
        lb.amphorae.append(m.Amphora(id=m.new_id(), role=c.AMPHORA_ROLE_STANDALONE,
                                     status=c.AMPHORA_PENDING_CREATE, compute_id=compute_id,
                                     ha_ip=lb.vip_address, ha_port_id=lb.vip_port_id))
        return
    who = deps.caller(ctx)
    for role in (c.AMPHORA_ROLE_MASTER, c.AMPHORA_ROLE_BACKUP):
        amphora_id = m.new_id()
        port = state.network.allocate_vip(db, who, amphora_id, subnet_id=lb.vip_subnet_id)
        lb.amphorae.append(amphorae.new_amphora(lb, amphora_id, role, port.ip_address, port.id))
    lb.vrrp_group = m.VrrpGroup(
        vrrp_group_name=lb.id.replace("-", ""), vrrp_auth_type="PASS",
        vrrp_auth_pass=secrets.token_hex(4),
        advert_int=state.settings.keepalived.vrrp_advert_int)


def _get(db: Db, amphora_id: str) -> m.Amphora:
    return deps.get_or_404(db, m.Amphora, amphora_id, shown_as="Amphora")


@router.get("/amphorae", response_model=s.AmphoraPage)
def list_amphorae(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List amphorae (filter by ``loadbalancer_id``, ``status``, ``role``...)."""
    ctx.authorize(RESOURCE, "get_all")
    return listing.respond("amphorae", select(m.Amphora), m.Amphora, COLUMNS,
                           s.AmphoraResponse.dump)


@router.get("/amphorae/{amphora_id}", response_model=s.AmphoraRoot)
def show_amphora(amphora_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one amphora."""
    ctx.authorize(RESOURCE, "get_one")
    return deps.respond("amphora", s.AmphoraResponse.dump(_get(db, amphora_id)), fields=fields)


@router.put("/amphorae/{amphora_id}/config", status_code=202, response_class=Response)
def configure_amphora(amphora_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Render and reload the amphora's configuration from the database (202)."""
    ctx.authorize(RESOURCE, "put_config")
    amphora = _get(db, amphora_id)
    status.begin_update_load_balancer(db, amphora.load_balancer)
    deps.commit(db, state)
    return Response(status_code=202)


@router.put("/amphorae/{amphora_id}/failover", status_code=202, response_class=Response)
def failover_amphora(amphora_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Rebuild the amphora from scratch, as a failover of its load balancer (202)."""
    ctx.authorize(RESOURCE, "put_failover")
    amphora = _get(db, amphora_id)
    status.begin_failover(db, amphora.load_balancer, amphora)
    deps.commit(db, state)
    return Response(status_code=202)


@router.get("/amphorae/{amphora_id}/stats", response_model=s.AmphoraStatsRoot)
def amphora_stats(amphora_id: str, ctx: Ctx, db: Db) -> JSONResponse:
    """The counters of each listener the amphora serves (zeros before any traffic)."""
    ctx.authorize(RESOURCE, "get_stats")
    amphora = _get(db, amphora_id)
    rows = db.execute(
        select(m.Listener.id, m.ListenerStatistics)
        .outerjoin(m.ListenerStatistics, m.ListenerStatistics.listener_id == m.Listener.id)
        .where(m.Listener.load_balancer_id == amphora.load_balancer_id)
        .order_by(m.Listener.created_at, m.Listener.id)).all()
    return JSONResponse({"amphora_stats": [
        {"id": amphora.id, "loadbalancer_id": amphora.load_balancer_id, "listener_id": lid,
         **{k: int(getattr(st, k)) if st is not None else 0 for k in STAT_KEYS}}
        for lid, st in rows]})
