"""Quotas: /v2/lbaas/quotas (api-ref "Quotas").

A project without a row in ``quota`` has the configured defaults
(``[quotas] default_*_quota``); a row's null column means the default too.
:func:`lbaas.api.deps.check_quota` reads the same row the same way when an
object is created, so what GET shows is what creation enforces.

PUT and DELETE answer 202 Accepted, as Octavia does. DELETE removes the
project's row (back to the defaults); a project without one is a 404.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.schemas import quota as s
from lbaas.common import exceptions as exc
from lbaas.config import QuotaDefaults
from lbaas.db import locks
from lbaas.db import models as m

router = APIRouter(tags=["Quotas"])
RESOURCE = "quota"
COLUMNS = columns_of(m.Quota, aliases={
    "load_balancer": m.Quota.loadbalancer, "health_monitor": m.Quota.healthmonitor,
    "tenant_id": m.Quota.project_id})


def effective(row: m.Quota | None, defaults: QuotaDefaults) -> dict[str, int]:
    """Each quota of ``row`` by current name, the default where unset."""
    values: dict[str, int] = {}
    for key in s.QUOTA_KEYS:
        value = getattr(row, key) if row is not None else None
        values[key] = value if value is not None else getattr(defaults, key)
    return values


def _defaults(state: deps.ApiState) -> dict[str, int]:
    return effective(None, state.settings.quotas)


@router.get("/quotas", response_model=s.QuotaPage)
def list_quotas(ctx: Ctx, listing: Listing, state: State) -> JSONResponse:
    """List the projects that have quotas set (admins and quota admins see all
    projects, others only their own; ``project_id=`` of another project is a 403).
    """
    stmt = deps.listed_rows(ctx, listing, RESOURCE, select(m.Quota), m.Quota)
    return listing.respond("quotas", stmt, m.Quota, COLUMNS, lambda row: s.QuotaResponse.of(
        row.project_id, effective(row, state.settings.quotas)))


@router.get("/quotas/defaults", response_model=s.QuotaRoot)
def show_quota_defaults(ctx: Ctx, state: State) -> JSONResponse:
    """The configured default quotas (api-ref "Show Quota Defaults"), project null."""
    ctx.authorize(RESOURCE, "get_defaults")
    return JSONResponse({"quota": s.QuotaResponse.of(None, _defaults(state))})


@router.get("/quotas/{project_id}", response_model=s.QuotaRoot)
def show_quota(project_id: str, fields: Fields, ctx: Ctx, db: Db,
               state: State) -> JSONResponse:
    """A project's effective quotas: those set for it, the defaults elsewhere."""
    ctx.authorize(RESOURCE, "get_one", project_id)
    row = db.get(m.Quota, project_id)
    return deps.respond("quota", s.QuotaResponse.of(
        project_id, effective(row, state.settings.quotas)), fields=fields)


@router.get("/quotas/{project_id}/default", response_model=s.QuotaRoot)
def show_project_quota_defaults(project_id: str, ctx: Ctx, state: State) -> JSONResponse:
    """The defaults a project would have without quotas of its own."""
    ctx.authorize(RESOURCE, "get_defaults", project_id)
    return deps.respond("quota", s.QuotaResponse.of(project_id, _defaults(state)))


@router.put("/quotas/{project_id}", status_code=202, response_model=s.QuotaRoot)
def update_quota(project_id: str, body: s.QuotaUpdateRoot, ctx: Ctx, db: Db,
                 state: State) -> JSONResponse:
    """Set some or all of a project's quotas (202, as Octavia).

    Values are -1 (unlimited) to 2000000000; null resets one to its default.
    """
    ctx.authorize(RESOURCE, "put", project_id)
    row = _upsert(db, project_id, body.quota.changes())
    return deps.respond("quota", s.QuotaResponse.of(
        project_id, effective(row, state.settings.quotas)), status=202)


def _upsert(db: Session, project_id: str, changes: dict[str, int | None]) -> m.Quota:
    # Concurrent PUTs, and creates counting under the old quota, go first.
    locks.lock_project_quota(db, project_id)
    row = db.get(m.Quota, project_id, with_for_update=True)
    if row is None:
        row = m.Quota(project_id=project_id)
        db.add(row)
    deps.apply_changes(row, changes, keep_on_null=())
    db.commit()
    return row


@router.delete("/quotas/{project_id}", status_code=202, response_class=Response)
def reset_quota(project_id: str, ctx: Ctx, db: Db) -> Response:
    """Reset a project's quotas to the defaults (202, as Octavia).

    NotFound (404, "Quotas <project> not found.") if none are set.
    """
    ctx.authorize(RESOURCE, "delete", project_id)
    row = db.get(m.Quota, project_id, with_for_update=True)
    if row is None:
        raise exc.NotFound(resource="Quotas", id=project_id)
    db.delete(row)
    db.commit()
    return Response(status_code=202)

