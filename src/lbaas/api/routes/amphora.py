"""Amphorae: /v2/octavia/amphorae (api-ref "Amphorae"), admin only.

An amphora is one HAProxy instance serving a load balancer of the haproxy
provider (``amphora`` is its Octavia name): one per load balancer, role
STANDALONE (ACTIVE_STANDBY will list MASTER and BACKUP). Load balancers of
other providers (noop) have none, as Octavia lists none for a provider
without amphorae. Rows are made with their load balancer
(:func:`add_amphorae`); their ``status`` follows it (:mod:`lbaas.worker.status`).

- ``PUT {id}/config`` re-applies the load balancer's configuration (the
  HAProxy config is rendered again from the database and reloaded), 202;
- ``PUT {id}/failover`` rebuilds it from scratch, as a load balancer
  failover, 202;
- ``GET {id}/stats``: the counters of each listener it serves.

Both PUTs lock the load balancer (409 while a change is in flight).
"""

from __future__ import annotations

import socket

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.schemas import amphora as s
from lbaas.common import constants as c
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["Amphorae"])
RESOURCE = "amphora"
COLUMNS = columns_of(m.Amphora, aliases={"loadbalancer_id": m.Amphora.load_balancer_id})
STAT_KEYS = ("active_connections", "bytes_in", "bytes_out", "request_errors",
             "total_connections")


def add_amphorae(state: ApiState, lb: m.LoadBalancer) -> None:
    """Give new load balancer ``lb`` its amphora if its provider runs HAProxy for it."""
    if deps.driver_name(lb.provider) != c.PROVIDER_HAPROXY:
        return
    compute_id = socket.gethostname()
    if state.settings.haproxy.placement == "namespace":
        compute_id += f":{c.NAMESPACE_PREFIX}{lb.id}"
    lb.amphorae.append(m.Amphora(id=m.new_id(), role=c.AMPHORA_ROLE_STANDALONE,
                                 status=c.AMPHORA_PENDING_CREATE, compute_id=compute_id,
                                 ha_ip=lb.vip_address, ha_port_id=lb.vip_port_id))


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
    status.begin_failover(db, amphora.load_balancer)
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
