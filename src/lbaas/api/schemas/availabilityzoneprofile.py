"""Availability zone profile shapes (api-ref "Availability Zone Profiles").

``availability_zone_data`` is a JSON object sent as a string (at most 4096
characters) and returned as sent; its keys are the provider's business
(``GET /v2/lbaas/providers/{provider}/availability_zone_capabilities``).
"""

from __future__ import annotations

from lbaas.api.schemas.common import (
    Name,
    NameOut,
    RequestModel,
    ResponseModel,
    envelope,
    page_envelope,
)
from lbaas.api.schemas.flavorprofile import ProfileData, ProviderName


class AvailabilityZoneProfileCreate(RequestModel):
    """POST /v2/lbaas/availabilityzoneprofiles: every field is mandatory."""

    name: Name
    provider_name: ProviderName
    availability_zone_data: ProfileData


class AvailabilityZoneProfileCreateRoot(RequestModel):
    """``{"availability_zone_profile": {...}}`` of a POST."""

    availability_zone_profile: AvailabilityZoneProfileCreate


class AvailabilityZoneProfileUpdate(RequestModel):
    """PUT /v2/lbaas/availabilityzoneprofiles/{id}: only the fields given
    change; none may be null. provider_name and availability_zone_data are
    frozen while an availability zone uses the profile.
    """

    name: Name | None = None
    provider_name: ProviderName | None = None
    availability_zone_data: ProfileData | None = None


class AvailabilityZoneProfileUpdateRoot(RequestModel):
    """``{"availability_zone_profile": {...}}`` of a PUT."""

    availability_zone_profile: AvailabilityZoneProfileUpdate


class AvailabilityZoneProfileResponse(ResponseModel):
    """A zone profile as shown; its data as sent."""

    id: str
    name: NameOut
    provider_name: str
    availability_zone_data: str


AvailabilityZoneProfileRoot = envelope("availability_zone_profile",
                                       AvailabilityZoneProfileResponse)
# Octavia names the links "availability_zone_profile_links" (singular).
AvailabilityZoneProfilePage = page_envelope("availability_zone_profiles",
                                            AvailabilityZoneProfileResponse,
                                            "availability_zone_profile_links")
