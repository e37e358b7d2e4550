"""Flavor profile shapes (api-ref "Flavor Profiles").

``flavor_data`` is a JSON object sent as a string (at most 4096 characters)
and returned as sent; which keys it may hold is the provider's business
(``GET /v2/lbaas/providers/{provider}/flavor_capabilities``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbaas.api.schemas.common import (
    Name,
    NameOut,
    RequestModel,
    ResponseModel,
    envelope,
    page_envelope,
)

ProviderName = Annotated[str, Field(max_length=255)]
ProfileData = Annotated[str, Field(max_length=4096)]


class FlavorProfileCreate(RequestModel):
    """POST /v2/lbaas/flavorprofiles: every field is mandatory."""

    name: Name
    provider_name: ProviderName
    flavor_data: ProfileData


class FlavorProfileCreateRoot(RequestModel):
    """``{"flavorprofile": {...}}`` of a POST."""

    flavorprofile: FlavorProfileCreate


class FlavorProfileUpdate(RequestModel):
    """PUT /v2/lbaas/flavorprofiles/{id}: only the fields given change; none
    may be null. provider_name and flavor_data are frozen while a flavor uses
    the profile.
    """

    name: Name | None = None
    provider_name: ProviderName | None = None
    flavor_data: ProfileData | None = None


class FlavorProfileUpdateRoot(RequestModel):
    """``{"flavorprofile": {...}}`` of a PUT."""

    flavorprofile: FlavorProfileUpdate


class FlavorProfileResponse(ResponseModel):
    """A flavor profile as shown; flavor_data as sent."""

    id: str
    name: NameOut
    provider_name: str
    flavor_data: str


FlavorProfileRoot = envelope("flavorprofile", FlavorProfileResponse)
# Octavia names the links "flavorprofile_links" (singular).
FlavorProfilePage = page_envelope("flavorprofiles", FlavorProfileResponse, "flavorprofile_links")
