"""Health monitors: /v2/lbaas/healthmonitors (api-ref "Health Monitors").

One monitor per pool. Creating, changing or deleting one locks the load
balancer and marks the pool and its listeners PENDING_UPDATE, as Octavia
does. A new monitor is operating_status OFFLINE until it is provisioned:
then ONLINE if enabled (OFFLINE if not), as Octavia's worker sets it, until
the health manager sees it; members' operating status is the health manager's business (the
API does not touch it, as in Octavia).

Rules (Octavia ``api/v2/controllers/health_monitor.py``):

- UDP and SCTP pools take UDP-CONNECT, SCTP, TCP or HTTP monitors, and a
  UDP-CONNECT ``delay`` of at least :data:`UDP_CONNECT_MIN_DELAY` seconds;
  other pools refuse UDP-CONNECT and SCTP;
- ``http_method``, ``url_path`` and ``expected_codes`` are for HTTP and
  HTTPS monitors only, and default to GET, "/" and "200" there;
- ``domain_name`` needs ``http_version`` 1.1.

Octavia's api-ref says ``timeout`` "must be less than the delay value", but
Octavia does not enforce it, and neither does lbaas: HAProxy copes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.schemas import healthmonitor as s
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["Health Monitors"])
RESOURCE = "healthmonitor"
COLUMNS = columns_of(m.HealthMonitor)

# Octavia's [api_settings] udp_connect_min_interval_health_monitor default (seconds).
UDP_CONNECT_MIN_DELAY = 3
HTTP_TYPES = (c.HM_HTTP, c.HM_HTTPS)
HTTP_ONLY_FIELDS = ("http_method", "url_path", "expected_codes")
# Monitor types a UDP or SCTP pool accepts.
UDP_SCTP_POOL_TYPES = (c.HM_UDP_CONNECT, c.HM_SCTP, c.HM_TCP, c.HM_HTTP)
DEFAULT_HTTP_METHOD = "GET"
DEFAULT_URL_PATH = "/"
DEFAULT_EXPECTED_CODES = "200"
_HTTP_DEFAULTS = {"http_method": DEFAULT_HTTP_METHOD, "url_path": DEFAULT_URL_PATH,
                  "expected_codes": DEFAULT_EXPECTED_CODES,
                  "max_retries_down": c.DEFAULT_MAX_RETRIES_DOWN}


# -- rules ---------------------------------------------------------------------

def check_type_for_pool(pool_protocol: str, hm_type: str, delay: int | None) -> None:
    """Raise ValidationError (400) if ``hm_type`` cannot monitor a ``pool_protocol`` pool.

    ``delay`` (seconds, None if unchanged) is checked against the UDP-CONNECT
    minimum.
    """
    udp_sctp = "/".join((c.UDP, c.SCTP))
    if pool_protocol in (c.UDP, c.SCTP):
        if hm_type not in UDP_SCTP_POOL_TYPES:
            raise exc.ValidationError(detail=(
                f"The associated pool protocol is {pool_protocol}, so only a "
                f"{'/'.join(UDP_SCTP_POOL_TYPES)} health monitor is supported."))
        if hm_type == c.HM_UDP_CONNECT and delay is not None and delay < UDP_CONNECT_MIN_DELAY:
            raise exc.ValidationError(detail=(
                f"The request delay value {delay} should be larger than "
                f"{UDP_CONNECT_MIN_DELAY} for {c.HM_UDP_CONNECT} health monitor type."))
    elif hm_type in (c.HM_UDP_CONNECT, c.HM_SCTP):
        raise exc.ValidationError(
            detail=f"The {hm_type} type is only supported for pools of type {udp_sctp}.")


def _refuse_http_fields(hm_type: str, given: dict[str, Any]) -> None:
    for name in HTTP_ONLY_FIELDS:
        if name in given:
            raise exc.InvalidOption(value=name, option=f"health monitors of type {hm_type}")


def _check_domain_name(domain_name: str | None, http_version: float | None) -> None:
    if not domain_name:
        return
    if not http_version:
        raise exc.ValidationError(
            detail="'http_version' must be specified when 'domain_name' is provided.")
    if http_version < 1.1:
        raise exc.InvalidOption(value=f"http_version {http_version}",
                                option="health monitors HTTP 1.1 domain name health check")


def _create_fields(pool: m.Pool, data: s.HealthMonitorSingleCreate) -> dict[str, Any]:
    """The columns of a new monitor of ``pool``, defaults applied. Raises 400s."""
    check_type_for_pool(pool.protocol, data.type, data.delay)
    fields = data.model_dump(include=set(s.HealthMonitorSingleCreate.model_fields) - {"tags"})
    if data.type in HTTP_TYPES:
        for name in HTTP_ONLY_FIELDS:
            fields[name] = fields[name] or _HTTP_DEFAULTS[name]
    else:
        _refuse_http_fields(data.type, {k: v for k, v in fields.items()
                                        if k in HTTP_ONLY_FIELDS and v})
    _check_domain_name(fields["domain_name"], fields["http_version"])
    if fields["max_retries_down"] is None:
        fields["max_retries_down"] = c.DEFAULT_MAX_RETRIES_DOWN
    return fields


def _attach(pool: m.Pool, fields: dict[str, Any], tags: list[str] | None) -> m.HealthMonitor:
    hm = m.HealthMonitor(id=m.new_id(), project_id=pool.project_id,
                         operating_status=c.OFFLINE, **fields)
    hm.tags = list(tags or [])
    pool.health_monitor = hm
    return hm


def new_health_monitor(pool: m.Pool, data: s.HealthMonitorSingleCreate) -> m.HealthMonitor:
    """Validate ``data`` and attach a new monitor (OFFLINE) to a new ``pool``.

    No quota check: for :func:`lbaas.api.routes.pool.build_pool`, which
    checks the quotas of the whole tree first. Raises ValidationError /
    InvalidOption (400).
    """
    return _attach(pool, _create_fields(pool, data), data.tags)


def build_health_monitor(db: Session, state: ApiState, pool: m.Pool,
                         data: s.HealthMonitorSingleCreate) -> m.HealthMonitor:
    """Validate ``data``, check the quota and attach a new monitor (OFFLINE) to ``pool``.

    No locking, no commit. Raises ValidationError / InvalidOption (400),
    QuotaExceeded (403), DuplicateHealthMonitor (409) if ``pool`` has one.
    """
    fields = _create_fields(pool, data)
    deps.check_quota(db, state, pool.load_balancer, "healthmonitor")
    if pool.health_monitor is not None:
        raise exc.DuplicateHealthMonitor()
    return _attach(pool, fields, data.tags)


def _check_update(hm: m.HealthMonitor, changes: dict[str, Any]) -> None:
    """Refuse what Octavia refuses in an update and apply its null defaults in place."""
    if hm.type not in HTTP_TYPES:
        _refuse_http_fields(hm.type, changes)
    deps.refuse_nulls(changes, ("delay", "max_retries", "timeout"))
    _check_domain_name(changes.get("domain_name", hm.domain_name),
                       changes.get("http_version", hm.http_version))
    check_type_for_pool(hm.pool.protocol, hm.type, changes.get("delay"))
    for name, default in _HTTP_DEFAULTS.items():
        if name in changes and changes[name] is None:
            changes[name] = default


# -- handlers ------------------------------------------------------------------

@router.get("/healthmonitors", response_model=s.HealthMonitorPage)
def list_health_monitors(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List health monitors visible to the caller."""
    stmt = deps.listed_rows(ctx, listing, RESOURCE, select(m.HealthMonitor), m.HealthMonitor)
    return listing.respond("healthmonitors", stmt, m.HealthMonitor, COLUMNS,
                           s.HealthMonitorResponse.dump)


@router.post("/healthmonitors", status_code=201, response_model=s.HealthMonitorRoot)
def create_health_monitor(body: s.HealthMonitorCreateRoot, ctx: Ctx, db: Db,
                          state: State) -> JSONResponse:
    """Create a health monitor (PENDING_CREATE) for a pool."""
    data = body.healthmonitor
    pool = deps.get_visible(db, ctx, m.Pool, data.pool_id)
    ctx.authorize(RESOURCE, "post", pool.project_id)
    hm = build_health_monitor(db, state, pool, data)
    with deps.conflicts_as(db, exc.DuplicateHealthMonitor()):  # one monitor per pool
        status.begin_create(db, pool.load_balancer_id, [hm], [pool, *pool.listeners])
        db.flush()
    deps.check_provider(state, pool.load_balancer)
    deps.commit(db, state)
    return deps.respond("healthmonitor", s.HealthMonitorResponse.dump(hm), 201)


@router.get("/healthmonitors/{healthmonitor_id}", response_model=s.HealthMonitorRoot)
def show_health_monitor(healthmonitor_id: str, fields: Fields, ctx: Ctx,
                        db: Db) -> JSONResponse:
    """Show one health monitor."""
    hm = deps.get_visible(db, ctx, m.HealthMonitor, healthmonitor_id)
    ctx.authorize(RESOURCE, "get_one", hm.project_id)
    return deps.respond("healthmonitor", s.HealthMonitorResponse.dump(hm), fields=fields)


@router.put("/healthmonitors/{healthmonitor_id}", response_model=s.HealthMonitorRoot)
def update_health_monitor(healthmonitor_id: str, body: s.HealthMonitorUpdateRoot, ctx: Ctx,
                          db: Db, state: State) -> JSONResponse:
    """Update a health monitor's timing, HTTP check, name, admin state or tags."""
    hm = deps.get_visible(db, ctx, m.HealthMonitor, healthmonitor_id)
    ctx.authorize(RESOURCE, "put", hm.project_id)
    changes = body.healthmonitor.model_dump(exclude_unset=True)
    _check_update(hm, changes)
    pool = hm.pool
    status.begin_update(db, pool.load_balancer_id, hm, [pool, *pool.listeners])
    deps.apply_changes(hm, changes)
    deps.check_provider(state, pool.load_balancer)
    deps.commit(db, state)
    return deps.respond("healthmonitor", s.HealthMonitorResponse.dump(hm))


@router.delete("/healthmonitors/{healthmonitor_id}", status_code=204, response_class=Response)
def delete_health_monitor(healthmonitor_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a health monitor; its pool's members are then no longer checked."""
    hm = deps.get_visible(db, ctx, m.HealthMonitor, healthmonitor_id)
    ctx.authorize(RESOURCE, "delete", hm.project_id)
    pool = hm.pool
    status.begin_delete(db, pool.load_balancer_id, hm, [pool, *pool.listeners])
    deps.commit(db, state)
    return deps.no_content()
