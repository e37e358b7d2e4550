"""Availability zone shapes (api-ref "Availability Zones"); the name is the key."""

from __future__ import annotations

from typing import Any

from lbaas.api.schemas.common import (
    Description,
    Name,
    NameOut,
    PageLink,
    RequestModel,
    ResponseModel,
    UUIDStr,
)
from lbaas.db import models as m


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

    @classmethod
    def dump(cls, zone: m.AvailabilityZone) -> dict[str, Any]:
        """The JSON body of ``zone``."""
        return cls.model_validate(zone).model_dump(mode="json")


class AvailabilityZoneRoot(ResponseModel):
    """``{"availability_zone": {...}}``."""

    availability_zone: AvailabilityZoneResponse


class AvailabilityZonesRoot(ResponseModel):
    """GET /v2/lbaas/availabilityzones."""

    availability_zones: list[AvailabilityZoneResponse]
    availability_zones_links: list[PageLink]
