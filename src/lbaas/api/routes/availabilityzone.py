"""Availability zones: /v2/lbaas/availabilityzones (api-ref "Availability Zones").

A zone is what tenants pick (``availability_zone`` on a load balancer
create): a unique name (the key) over an availability zone profile. Admins
write, everyone with read access reads. A zone that load balancers use
cannot be deleted (409 ObjectInUse); disabling it stops new load balancers
from using it.
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
from lbaas.api.schemas import availabilityzone as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Availability Zones"])
RESOURCE = "availability-zone"
COLUMNS = columns_of(m.AvailabilityZone)
NAMED = "Availability Zone"


def get_availability_zone(db: Session, name: str) -> m.AvailabilityZone:
    """The availability zone ``name``, else NotFound (404)."""
    zone = db.get(m.AvailabilityZone, name)
    if zone is None:
        raise exc.NotFound(resource=NAMED, id=name)
    return zone


def _name_taken(name: str) -> exc.APIError:
    # Octavia's RecordAlreadyExists wording, grammar included.
    return exc.Conflict(detail=f"A availability zone of {name} already exists.")


@router.get("/availabilityzones", response_model=s.AvailabilityZonesRoot)
def list_availability_zones(request: Request, ctx: Ctx, db: Db, listing: Listing,
                            state: State) -> JSONResponse:
    """List availability zones (ordered by name unless sorted otherwise)."""
    ctx.authorize(RESOURCE, "get_all")
    page = paginate(db, request, deps.ordered_by(listing, "name"), select(m.AvailabilityZone),
                    m.AvailabilityZone, COLUMNS, state.settings.api_base_uri)
    return deps.respond_list("availability_zones",
                             [s.AvailabilityZoneResponse.dump(z) for z in page.rows],
                             page.links, listing.fields)


@router.post("/availabilityzones", status_code=201, response_model=s.AvailabilityZoneRoot)
def create_availability_zone(body: s.AvailabilityZoneCreateRoot, ctx: Ctx,
                             db: Db) -> JSONResponse:
    """Create an availability zone (admin).

    InvalidSubresource (400) for an unknown profile, Conflict (409) for a name in use.
    """
    ctx.authorize(RESOURCE, "post")
    data = body.availability_zone
    if db.get(m.AvailabilityZoneProfile, data.availability_zone_profile_id) is None:
        raise exc.InvalidSubresource(resource="Availability zone profile",
                                     id=data.availability_zone_profile_id)
    if db.get(m.AvailabilityZone, data.name) is not None:
        raise _name_taken(data.name)
    zone = m.AvailabilityZone(name=data.name, description=data.description,
                              enabled=data.enabled,
                              availability_zone_profile_id=data.availability_zone_profile_id)
    db.add(zone)
    try:
        db.commit()
    except IntegrityError:  # another request took the name meanwhile
        raise _name_taken(data.name) from None
    return deps.respond("availability_zone", s.AvailabilityZoneResponse.dump(zone), 201)


@router.get("/availabilityzones/{name}", response_model=s.AvailabilityZoneRoot)
def show_availability_zone(name: str, request: Request, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one availability zone."""
    ctx.authorize(RESOURCE, "get_one")
    return deps.respond("availability_zone",
                        s.AvailabilityZoneResponse.dump(get_availability_zone(db, name)),
                        fields=deps.fields_of(request))


@router.put("/availabilityzones/{name}", response_model=s.AvailabilityZoneRoot)
def update_availability_zone(name: str, body: s.AvailabilityZoneUpdateRoot, ctx: Ctx,
                             db: Db) -> JSONResponse:
    """Describe, enable or disable an availability zone (admin).

    InvalidOption (400) for a null enabled.
    """
    ctx.authorize(RESOURCE, "put")
    changes: dict[str, Any] = body.availability_zone.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("enabled",))
    zone = get_availability_zone(db, name)
    for key, value in changes.items():
        setattr(zone, key, value)
    db.commit()
    return deps.respond("availability_zone", s.AvailabilityZoneResponse.dump(zone))


@router.delete("/availabilityzones/{name}", status_code=204, response_class=Response)
def delete_availability_zone(name: str, ctx: Ctx, db: Db) -> Response:
    """Delete an availability zone no load balancer uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    zone = get_availability_zone(db, name)
    used = db.scalar(select(func.count()).select_from(m.LoadBalancer)
                     .where(m.LoadBalancer.availability_zone == zone.name))
    if used:
        raise exc.ObjectInUse(object=NAMED, id=zone.name)
    db.delete(zone)
    try:
        db.commit()
    except IntegrityError:  # a load balancer took it meanwhile
        raise exc.ObjectInUse(object=NAMED, id=name) from None
    return deps.no_content()
