"""Availability zone profiles: /v2/lbaas/availabilityzoneprofiles
(api-ref "Availability Zone Profiles"), admin only.

A profile names a provider and the provider-specific settings
(``availability_zone_data``) of a zone, with the rules of
:mod:`lbaas.api.profiles`: the data must be a JSON object the provider's
``validate_availability_zone`` accepts; while an availability zone uses a
profile, its provider_name and data cannot change and it cannot be deleted.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from lbaas.api import deps, profiles
from lbaas.api.deps import Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.schemas import availabilityzoneprofile as s
from lbaas.db import models as m

router = APIRouter(tags=["Availability Zone Profiles"])
RESOURCE = "availability-zone-profile"
COLUMNS = columns_of(m.AvailabilityZoneProfile)
KIND = profiles.ProfileKind(data_field="availability_zone_data",
                            used_by=m.AvailabilityZone.availability_zone_profile_id,
                            named="Availability Zone Profile",
                            check=lambda d: d.validate_availability_zone)


@router.get("/availabilityzoneprofiles", response_model=s.AvailabilityZoneProfilePage)
def list_availability_zone_profiles(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List availability zone profiles."""
    ctx.authorize(RESOURCE, "get_all")
    return listing.respond("availability_zone_profiles", select(m.AvailabilityZoneProfile),
                           m.AvailabilityZoneProfile, COLUMNS,
                           s.AvailabilityZoneProfileResponse.dump,
                           links_key="availability_zone_profile_links")


@router.post("/availabilityzoneprofiles", status_code=201,
             response_model=s.AvailabilityZoneProfileRoot, responses=deps.PROVIDER_ERRORS)
def create_availability_zone_profile(body: s.AvailabilityZoneProfileCreateRoot, ctx: Ctx,
                                     db: Db, state: State) -> JSONResponse:
    """Create an availability zone profile for an enabled provider."""
    ctx.authorize(RESOURCE, "post")
    data = body.availability_zone_profile
    profiles.validate(state, KIND, data.provider_name, data.availability_zone_data)
    profile = m.AvailabilityZoneProfile(
        id=m.new_id(), name=data.name, provider_name=data.provider_name,
        availability_zone_data=data.availability_zone_data)
    db.add(profile)
    db.commit()
    return deps.respond("availability_zone_profile",
                        s.AvailabilityZoneProfileResponse.dump(profile), 201)


@router.get("/availabilityzoneprofiles/{profile_id}",
            response_model=s.AvailabilityZoneProfileRoot)
def show_availability_zone_profile(profile_id: str, fields: Fields, ctx: Ctx,
                                   db: Db) -> JSONResponse:
    """Show one availability zone profile."""
    ctx.authorize(RESOURCE, "get_one")
    profile = deps.get_or_404(db, m.AvailabilityZoneProfile, profile_id)
    return deps.respond("availability_zone_profile",
                        s.AvailabilityZoneProfileResponse.dump(profile), fields=fields)


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
    profile = deps.get_or_404(db, m.AvailabilityZoneProfile, profile_id)
    profiles.change(db, state, KIND, profile, changes)
    db.commit()
    return deps.respond("availability_zone_profile",
                        s.AvailabilityZoneProfileResponse.dump(profile))


@router.delete("/availabilityzoneprofiles/{profile_id}", status_code=204,
               response_class=Response)
def delete_availability_zone_profile(profile_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete an availability zone profile no zone uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    profile = deps.get_or_404(db, m.AvailabilityZoneProfile, profile_id)
    return profiles.delete(db, KIND, profile)
