"""Flavor shapes (api-ref "Flavors")."""

from __future__ import annotations

from lbaas.api.schemas.common import (
    Description,
    Name,
    NameOut,
    RequestModel,
    ResponseModel,
    UUIDStr,
    envelope,
    page_envelope,
)


class FlavorCreate(RequestModel):
    """POST /v2/lbaas/flavors: name and flavor_profile_id are mandatory."""

    name: Name
    description: Description | None = None
    enabled: bool = True
    flavor_profile_id: UUIDStr


class FlavorCreateRoot(RequestModel):
    """``{"flavor": {...}}`` of a POST."""

    flavor: FlavorCreate


class FlavorUpdate(RequestModel):
    """PUT /v2/lbaas/flavors/{id}: only the fields given change; the profile is fixed."""

    name: Name | None = None
    description: Description | None = None
    enabled: bool | None = None


class FlavorUpdateRoot(RequestModel):
    """``{"flavor": {...}}`` of a PUT."""

    flavor: FlavorUpdate


class FlavorResponse(ResponseModel):
    """A flavor as shown; a missing description prints as ""."""

    id: str
    name: NameOut
    description: NameOut
    enabled: bool
    flavor_profile_id: str


FlavorRoot = envelope("flavor", FlavorResponse)
FlavorPage = page_envelope("flavors", FlavorResponse)
