"""Subnet shapes, after Neutron's networking API v2.0 ("Subnets").

The syntax of each field is checked here (a CIDR without host bits, IP
addresses); how gateway and allocation pools fit the CIDR is checked by the
route against the whole subnet (:mod:`lbaas.api.routes.subnet`).
``enable_dhcp``, ``dns_nameservers`` and ``host_routes`` are recorded and
returned as Neutron does; lbaas serves no DHCP.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from lbaas.api.schemas.common import (
    CidrStr,
    Description,
    IPAddressStr,
    Name,
    NameOut,
    ProjectId,
    RequestModel,
    ResponseModel,
    UUIDStr,
    envelope,
    page_envelope,
)
from lbaas.api.schemas.network import NeutronTimestamp


def _subnet_cidr(value: str) -> str:
    """A network in CIDR notation with no host bits set (Neutron's rule)."""
    try:
        if "%" in value:  # an IPv6 zone: a subnet is not one host's interface
            raise ValueError
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"'{value}' is not a valid IP subnet") from None
    exact = net.with_prefixlen == value if net.version == 4 else \
        ipaddress.ip_interface(value).ip == net.network_address
    if "/" not in value or not exact:
        raise ValueError(f"'{value}' isn't a recognized IP subnet cidr, "
                         f"'{net.with_prefixlen}' is recommended")
    return net.with_prefixlen


SubnetCidr = Annotated[str, AfterValidator(_subnet_cidr),
                       Field(examples=["10.0.0.0/24"], description="The subnet's range.")]


class AllocationPool(RequestModel):
    """An inclusive range of addresses VIPs are taken from."""

    start: IPAddressStr
    end: IPAddressStr


class HostRoute(RequestModel):
    """A route recorded for the subnet's hosts (lbaas installs none)."""

    destination: CidrStr
    nexthop: IPAddressStr


class SubnetCreate(RequestModel):
    """POST /v2.0/subnets (admin).

    ``ip_version`` defaults to the CIDR's and must match it. ``gateway_ip``
    defaults to the first host of the CIDR (null: no gateway).
    ``allocation_pools`` default to every host but the gateway. The project
    defaults to the network's.
    """

    network_id: UUIDStr
    cidr: SubnetCidr
    ip_version: Literal[4, 6] | None = None
    name: Name | None = None
    description: Description | None = None
    gateway_ip: IPAddressStr | None = None
    allocation_pools: list[AllocationPool] | None = None
    enable_dhcp: bool = False
    dns_nameservers: list[IPAddressStr] = []
    host_routes: list[HostRoute] = []
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = Field(default=None,
                                        description="Deprecated alias of project_id.")


class SubnetCreateRoot(RequestModel):
    """``{"subnet": {...}}`` of a POST."""

    subnet: SubnetCreate


class SubnetUpdate(RequestModel):
    """PUT /v2.0/subnets/{id} (admin): only the fields given change; the CIDR,
    IP version and network are fixed. ``gateway_ip: null`` removes the gateway.
    """

    name: Name | None = None
    description: Description | None = None
    gateway_ip: IPAddressStr | None = None
    allocation_pools: list[AllocationPool] | None = None
    enable_dhcp: bool | None = None
    dns_nameservers: list[IPAddressStr] | None = None
    host_routes: list[HostRoute] | None = None


class SubnetUpdateRoot(RequestModel):
    """``{"subnet": {...}}`` of a PUT."""

    subnet: SubnetUpdate


class AllocationPoolResponse(ResponseModel):
    """``{"start", "end"}``, inclusive."""

    start: str
    end: str


class HostRouteResponse(ResponseModel):
    """``{"destination", "nexthop"}``."""

    destination: str
    nexthop: str


class SubnetResponse(ResponseModel):
    """A subnet as Neutron shows it."""

    id: str
    name: NameOut
    description: NameOut
    network_id: str
    project_id: str | None
    tenant_id: str | None
    ip_version: int
    cidr: str
    gateway_ip: str | None
    allocation_pools: list[AllocationPoolResponse]
    enable_dhcp: bool
    dns_nameservers: list[str]
    host_routes: list[HostRouteResponse]
    created_at: NeutronTimestamp
    updated_at: NeutronTimestamp

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of subnet ``obj``."""
        return super().dump(obj, **{"tenant_id": obj.project_id,
                                    "allocation_pools": list(obj.allocation_pools or []),
                                    "dns_nameservers": list(obj.dns_nameservers or []),
                                    "host_routes": list(obj.host_routes or []), **given})


SubnetRoot = envelope("subnet", SubnetResponse)
SubnetPage = page_envelope("subnets", SubnetResponse)
