"""Member shapes (api-ref "Members"): one backend server of a pool.

``weight`` is 0..256 (0: no new connections), ``backup`` members only take
traffic when every other member is down, ``monitor_address``/``monitor_port``
send health checks elsewhere than ``address``/``protocol_port``. Addresses
are returned as they were sent (``2001:db8:0:0:0:0:0:1`` stays so), as
Octavia does.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbaas.api.schemas.common import (
    IPAddressAsSent,
    Name,
    NameOut,
    Port,
    ProjectId,
    ProvisionedResponse,
    RequestModel,
    Tags,
    UUIDStr,
    envelope,
    page_envelope,
)
from lbaas.common import constants as c

Weight = Annotated[int, Field(ge=c.MIN_WEIGHT, le=c.MAX_WEIGHT)]


class MemberSingleCreate(RequestModel):
    """A member inside a pool of a fully-populated create.

    ``subnet_id`` must name a subnet of /v2.0/subnets. ``request_sriov`` is
    accepted for compatibility; only false is served (no SR-IOV ports here).
    """

    name: Name | None = None
    admin_state_up: bool = True
    address: IPAddressAsSent
    protocol_port: Port
    weight: Weight = c.DEFAULT_WEIGHT
    backup: bool = False
    subnet_id: UUIDStr | None = None
    monitor_address: IPAddressAsSent | None = None
    monitor_port: Port | None = None
    tags: Tags | None = None
    request_sriov: bool = False


class MemberCreate(MemberSingleCreate):
    """POST /v2/lbaas/pools/{pool_id}/members, and one entry of a batch update.

    ``project_id`` is accepted and ignored (the pool's project is used), as
    in Octavia.
    """

    project_id: ProjectId | None = None


class MemberCreateRoot(RequestModel):
    """The body of POST /v2/lbaas/pools/{pool_id}/members: ``{"member": {...}}``."""

    member: MemberCreate


class MembersBatchRoot(RequestModel):
    """PUT /v2/lbaas/pools/{pool_id}/members: the pool's whole member list."""

    members: list[MemberCreate]


class MemberUpdate(RequestModel):
    """PUT /v2/lbaas/pools/{pool_id}/members/{id}: only the fields given change.

    Null resets ``weight`` (1) and ``backup`` (false) and clears ``name``,
    ``monitor_address`` and ``monitor_port``.
    """

    name: Name | None = None
    admin_state_up: bool | None = None
    weight: Weight | None = None
    backup: bool | None = None
    monitor_address: IPAddressAsSent | None = None
    monitor_port: Port | None = None
    tags: Tags | None = None


class MemberUpdateRoot(RequestModel):
    """The body of PUT .../members/{id}: ``{"member": {...}}``."""

    member: MemberUpdate


class MemberResponse(ProvisionedResponse):
    """A member; ``vnic_type`` is always "normal" here."""

    name: NameOut
    address: str
    protocol_port: int
    weight: int
    backup: bool
    subnet_id: str | None
    monitor_address: str | None
    monitor_port: int | None
    vnic_type: str


MemberRoot = envelope("member", MemberResponse)
MemberPage = page_envelope("members", MemberResponse)
