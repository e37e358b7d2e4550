"""Availability zone shapes (api-ref "Availability Zones"); the name is the key."""

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


class AvailabilityZoneCreate(RequestModel):
    """POST /v2/lbaas/availabilityzones: name and profile are mandatory."""

    name: Name
    description: Description | None = None
    enabled: bool = True
    availability_zone_profile_id: UUIDStr


class AvailabilityZoneCreateRoot(RequestModel):
    """``{"availability_zone": {...}}`` of a POST."""

    availability_zone: AvailabilityZoneCreate


class AvailabilityZoneUpdate(RequestModel):
    """PUT /v2/lbaas/availabilityzones/{name}: description and enabled only."""

    description: Description | None = None
    enabled: bool | None = None


class AvailabilityZoneUpdateRoot(RequestModel):
    """``{"availability_zone": {...}}`` of a PUT."""

    availability_zone: AvailabilityZoneUpdate


class AvailabilityZoneResponse(ResponseModel):
    """An availability zone as shown."""

    name: str
    description: NameOut
    enabled: bool
    availability_zone_profile_id: str


AvailabilityZoneRoot = envelope("availability_zone", AvailabilityZoneResponse)
AvailabilityZonePage = page_envelope("availability_zones", AvailabilityZoneResponse)
