"""Flavor profiles: /v2/lbaas/flavorprofiles (api-ref "Flavor Profiles"), admin only.

A profile names a provider and the provider-specific settings
(``flavor_data``) that a flavor stands for, with the rules of
:mod:`lbaas.api.profiles`: the data must be a JSON object the provider's
``validate_flavor`` accepts; while a flavor uses a profile, its
provider_name and flavor_data cannot change and it cannot be deleted.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from lbaas.api import deps, profiles
from lbaas.api.deps import Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.schemas import flavorprofile as s
from lbaas.db import models as m

router = APIRouter(tags=["Flavor Profiles"])
RESOURCE = "flavor-profile"
COLUMNS = columns_of(m.FlavorProfile)
# Octavia names the resource after its model in a lookup ("Flavor Profile x not
# found.") and by hand in a delete and a conflict ("Flavor profile x ...").
KIND = profiles.ProfileKind(data_field="flavor_data", used_by=m.Flavor.flavor_profile_id,
                            named="Flavor profile", check=lambda d: d.validate_flavor)


@router.get("/flavorprofiles", response_model=s.FlavorProfilePage)
def list_flavor_profiles(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List flavor profiles."""
    ctx.authorize(RESOURCE, "get_all")
    return listing.respond("flavorprofiles", select(m.FlavorProfile), m.FlavorProfile, COLUMNS,
                           s.FlavorProfileResponse.dump, links_key="flavorprofile_links")


@router.post("/flavorprofiles", status_code=201, response_model=s.FlavorProfileRoot,
             responses=deps.PROVIDER_ERRORS)
def create_flavor_profile(body: s.FlavorProfileCreateRoot, ctx: Ctx, db: Db,
                          state: State) -> JSONResponse:
    """Create a flavor profile for an enabled provider."""
    ctx.authorize(RESOURCE, "post")
    data = body.flavorprofile
    profiles.validate(state, KIND, data.provider_name, data.flavor_data)
    profile = m.FlavorProfile(id=m.new_id(), name=data.name, provider_name=data.provider_name,
                              flavor_data=data.flavor_data)
    db.add(profile)
    db.commit()
    return deps.respond("flavorprofile", s.FlavorProfileResponse.dump(profile), 201)


@router.get("/flavorprofiles/{flavorprofile_id}", response_model=s.FlavorProfileRoot)
def show_flavor_profile(flavorprofile_id: str, fields: Fields, ctx: Ctx,
                        db: Db) -> JSONResponse:
    """Show one flavor profile."""
    ctx.authorize(RESOURCE, "get_one")
    profile = deps.get_or_404(db, m.FlavorProfile, flavorprofile_id)
    return deps.respond("flavorprofile", s.FlavorProfileResponse.dump(profile), fields=fields)


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
    profile = deps.get_or_404(db, m.FlavorProfile, flavorprofile_id)
    profiles.change(db, state, KIND, profile, changes)
    db.commit()
    return deps.respond("flavorprofile", s.FlavorProfileResponse.dump(profile))


@router.delete("/flavorprofiles/{flavorprofile_id}", status_code=204, response_class=Response)
def delete_flavor_profile(flavorprofile_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete a flavor profile no flavor uses (else ObjectInUse, 409)."""
    ctx.authorize(RESOURCE, "delete")
    profile = deps.get_or_404(db, m.FlavorProfile, flavorprofile_id, shown_as=KIND.named)
    return profiles.delete(db, KIND, profile)
