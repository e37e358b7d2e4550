"""L7 policy shapes (api-ref "L7 Policies").

A policy is an action on a listener's matching requests: ``REJECT``,
``REDIRECT_TO_URL`` (``redirect_url``), ``REDIRECT_PREFIX``
(``redirect_prefix``), ``REDIRECT_TO_POOL`` (``redirect_pool_id``), with
``redirect_http_code`` (301, 302, 303, 307, 308) for the redirects. Policies
are evaluated by ``position`` (1 first); a request matches a policy when all
its rules match. How the action and redirect fields are made consistent is
:func:`lbaas.api.routes.l7policy.sanitize` (Octavia's
``sanitize_l7policy_api_args``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbaas.api.schemas.common import (
    Description,
    IdOnly,
    Name,
    NameOut,
    OneOf,
    ProjectId,
    ProvisionedResponse,
    Range,
    RequestModel,
    Tags,
    UUIDStr,
    checked,
    envelope,
    page_envelope,
)
from lbaas.api.schemas.l7rule import L7RuleResponse, L7RuleSingleCreate
from lbaas.common import constants as c
from lbaas.common import validate

Action = Annotated[str, OneOf(c.L7POLICY_ACTIONS)]
RedirectUrl = Annotated[str, Field(max_length=2048), checked(validate.url)]
RedirectHttpCode = Annotated[int, OneOf(c.L7POLICY_REDIRECT_HTTP_CODES)]
Position = Annotated[int, Range(c.MIN_POLICY_POSITION, c.MAX_POLICY_POSITION)]


class L7PolicySingleCreate(RequestModel):
    """An L7 policy in any create form (:class:`L7PolicyCreate`, and
    :class:`lbaas.api.schemas.fully_populated.L7PolicyGraph`, which adds
    ``redirect_pool`` and ``rules``).

    ``position`` defaults to last; a position past the end means last.
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = True
    action: Action
    redirect_url: RedirectUrl | None = None
    redirect_prefix: RedirectUrl | None = None
    redirect_http_code: RedirectHttpCode | None = Field(
        default=None, description="Default 302 for REDIRECT_TO_URL and REDIRECT_PREFIX.")
    position: Position | None = c.MAX_POLICY_POSITION
    tags: Tags | None = None


class L7PolicyCreate(L7PolicySingleCreate):
    """POST /v2/lbaas/l7policies: a policy on ``listener_id``, with its ``rules``.

    ``project_id``/``tenant_id`` are accepted (deprecated) and ignored: a
    policy belongs to its load balancer's project.
    """

    listener_id: UUIDStr
    redirect_pool_id: UUIDStr | None = None
    rules: list[L7RuleSingleCreate] | None = None
    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class L7PolicyCreateRoot(RequestModel):
    l7policy: L7PolicyCreate


class L7PolicyUpdate(RequestModel):
    """PUT /v2/lbaas/l7policies/{id}: only the fields given change.

    Setting a redirect field switches the action to match (Octavia).
    """

    name: Name | None = None
    description: Description | None = None
    admin_state_up: bool | None = None
    action: Action | None = None
    redirect_pool_id: UUIDStr | None = None
    redirect_url: RedirectUrl | None = None
    redirect_prefix: RedirectUrl | None = None
    redirect_http_code: RedirectHttpCode | None = None
    position: Position | None = None
    tags: Tags | None = None


class L7PolicyUpdateRoot(RequestModel):
    l7policy: L7PolicyUpdate


class L7PolicyResponse(ProvisionedResponse):
    name: NameOut
    description: NameOut
    action: str
    listener_id: str
    redirect_pool_id: str | None
    redirect_url: str | None
    redirect_prefix: str | None
    redirect_http_code: int | None
    position: int
    rules: list[IdOnly]


class L7PolicyFullResponse(L7PolicyResponse):
    """An L7 policy in a fully-populated load balancer: its rules in full."""

    rules: list[L7RuleResponse]  # type: ignore[assignment]


L7PolicyRoot = envelope("l7policy", L7PolicyResponse)
L7PolicyPage = page_envelope("l7policies", L7PolicyResponse)
