"""Quota shapes (api-ref "Quotas").

A quota value is an integer from -1 (unlimited) to 2000000000. Octavia
renamed ``load_balancer`` and ``health_monitor`` to ``loadbalancer`` and
``healthmonitor`` in Rocky and still accepts and prints both spellings; so
does lbaas. The mapping between the two is written here once.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbaas.api.schemas.common import RequestModel, ResponseModel, envelope, page_envelope
from lbaas.common import constants as c

QuotaValue = Annotated[int, Field(ge=c.MIN_QUOTA, le=c.MAX_QUOTA)]

# Quota names as stored (the current API names), in Octavia's print order.
QUOTA_KEYS = ("loadbalancer", "listener", "member", "pool", "healthmonitor", "l7policy",
              "l7rule")
# Deprecated spelling -> current name.
DEPRECATED_KEYS = {"load_balancer": "loadbalancer", "health_monitor": "healthmonitor"}


class QuotaUpdate(RequestModel):
    """PUT /v2/lbaas/quotas/{project_id}: the keys given change; null means
    "back to the configured default"; keys left out keep their value.
    """

    loadbalancer: QuotaValue | None = None
    load_balancer: QuotaValue | None = Field(
        default=None, description="Deprecated spelling of loadbalancer.")
    listener: QuotaValue | None = None
    member: QuotaValue | None = None
    pool: QuotaValue | None = None
    healthmonitor: QuotaValue | None = None
    health_monitor: QuotaValue | None = Field(
        default=None, description="Deprecated spelling of healthmonitor.")
    l7policy: QuotaValue | None = None
    l7rule: QuotaValue | None = None

    def changes(self) -> dict[str, int | None]:
        """The keys given, by current name; the current spelling wins over the
        deprecated one when both are given (as in Octavia).
        """
        given = self.model_dump(include=self.model_fields_set)
        out: dict[str, int | None] = {}
        for old, new in DEPRECATED_KEYS.items():
            if old in given:
                out[new] = given.pop(old)
        out.update(given)
        return out


class QuotaUpdateRoot(RequestModel):
    """``{"quota": {...}}`` of a PUT."""

    quota: QuotaUpdate


class QuotaValues(ResponseModel):
    """Effective quota values, under both spellings."""

    loadbalancer: int
    load_balancer: int
    listener: int
    member: int
    pool: int
    healthmonitor: int
    health_monitor: int
    l7policy: int
    l7rule: int

    @classmethod
    def values(cls, effective: dict[str, int]) -> dict[str, int]:
        """``effective`` (by current name) with the deprecated spellings added."""
        body = {k: effective[k] for k in QUOTA_KEYS}
        for old, new in DEPRECATED_KEYS.items():
            body[old] = effective[new]
        return cls.model_validate(body).model_dump()


class QuotaResponse(QuotaValues):
    """One project's effective quotas; the defaults have no project (null)."""

    project_id: str | None
    tenant_id: str | None = Field(description="Deprecated alias of project_id.")

    @classmethod
    def of(cls, project_id: str | None,
           effective: dict[str, int]) -> dict[str, int | str | None]:
        """The JSON body of ``project_id``'s ``effective`` quotas (by current name);
        ``project_id`` None for the defaults (Octavia prints null there)."""
        return {"project_id": project_id, "tenant_id": project_id,
                **QuotaValues.values(effective)}


QuotaRoot = envelope("quota", QuotaResponse)
QuotaPage = page_envelope("quotas", QuotaResponse)
