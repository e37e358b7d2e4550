"""Load balancers: /v2/lbaas/loadbalancers (api-ref "Load Balancers").

Create takes a VIP on a subnet (allocated from its pools unless
``vip_address`` is given), records a port for it, and accepts the
fully-populated form (``listeners`` with ``default_pool``, members and
health monitor; ``pools``) in one request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, cast

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery
from sqlalchemy.sql.elements import KeyedColumnElement

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import Page, api_timestamp, column_readers, columns_of, raw_rows
from lbaas.api.routes import amphora, fully_populated
from lbaas.api.schemas import loadbalancer as s
from lbaas.api.schemas.common import Stats, StatsRoot
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import graph, status

router = APIRouter(tags=["Load Balancers"])
RESOURCE = "loadbalancer"
COLUMNS = columns_of(m.LoadBalancer, exclude=("failover_requested", "topology",
                                              "provisioning_status_reason", "graph_version"))


@router.get("/loadbalancers", response_model=s.LoadBalancerPage)
def list_load_balancers(ctx: Ctx, listing: Listing, state: State) -> Response:
    """List load balancers visible to the caller.

    Columns, not ORM objects: the shown columns only (those ``fields=`` names),
    timestamps written by the database; one query each for the page's
    listeners, pools and tags (none for what ``fields=`` leaves out); each body
    written by a plan made once for the page (:meth:`ResponseModel.row_dumper`):
    a page of a thousand costs a few shows (issue 12). Without ``fields=``, a
    body is written once for each version of its load balancer
    (:func:`_key_of`) and kept (:class:`~lbaas.api.deps.KeptBodies`); the
    children are read only if some body of the page is not kept.
    """
    fields = listing.query.fields or None
    shown = [col for col in _SHOWN if fields is None or col.key in fields or col.key == "id"
             or (col.key == "project_id" and "tenant_id" in fields)]
    stamps = [name for name in _TIMESTAMPS if fields is None or name in fields]
    stmt = _EVERY_FIELD if fields is None else _select(shown, stamps)
    stmt = deps.listed_rows(ctx, listing, RESOURCE, stmt, m.LoadBalancer)
    page = listing.page(stmt, m.LoadBalancer, COLUMNS)
    if not page.rows:
        return listing.answer("loadbalancers", [], page)
    if fields is not None:
        dump = _dumper(listing, page, stmt, shown, stamps, fields)
        return listing.answer("loadbalancers", [dump(row) for row in page.rows], page)
    kept = state.load_balancer_bodies
    bodies = [kept.get(row[_ID], _key_of(row)) for row in page.rows]
    if None in bodies:
        dump = _dumper(listing, page, stmt, shown, stamps, fields)
        bodies = [body if body is not None else kept.put(row[_ID], _key_of(row), dump(row))
                  for row, body in zip(page.rows, bodies, strict=True)]
    return listing.answer_written("loadbalancers", cast(list[memoryview], bodies), page)


def _dumper(listing: deps.ListRequest, page: Page, stmt: Select[Any],
            shown: list[KeyedColumnElement[Any]], stamps: list[str],
            fields: list[str] | None) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """What writes the body of a row of ``page`` (rows of ``stmt``: the columns
    ``shown``, the timestamps ``stamps``, then ``graph_version`` without ``fields=``),
    the children of the whole page read first."""
    children = [child for child in _CHILDREN if fields is None or child[0] in fields]
    listed = None if page.every_row else page.ids()
    conn = listing.session.connection()  # the driver's rows, as the page's
    names = [col.key for col in shown] + stamps + (["graph_version"] if fields is None else [])
    return s.LoadBalancerResponse.row_dumper(
        names, written=stamps, fields=fields,
        children={name: _children_of(conn, _EVERY[name] if listed is None else make(listed), ref)
                  for name, make, ref in children},
        readers=column_readers(stmt, conn.dialect))


# What a listed load balancer shows: its columns that are fields, and its timestamps as
# the API writes them (api_timestamp).
_TIMESTAMPS = ("created_at", "updated_at")
_SHOWN = [col for col in m.LoadBalancer.__table__.columns
          if col.key in s.LoadBalancerResponse.model_fields and col.key not in _TIMESTAMPS]


def _select(shown: list[KeyedColumnElement[Any]], stamps: list[str]) -> Select[Any]:
    """The select of a page's columns: ``shown``, then the timestamps ``stamps``."""
    return select(*shown, *[api_timestamp(getattr(m.LoadBalancer, name)).label(name)
                            for name in stamps])


# The select of a list without fields= (every field, then the version of what a body
# shows besides its row: KeptBodies), made once, as _EVERY below.
_EVERY_FIELD = _select(_SHOWN, list(_TIMESTAMPS)).add_columns(m.LoadBalancer.graph_version)
_SHOWN_KEYS = [col.key for col in _SHOWN]
_ID = _SHOWN_KEYS.index("id")
# What a kept body of a row of _EVERY_FIELD is written from (KeptBodies): its
# graph_version, provisioning_status, operating_status and updated_at. Every other
# field of a load balancer is set when it is created or by a change of its graph, and
# so are its listeners, pools and tags; each such change moves graph_version when it
# begins (lbaas.worker.status._lock), and provisioning_status and updated_at when
# the worker settles it (the listeners and pools it deleted); the health manager
# moves operating_status only. graph_version tells apart two changes settled within
# one second, which is all PostgreSQL's updated_at tells here.
_KEY_COLUMNS = itemgetter(len(_SHOWN) + len(_TIMESTAMPS),
                          *[_SHOWN_KEYS.index(name)
                            for name in ("provisioning_status", "operating_status")],
                          len(_SHOWN) + _TIMESTAMPS.index("updated_at"))


def _key_of(row: Sequence[Any]) -> bytes:
    """The key of a row of :data:`_EVERY_FIELD` (:data:`_KEY_COLUMNS`), each value ended
    by a NUL (no value holds one; a body's JSON writes it escaped): a key is a prefix
    of a kept key and body only if it is that key."""
    return "{}\0{}\0{}\0{}\0".format(*_KEY_COLUMNS(row)).encode()


# Its children: (field, select of (load balancer id, child) of the load balancers of a
# page (its ids: Page.ids; None when the page holds every load balancer), whether the
# child is written as a reference {"id": ...}). Listeners and pools are joined to the
# page (a third faster than IN for a thousand; all of them, unmatched, for a page of
# every load balancer: a third faster again), in each load balancer's order, as their
# index holds them (no sort); tags matched by IN (joined, SQLite would scan the tags
# of every kind of object).
_CHILDREN: list[tuple[str, Callable[[Subquery | None], Select[str, str]], bool]] = [
    ("listeners", lambda listed: _of_page(
        select(m.Listener.load_balancer_id, m.Listener.id), listed)
     .order_by(m.Listener.load_balancer_id, m.Listener.created_at, m.Listener.id), True),
    ("pools", lambda listed: _of_page(select(m.Pool.load_balancer_id, m.Pool.id), listed)
     .order_by(m.Pool.load_balancer_id, m.Pool.created_at, m.Pool.id), True),
    ("tags", lambda listed: select(m.Tag.resource_id, m.Tag.tag)
     .where(m.Tag.resource_id.in_(select(m.LoadBalancer.id) if listed is None
                                  else select(listed.c.id)))
     .order_by(m.Tag.resource_id, m.Tag.tag), False),
]


def _of_page(stmt: Select[str, str], listed: Subquery | None) -> Select[str, str]:
    """``stmt``, a select of (load balancer id, child), joined to the page ``listed``
    (None: every load balancer, nothing to join)."""
    if listed is None:
        return stmt
    parent = stmt.selected_columns[0]
    return stmt.join(listed, parent == listed.c.id)


# The children's statements for a page of every load balancer, made once: SQLAlchemy
# memoizes a statement's cache key on it (3 statements of 1,000: 6.1 -> 5.1 ms).
_EVERY = {name: make(None) for name, make, _ in _CHILDREN}


def _children_of(conn: Connection, stmt: Select[str, str], ref: bool) -> dict[str, list[Any]]:
    """The rows of ``stmt`` (parent id, child: text, which the driver's rows hold as
    they are; ordered by parent first, as every statement of :data:`_CHILDREN`) as
    parent id -> its children in the statement's order, each ``{"id": child}`` if
    ``ref``, else as it is (a parent with none is absent)."""
    grouped: dict[str, list[Any]] = {}
    kids: list[Any] = []
    last = None
    # A parent's rows are one run: its list is looked up once, not once a row (a list of
    # every listener, pool and tag of a thousand load balancers: 1.26 -> 0.95 ms).
    for parent, child in raw_rows(conn, stmt):
        if parent != last:
            kids = grouped[parent] = []
            last = parent
        kids.append({"id": child} if ref else child)
    return grouped


@router.post("/loadbalancers", status_code=201,
             response_model=s.LoadBalancerRoot | s.LoadBalancerFullRoot)
def create_load_balancer(body: s.LoadBalancerCreateRoot, ctx: Ctx, db: Db,
                         state: State) -> JSONResponse:
    """Create a load balancer (PENDING_CREATE), optionally fully populated."""
    data = body.loadbalancer
    project_id = deps.resolve_project(ctx, data.project_id or data.tenant_id)
    ctx.authorize(RESOURCE, "post", project_id)
    lb = m.LoadBalancer(
        id=m.new_id(), project_id=project_id, name=data.name, description=data.description,
        admin_state_up=data.admin_state_up, vip_qos_policy_id=data.vip_qos_policy_id,
        vip_sg_ids=data.vip_sg_ids, operating_status=c.OFFLINE)
    _apply_provider_and_flavor(db, state, lb, data)
    _apply_availability_zone(db, lb, data.availability_zone)
    deps.check_quota(db, state, lb, "loadbalancer")
    _allocate_vips(db, ctx, state, lb, data)
    amphora.add_amphorae(db, ctx, state, lb)
    lb.tags = list(data.tags or [])
    db.add(lb)
    full = bool(data.listeners or data.pools)
    if full:
        fully_populated.build_graph(db, ctx, state, lb, data.listeners, data.pools)
    status.begin_create_load_balancer(lb)
    db.flush()
    deps.check_provider(state, lb)
    deps.commit(db, state)
    if full:
        return deps.respond("loadbalancer", s.LoadBalancerFullResponse.dump(lb), 201)
    return deps.respond("loadbalancer", s.LoadBalancerResponse.dump(lb), 201)


@router.get("/loadbalancers/{loadbalancer_id}", response_model=s.LoadBalancerRoot)
def show_load_balancer(loadbalancer_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one load balancer."""
    lb = deps.get_visible(db, ctx, m.LoadBalancer, loadbalancer_id)
    ctx.authorize(RESOURCE, "get_one", lb.project_id)
    return deps.respond("loadbalancer", s.LoadBalancerResponse.dump(lb), fields=fields)


@router.put("/loadbalancers/{loadbalancer_id}", response_model=s.LoadBalancerRoot)
def update_load_balancer(loadbalancer_id: str, body: s.LoadBalancerUpdateRoot, ctx: Ctx,
                         db: Db, state: State) -> JSONResponse:
    """Update name, description, admin_state_up, tags, QoS or security groups."""
    lb = deps.get_visible(db, ctx, m.LoadBalancer, loadbalancer_id)
    ctx.authorize(RESOURCE, "put", lb.project_id)
    changes = body.loadbalancer.model_dump(exclude_unset=True)
    status.begin_update_load_balancer(db, lb)
    deps.apply_changes(lb, changes)
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return deps.respond("loadbalancer", s.LoadBalancerResponse.dump(lb))


@router.delete("/loadbalancers/{loadbalancer_id}", status_code=204, response_class=Response)
def delete_load_balancer(loadbalancer_id: str, ctx: Ctx, db: Db, state: State,
                         cascade: bool = Query(False, description="Delete the whole tree."),
                         ) -> Response:
    """Delete a load balancer; with ``cascade=true`` everything under it too."""
    lb = deps.get_visible(db, ctx, m.LoadBalancer, loadbalancer_id)
    ctx.authorize(RESOURCE, "delete", lb.project_id)
    if (lb.listeners or lb.pools) and not cascade:
        raise exc.ValidationError(
            detail=f"Cannot delete Load Balancer {lb.id} - it has children")
    graph.load_graph(db, lb.id)  # the whole tree, for the cascade marks
    status.begin_delete_load_balancer(db, lb, cascade)
    deps.commit(db, state)
    return deps.no_content()


@router.put("/loadbalancers/{loadbalancer_id}/failover", status_code=202,
            response_class=Response)
def failover_load_balancer(loadbalancer_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Rebuild the load balancer's data plane from the database (admin)."""
    lb = deps.get_visible(db, ctx, m.LoadBalancer, loadbalancer_id)
    ctx.authorize(RESOURCE, "put_failover", lb.project_id)
    status.begin_failover(db, lb)
    deps.commit(db, state)
    return Response(status_code=202)


@router.get("/loadbalancers/{loadbalancer_id}/stats", response_model=StatsRoot)
def load_balancer_stats(loadbalancer_id: str, ctx: Ctx, db: Db) -> JSONResponse:
    """Cumulative traffic counters, summed over the load balancer's listeners."""
    lb = deps.get_visible(db, ctx, m.LoadBalancer, loadbalancer_id)
    ctx.authorize(RESOURCE, "get_stats", lb.project_id)
    keys = list(Stats.model_fields)
    row = db.execute(
        select(*[func.coalesce(func.sum(getattr(m.ListenerStatistics, k)), 0) for k in keys])
        .join(m.Listener, m.Listener.id == m.ListenerStatistics.listener_id)
        .where(m.Listener.load_balancer_id == lb.id)).one()
    return deps.respond("stats", {k: int(v) for k, v in zip(keys, row, strict=True)})


@router.get("/loadbalancers/{loadbalancer_id}/status", response_model=s.StatusTreeRoot)
def load_balancer_status(loadbalancer_id: str, ctx: Ctx, db: Db) -> JSONResponse:
    """The status tree: load balancer -> listeners -> pools -> health monitor, members."""
    lb = deps.get_visible(db, ctx, m.LoadBalancer, loadbalancer_id)
    ctx.authorize(RESOURCE, "get_status", lb.project_id)
    graph.load_graph(db, lb.id)
    tree = s.LoadBalancerStatus.dump(lb, listeners=[
        s.ListenerStatus.dump(li, pools=_pools_used_by(li)) for li in lb.listeners])
    return JSONResponse({"statuses": {"loadbalancer": tree}})


def _pools_used_by(listener: m.Listener) -> list[m.Pool]:
    """The listener's default pool and the redirect pools of its enabled L7 policies that
    have rules, each once (Octavia's ``Listener.pools``: the pools it really uses)."""
    pools: dict[str, m.Pool] = {}
    for pool in (listener.default_pool, *[p.redirect_pool for p in listener.l7policies
                                          if p.admin_state_up and p.rules]):
        if pool is not None:
            pools.setdefault(pool.id, pool)
    return list(pools.values())


# -- create helpers ---------------------------------------------------------

def _apply_provider_and_flavor(db: Session, state: deps.ApiState, lb: m.LoadBalancer,
                               data: s.LoadBalancerCreate) -> None:
    provider = data.provider
    lb.topology = state.settings.loadbalancer_topology
    if data.flavor_id is not None:
        flavor = db.get(m.Flavor, data.flavor_id)
        if flavor is None:
            raise exc.InvalidOption(value=data.flavor_id, option="flavor")
        if not flavor.enabled:
            raise exc.DisabledOption(option="flavor", value=data.flavor_id)
        profile_provider = flavor.flavor_profile.provider_name
        if provider is not None and (deps.driver_name(provider)
                                     != deps.driver_name(profile_provider)):
            raise exc.ProviderFlavorMismatch(flav=data.flavor_id, prov=provider)
        provider = profile_provider
        flavor_data = json.loads(flavor.flavor_profile.flavor_data or "{}")
        lb.topology = flavor_data.get("loadbalancer_topology", lb.topology)
        lb.flavor_id = flavor.id
    provider = provider or state.settings.default_provider
    deps.provider_driver(state, provider)
    lb.provider = provider


def _apply_availability_zone(db: Session, lb: m.LoadBalancer, name: str | None) -> None:
    if name is None:
        return
    zone = db.get(m.AvailabilityZone, name)
    if zone is None:
        raise exc.InvalidOption(value=name, option="availability_zone")
    if not zone.enabled:
        raise exc.DisabledOption(option="availability_zone", value=name)
    lb.availability_zone = zone.name


def _allocate_vips(db: Session, ctx: RequestContext, state: deps.ApiState,
                   lb: m.LoadBalancer, data: s.LoadBalancerCreate) -> None:
    """Take the VIP and the additional VIPs through the network driver."""
    who = deps.caller(ctx)
    port = state.network.allocate_vip(db, who, lb.id, port_id=data.vip_port_id,
                                      subnet_id=data.vip_subnet_id,
                                      network_id=data.vip_network_id, address=data.vip_address)
    lb.vip_address = port.ip_address
    lb.vip_port_id = port.id
    lb.vip_subnet_id = port.subnet_id
    lb.vip_network_id = port.network_id
    extra = []
    for vip in data.additional_vips:
        extra_port = state.network.allocate_vip(db, who, lb.id, subnet_id=vip.subnet_id,
                                                address=vip.ip_address)
        extra.append({"subnet_id": extra_port.subnet_id, "ip_address": extra_port.ip_address,
                      "port_id": extra_port.id})
    lb.additional_vips = extra
