"""Load balancer shapes (api-ref "Load Balancers")."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from lbaas.api.schemas.common import (
    Description,
    IdOnly,
    IPAddressStr,
    Name,
    NameOut,
    ProjectId,
    ProvisionedResponse,
    RequestModel,
    ResponseModel,
    Tags,
    UUIDStr,
    envelope,
    page_envelope,
)
from lbaas.api.schemas.fully_populated import ListenerGraph
from lbaas.api.schemas.listener import ListenerFullResponse
from lbaas.api.schemas.pool import PoolFullResponse, PoolSingleCreate


class AdditionalVip(RequestModel):
    subnet_id: UUIDStr
    ip_address: IPAddressStr | None = None
    port_id: UUIDStr | None = None


class LoadBalancerCreate(RequestModel):
    """POST /v2/lbaas/loadbalancers. One of vip_port_id, vip_network_id,
    vip_subnet_id selects the VIP's network; with none of them the VIP comes
    from the default subnet (an lbaas extension: Octavia requires one).

    ``listeners`` and ``pools`` make it a fully-populated create.
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool = True
    vip_address: IPAddressStr | None = None
    vip_port_id: UUIDStr | None = None
    vip_subnet_id: UUIDStr | None = None
    vip_network_id: UUIDStr | None = None
    vip_qos_policy_id: UUIDStr | None = None
    vip_sg_ids: list[UUIDStr] | None = None
    additional_vips: list[AdditionalVip] = []
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = Field(default=None,
                                        description="Deprecated alias of project_id.")
    provider: Annotated[str, Field(max_length=64)] | None = None
    flavor_id: UUIDStr | None = None
    availability_zone: Annotated[str, Field(max_length=255)] | None = None
    tags: Tags | None = None
    listeners: list[ListenerGraph] = []
    pools: list[PoolSingleCreate] = []


class LoadBalancerCreateRoot(RequestModel):
    loadbalancer: LoadBalancerCreate


class LoadBalancerUpdate(RequestModel):
    """PUT /v2/lbaas/loadbalancers/{id}: only the fields given change."""

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = None
    vip_qos_policy_id: UUIDStr | None = None
    vip_sg_ids: list[UUIDStr] | None = None
    tags: Tags | None = None


class LoadBalancerUpdateRoot(RequestModel):
    loadbalancer: LoadBalancerUpdate


class AdditionalVipResponse(ResponseModel):
    subnet_id: str
    ip_address: str | None = None
    port_id: str | None = None


class LoadBalancerResponse(ProvisionedResponse):
    name: NameOut
    description: NameOut
    vip_address: str | None
    vip_port_id: str | None
    vip_subnet_id: str | None
    vip_network_id: str | None
    vip_qos_policy_id: str | None
    vip_sg_ids: Annotated[list[str], BeforeValidator(lambda v: v or [])] = Field(
        description="Security groups of the VIP port; [] when none, as Octavia prints it.")
    vip_vnic_type: str
    additional_vips: list[AdditionalVipResponse]
    listeners: list[IdOnly]
    pools: list[IdOnly]
    provider: str
    flavor_id: str | None
    availability_zone: str | None
    provisioning_status_reason: str | None = Field(
        default=None, description="lbaas extension: why the last change failed (ERROR).")


class LoadBalancerFullResponse(LoadBalancerResponse):
    """The answer to a fully-populated create: listeners and pools in full."""

    listeners: list[ListenerFullResponse]  # type: ignore[assignment]
    pools: list[PoolFullResponse]  # type: ignore[assignment]

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """Load balancer ``obj`` with its whole graph (the nested bodies as
        their own ``dump`` makes them: a pool without health monitor has no
        ``healthmonitor``)."""
        return {**LoadBalancerResponse.dump(obj, **given),
                "listeners": [ListenerFullResponse.dump(li) for li in obj.listeners],
                "pools": [PoolFullResponse.dump(p) for p in obj.pools]}


LoadBalancerRoot = envelope("loadbalancer", LoadBalancerResponse)
LoadBalancerFullRoot = envelope("loadbalancer", LoadBalancerFullResponse)
LoadBalancerPage = page_envelope("loadbalancers", LoadBalancerResponse)


class MemberStatus(ResponseModel):
    id: str
    name: NameOut
    operating_status: str
    provisioning_status: str
    address: str
    protocol_port: int


class HealthMonitorStatus(ResponseModel):
    id: str
    name: NameOut
    type: str
    provisioning_status: str
    operating_status: str


class PoolStatus(ResponseModel):
    id: str
    name: NameOut
    provisioning_status: str
    operating_status: str
    health_monitor: HealthMonitorStatus | None = None
    members: list[MemberStatus]


class ListenerStatus(ResponseModel):
    id: str
    name: NameOut
    operating_status: str
    provisioning_status: str
    pools: list[PoolStatus]


class LoadBalancerStatus(ResponseModel):
    id: str
    name: NameOut
    operating_status: str
    provisioning_status: str
    listeners: list[ListenerStatus]


# GET /v2/lbaas/loadbalancers/{id}/status (api-ref "Get the Load Balancer status tree").
StatusTreeRoot = envelope("statuses", envelope("loadbalancer", LoadBalancerStatus, "StatusTree"),
                          "StatusTreeRoot")
