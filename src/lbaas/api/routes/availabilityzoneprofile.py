"""Availability zone profiles: /v2/lbaas/availabilityzoneprofiles
(api-ref "Availability Zone Profiles"), admin only.

A profile names a provider and the provider-specific settings
(``availability_zone_data``) of a zone. The data must be a JSON object the
provider's ``validate_availability_zone`` accepts: not JSON or not an object
is a 400 (InvalidOption); what the provider refuses is its 501
(ProviderUnsupportedOption). While an availability zone uses a profile, its
provider_name and data cannot change and it cannot be deleted (409
ObjectInUse); its name can.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Listing, State
from lbaas.api.query import columns_of, paginate, select_fields
from lbaas.api.schemas import availabilityzoneprofile as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Availability Zone Profiles"])
RESOURCE = "availability-zone-profile"
COLUMNS = columns_of(m.AvailabilityZoneProfile)
NAMED = "Availability Zone Profile"


def get_availability_zone_profile(db: Session, profile_id: str) -> m.AvailabilityZoneProfile:
    """The availability zone profile ``profile_id``, else NotFound (404)."""
    profile = db.get(m.AvailabilityZoneProfile, profile_id)
    if profile is None:
        raise exc.NotFound(resource=NAMED, id=profile_id)
    return profile


def _in_use(db: Session, profile_id: str) -> bool:
    used = db.scalar(select(func.count()).select_from(m.AvailabilityZone)
                     .where(m.AvailabilityZone.availability_zone_profile_id == profile_id))
    return bool(used)


def _validate(state: deps.ApiState, provider_name: str, zone_data: str) -> None:
    data = deps.json_object(zone_data, "availability_zone_data")
    driver = deps.provider_driver(state, provider_name)
    deps.call_provider(provider_name, driver.validate_availability_zone, data)


@router.get("/availabilityzoneprofiles", response_model=s.AvailabilityZoneProfilesRoot)
def list_availability_zone_profiles(request: Request, ctx: Ctx, db: Db, listing: Listing,
                                    state: State) -> JSONResponse:
    """List availability zone profiles."""
    ctx.authorize(RESOURCE, "get_all")
    page = paginate(db, request, listing, select(m.AvailabilityZoneProfile),
                    m.AvailabilityZoneProfile, COLUMNS, state.settings.api_base_uri)
    return JSONResponse({
        "availability_zone_profiles": [
            select_fields(s.AvailabilityZoneProfileResponse.dump(p), listing.fields)
            for p in page.rows],
        "availability_zone_profile_links": page.links})


@router.post("/availabilityzoneprofiles", status_code=201,
             response_model=s.AvailabilityZoneProfileRoot, responses=deps.PROVIDER_ERRORS)
def create_availability_zone_profile(body: s.AvailabilityZoneProfileCreateRoot, ctx: Ctx,
                                     db: Db, state: State) -> JSONResponse:
    """Create an availability zone profile for an enabled provider."""
    ctx.authorize(RESOURCE, "post")
    data = body.availability_zone_profile
    _validate(state, data.provider_name, data.availability_zone_data)
    profile = m.AvailabilityZoneProfile(
        id=m.new_id(), name=data.name, provider_name=data.provider_name,
        availability_zone_data=data.availability_zone_data)
    db.add(profile)
    db.commit()
    return deps.respond("availability_zone_profile",
                        s.AvailabilityZoneProfileResponse.dump(profile), 201)


@router.get("/availabilityzoneprofiles/{profile_id}",
            response_model=s.AvailabilityZoneProfileRoot)
def show_availability_zone_profile(profile_id: str, request: Request, ctx: Ctx,
                                   db: Db) -> JSONResponse:
    """Show one availability zone profile."""
    ctx.authorize(RESOURCE, "get_one")
    profile = get_availability_zone_profile(db, profile_id)
    return deps.respond("availability_zone_profile",
                        s.AvailabilityZoneProfileResponse.dump(profile),
                        fields=deps.fields_of(request))


@router.put("/availabilityzoneprofiles/{profile_id}",
            response_model=s.AvailabilityZoneProfileRoot, responses=deps.PROVIDER_ERRORS)
def update_availability_zone_profile(profile_id: str,
                                     body: s.AvailabilityZoneProfileUpdateRoot, ctx: Ctx,
                                     db: Db, state: State) -> JSONResponse:
    """Rename a profile, or change its provider or data while no zone uses it.

    InvalidOption (400) for a null field, ObjectInUse (409) for a profile in use.
    """
    ctx.authorize(RESOURCE, "put")
    changes = body.availability_zone_profile.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("name", "provider_name", "availability_zone_data"))
    profile = get_availability_zone_profile(db, profile_id)
    if {"provider_name", "availability_zone_data"} & changes.keys():
        if _in_use(db, profile.id):
            raise exc.ObjectInUse(object=NAMED, id=profile.id)
        _validate(state, changes.get("provider_name", profile.provider_name),
                  changes.get("availability_zone_data", profile.availability_zone_data))
    for key, value in changes.items():
        setattr(profile, key, value)
    db.commit()
    return deps.respond("availability_zone_profile",
                        s.AvailabilityZoneProfileResponse.dump(profile))


@router.delete("/availabilityzoneprofiles/{profile_id}", status_code=204,
               response_class=Response)
def delete_availability_zone_profile(profile_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete an availability zone profile no zone uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    profile = get_availability_zone_profile(db, profile_id)
    if _in_use(db, profile.id):
        raise exc.ObjectInUse(object=NAMED, id=profile.id)
    db.delete(profile)
    try:
        db.commit()
    except IntegrityError:  # a zone took it meanwhile
        raise exc.ObjectInUse(object=NAMED, id=profile_id) from None
    return deps.no_content()
