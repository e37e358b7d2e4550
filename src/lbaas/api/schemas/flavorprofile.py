"""Flavor profile shapes (api-ref "Flavor Profiles").

``flavor_data`` is a JSON object sent as a string (at most 4096 characters)
and returned as sent; which keys it may hold is the provider's business
(``GET /v2/lbaas/providers/{provider}/flavor_capabilities``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from lbaas.api.schemas.common import Name, NameOut, PageLink, RequestModel, ResponseModel
from lbaas.db import models as m

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

    @classmethod
    def dump(cls, profile: m.FlavorProfile) -> dict[str, Any]:
        """The JSON body of ``profile``."""
        return cls.model_validate(profile).model_dump(mode="json")


class FlavorProfileRoot(ResponseModel):
    """``{"flavorprofile": {...}}``."""

    flavorprofile: FlavorProfileResponse


class FlavorProfilesRoot(ResponseModel):
    """The list; Octavia names its links ``flavorprofile_links`` (singular)."""

    flavorprofiles: list[FlavorProfileResponse]
    flavorprofile_links: list[PageLink]
