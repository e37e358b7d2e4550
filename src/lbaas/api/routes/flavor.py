"""Flavors: /v2/lbaas/flavors (api-ref "Flavors").

A flavor is what tenants pick (``flavor_id`` on a load balancer create): a
unique name over a flavor profile (provider + settings). Admins write,
everyone with read access reads. A flavor that load balancers use cannot be
deleted (409 ObjectInUse); disabling it stops new load balancers from using it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Listing, State
from lbaas.api.query import columns_of, paginate
from lbaas.api.schemas import flavor as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Flavors"])
RESOURCE = "flavor"
COLUMNS = columns_of(m.Flavor)


def get_flavor(db: Session, flavor_id: str) -> m.Flavor:
    """The flavor ``flavor_id``, else NotFound (404)."""
    flavor = db.get(m.Flavor, flavor_id)
    if flavor is None:
        raise exc.NotFound(resource="Flavor", id=flavor_id)
    return flavor


def _name_taken(name: str) -> exc.APIError:
    # Octavia's RecordAlreadyExists wording.
    return exc.Conflict(detail=f"A flavor of {name} already exists.")


def _check_name_free(db: Session, name: str, flavor_id: str | None = None) -> None:
    other = db.scalar(select(m.Flavor.id).where(m.Flavor.name == name))
    if other is not None and other != flavor_id:
        raise _name_taken(name)


def _commit(db: Session, name: str | None) -> None:
    try:
        db.commit()
    except IntegrityError:  # another request took the name meanwhile
        db.rollback()
        raise _name_taken(name or "") from None


@router.get("/flavors", response_model=s.FlavorsRoot)
def list_flavors(request: Request, ctx: Ctx, db: Db, listing: Listing,
                 state: State) -> JSONResponse:
    """List flavors."""
    ctx.authorize(RESOURCE, "get_all")
    page = paginate(db, request, listing, select(m.Flavor), m.Flavor, COLUMNS,
                    state.settings.api_base_uri)
    return deps.respond_list("flavors", [s.FlavorResponse.dump(f) for f in page.rows],
                             page.links, listing.fields)


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
    db.add(flavor)
    _commit(db, data.name)
    return deps.respond("flavor", s.FlavorResponse.dump(flavor), 201)


@router.get("/flavors/{flavor_id}", response_model=s.FlavorRoot)
def show_flavor(flavor_id: str, request: Request, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one flavor."""
    ctx.authorize(RESOURCE, "get_one")
    return deps.respond("flavor", s.FlavorResponse.dump(get_flavor(db, flavor_id)),
                        fields=deps.fields_of(request))


@router.put("/flavors/{flavor_id}", response_model=s.FlavorRoot)
def update_flavor(flavor_id: str, body: s.FlavorUpdateRoot, ctx: Ctx,
                  db: Db) -> JSONResponse:
    """Rename, describe, enable or disable a flavor (admin).

    InvalidOption (400) for a null name or enabled, Conflict (409) for a name in use.
    """
    ctx.authorize(RESOURCE, "put")
    changes: dict[str, Any] = body.flavor.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("name", "enabled"))
    flavor = get_flavor(db, flavor_id)
    if "name" in changes:
        _check_name_free(db, changes["name"], flavor.id)
    for key, value in changes.items():
        setattr(flavor, key, value)
    _commit(db, changes.get("name"))
    return deps.respond("flavor", s.FlavorResponse.dump(flavor))


@router.delete("/flavors/{flavor_id}", status_code=204, response_class=Response)
def delete_flavor(flavor_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete a flavor no load balancer uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    flavor = get_flavor(db, flavor_id)
    used = db.scalar(select(func.count()).select_from(m.LoadBalancer)
                     .where(m.LoadBalancer.flavor_id == flavor.id))
    if used:
        raise exc.ObjectInUse(object="Flavor", id=flavor.id)
    db.delete(flavor)
    try:
        db.commit()
    except IntegrityError:  # a load balancer took it meanwhile
        raise exc.ObjectInUse(object="Flavor", id=flavor_id) from None
    return deps.no_content()
