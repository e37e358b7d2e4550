"""Pools: /v2/lbaas/pools (api-ref "Pools").

A pool belongs to a load balancer; created with ``listener_id`` it also
becomes that listener's default pool (which the listener must not have yet).
Creating, changing or deleting a pool locks the load balancer and marks the
listeners using the pool PENDING_UPDATE, as Octavia does. A pool used by an
L7 policy cannot be deleted; a deleted default pool is cleared from its
listener when the worker removes it.

Rules (Octavia ``api/v2/controllers/pool.py`` and ``common/validate.py``):

- the pool protocol must suit the listener's
  (:data:`lbaas.common.constants.VALID_LISTENER_POOL_PROTOCOL_MAP`);
- ``session_persistence``: ``cookie_name`` only (and always) with
  APP_COOKIE; ``persistence_timeout`` (seconds) and
  ``persistence_granularity`` only for UDP/SCTP pools, which take SOURCE_IP
  persistence only;
- TLS towards members: a CRL needs a CA; ciphers, TLS versions and ALPN
  protocols follow :mod:`lbaas.api.tls` and default to the operator's
  ``[api_settings] default_pool_*`` with ``tls_enabled``; certificate
  references given in a request are checked with the certificate manager
  before anything is stored.

:func:`build_pool` also serves the fully-populated load balancer create.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from lbaas.api import deps, tls
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
from lbaas.api.routes import healthmonitor, member
from lbaas.api.routes.listener import check_pool_protocol
from lbaas.api.schemas import pool as s
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.common import validate
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["Pools"])
RESOURCE = "pool"
COLUMNS = columns_of(m.Pool, aliases={"loadbalancer_id": m.Pool.load_balancer_id})

_UDP_SCTP = (c.UDP, c.SCTP)
TLS_FIELDS = ("tls_enabled", "tls_container_ref", "ca_tls_container_ref", "crl_container_ref",
              "tls_ciphers", "tls_versions", "alpn_protocols")


# -- rules ---------------------------------------------------------------------

def check_session_persistence(protocol: str, sp: dict[str, Any] | None,
                              updating: bool = False) -> None:
    """Raise ValidationError (400) if ``sp`` does not suit a ``protocol`` pool.

    ``sp`` has the keys type, cookie_name, persistence_timeout,
    persistence_granularity (None when not given). The texts are Octavia's
    (``validate.check_session_persistence`` and the pool controller),
    including the one that differs between create and update; a cookie name
    is :func:`lbaas.common.validate.cookie_name`.
    """
    if not sp:
        return
    if protocol in _UDP_SCTP:
        if sp["type"] == c.SP_SOURCE_IP and sp["cookie_name"]:
            raise exc.ValidationError(detail=(
                f"session_persistence {c.SP_SOURCE_IP} type for UDP and SCTP protocols only "
                "accepts: type, persistence_timeout, persistence_granularity."))
        if sp["cookie_name"]:
            raise exc.ValidationError(
                detail="Cookie names are not supported for UDP/SCTP pools.")
        if sp["type"] in (c.SP_HTTP_COOKIE, c.SP_APP_COOKIE):
            raise exc.ValidationError(detail=(
                f"Session persistence of type {sp['type']} is not supported for UDP/SCTP "
                "protocol pools."))
    elif sp["persistence_timeout"] or sp["persistence_granularity"]:
        only_for = "UDP" if updating else "UDP and SCTP"
        raise exc.ValidationError(detail=(
            "persistence_timeout and persistence_granularity is only for "
            f"{only_for} protocol pools."))
    cookie = sp["cookie_name"]
    if cookie:
        if sp["type"] != c.SP_APP_COOKIE:
            raise exc.ValidationError(detail=(
                'Field "cookie_name" can only be specified with session persistence of type '
                '"APP_COOKIE".'))
        try:
            validate.cookie_name(cookie)
        except ValueError:
            raise exc.ValidationError(detail='Supplied "cookie_name" is invalid.') from None
    if sp["type"] is None:
        raise exc.ValidationError(detail="Invalid session_persistence provided.")
    if sp["type"] == c.SP_APP_COOKIE and not cookie:
        raise exc.ValidationError(detail=(
            'Field "cookie_name" must be specified when using the "APP_COOKIE" session '
            "persistence type."))


def _create_tls(db: Session, ctx: RequestContext, state: ApiState,
                data: s.PoolSingleCreate) -> dict[str, Any]:
    """The TLS columns of a new pool, the operator's defaults applied, checked
    (references with the certificate manager)."""
    if data.crl_container_ref and not data.ca_tls_container_ref:
        raise exc.ValidationError(
            detail="A CA certificate reference is required to specify a revocation list.")
    t = state.settings.tls
    settings: dict[str, Any] = {name: getattr(data, name) for name in TLS_FIELDS}
    if data.tls_enabled:
        settings = tls.with_defaults(settings, tls.pool_defaults(t))
    tls.check_ciphers(settings["tls_ciphers"], t)
    if data.tls_enabled:
        tls.check_tls_versions(settings["tls_versions"], t)
        tls.check_alpn_protocols(settings["alpn_protocols"])
    _check_refs(db, ctx, state, settings, set(TLS_FIELDS))
    return settings


def _check_refs(db: Session, ctx: RequestContext, state: ApiState, values: dict[str, Any],
                changed: set[str]) -> None:
    """Check the references among ``changed`` as they will be stored (InvalidInput, 400)."""
    manager, caller = state.certificates.bound(db), tls.caller_of(ctx)
    if "tls_container_ref" in changed and values.get("tls_container_ref"):
        tls.check_certificate(manager, caller, "tls_container_ref", values["tls_container_ref"])
    if changed & {"ca_tls_container_ref", "crl_container_ref"}:
        tls.check_ca_and_crl(manager, caller, "ca_tls_container_ref",
                             values.get("ca_tls_container_ref"), "crl_container_ref",
                             values.get("crl_container_ref"))


def _check_update_tls(pool: m.Pool, changes: dict[str, Any], state: ApiState) -> None:
    """Octavia's update rules for the CA/CRL pair, ciphers, versions and ALPN."""
    if changes.get("crl_container_ref"):
        crl = changes["crl_container_ref"]
    elif "crl_container_ref" not in changes:
        crl = pool.crl_container_ref
    else:
        crl = None
    required = "A CA reference is required to specify a certificate revocation list."
    if "ca_tls_container_ref" in changes:
        if not changes["ca_tls_container_ref"] and crl:
            raise exc.ValidationError(detail=(
                "A CA reference cannot be removed when a certificate revocation list is "
                "present." if pool.ca_tls_container_ref else required))
    elif crl and not pool.ca_tls_container_ref:
        raise exc.ValidationError(detail=required)
    tls.check_ciphers(changes.get("tls_ciphers"), state.settings.tls)
    tls.check_tls_versions(changes.get("tls_versions"), state.settings.tls)
    tls.check_alpn_protocols(changes.get("alpn_protocols"))


def _update_changes(db: Session, ctx: RequestContext, state: ApiState, pool: m.Pool,
                    data: s.PoolUpdate) -> dict[str, Any]:
    """The columns an update of ``pool`` sets, checked, with Octavia's null defaults.

    A session persistence object without ``type`` keeps the current type;
    null ``tls_versions`` / ``tls_ciphers`` mean the defaults. Raises 400s.
    """
    changes = data.model_dump(exclude_unset=True)
    if data.session_persistence is not None:
        sp = data.session_persistence.model_dump()
        if sp["type"] is None and pool.session_persistence:
            sp["type"] = pool.session_persistence.get("type")
        check_session_persistence(pool.protocol, sp, updating=True)
        changes["session_persistence"] = sp
    # A null resets the TLS versions and ciphers to the defaults (Octavia's pool PUT).
    changes = tls.with_defaults(changes, tls.pool_defaults(state.settings.tls),
                                [k for k in ("tls_versions", "tls_ciphers") if k in changes])
    _check_update_tls(pool, changes, state)
    stored = {k: changes.get(k, getattr(pool, k)) for k in TLS_FIELDS}
    _check_refs(db, ctx, state, stored, set(changes))
    return changes


# -- building --------------------------------------------------------------------

def build_pool(db: Session, ctx: RequestContext, state: ApiState, lb: m.LoadBalancer,
               data: s.PoolSingleCreate) -> m.Pool:
    """Validate ``data`` and append a new pool (OFFLINE), with its members and monitor, to ``lb``.

    Checks the pool, health monitor and member quotas of ``lb``'s project
    for the whole tree. No locking, no commit. Raises ValidationError (400,
    also Octavia's "Pool definition for '<name>' missing required attribute:
    <attr>" when ``protocol`` or ``lb_algorithm`` is missing), the 400s of
    :func:`lbaas.api.routes.member.new_member` and
    :func:`lbaas.api.routes.healthmonitor.new_health_monitor`,
    QuotaExceeded (403), DuplicateMemberEntry (409).
    """
    protocol, algorithm = data.protocol, data.lb_algorithm
    if protocol is None or algorithm is None:
        attr = "protocol" if protocol is None else "lb_algorithm"
        raise exc.ValidationError(
            detail=f"Pool definition for '{data.name}' missing required attribute: {attr}")
    sp = data.session_persistence.model_dump() if data.session_persistence else None
    check_session_persistence(protocol, sp)
    tls_settings = _create_tls(db, ctx, state, data)
    deps.check_quota(db, state, lb, "pool")
    if data.healthmonitor is not None:
        deps.check_quota(db, state, lb, "healthmonitor")
    if data.members:
        deps.check_quota(db, state, lb, "member", adding=len(data.members))
    pool = m.Pool(id=m.new_id(), project_id=lb.project_id, name=data.name,
                  description=data.description, admin_state_up=data.admin_state_up,
                  protocol=protocol, lb_algorithm=algorithm, session_persistence=sp,
                  operating_status=c.OFFLINE, **tls_settings)
    pool.tags = list(data.tags or [])
    lb.pools.append(pool)
    if data.healthmonitor is not None:
        healthmonitor.new_health_monitor(pool, data.healthmonitor)
    for member_data in data.members or []:
        member.new_member(db, ctx, state, pool, member_data)
    return pool


# -- handlers ------------------------------------------------------------------

@router.get("/pools", response_model=s.PoolPage)
def list_pools(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List pools visible to the caller (``loadbalancer_id`` filters by load balancer)."""
    stmt = select(m.Pool).options(
        selectinload(m.Pool.members), selectinload(m.Pool.health_monitor),
        selectinload(m.Pool.default_listeners),
        selectinload(m.Pool.l7policies).selectinload(m.L7Policy.listener))
    stmt = deps.listed_rows(ctx, listing, RESOURCE, stmt, m.Pool)
    return listing.respond("pools", stmt, m.Pool, COLUMNS,
                           s.PoolResponse.dump)


@router.post("/pools", status_code=201, response_model=s.PoolRoot)
def create_pool(body: s.PoolCreateRoot, ctx: Ctx, db: Db, state: State) -> JSONResponse:
    """Create a pool (PENDING_CREATE) on a load balancer, or as a listener's default pool."""
    data = body.pool
    listener = None
    if data.listener_id is not None:
        listener = deps.get_visible(db, ctx, m.Listener, data.listener_id)
    if data.loadbalancer_id is not None:
        lb = deps.get_visible(db, ctx, m.LoadBalancer, data.loadbalancer_id)
        if listener is not None and listener.load_balancer_id != lb.id:
            raise exc.ValidationError(detail=(
                f"Listener {listener.id} is not on load balancer {lb.id}."))
    elif listener is not None:
        lb = listener.load_balancer
    else:
        raise exc.ValidationError(detail="Must provide at least one of: loadbalancer_id, "
                                         "listener_id")
    ctx.authorize(RESOURCE, "post", lb.project_id)
    if listener is not None:
        check_pool_protocol(listener.protocol, data.protocol)
        if listener.default_pool_id is not None:
            raise exc.DuplicatePoolEntry()
    pool = build_pool(db, ctx, state, lb, data)
    if listener is not None:
        listener.default_pool = pool
    status.begin_create(db, lb.id, [pool], [listener] if listener is not None else [])
    db.flush()
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return deps.respond("pool", s.PoolResponse.dump(pool), 201)


@router.get("/pools/{pool_id}", response_model=s.PoolRoot)
def show_pool(pool_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one pool."""
    pool = deps.get_visible(db, ctx, m.Pool, pool_id)
    ctx.authorize(RESOURCE, "get_one", pool.project_id)
    return deps.respond("pool", s.PoolResponse.dump(pool), fields=fields)


@router.put("/pools/{pool_id}", response_model=s.PoolRoot)
def update_pool(pool_id: str, body: s.PoolUpdateRoot, ctx: Ctx, db: Db,
                state: State) -> JSONResponse:
    """Update a pool's algorithm, session persistence, TLS settings, name, state or tags."""
    pool = deps.get_visible(db, ctx, m.Pool, pool_id)
    ctx.authorize(RESOURCE, "put", pool.project_id)
    changes = _update_changes(db, ctx, state, pool, body.pool)
    status.begin_update(db, pool.load_balancer_id, pool, pool.listeners)
    deps.apply_changes(pool, changes, keep_on_null=("admin_state_up", "lb_algorithm",
                                                    "tls_enabled"))
    deps.check_provider(state, pool.load_balancer)
    deps.commit(db, state)
    return deps.respond("pool", s.PoolResponse.dump(pool))


@router.delete("/pools/{pool_id}", status_code=204, response_class=Response)
def delete_pool(pool_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a pool with its members and health monitor.

    Raises PoolInUseByL7Policy (409) while an L7 policy redirects to it.
    """
    pool = deps.get_visible(db, ctx, m.Pool, pool_id)
    ctx.authorize(RESOURCE, "delete", pool.project_id)
    if pool.l7policies:
        raise exc.PoolInUseByL7Policy(id=pool.id, l7policy_id=pool.l7policies[0].id)
    status.begin_delete(db, pool.load_balancer_id, pool, pool.listeners)
    deps.commit(db, state)
    return deps.no_content()
