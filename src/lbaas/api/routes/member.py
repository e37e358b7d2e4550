"""Members: /v2/lbaas/pools/{pool_id}/members (api-ref "Members").

Creating, changing or deleting a member locks the load balancer and marks
the pool and its listeners PENDING_UPDATE, as Octavia does. A new member is
operating_status NO_MONITOR, or OFFLINE when its pool has a health monitor
(Octavia ``db/prepare.py::create_member``). An address+port is unique in a
pool (409). A member, and its health checks, may not reach lbaas's own
endpoints (the API, the database) nor ``[networking] reserved_ips``
(:func:`check_targets`, 400); the load balancer's own VIP may be a member
(Octavia does not refuse it either).

``PUT /pools/{pool_id}/members`` replaces the pool's member list in one
change (Octavia's batch update, 202): entries matched by address+port
update the member (fields left out return to their defaults, as in
Octavia), new ones are created, and members left out are deleted unless
``additive_only=true``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import Session, joinedload, lazyload, object_session

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
from lbaas.api.schemas import member as s
from lbaas.common import constants as c
from lbaas.common import endpoints
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import status

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
router = APIRouter(tags=["Members"])
RESOURCE = "member"
COLUMNS = columns_of(m.Member)

# What a batch update resets when an entry leaves a field out (Octavia's MemberPOST defaults).
BATCH_DEFAULTS = ("admin_state_up", "weight", "backup", "monitor_address", "monitor_port")
BATCH_IF_GIVEN = ("name", "tags", "subnet_id")
# What a null resets in an update (Octavia's MemberPUT).
NULL_DEFAULTS = {"weight": c.DEFAULT_WEIGHT, "backup": False}


# What a member change reads of the pool in the path, in one query with it: its load
# balancer and health monitor, the listeners that use it (marked PENDING_UPDATE; as
# default pool or through L7 policies: a few rows), and not their tags (issue 12: five
# queries less, a fifth of a member add's API time; then the listeners joined, not
# selected apart: 4.0 -> 1.9 ms of CPU).
POOL_OF_A_CHANGE = (
    lazyload(m.Pool._tags),
    joinedload(m.Pool.load_balancer).lazyload(m.LoadBalancer._tags),
    joinedload(m.Pool.health_monitor).lazyload(m.HealthMonitor._tags),
    joinedload(m.Pool.default_listeners).lazyload(m.Listener._tags),
    joinedload(m.Pool.l7policies).options(
        lazyload(m.L7Policy._tags),
        joinedload(m.L7Policy.listener).lazyload(m.Listener._tags)),
)


# Its query, made once (see deps.get_visible): 0.4 ms less of every member change.
_POOL_OF_A_CHANGE = select(m.Pool).where(m.Pool.id == bindparam("id")).options(
    *POOL_OF_A_CHANGE)


def _changed_pool(db: Session, ctx: RequestContext, pool_id: str) -> m.Pool:
    """The pool in the path of a member change (:data:`POOL_OF_A_CHANGE`), else NotFound."""
    return deps.get_visible(db, ctx, m.Pool, pool_id, statement=_POOL_OF_A_CHANGE)


def _pool_and_member(db: Session, ctx: RequestContext, pool_id: str, member_id: str,
                     changing: bool = True) -> tuple[m.Pool, m.Member]:
    """The pool in the path (``changing``: of a member change) and its member, else
    NotFound (404), also for another pool's member."""
    pool = _changed_pool(db, ctx, pool_id) if changing \
        else deps.get_visible(db, ctx, m.Pool, pool_id)
    return pool, deps.get_visible(db, ctx, m.Member, member_id, pool_id=pool.id)


# -- rules ---------------------------------------------------------------------

def check_targets(state: ApiState, address: str, protocol_port: int,
                  monitor_address: str | None = None, monitor_port: int | None = None) -> None:
    """Refuse a member whose traffic or health checks would reach a control-plane endpoint.

    HAProxy connects to ``address``:``protocol_port`` and checks
    ``monitor_address`` (default ``address``) : ``monitor_port`` (default
    ``protocol_port``) from this host. Raises InvalidOption (400, "<address>
    is not a valid option for member address", Octavia's ``ip_not_reserved``)
    for a ``[networking] reserved_ips`` address, ReservedAddress (400)
    naming the fields for lbaas's API or database
    (:func:`lbaas.common.endpoints.control_plane_endpoints`).
    """
    targets = [("address", address, "protocol_port", protocol_port)]
    if monitor_address is not None or monitor_port is not None:
        targets.append(("monitor_address" if monitor_address else "address",
                        monitor_address or address,
                        "monitor_port" if monitor_port else "protocol_port",
                        monitor_port or protocol_port))
    for host_field, host, port_field, port in targets:
        ep = endpoints.reached(state.endpoints, host, port)
        if ep is None:
            continue
        if ep.port is None:
            raise exc.InvalidOption(value=host, option=f"member {host_field}")
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise exc.ReservedAddress(value=shown, option=f"member {host_field} and {port_field}",
                                  reason=f"it reaches {ep.what} ({ep})")


def _check_subnet(db: Session, ctx: RequestContext, state: ApiState, subnet_id: str | None,
                  usable: set[str]) -> None:
    """InvalidSubresource (400) unless the caller may use subnet ``subnet_id``
    (the network driver's ``get_subnet``); ``usable`` remembers those checked."""
    if subnet_id is not None and subnet_id not in usable:
        state.network.get_subnet(db, deps.caller(ctx), subnet_id)
        usable.add(subnet_id)


def _check_new(db: Session, ctx: RequestContext, state: ApiState, data: s.MemberSingleCreate,
               usable_subnets: set[str] | None = None) -> None:
    check_targets(state, data.address, data.protocol_port, data.monitor_address,
                  data.monitor_port)
    _check_subnet(db, ctx, state, data.subnet_id,
                  set() if usable_subnets is None else usable_subnets)
    if data.request_sriov:
        raise exc.MemberSRIOVDisabled()


def _key(address: str, port: int) -> tuple[IPAddress, int]:
    """What makes a member unique in its pool: its address (however written) and port."""
    return ipaddress.ip_address(address), port


def _check_unique(db: Session, pool: m.Pool, address: str, port: int) -> None:
    """DuplicateMemberEntry (409) if ``pool`` has a member at ``address``:``port``.

    A pool in the database is asked through its (pool_id, address,
    protocol_port) index, so that a pool of a thousand members is not loaded
    (issue 12): an IPv4 address has one spelling, so it is one index lookup;
    an IPv6 one is compared parsed with the pool's IPv6 members on that port.
    A new pool (a fully populated create) is checked in memory.
    """
    key = _key(address, port)
    if not inspect(pool).persistent:
        others = [mb.address for mb in pool.members if mb.protocol_port == port]
    else:
        query = select(m.Member.address).where(m.Member.pool_id == pool.id,
                                               m.Member.protocol_port == port)
        query = query.where(m.Member.address == address) if key[0].version == 4 \
            else query.where(m.Member.address.contains(":"))
        with db.no_autoflush:
            others = list(db.scalars(query))
    if any(_key(other, port) == key for other in others):
        raise exc.DuplicateMemberEntry(ip_address=address, port=port)


def _attach(pool: m.Pool, data: s.MemberSingleCreate) -> m.Member:
    fields = data.model_dump(include=set(s.MemberSingleCreate.model_fields)
                             - {"tags", "request_sriov"})
    member = m.Member(
        id=m.new_id(), project_id=pool.project_id, vnic_type=c.VNIC_TYPE_NORMAL,
        operating_status=c.OFFLINE if pool.health_monitor is not None else c.NO_MONITOR,
        **fields)
    member.tags = list(data.tags or [])
    # Through the member's side: the pool's members are not loaded for it (a pool of
    # thousands), they are appended to only if already loaded.
    member.pool = pool
    session = object_session(pool)
    if session is not None:
        session.add(member)
    return member


def new_member(db: Session, ctx: RequestContext, state: ApiState, pool: m.Pool,
               data: s.MemberSingleCreate) -> m.Member:
    """Validate ``data`` and append a new member to ``pool``; no quota check.

    For :func:`lbaas.api.routes.pool.build_pool`, which checks the quotas of
    the whole tree first. Raises InvalidOption / ReservedAddress /
    InvalidSubresource / MemberSRIOVDisabled (400), DuplicateMemberEntry (409).
    """
    _check_new(db, ctx, state, data)
    _check_unique(db, pool, data.address, data.protocol_port)
    return _attach(pool, data)


def build_member(db: Session, ctx: RequestContext, state: ApiState, pool: m.Pool,
                 data: s.MemberSingleCreate) -> m.Member:
    """Validate ``data``, check the quota and append a new member to ``pool``.

    No locking, no commit. Raises InvalidOption / ReservedAddress
    (:func:`check_targets`), InvalidSubresource (unknown subnet),
    MemberSRIOVDisabled (400), QuotaExceeded (403), DuplicateMemberEntry (409).
    """
    _check_new(db, ctx, state, data)
    deps.check_quota(db, state, pool.load_balancer, "member")
    _check_unique(db, pool, data.address, data.protocol_port)
    return _attach(pool, data)


# -- handlers ------------------------------------------------------------------

@router.get("/pools/{pool_id}/members", response_model=s.MemberPage)
def list_members(pool_id: str, ctx: Ctx, db: Db, listing: Listing) -> JSONResponse:
    """List the members of a pool."""
    pool = deps.get_visible(db, ctx, m.Pool, pool_id)
    ctx.authorize(RESOURCE, "get_all", pool.project_id)
    return listing.respond("members", select(m.Member).where(m.Member.pool_id == pool.id),
                           m.Member, COLUMNS, s.MemberResponse.dump)


@router.post("/pools/{pool_id}/members", status_code=201, response_model=s.MemberRoot)
def create_member(pool_id: str, body: s.MemberCreateRoot, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Create a member (PENDING_CREATE) in a pool."""
    pool = _changed_pool(db, ctx, pool_id)
    ctx.authorize(RESOURCE, "post", pool.project_id)
    member = build_member(db, ctx, state, pool, body.member)
    # The duplicate check ran before the load balancer was locked: a request
    # that added the same address and port meanwhile is caught by the table's key.
    # One flush (not one more before the lock's UPDATE): each costs a sort of the
    # unit of work's dependencies, a tenth of the request (issue 12).
    with deps.conflicts_as(db, exc.DuplicateMemberEntry(ip_address=member.address,
                                                        port=member.protocol_port)):
        with db.no_autoflush:
            status.begin_create(db, pool.load_balancer_id, [member],
                                [pool, *pool.listeners])
        db.flush()
    deps.check_members(state, pool, [member])
    deps.commit(db, state, pool.load_balancer_id)
    return deps.respond("member", s.MemberResponse.dump(member), 201)


@router.put("/pools/{pool_id}/members", status_code=202, response_class=Response)
def batch_update_members(pool_id: str, body: s.MembersBatchRoot, ctx: Ctx, db: Db,
                         state: State,
                         additive_only: bool = Query(
                             False, description="Keep the members that the request leaves "
                                                "out instead of deleting them.")) -> Response:
    """Replace the pool's members in one change (202; Octavia's batch update).

    Raises ValidationError (400) if one member is listed twice,
    DuplicateMemberEntry (409) if a new address+port is listed twice.
    """
    pool = _changed_pool(db, ctx, pool_id)
    ctx.authorize(RESOURCE, "post", pool.project_id)
    ctx.authorize(RESOURCE, "put", pool.project_id)
    if not additive_only:
        ctx.authorize(RESOURCE, "delete", pool.project_id)
    plan = _plan_batch(db, ctx, state, pool, body.members, additive_only)
    lb = pool.load_balancer
    if not (plan.new or plan.updates or plan.deleted):
        if status.is_pending(lb):  # Octavia locks before finding there is nothing to do
            raise exc.ImmutableObject(resource="Load Balancer", id=lb.id)
        return Response(status_code=202)
    growth = len(plan.new) - len(plan.deleted)
    if growth > 0:
        deps.check_quota(db, state, lb, "member", adding=growth)
    created = [_attach(pool, data) for data in plan.new]
    with deps.conflicts_as(db, exc.Conflict(detail=(
            "Another member on this pool is already using one of the requested addresses "
            "and protocol ports."))):
        status.begin_batch(db, lb.id, created, [mb for mb, _ in plan.updates], plan.deleted,
                           [pool, *pool.listeners])
        for member, data in plan.updates:
            _apply_batch_entry(member, data)
        db.flush()
    deps.check_provider(state, lb)
    deps.commit(db, state, lb.id)
    return Response(status_code=202)


@dataclass
class BatchPlan:
    """What a batch update does: members to create, to update (with their entry), to delete."""

    new: list[s.MemberCreate] = field(default_factory=list)
    updates: list[tuple[m.Member, s.MemberCreate]] = field(default_factory=list)
    deleted: list[m.Member] = field(default_factory=list)


def _plan_batch(db: Session, ctx: RequestContext, state: ApiState, pool: m.Pool,
                entries: list[s.MemberCreate], additive_only: bool) -> BatchPlan:
    """Match ``entries`` to ``pool``'s members by address+port and validate the new ones.

    Raises ValidationError (400) for a member listed twice, DuplicateMemberEntry
    (409) for a new address+port listed twice, and the 400s of a member create.
    """
    existing = {_key(mb.address, mb.protocol_port): mb for mb in pool.members}
    listed: set[tuple[IPAddress, int]] = set()
    subnets: set[str] = set()
    plan = BatchPlan()
    for data in entries:
        key = _key(data.address, data.protocol_port)
        if key in listed:
            if key in existing:
                raise exc.ValidationError(
                    detail="Member must be updated only once in the same request.")
            raise exc.DuplicateMemberEntry(ip_address=data.address, port=data.protocol_port)
        listed.add(key)
        if key in existing:
            check_targets(state, data.address, data.protocol_port, data.monitor_address,
                          data.monitor_port)
            _check_subnet(db, ctx, state, data.subnet_id, subnets)
            plan.updates.append((existing[key], data))
        else:
            _check_new(db, ctx, state, data, subnets)
            plan.new.append(data)
    if not additive_only:
        plan.deleted = [mb for key, mb in existing.items() if key not in listed]
    return plan


def _apply_batch_entry(member: m.Member, data: s.MemberCreate) -> None:
    deps.apply_changes(member, {
        **{name: getattr(data, name) for name in BATCH_DEFAULTS},
        **{name: getattr(data, name) for name in BATCH_IF_GIVEN
           if name in data.model_fields_set}}, keep_on_null=())


@router.get("/pools/{pool_id}/members/{member_id}", response_model=s.MemberRoot)
def show_member(pool_id: str, member_id: str, fields: Fields, ctx: Ctx,
                db: Db) -> JSONResponse:
    """Show one member."""
    _pool, member = _pool_and_member(db, ctx, pool_id, member_id, changing=False)
    ctx.authorize(RESOURCE, "get_one", member.project_id)
    return deps.respond("member", s.MemberResponse.dump(member), fields=fields)


@router.put("/pools/{pool_id}/members/{member_id}", response_model=s.MemberRoot)
def update_member(pool_id: str, member_id: str, body: s.MemberUpdateRoot, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Update a member's weight, backup flag, monitor address/port, name, state or tags."""
    pool, member = _pool_and_member(db, ctx, pool_id, member_id)
    ctx.authorize(RESOURCE, "put", member.project_id)
    changes = body.member.model_dump(exclude_unset=True)
    check_targets(state, member.address, member.protocol_port,
                  changes.get("monitor_address", member.monitor_address),
                  changes.get("monitor_port", member.monitor_port))
    status.begin_update(db, pool.load_balancer_id, member, [pool, *pool.listeners])
    deps.apply_changes(member, {k: NULL_DEFAULTS[k] if v is None and k in NULL_DEFAULTS else v
                                for k, v in changes.items()})
    deps.check_members(state, pool, [member])
    deps.commit(db, state, pool.load_balancer_id)
    return deps.respond("member", s.MemberResponse.dump(member))


@router.delete("/pools/{pool_id}/members/{member_id}", status_code=204,
               response_class=Response)
def delete_member(pool_id: str, member_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a member."""
    pool, member = _pool_and_member(db, ctx, pool_id, member_id)
    ctx.authorize(RESOURCE, "delete", member.project_id)
    status.begin_delete(db, pool.load_balancer_id, member, [pool, *pool.listeners])
    deps.commit(db, state, pool.load_balancer_id)
    return deps.no_content()
