"""Pool shapes (api-ref "Pools"): a set of members behind one algorithm.

``session_persistence`` is an object ``{type, cookie_name,
persistence_timeout, persistence_granularity}`` or null; the rules that tie
its fields to the pool protocol live in :mod:`lbaas.api.routes.pool`.
``tls_*`` fields configure TLS towards the members (re-encryption);
certificate references are stored as given.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from lbaas.api.schemas.common import (
    AlpnProtocol,
    CipherString,
    ContainerRef,
    Description,
    IdOnly,
    IPAddressStr,
    Name,
    NameOut,
    OneOf,
    ProjectId,
    ProvisionedResponse,
    RequestModel,
    ResponseModel,
    Tags,
    TlsVersion,
    UUIDStr,
    envelope,
    page_envelope,
)
from lbaas.api.schemas.healthmonitor import HealthMonitorFullResponse, HealthMonitorSingleCreate
from lbaas.api.schemas.member import MemberResponse, MemberSingleCreate
from lbaas.common import constants as c

PoolProtocol = Annotated[str, OneOf(c.POOL_PROTOCOLS)]
LbAlgorithm = Annotated[str, OneOf(c.LB_ALGORITHMS)]
PersistenceType = Annotated[str, OneOf(c.SESSION_PERSISTENCE_TYPES)]
# Its grammar (lbaas.common.validate.cookie_name) is checked with the other
# session persistence rules, in Octavia's order and words.
CookieName = Annotated[str, Field(max_length=255)]


class SessionPersistence(RequestModel):
    """How a client sticks to a member: by source address or by cookie.

    ``cookie_name`` is required for APP_COOKIE and refused otherwise;
    ``persistence_timeout`` (seconds) and ``persistence_granularity`` (a
    netmask) are for UDP and SCTP pools only.
    """

    type: PersistenceType
    cookie_name: CookieName | None = None
    persistence_timeout: int | None = None
    persistence_granularity: IPAddressStr | None = None


class SessionPersistenceUpdate(RequestModel):
    """Session persistence in an update: ``type`` defaults to the pool's current one.

    The object given replaces the current one whole (fields left out become null).
    """

    type: PersistenceType | None = None
    cookie_name: CookieName | None = None
    persistence_timeout: int | None = None
    persistence_granularity: IPAddressStr | None = None


class PoolSingleCreate(RequestModel):
    """A pool in a fully-populated load balancer create, with its members and monitor.

    ``protocol`` and ``lb_algorithm`` may be left out only where the pool is
    a reference by name; :func:`lbaas.api.routes.pool.build_pool` refuses a
    definition without them. With ``tls_enabled``, ``tls_ciphers``,
    ``tls_versions`` and ``alpn_protocols`` default to Octavia's defaults.
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool = True
    session_persistence: SessionPersistence | None = None
    tags: Tags | None = None
    tls_enabled: bool = False
    tls_container_ref: ContainerRef | None = None
    ca_tls_container_ref: ContainerRef | None = None
    crl_container_ref: ContainerRef | None = None
    tls_ciphers: CipherString | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    healthmonitor: HealthMonitorSingleCreate | None = None
    members: list[MemberSingleCreate] | None = None
    protocol: PoolProtocol | None = None
    lb_algorithm: LbAlgorithm | None = None


class PoolCreate(PoolSingleCreate):
    """POST /v2/lbaas/pools: a pool of ``loadbalancer_id`` or of ``listener_id``.

    With ``listener_id`` the pool becomes that listener's default pool.
    ``members`` and ``healthmonitor`` create them with the pool in one
    request. ``project_id`` is accepted and ignored (the load balancer's
    project is used), as in Octavia.
    """

    loadbalancer_id: UUIDStr | None = None
    listener_id: UUIDStr | None = None
    protocol: PoolProtocol
    lb_algorithm: LbAlgorithm
    project_id: ProjectId | None = None


class PoolCreateRoot(RequestModel):
    """The body of POST /v2/lbaas/pools: ``{"pool": {...}}``."""

    pool: PoolCreate


class PoolUpdate(RequestModel):
    """PUT /v2/lbaas/pools/{id}: only the fields given change.

    Null ``session_persistence`` removes it; null ``tls_versions`` and
    ``tls_ciphers`` reset them to the defaults.
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = None
    lb_algorithm: LbAlgorithm | None = None
    session_persistence: SessionPersistenceUpdate | None = None
    tags: Tags | None = None
    tls_enabled: bool | None = None
    tls_container_ref: ContainerRef | None = None
    ca_tls_container_ref: ContainerRef | None = None
    crl_container_ref: ContainerRef | None = None
    tls_ciphers: CipherString | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None


class PoolUpdateRoot(RequestModel):
    """The body of PUT /v2/lbaas/pools/{id}: ``{"pool": {...}}``."""

    pool: PoolUpdate


class SessionPersistenceResponse(ResponseModel):
    """A pool's session persistence; fields not set are null."""

    type: str
    cookie_name: str | None = None
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None


class _PoolResponseFields(ProvisionedResponse):
    """What every pool body shows; members and health monitor differ."""

    name: NameOut
    description: NameOut
    protocol: str
    lb_algorithm: str
    session_persistence: SessionPersistenceResponse | None
    listeners: list[IdOnly]
    tls_enabled: bool
    tls_container_ref: str | None
    ca_tls_container_ref: str | None
    crl_container_ref: str | None
    tls_ciphers: str | None
    tls_versions: list[str] | None
    alpn_protocols: list[str] | None


class PoolResponse(_PoolResponseFields):
    """A pool: ``loadbalancers``, ``listeners`` and ``members`` as ``[{"id": ...}]``."""

    loadbalancers: list[IdOnly]
    members: list[IdOnly]
    healthmonitor_id: str | None

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of pool ``obj``."""
        hm = obj.health_monitor
        return super().dump(obj, **{"loadbalancers": [{"id": obj.load_balancer_id}],
                                    "healthmonitor_id": hm.id if hm is not None else None,
                                    **given})


class PoolFullResponse(_PoolResponseFields):
    """A pool nested in a fully-populated load balancer: members and monitor in full.

    As Octavia's ``PoolFullResponse``, ``loadbalancers`` and
    ``healthmonitor_id`` are left out and ``healthmonitor`` is omitted when
    the pool has none.
    """

    members: list[MemberResponse]
    healthmonitor: HealthMonitorFullResponse | None = None

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of pool ``obj`` with its members and health monitor."""
        body = super().dump(obj, **{"healthmonitor": obj.health_monitor, **given})
        if body["healthmonitor"] is None:
            del body["healthmonitor"]
        return body


PoolRoot = envelope("pool", PoolResponse)
PoolPage = page_envelope("pools", PoolResponse)
