"""Health monitor shapes (api-ref "Health Monitors").

``delay`` and ``timeout`` are seconds; ``max_retries`` is the number of
successes that bring a member up (HAProxy ``rise``), ``max_retries_down`` the
failures that take it down (``fall``). The HTTP fields (``http_method``,
``url_path``, ``expected_codes``, ``http_version``, ``domain_name``) apply to
HTTP and HTTPS monitors only; the rules that tie fields together live in
:mod:`lbaas.api.routes.healthmonitor`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from lbaas.api.schemas.common import (
    IdOnly,
    Name,
    NameOut,
    OneOf,
    ProjectId,
    ProvisionedResponse,
    RequestModel,
    Tags,
    UUIDStr,
    checked,
    envelope,
    page_envelope,
)
from lbaas.common import constants as c
from lbaas.common import validate


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


HealthMonitorType = Annotated[str, OneOf(c.HEALTH_MONITOR_TYPES)]
HttpMethod = Annotated[str, OneOf(c.HEALTH_MONITOR_HTTP_METHODS)]
# Seconds; at most HAProxy's (and Octavia's listener) 24-day ceiling on any timer.
MAX_SECONDS = c.MAX_TIMEOUT // 1000
Seconds = Annotated[int, Field(ge=0, le=MAX_SECONDS, description="Seconds.")]
Retries = Annotated[int, Field(ge=c.MIN_HM_RETRIES, le=c.MAX_HM_RETRIES)]
# Octavia's column sizes: url_path String(2048), expected_codes String(64).
UrlPath = Annotated[str, Field(max_length=2048), checked(validate.url_path)]
ExpectedCodes = Annotated[str, Field(max_length=64), checked(validate.expected_codes)]
HttpVersion = Annotated[float, BeforeValidator(_http_version), OneOf(c.HTTP_VERSIONS)]
DomainName = Annotated[str, Field(min_length=1, max_length=255), checked(validate.domain_name)]


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


class HealthMonitorFullResponse(ProvisionedResponse):
    """A health monitor as nested in a fully-populated load balancer (no ``pools``)."""

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


class HealthMonitorResponse(HealthMonitorFullResponse):
    """A health monitor; ``pools`` is ``[{"id": <its pool>}]``."""

    pools: list[IdOnly]

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of health monitor ``obj``."""
        return super().dump(obj, pools=[{"id": obj.pool_id}], **given)


HealthMonitorRoot = envelope("healthmonitor", HealthMonitorResponse)
HealthMonitorPage = page_envelope("healthmonitors", HealthMonitorResponse)
