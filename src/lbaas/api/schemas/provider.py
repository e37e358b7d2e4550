"""Provider shapes (api-ref "Providers")."""

from __future__ import annotations

from lbaas.api.schemas.common import ResponseModel


class NameDescription(ResponseModel):
    """A provider, or one capability of a provider: ``{"name", "description"}``."""

    name: str
    description: str


class ProvidersRoot(ResponseModel):
    """GET /v2/lbaas/providers."""

    providers: list[NameDescription]


class FlavorCapabilitiesRoot(ResponseModel):
    """GET /v2/lbaas/providers/{provider}/flavor_capabilities."""

    flavor_capabilities: list[NameDescription]


class AvailabilityZoneCapabilitiesRoot(ResponseModel):
    """GET /v2/lbaas/providers/{provider}/availability_zone_capabilities."""

    availability_zone_capabilities: list[NameDescription]
