"""Flavors: /v2/lbaas/flavors (api-ref "Flavors").

A flavor is what tenants pick (``flavor_id`` on a load balancer create): a
unique name over a flavor profile (provider + settings). Admins write,
everyone with read access reads. A flavor that load balancers use cannot be
deleted (409 ObjectInUse); disabling it stops new load balancers from using it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing
from lbaas.api.query import columns_of
from lbaas.api.schemas import flavor as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Flavors"])
RESOURCE = "flavor"
COLUMNS = columns_of(m.Flavor)


def _name_taken(name: str) -> exc.APIError:
    # Octavia's RecordAlreadyExists wording.
    return exc.Conflict(detail=f"A flavor of {name} already exists.")


def _check_name_free(db: Session, name: str, flavor_id: str | None = None) -> None:
    other = db.scalar(select(m.Flavor.id).where(m.Flavor.name == name))
    if other is not None and other != flavor_id:
        raise _name_taken(name)


@router.get("/flavors", response_model=s.FlavorPage)
def list_flavors(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List flavors."""
    ctx.authorize(RESOURCE, "get_all")
    return listing.respond("flavors", select(m.Flavor), m.Flavor, COLUMNS, s.FlavorResponse.dump)


@router.post("/flavors", status_code=201, response_model=s.FlavorRoot)
def create_flavor(body: s.FlavorCreateRoot, ctx: Ctx, db: Db) -> JSONResponse:
    """Create a flavor (admin).

    InvalidSubresource (400) for an unknown flavor_profile_id, Conflict (409)
    for a name in use.
    """
    ctx.authorize(RESOURCE, "post")
    data = body.flavor
    if db.get(m.FlavorProfile, data.flavor_profile_id) is None:
        raise exc.InvalidSubresource(resource="Flavor profile", id=data.flavor_profile_id)
    _check_name_free(db, data.name)
    flavor = m.Flavor(id=m.new_id(), name=data.name, description=data.description,
                      enabled=data.enabled, flavor_profile_id=data.flavor_profile_id)
    with deps.conflicts_as(db, _name_taken(data.name)):
        db.add(flavor)
        db.commit()
    return deps.respond("flavor", s.FlavorResponse.dump(flavor), 201)


@router.get("/flavors/{flavor_id}", response_model=s.FlavorRoot)
def show_flavor(flavor_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one flavor."""
    ctx.authorize(RESOURCE, "get_one")
    return deps.respond("flavor", s.FlavorResponse.dump(deps.get_or_404(db, m.Flavor, flavor_id)),
                        fields=fields)


@router.put("/flavors/{flavor_id}", response_model=s.FlavorRoot)
def update_flavor(flavor_id: str, body: s.FlavorUpdateRoot, ctx: Ctx,
                  db: Db) -> JSONResponse:
    """Rename, describe, enable or disable a flavor (admin).

    InvalidOption (400) for a null name or enabled, Conflict (409) for a name in use.
    """
    ctx.authorize(RESOURCE, "put")
    changes: dict[str, Any] = body.flavor.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("name", "enabled"))
    flavor = deps.get_or_404(db, m.Flavor, flavor_id)
    if "name" in changes:
        _check_name_free(db, changes["name"], flavor.id)
    with deps.conflicts_as(db, _name_taken(changes.get("name", flavor.name))):
        deps.apply_changes(flavor, changes)
        db.commit()
    return deps.respond("flavor", s.FlavorResponse.dump(flavor))


@router.delete("/flavors/{flavor_id}", status_code=204, response_class=Response)
def delete_flavor(flavor_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete a flavor no load balancer uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    flavor = deps.get_or_404(db, m.Flavor, flavor_id)
    return deps.delete_unused(db, flavor, deps.used_by(db, m.LoadBalancer.flavor_id, flavor.id),
                              exc.ObjectInUse(object="Flavor", id=flavor.id))
