"""Flavor profiles: /v2/lbaas/flavorprofiles (api-ref "Flavor Profiles"), admin only.

A profile names a provider and the provider-specific settings
(``flavor_data``) that a flavor stands for. The data must be a JSON object
the provider's ``validate_flavor`` accepts: not JSON or not an object is a
400 (InvalidOption); keys the provider refuses are its 501
(ProviderUnsupportedOption), as in Octavia. While a flavor uses a profile,
its provider_name and flavor_data cannot change and it cannot be deleted
(409 ObjectInUse); its name can.
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
from lbaas.api.schemas import flavorprofile as s
from lbaas.common import exceptions as exc
from lbaas.db import models as m

router = APIRouter(tags=["Flavor Profiles"])
RESOURCE = "flavor-profile"
COLUMNS = columns_of(m.FlavorProfile)
# Octavia names the resource after its model in a lookup ("Flavor Profile x not
# found.") and by hand in a delete ("Flavor profile x not found.").
SHOWN_AS = "Flavor Profile"
DELETED_AS = "Flavor profile"


def get_flavor_profile(db: Session, profile_id: str, shown_as: str = SHOWN_AS,
                       ) -> m.FlavorProfile:
    """The flavor profile ``profile_id``, else NotFound (404)."""
    profile = db.get(m.FlavorProfile, profile_id)
    if profile is None:
        raise exc.NotFound(resource=shown_as, id=profile_id)
    return profile


def _in_use(db: Session, profile_id: str) -> bool:
    used = db.scalar(select(func.count()).select_from(m.Flavor)
                     .where(m.Flavor.flavor_profile_id == profile_id))
    return bool(used)


def _validate(state: deps.ApiState, provider_name: str, flavor_data: str) -> None:
    data = deps.json_object(flavor_data, "flavor_data")
    driver = deps.provider_driver(state, provider_name)
    deps.call_provider(provider_name, driver.validate_flavor, data)


@router.get("/flavorprofiles", response_model=s.FlavorProfilesRoot)
def list_flavor_profiles(request: Request, ctx: Ctx, db: Db, listing: Listing,
                         state: State) -> JSONResponse:
    """List flavor profiles."""
    ctx.authorize(RESOURCE, "get_all")
    page = paginate(db, request, listing, select(m.FlavorProfile), m.FlavorProfile, COLUMNS,
                    state.settings.api_base_uri)
    return JSONResponse({
        "flavorprofiles": [select_fields(s.FlavorProfileResponse.dump(p), listing.fields)
                           for p in page.rows],
        "flavorprofile_links": page.links})


@router.post("/flavorprofiles", status_code=201, response_model=s.FlavorProfileRoot,
             responses=deps.PROVIDER_ERRORS)
def create_flavor_profile(body: s.FlavorProfileCreateRoot, ctx: Ctx, db: Db,
                          state: State) -> JSONResponse:
    """Create a flavor profile for an enabled provider."""
    ctx.authorize(RESOURCE, "post")
    data = body.flavorprofile
    _validate(state, data.provider_name, data.flavor_data)
    profile = m.FlavorProfile(id=m.new_id(), name=data.name, provider_name=data.provider_name,
                              flavor_data=data.flavor_data)
    db.add(profile)
    db.commit()
    return deps.respond("flavorprofile", s.FlavorProfileResponse.dump(profile), 201)


@router.get("/flavorprofiles/{flavorprofile_id}", response_model=s.FlavorProfileRoot)
def show_flavor_profile(flavorprofile_id: str, request: Request, ctx: Ctx,
                        db: Db) -> JSONResponse:
    """Show one flavor profile."""
    ctx.authorize(RESOURCE, "get_one")
    profile = get_flavor_profile(db, flavorprofile_id)
    return deps.respond("flavorprofile", s.FlavorProfileResponse.dump(profile),
                        fields=deps.fields_of(request))


@router.put("/flavorprofiles/{flavorprofile_id}", response_model=s.FlavorProfileRoot,
            responses=deps.PROVIDER_ERRORS)
def update_flavor_profile(flavorprofile_id: str, body: s.FlavorProfileUpdateRoot, ctx: Ctx,
                          db: Db, state: State) -> JSONResponse:
    """Rename a profile, or change its provider or data while no flavor uses it.

    InvalidOption (400) for a null field, ObjectInUse (409) for a profile in use.
    """
    ctx.authorize(RESOURCE, "put")
    changes = body.flavorprofile.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("name", "provider_name", "flavor_data"))
    profile = get_flavor_profile(db, flavorprofile_id)
    if {"provider_name", "flavor_data"} & changes.keys():
        if _in_use(db, profile.id):
            raise exc.ObjectInUse(object="Flavor profile", id=profile.id)
        _validate(state, changes.get("provider_name", profile.provider_name),
                  changes.get("flavor_data", profile.flavor_data))
    for key, value in changes.items():
        setattr(profile, key, value)
    db.commit()
    return deps.respond("flavorprofile", s.FlavorProfileResponse.dump(profile))


@router.delete("/flavorprofiles/{flavorprofile_id}", status_code=204, response_class=Response)
def delete_flavor_profile(flavorprofile_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete a flavor profile no flavor uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    profile = get_flavor_profile(db, flavorprofile_id, DELETED_AS)
    if _in_use(db, profile.id):
        raise exc.ObjectInUse(object="Flavor profile", id=profile.id)
    db.delete(profile)
    try:
        db.commit()
    except IntegrityError:  # a flavor took it meanwhile
        raise exc.ObjectInUse(object="Flavor profile", id=flavorprofile_id) from None
    return deps.no_content()
