"""Listener shapes (api-ref "Listeners").

A listener is a protocol and port on its load balancer's VIP (an HAProxy
``frontend``). Timeouts are milliseconds, 0 .. 24 days (Octavia's
``MIN_TIMEOUT``/``MAX_TIMEOUT``). Fields follow Octavia's wsme types
(``octavia/api/v2/types/listener.py``); a null in a create body means "the
default", a null in an update body resets the field to its default
(Octavia's ``_set_default_on_none``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from lbaas.api.schemas.common import (
    AlpnProtocol,
    CidrStr,
    CipherString,
    ContainerRef,
    Description,
    IdOnly,
    Name,
    NameOut,
    OneOf,
    Port,
    ProjectId,
    ProvisionedResponse,
    Range,
    RequestModel,
    Tags,
    TlsVersion,
    UUIDStr,
    envelope,
    page_envelope,
)
from lbaas.api.schemas.l7policy import L7PolicyFullResponse
from lbaas.common import constants as c

ListenerProtocol = Annotated[str, OneOf(c.LISTENER_PROTOCOLS)]
ClientAuthentication = Annotated[str, OneOf(c.CLIENT_AUTH_MODES)]
TimeoutMs = Annotated[int, Range(c.MIN_TIMEOUT, c.MAX_TIMEOUT)]
ConnectionLimit = Annotated[int, Range(c.MIN_CONNECTION_LIMIT, c.MAX_CONNECTION_LIMIT)]
HstsMaxAge = Annotated[int, Range(0, c.MAX_INT32)]  # seconds (Strict-Transport-Security)
AllowedCidrs = Annotated[list[CidrStr], Field(max_length=c.MAX_ALLOWED_CIDRS)]
HeaderValue = Annotated[str, Field(max_length=255)]


class ListenerSingleCreate(RequestModel):
    """A listener in any create form (:class:`ListenerCreate`, and
    :class:`lbaas.api.schemas.fully_populated.ListenerGraph`, which adds
    ``default_pool`` and ``l7policies``).
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = True
    protocol: ListenerProtocol
    protocol_port: Port
    connection_limit: ConnectionLimit | None = Field(
        default=c.DEFAULT_CONNECTION_LIMIT, description="Maximum connections; -1 is unlimited.")
    default_tls_container_ref: ContainerRef | None = None
    sni_container_refs: list[ContainerRef] | None = None
    default_pool_id: UUIDStr | None = None
    insert_headers: dict[str, HeaderValue] | None = Field(
        default=None, description='Headers to insert, e.g. {"X-Forwarded-For": "true"}.')
    timeout_client_data: TimeoutMs | None = Field(
        default=None, description="Frontend client inactivity timeout, ms (default 50000).")
    timeout_member_connect: TimeoutMs | None = Field(
        default=None, description="Backend member connection timeout, ms (default 5000).")
    timeout_member_data: TimeoutMs | None = Field(
        default=None, description="Backend member inactivity timeout, ms (default 50000).")
    timeout_tcp_inspect: TimeoutMs | None = Field(
        default=None, description="Time to wait for TCP content inspection, ms (default 0).")
    tags: Tags | None = None
    client_ca_tls_container_ref: ContainerRef | None = None
    client_authentication: ClientAuthentication | None = "NONE"
    client_crl_container_ref: ContainerRef | None = None
    allowed_cidrs: AllowedCidrs | None = None
    tls_ciphers: CipherString | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    hsts_max_age: HstsMaxAge | None = Field(default=None, description="Seconds.")
    hsts_include_subdomains: bool | None = False
    hsts_preload: bool | None = False


class ListenerCreate(ListenerSingleCreate):
    """POST /v2/lbaas/listeners: a listener on ``loadbalancer_id``.

    ``project_id``/``tenant_id`` are accepted (Octavia's deprecated fields)
    and ignored: a listener belongs to its load balancer's project.
    """

    loadbalancer_id: UUIDStr
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class ListenerCreateRoot(RequestModel):
    listener: ListenerCreate


class ListenerUpdate(RequestModel):
    """PUT /v2/lbaas/listeners/{id}: only the fields given change; null resets."""

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = None
    connection_limit: ConnectionLimit | None = None
    default_tls_container_ref: ContainerRef | None = None
    sni_container_refs: list[ContainerRef] | None = None
    default_pool_id: UUIDStr | None = None
    insert_headers: dict[str, HeaderValue] | None = None
    timeout_client_data: TimeoutMs | None = None
    timeout_member_connect: TimeoutMs | None = None
    timeout_member_data: TimeoutMs | None = None
    timeout_tcp_inspect: TimeoutMs | None = None
    tags: Tags | None = None
    client_ca_tls_container_ref: ContainerRef | None = None
    client_authentication: ClientAuthentication | None = None
    client_crl_container_ref: ContainerRef | None = None
    allowed_cidrs: AllowedCidrs | None = None
    tls_ciphers: CipherString | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    hsts_max_age: HstsMaxAge | None = None
    hsts_include_subdomains: bool | None = None
    hsts_preload: bool | None = None


class ListenerUpdateRoot(RequestModel):
    listener: ListenerUpdate


class _ListenerResponseFields(ProvisionedResponse):
    """What every listener body shows; ``l7policies`` and ``loadbalancers`` differ."""

    name: NameOut
    description: NameOut
    protocol: str
    protocol_port: int
    connection_limit: int
    default_tls_container_ref: str | None
    sni_container_refs: list[str]
    default_pool_id: str | None
    insert_headers: dict[str, str]
    timeout_client_data: int = Field(description="Milliseconds.")
    timeout_member_connect: int = Field(description="Milliseconds.")
    timeout_member_data: int = Field(description="Milliseconds.")
    timeout_tcp_inspect: int = Field(description="Milliseconds.")
    client_ca_tls_container_ref: str | None
    client_authentication: str
    client_crl_container_ref: str | None
    allowed_cidrs: list[str] | None = Field(description="null when every source is allowed.")
    tls_ciphers: str | None
    tls_versions: list[str] | None
    alpn_protocols: list[str] | None
    hsts_max_age: int | None
    hsts_include_subdomains: bool
    hsts_preload: bool

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of listener ``obj`` in Octavia's shape.

        ``l7policies`` by position, ``insert_headers`` is ``{}`` and
        ``sni_container_refs`` ``[]`` when empty, ``allowed_cidrs`` is null
        when empty.
        """
        return super().dump(obj, **{
            "l7policies": sorted(obj.l7policies, key=lambda p: p.position),
            "insert_headers": dict(obj.insert_headers or {}),
            "sni_container_refs": list(obj.sni_container_refs or []),
            "allowed_cidrs": list(obj.allowed_cidrs) if obj.allowed_cidrs else None,
            **given})


class ListenerResponse(_ListenerResponseFields):
    """A listener: ``l7policies`` and ``loadbalancers`` as ``[{"id": ...}]``."""

    l7policies: list[IdOnly]
    loadbalancers: list[IdOnly]

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of listener ``obj``."""
        return super().dump(obj, **{"loadbalancers": [{"id": obj.load_balancer_id}], **given})


class ListenerFullResponse(_ListenerResponseFields):
    """A listener in a fully-populated load balancer, as Octavia's: policies
    with their rules in full, no ``loadbalancers``."""

    l7policies: list[L7PolicyFullResponse]


ListenerRoot = envelope("listener", ListenerResponse)
ListenerPage = page_envelope("listeners", ListenerResponse)
