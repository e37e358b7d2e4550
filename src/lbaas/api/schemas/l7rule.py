"""L7 rule shapes (api-ref "L7 Rules").

A rule is one condition of an L7 policy: ``type`` says what part of the
request is compared (host, path, file type, a header or cookie named by
``key``, the client certificate), ``compare_type`` how, with ``value``;
``invert`` negates it. The envelope key is ``rule``/``rules`` as in Octavia.
Keys and values are single-line text; the cross-field rules (which types
need a key, which compare types a type allows, value grammar) are checked by
:func:`lbaas.api.routes.l7rule.check_rule`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbaas.api.schemas.common import (
    OneOf,
    ProjectId,
    ProvisionedResponse,
    RequestModel,
    Tags,
    checked,
    envelope,
    page_envelope,
)
from lbaas.common import constants as c
from lbaas.common import validate

RuleType = Annotated[str, OneOf(c.L7RULE_TYPES)]
CompareType = Annotated[str, OneOf(c.L7RULE_COMPARE_TYPES)]
RuleText = Annotated[str, Field(max_length=255), checked(validate.no_control_characters)]


class L7RuleSingleCreate(RequestModel):
    """A rule inside an L7 policy create (or a fully-populated create)."""

    type: RuleType
    compare_type: CompareType
    key: RuleText | None = None
    value: RuleText
    invert: bool | None = False
    admin_state_up: bool | None = True
    tags: Tags | None = None


class L7RuleCreate(L7RuleSingleCreate):
    """POST /v2/lbaas/l7policies/{l7policy_id}/rules.

    ``project_id``/``tenant_id`` are accepted (deprecated) and ignored: a rule
    belongs to its load balancer's project.
    """

    project_id: ProjectId | None = None
    tenant_id: ProjectId | None = None


class L7RuleCreateRoot(RequestModel):
    rule: L7RuleCreate


class L7RuleUpdate(RequestModel):
    """PUT .../rules/{l7rule_id}: only the fields given change.

    The rule as it would be after the change is checked whole; ``invert:
    null`` means false (Octavia).
    """

    type: RuleType | None = None
    compare_type: CompareType | None = None
    key: RuleText | None = None
    value: RuleText | None = None
    invert: bool | None = None
    admin_state_up: bool | None = None
    tags: Tags | None = None


class L7RuleUpdateRoot(RequestModel):
    rule: L7RuleUpdate


class L7RuleResponse(ProvisionedResponse):
    type: str
    compare_type: str
    key: str | None
    value: str
    invert: bool


# Octavia's envelope key is "rule"/"rules".
L7RuleRoot = envelope("rule", L7RuleResponse)
L7RulePage = page_envelope("rules", L7RuleResponse)
