"""Health monitor shapes (api-ref "Health Monitors").

``delay`` and ``timeout`` are seconds; ``max_retries`` is the number of
successes that bring a member up (HAProxy ``rise``), ``max_retries_down`` the
failures that take it down (``fall``). The HTTP fields (``http_method``,
``url_path``, ``expected_codes``, ``http_version``, ``domain_name``) apply to
HTTP and HTTPS monitors only; the rules that tie fields together live in
:mod:`lbaas.api.routes.healthmonitor`.

:class:`OneOf` (an enumerated string, refused with wsme's "Value should be
one of: ..." as Octavia prints it), :func:`checked` and :data:`Tags` (a tag
list without repeats: tags are a set, and a repeat would break the tag
table's key) are shared with the pool and member schemas; they belong in
:mod:`lbaas.api.schemas.common`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from lbaas.api.schemas.common import (
    IdOnly,
    Name,
    NameOut,
    PageLink,
    ProjectId,
    RequestModel,
    ResponseModel,
    Tag,
    Timestamp,
    UUIDStr,
)
from lbaas.common import constants as c
from lbaas.common import validate
from lbaas.db import models as m


@dataclass(frozen=True)
class OneOf:
    """Annotation: the string must be one of ``values`` (Octavia's wsme ``Enum``).

    A refusal reads "Value should be one of: A, B" as wsme words it; the
    OpenAPI document lists the values as an ``enum``.
    """

    values: tuple[str, ...]

    def check(self, value: str) -> str:
        """``value`` if allowed, else ValueError."""
        if value not in self.values:
            raise ValueError(f"Value should be one of: {', '.join(self.values)}")
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["enum"] = list(self.values)
        return json_schema


def checked(check: Callable[[str], None]) -> Callable[[str], str]:
    """An AfterValidator body from a :mod:`lbaas.common.validate` check."""

    def run(value: str) -> str:
        check(value)
        return value

    return run


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Tags = Annotated[list[Tag], AfterValidator(_unique)]


def _http_version(value: Any) -> Any:
    # wsme's Enum(float) converts what it gets, so Octavia takes "1.1" and 1 too.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _known_http_version(value: float) -> float:
    if value not in c.HTTP_VERSIONS:
        raise ValueError("Value should be one of: " + ", ".join(str(v) for v in c.HTTP_VERSIONS))
    return value


HealthMonitorType = Annotated[str, OneOf(c.HEALTH_MONITOR_TYPES)]
HttpMethod = Annotated[str, OneOf(c.HEALTH_MONITOR_HTTP_METHODS)]
# Seconds; at most HAProxy's (and Octavia's listener) 24-day ceiling on any timer.
MAX_SECONDS = c.MAX_TIMEOUT // 1000
Seconds = Annotated[int, Field(ge=0, le=MAX_SECONDS, description="Seconds.")]
Retries = Annotated[int, Field(ge=c.MIN_HM_RETRIES, le=c.MAX_HM_RETRIES)]
UrlPath = Annotated[str, AfterValidator(checked(validate.url_path))]
ExpectedCodes = Annotated[str, AfterValidator(checked(validate.expected_codes))]
HttpVersion = Annotated[float, BeforeValidator(_http_version),
                        AfterValidator(_known_http_version),
                        Field(json_schema_extra={"enum": list(c.HTTP_VERSIONS)})]
DomainName = Annotated[str, Field(min_length=1, max_length=255),
                       AfterValidator(checked(validate.domain_name))]


class HealthMonitorSingleCreate(RequestModel):
    """A health monitor inside a pool of a fully-populated create (no ``pool_id``).

    ``delay`` and ``timeout`` are seconds (>= 0). HTTP/HTTPS monitors default
    ``http_method`` GET, ``url_path`` "/" and ``expected_codes`` "200";
    other types refuse those fields.
    """

    name: Name | None = None
    type: HealthMonitorType
    delay: Seconds
    timeout: Seconds
    max_retries: Retries
    max_retries_down: Retries | None = c.DEFAULT_MAX_RETRIES_DOWN
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    http_version: HttpVersion | None = None
    domain_name: DomainName | None = None
    admin_state_up: bool = True
    tags: Tags | None = None


class HealthMonitorCreate(HealthMonitorSingleCreate):
    """POST /v2/lbaas/healthmonitors: a monitor for the pool ``pool_id``.

    ``project_id`` is accepted and ignored (the pool's project is used), as
    in Octavia.
    """

    pool_id: UUIDStr
    project_id: ProjectId | None = None


class HealthMonitorCreateRoot(RequestModel):
    """The body of POST /v2/lbaas/healthmonitors: ``{"healthmonitor": {...}}``."""

    healthmonitor: HealthMonitorCreate


class HealthMonitorUpdate(RequestModel):
    """PUT /v2/lbaas/healthmonitors/{id}: only the fields given change.

    Null resets ``http_method``, ``url_path``, ``expected_codes`` and
    ``max_retries_down`` to their defaults and clears ``name``,
    ``http_version`` and ``domain_name``; null ``delay``, ``timeout`` or
    ``max_retries`` is refused.
    """

    name: Name | None = None
    delay: Seconds | None = None
    timeout: Seconds | None = None
    max_retries: Retries | None = None
    max_retries_down: Retries | None = None
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    http_version: HttpVersion | None = None
    domain_name: DomainName | None = None
    admin_state_up: bool | None = None
    tags: Tags | None = None


class HealthMonitorUpdateRoot(RequestModel):
    """The body of PUT /v2/lbaas/healthmonitors/{id}: ``{"healthmonitor": {...}}``."""

    healthmonitor: HealthMonitorUpdate


class HealthMonitorFullResponse(ResponseModel):
    """A health monitor as nested in a fully-populated load balancer (no ``pools``)."""

    id: str
    name: NameOut
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    http_method: str | None
    url_path: str | None
    expected_codes: str | None
    http_version: float | None
    domain_name: str | None
    admin_state_up: bool
    project_id: str | None
    provisioning_status: str
    operating_status: str
    created_at: Timestamp
    updated_at: Timestamp
    tags: list[str]

    @classmethod
    def dump(cls, hm: m.HealthMonitor) -> dict[str, Any]:
        """The JSON body of ``hm``."""
        body = {k: getattr(hm, k) for k in cls.model_fields if k not in ("tags", "pools")}
        body["tags"] = list(hm.tags)
        if "pools" in cls.model_fields:
            body["pools"] = [{"id": hm.pool_id}]
        return cls.model_validate(body).model_dump(mode="json")


class HealthMonitorResponse(HealthMonitorFullResponse):
    """A health monitor; ``pools`` is ``[{"id": <its pool>}]``."""

    pools: list[IdOnly]


class HealthMonitorRoot(ResponseModel):
    """One health monitor: ``{"healthmonitor": {...}}``."""

    healthmonitor: HealthMonitorResponse


class HealthMonitorsRoot(ResponseModel):
    """A page of health monitors with its pagination links."""

    healthmonitors: list[HealthMonitorResponse]
    healthmonitors_links: list[PageLink]

