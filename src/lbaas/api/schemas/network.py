"""Network shapes, after Neutron's networking API v2.0 ("Networks").

lbaas keeps a minimal Neutron: networks and subnets that VIPs are taken
from. Bodies and fields are Neutron's (``{"network": {...}}``, ``tenant_id``
beside ``project_id``, ``status`` always ACTIVE, timestamps with a ``Z``);
errors use lbaas's one error body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, PlainSerializer

from lbaas.api.schemas.common import (
    Description,
    Name,
    NameOut,
    ProjectId,
    RequestModel,
    ResponseModel,
    envelope,
    page_envelope,
)

NETWORK_STATUS_ACTIVE = "ACTIVE"


def _neutron_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


# Neutron prints UTC timestamps as 2016-03-08T20:19:41Z.
NeutronTimestamp = Annotated[datetime | None,
                             PlainSerializer(_neutron_time, return_type=str | None)]


class NetworkCreate(RequestModel):
    """POST /v2.0/networks (admin). ``project_id`` (or ``tenant_id``) defaults
    to the caller's project.
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool = True
    shared: bool = False
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = Field(default=None,
                                        description="Deprecated alias of project_id.")


class NetworkCreateRoot(RequestModel):
    """``{"network": {...}}`` of a POST."""

    network: NetworkCreate


class NetworkUpdate(RequestModel):
    """PUT /v2.0/networks/{id} (admin): only the fields given change."""

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = None
    shared: bool | None = None


class NetworkUpdateRoot(RequestModel):
    """``{"network": {...}}`` of a PUT."""

    network: NetworkUpdate


class NetworkResponse(ResponseModel):
    """A network as Neutron shows it; ``subnets`` are ids."""

    id: str
    name: NameOut
    description: NameOut
    project_id: str | None
    tenant_id: str | None
    admin_state_up: bool
    status: str
    shared: bool
    subnets: list[str]
    created_at: NeutronTimestamp
    updated_at: NeutronTimestamp

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of network ``obj``."""
        return super().dump(obj, **{"tenant_id": obj.project_id,
                                    "status": NETWORK_STATUS_ACTIVE,
                                    "subnets": [sn.id for sn in obj.subnets], **given})


NetworkRoot = envelope("network", NetworkResponse)
NetworkPage = page_envelope("networks", NetworkResponse)
