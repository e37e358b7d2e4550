"""Provider shapes (api-ref "Providers")."""

from __future__ import annotations

from lbaas.api.schemas.common import ResponseModel, envelope


class NameDescription(ResponseModel):
    """A provider, or one capability of a provider: ``{"name", "description"}``."""

    name: str
    description: str


ProvidersRoot = envelope("providers", list[NameDescription], "ProvidersRoot")
FlavorCapabilitiesRoot = envelope("flavor_capabilities", list[NameDescription],
                                  "FlavorCapabilitiesRoot")
AvailabilityZoneCapabilitiesRoot = envelope("availability_zone_capabilities",
                                            list[NameDescription],
                                            "AvailabilityZoneCapabilitiesRoot")
