"""Availability zones: /v2/lbaas/availabilityzones (api-ref "Availability Zones").

A zone is what tenants pick (``availability_zone`` on a load balancer
create): a unique name (the key) over an availability zone profile. Admins
write, everyone with read access reads. A zone that load balancers use
cannot be deleted (409 ObjectInUse); disabling it stops new load balancers
from using it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing
from lbaas.api.query import columns_of
from lbaas.api.schemas import availabilityzone as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Availability Zones"])
RESOURCE = "availability-zone"
COLUMNS = columns_of(m.AvailabilityZone)


def _name_taken(name: str) -> exc.APIError:
    # Octavia's RecordAlreadyExists wording, grammar included.
    return exc.Conflict(detail=f"A availability zone of {name} already exists.")


@router.get("/availabilityzones", response_model=s.AvailabilityZonePage)
def list_availability_zones(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List availability zones (ordered by name unless sorted otherwise)."""
    ctx.authorize(RESOURCE, "get_all")
    return listing.respond("availability_zones", select(m.AvailabilityZone), m.AvailabilityZone,
                           COLUMNS, s.AvailabilityZoneResponse.dump)


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
    with deps.conflicts_as(db, _name_taken(data.name)):
        db.add(zone)
        db.commit()
    return deps.respond("availability_zone", s.AvailabilityZoneResponse.dump(zone), 201)


@router.get("/availabilityzones/{name}", response_model=s.AvailabilityZoneRoot)
def show_availability_zone(name: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one availability zone."""
    ctx.authorize(RESOURCE, "get_one")
    zone = deps.get_or_404(db, m.AvailabilityZone, name)
    return deps.respond("availability_zone", s.AvailabilityZoneResponse.dump(zone),
                        fields=fields)


@router.put("/availabilityzones/{name}", response_model=s.AvailabilityZoneRoot)
def update_availability_zone(name: str, body: s.AvailabilityZoneUpdateRoot, ctx: Ctx,
                             db: Db) -> JSONResponse:
    """Describe, enable or disable an availability zone (admin).

    InvalidOption (400) for a null enabled.
    """
    ctx.authorize(RESOURCE, "put")
    changes: dict[str, Any] = body.availability_zone.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("enabled",))
    zone = deps.get_or_404(db, m.AvailabilityZone, name)
    deps.apply_changes(zone, changes)
    db.commit()
    return deps.respond("availability_zone", s.AvailabilityZoneResponse.dump(zone))


@router.delete("/availabilityzones/{name}", status_code=204, response_class=Response)
def delete_availability_zone(name: str, ctx: Ctx, db: Db) -> Response:
    """Delete an availability zone no load balancer uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    zone = deps.get_or_404(db, m.AvailabilityZone, name)
    return deps.delete_unused(db, zone,
                              deps.used_by(db, m.LoadBalancer.availability_zone, zone.name),
                              exc.ObjectInUse(object="Availability Zone", id=zone.name))
