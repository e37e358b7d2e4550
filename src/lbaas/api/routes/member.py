"""Members: /v2/lbaas/pools/{pool_id}/members (api-ref "Members").

Creating, changing or deleting a member locks the load balancer and marks
the pool and its listeners PENDING_UPDATE, as Octavia does. A new member is
operating_status NO_MONITOR, or OFFLINE when its pool has a health monitor
(Octavia ``db/prepare.py::create_member``). An address+port is unique in a
pool (409). Addresses in :data:`RESERVED_ADDRESSES` are refused (Octavia's
``[networking] reserved_ips``); the load balancer's own VIP is not (Octavia
does not refuse it either).

``PUT /pools/{pool_id}/members`` replaces the pool's member list in one
change (Octavia's batch update, 202): entries matched by address+port
update the member (fields left out return to their defaults, as in
Octavia), new ones are created, and members left out are deleted unless
``additive_only=true``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of, paginate
from lbaas.api.schemas import member as s
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["Members"])
RESOURCE = "member"
COLUMNS = columns_of(m.Member)

# Octavia's [networking] reserved_ips default: the cloud metadata address.
RESERVED_ADDRESSES = frozenset({"169.254.169.254"})
SRIOV_REFUSED = "The load balancer flavor does not allow SR-IOV member ports."
# What a batch update resets when an entry leaves a field out (Octavia's MemberPOST defaults).
BATCH_DEFAULTS = ("admin_state_up", "weight", "backup", "monitor_address", "monitor_port")
BATCH_IF_GIVEN = ("name", "tags", "subnet_id")


def get_pool(db: Session, ctx: RequestContext, pool_id: str) -> m.Pool:
    """The pool ``pool_id`` if the caller may see it, else NotFound (404)."""
    pool = db.get(m.Pool, pool_id)
    return deps.visible_or_404(ctx, pool, "Pool", pool_id)


def get_member(db: Session, ctx: RequestContext, pool: m.Pool, member_id: str) -> m.Member:
    """Member ``member_id`` of ``pool``, else NotFound (404), also for another pool's."""
    member = db.get(m.Member, member_id)
    if member is not None and member.pool_id != pool.id:
        member = None
    return deps.visible_or_404(ctx, member, "Member", member_id)


# -- rules ---------------------------------------------------------------------

def check_address(address: str) -> None:
    """Raise InvalidOption (400) if ``address`` is reserved (Octavia ``ip_not_reserved``)."""
    exploded = ipaddress.ip_address(address).exploded.upper()
    if exploded in RESERVED_ADDRESSES:
        raise exc.InvalidOption(value=exploded, option="member address")


def check_subnet(db: Session, ctx: RequestContext, subnet_id: str) -> None:
    """Raise InvalidSubresource (400, "Subnet <id> not found.") unless the caller may use it.

    Usable: the subnet exists and its network is shared, unowned, the
    caller's, or the caller is a load-balancer admin.
    """
    subnet = db.get(m.Subnet, subnet_id)
    network = subnet.network if subnet is not None else None
    if network is None or not (network.shared or network.project_id in (None, ctx.project_id)
                               or ctx.is_lb_admin):
        raise exc.InvalidSubresource(resource="Subnet", id=subnet_id)


def _check_new(db: Session, ctx: RequestContext, data: s.MemberSingleCreate,
               usable_subnets: set[str] | None = None) -> None:
    check_address(data.address)
    if data.subnet_id is not None and (usable_subnets is None
                                       or data.subnet_id not in usable_subnets):
        check_subnet(db, ctx, data.subnet_id)
        if usable_subnets is not None:
            usable_subnets.add(data.subnet_id)
    if data.request_sriov:
        raise exc.BadRequest(detail=SRIOV_REFUSED)


def _check_unique(pool: m.Pool, address: str, port: int) -> None:
    for other in pool.members:
        if other.address == address and other.protocol_port == port:
            raise exc.DuplicateMemberEntry(ip_address=address, port=port)


def _attach(pool: m.Pool, data: s.MemberSingleCreate) -> m.Member:
    fields = data.model_dump(include=set(s.MemberSingleCreate.model_fields)
                             - {"tags", "request_sriov"})
    member = m.Member(
        id=m.new_id(), project_id=pool.project_id, vnic_type=c.VNIC_TYPE_NORMAL,
        operating_status=c.OFFLINE if pool.health_monitor is not None else c.NO_MONITOR,
        **fields)
    member.tags = list(data.tags or [])
    pool.members.append(member)
    return member


def new_member(db: Session, ctx: RequestContext, pool: m.Pool,
               data: s.MemberSingleCreate) -> m.Member:
    """Validate ``data`` and append a new member to ``pool``; no quota check.

    For :func:`lbaas.api.routes.pool.build_pool`, which checks the quotas of
    the whole tree first. Raises InvalidOption / InvalidSubresource /
    BadRequest (400), DuplicateMemberEntry (409).
    """
    _check_new(db, ctx, data)
    _check_unique(pool, data.address, data.protocol_port)
    return _attach(pool, data)


def build_member(db: Session, ctx: RequestContext, state: ApiState, pool: m.Pool,
                 data: s.MemberSingleCreate) -> m.Member:
    """Validate ``data``, check the quota and append a new member to ``pool``.

    No locking, no commit. Raises InvalidOption (reserved address),
    InvalidSubresource (unknown subnet), BadRequest (SR-IOV) (400),
    QuotaExceeded (403), DuplicateMemberEntry (409).
    """
    _check_new(db, ctx, data)
    deps.check_quota(db, state, pool.project_id or ctx.project_id, "member")
    _check_unique(pool, data.address, data.protocol_port)
    return _attach(pool, data)


@contextmanager
def _races_as_conflicts(db: Session, member: m.Member | None = None) -> Iterator[None]:
    """Turn a unique-constraint failure on flush into a 409 instead of a 500.

    The duplicate checks run before the load balancer is locked; a request
    that added the same address+port meanwhile (and finished) is caught here.
    """
    key = (member.address, member.protocol_port) if member is not None else None
    try:
        yield
    except IntegrityError:
        db.rollback()
        if key is not None:
            raise exc.DuplicateMemberEntry(ip_address=key[0], port=key[1]) from None
        raise exc.Conflict(detail="Another member on this pool is already using one of the "
                                  "requested addresses and protocol ports.") from None


# -- handlers ------------------------------------------------------------------

@router.get("/pools/{pool_id}/members", response_model=s.MembersRoot)
def list_members(pool_id: str, request: Request, ctx: Ctx, db: Db, listing: Listing,
                 state: State) -> JSONResponse:
    """List the members of a pool."""
    pool = get_pool(db, ctx, pool_id)
    ctx.authorize(RESOURCE, "get_all", pool.project_id)
    stmt = select(m.Member).where(m.Member.pool_id == pool.id)
    page = paginate(db, request, listing, stmt, m.Member, COLUMNS, state.settings.api_base_uri)
    return deps.respond_list("members", [s.MemberResponse.dump(mb) for mb in page.rows],
                             page.links, listing.fields)


@router.post("/pools/{pool_id}/members", status_code=201, response_model=s.MemberRoot)
def create_member(pool_id: str, body: s.MemberCreateRoot, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Create a member (PENDING_CREATE) in a pool."""
    pool = get_pool(db, ctx, pool_id)
    ctx.authorize(RESOURCE, "post", pool.project_id)
    member = build_member(db, ctx, state, pool, body.member)
    with _races_as_conflicts(db, member):
        status.begin_create(db, pool.load_balancer_id, [member], [pool, *pool.listeners])
        db.flush()
    deps.check_provider(state, pool.load_balancer)
    deps.commit(db, state)
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
    pool = get_pool(db, ctx, pool_id)
    ctx.authorize(RESOURCE, "post", pool.project_id)
    ctx.authorize(RESOURCE, "put", pool.project_id)
    if not additive_only:
        ctx.authorize(RESOURCE, "delete", pool.project_id)
    plan = _plan_batch(db, ctx, pool, body.members, additive_only)
    lb = pool.load_balancer
    if not (plan.new or plan.updates or plan.deleted):
        if status.is_pending(lb):  # Octavia locks before finding there is nothing to do
            raise exc.ImmutableObject(resource="Load Balancer", id=lb.id)
        return Response(status_code=202)
    growth = len(plan.new) - len(plan.deleted)
    if growth > 0:
        deps.check_quota(db, state, pool.project_id or ctx.project_id, "member", adding=growth)
    created = [_attach(pool, data) for data in plan.new]
    with _races_as_conflicts(db):
        status.begin_batch(db, lb.id, created, [mb for mb, _ in plan.updates], plan.deleted,
                           [pool, *pool.listeners])
        for member, data in plan.updates:
            _apply_batch_entry(member, data)
        db.flush()
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return Response(status_code=202)


@dataclass
class BatchPlan:
    """What a batch update does: members to create, to update (with their entry), to delete."""

    new: list[s.MemberCreate] = field(default_factory=list)
    updates: list[tuple[m.Member, s.MemberCreate]] = field(default_factory=list)
    deleted: list[m.Member] = field(default_factory=list)


def _plan_batch(db: Session, ctx: RequestContext, pool: m.Pool, entries: list[s.MemberCreate],
                additive_only: bool) -> BatchPlan:
    """Match ``entries`` to ``pool``'s members by address+port and validate the new ones.

    Raises ValidationError (400) for a member listed twice, DuplicateMemberEntry
    (409) for a new address+port listed twice, and the 400s of a member create.
    """
    existing = {(mb.address, mb.protocol_port): mb for mb in pool.members}
    listed: set[tuple[str, int]] = set()
    subnets: set[str] = set()
    plan = BatchPlan()
    for data in entries:
        key = (data.address, data.protocol_port)
        if key in listed:
            if key in existing:
                raise exc.ValidationError(
                    detail="Member must be updated only once in the same request.")
            raise exc.DuplicateMemberEntry(ip_address=data.address, port=data.protocol_port)
        listed.add(key)
        if key in existing:
            if data.subnet_id is not None and data.subnet_id not in subnets:
                check_subnet(db, ctx, data.subnet_id)
                subnets.add(data.subnet_id)
            plan.updates.append((existing[key], data))
        else:
            _check_new(db, ctx, data, subnets)
            plan.new.append(data)
    if not additive_only:
        plan.deleted = [mb for key, mb in existing.items() if key not in listed]
    return plan


def _apply_batch_entry(member: m.Member, data: s.MemberCreate) -> None:
    for name in BATCH_DEFAULTS:
        setattr(member, name, getattr(data, name))
    for name in BATCH_IF_GIVEN:
        if name in data.model_fields_set:
            value = getattr(data, name)
            if name == "tags":
                member.tags = list(value or [])
            else:
                setattr(member, name, value)


@router.get("/pools/{pool_id}/members/{member_id}", response_model=s.MemberRoot)
def show_member(pool_id: str, member_id: str, request: Request, ctx: Ctx,
                db: Db) -> JSONResponse:
    """Show one member."""
    member = get_member(db, ctx, get_pool(db, ctx, pool_id), member_id)
    ctx.authorize(RESOURCE, "get_one", member.project_id)
    return deps.respond("member", s.MemberResponse.dump(member), fields=deps.fields_of(request))


@router.put("/pools/{pool_id}/members/{member_id}", response_model=s.MemberRoot)
def update_member(pool_id: str, member_id: str, body: s.MemberUpdateRoot, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Update a member's weight, backup flag, monitor address/port, name, state or tags."""
    pool = get_pool(db, ctx, pool_id)
    member = get_member(db, ctx, pool, member_id)
    ctx.authorize(RESOURCE, "put", member.project_id)
    changes = body.member.model_dump(exclude_unset=True)
    status.begin_update(db, pool.load_balancer_id, member, [pool, *pool.listeners])
    for key, value in changes.items():
        if key == "tags":
            member.tags = list(value or [])
        elif key == "admin_state_up":
            if value is not None:
                member.admin_state_up = value
        elif key == "weight":
            member.weight = c.DEFAULT_WEIGHT if value is None else value
        elif key == "backup":
            member.backup = bool(value)
        else:
            setattr(member, key, value)
    deps.check_provider(state, pool.load_balancer)
    deps.commit(db, state)
    return deps.respond("member", s.MemberResponse.dump(member))


@router.delete("/pools/{pool_id}/members/{member_id}", status_code=204,
               response_class=Response)
def delete_member(pool_id: str, member_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a member."""
    pool = get_pool(db, ctx, pool_id)
    member = get_member(db, ctx, pool, member_id)
    ctx.authorize(RESOURCE, "delete", member.project_id)
    status.begin_delete(db, pool.load_balancer_id, member, [pool, *pool.listeners])
    deps.commit(db, state)
    return deps.no_content()
