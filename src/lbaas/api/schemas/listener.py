"""Listener shapes (api-ref "Listeners").

A listener is a protocol and port on its load balancer's VIP (an HAProxy
``frontend``). Timeouts are milliseconds, 0 .. 24 days (Octavia's
``MIN_TIMEOUT``/``MAX_TIMEOUT``). Fields follow Octavia's wsme types
(``octavia/api/v2/types/listener.py``); a null in a create body means "the
default", a null in an update body resets the field to its default
(Octavia's ``_set_default_on_none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import CoreSchema, core_schema

from lbaas.api.schemas.common import (
    CidrStr,
    Description,
    IdOnly,
    Name,
    NameOut,
    PageLink,
    Port,
    ProjectId,
    RequestModel,
    ResponseModel,
    Tag,
    Timestamp,
    UUIDStr,
    id_refs,
)
from lbaas.common import constants as c
from lbaas.db import models as m


@dataclass(frozen=True)
class Range:
    """``Annotated[int, Range(low, high)]``: an int within ``low .. high``.

    A violation is worded as wsme words it ("Value should be greater or equal
    to 0" / "Value should be lower or equal to 2073600000"), the texts
    Octavia's clients see; the OpenAPI document shows ``minimum``/``maximum``.
    """

    low: int | None
    high: int | None = None

    def check(self, value: int) -> int:
        if self.low is not None and value < self.low:
            raise ValueError(f"Value should be greater or equal to {self.low}")
        if self.high is not None and value > self.high:
            raise ValueError(f"Value should be lower or equal to {self.high}")
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        out = dict(handler(schema))
        if self.low is not None:
            out["minimum"] = self.low
        if self.high is not None:
            out["maximum"] = self.high
        return out


@dataclass(frozen=True)
class OneOf:
    """``Annotated[str, OneOf(values)]``: one of ``values``, worded as wsme's Enum.

    ("Value should be one of: A, B"); the OpenAPI document lists the values.
    """

    values: tuple[Any, ...]

    def check(self, value: Any) -> Any:
        if value not in self.values:
            raise ValueError(f"Value should be one of: {', '.join(map(str, self.values))}")
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {**handler(schema), "enum": list(self.values)}


def _alpn(value: str) -> str:
    if value not in c.ALPN_PROTOCOLS:
        raise ValueError("Value should be a valid ALPN protocol ID")
    return value


ListenerProtocol = Annotated[str, OneOf(c.LISTENER_PROTOCOLS)]
ClientAuthentication = Annotated[str, OneOf(c.CLIENT_AUTH_MODES)]
TimeoutMs = Annotated[int, Range(c.MIN_TIMEOUT, c.MAX_TIMEOUT)]
ConnectionLimit = Annotated[int, Range(c.MIN_CONNECTION_LIMIT)]
HstsMaxAge = Annotated[int, Range(0)]  # seconds (Strict-Transport-Security max-age)
ContainerRef = Annotated[str, Field(max_length=255)]
CipherString = Annotated[str, Field(max_length=2048)]
TlsVersion = Annotated[str, Field(max_length=32)]
AlpnProtocol = Annotated[str, AfterValidator(_alpn)]
HeaderValue = Annotated[str, Field(max_length=255)]


class ListenerSingleCreate(RequestModel):
    """A listener in any create form.

    The lead's fully-populated schema subclasses it to add ``default_pool``
    and ``l7policies``.
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
    tags: list[Tag] | None = None
    client_ca_tls_container_ref: ContainerRef | None = None
    client_authentication: ClientAuthentication | None = "NONE"
    client_crl_container_ref: ContainerRef | None = None
    allowed_cidrs: list[CidrStr] | None = None
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
    tags: list[Tag] | None = None
    client_ca_tls_container_ref: ContainerRef | None = None
    client_authentication: ClientAuthentication | None = None
    client_crl_container_ref: ContainerRef | None = None
    allowed_cidrs: list[CidrStr] | None = None
    tls_ciphers: CipherString | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    hsts_max_age: HstsMaxAge | None = None
    hsts_include_subdomains: bool | None = None
    hsts_preload: bool | None = None


class ListenerUpdateRoot(RequestModel):
    listener: ListenerUpdate


class ListenerResponse(ResponseModel):
    id: str
    name: NameOut
    description: NameOut
    provisioning_status: str
    operating_status: str
    admin_state_up: bool
    project_id: str | None
    protocol: str
    protocol_port: int
    connection_limit: int
    default_tls_container_ref: str | None
    sni_container_refs: list[str]
    default_pool_id: str | None
    l7policies: list[IdOnly]
    loadbalancers: list[IdOnly]
    insert_headers: dict[str, str]
    created_at: Timestamp
    updated_at: Timestamp
    timeout_client_data: int = Field(description="Milliseconds.")
    timeout_member_connect: int = Field(description="Milliseconds.")
    timeout_member_data: int = Field(description="Milliseconds.")
    timeout_tcp_inspect: int = Field(description="Milliseconds.")
    tags: list[str]
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
    def dump(cls, listener: m.Listener) -> dict[str, Any]:
        """The JSON body of ``listener`` in Octavia's shape.

        ``loadbalancers`` and ``l7policies`` are ``[{"id": ...}]`` (policies by
        position), ``insert_headers`` is ``{}`` and ``sni_container_refs``
        ``[]`` when empty, ``allowed_cidrs`` is null when empty.
        """
        special = ("l7policies", "loadbalancers", "tags", "insert_headers",
                   "sni_container_refs", "allowed_cidrs")
        return cls.model_validate({
            **{k: getattr(listener, k) for k in cls.model_fields if k not in special},
            "l7policies": id_refs(sorted(listener.l7policies, key=lambda p: p.position)),
            "loadbalancers": [{"id": listener.load_balancer_id}],
            "tags": list(listener.tags),
            "insert_headers": dict(listener.insert_headers or {}),
            "sni_container_refs": list(listener.sni_container_refs or []),
            "allowed_cidrs": list(listener.allowed_cidrs) if listener.allowed_cidrs else None,
        }).model_dump(mode="json")


class ListenerRoot(ResponseModel):
    listener: ListenerResponse


class ListenersRoot(ResponseModel):
    listeners: list[ListenerResponse]
    listeners_links: list[PageLink]


class ListenerStats(ResponseModel):
    """Cumulative traffic counters of one listener (bytes, connections)."""

    active_connections: int
    bytes_in: int
    bytes_out: int
    request_errors: int
    total_connections: int


class ListenerStatsRoot(ResponseModel):
    stats: ListenerStats
