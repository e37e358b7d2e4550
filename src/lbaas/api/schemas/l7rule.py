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

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from lbaas.api.schemas.common import (
    PageLink,
    ProjectId,
    RequestModel,
    ResponseModel,
    Tag,
    Timestamp,
)
from lbaas.api.schemas.listener import OneOf
from lbaas.common import constants as c
from lbaas.common import validate
from lbaas.db import models as m


def _single_line(value: str) -> str:
    validate.no_control_characters(value)
    return value


RuleType = Annotated[str, OneOf(c.L7RULE_TYPES)]
CompareType = Annotated[str, OneOf(c.L7RULE_COMPARE_TYPES)]
RuleText = Annotated[str, Field(max_length=255), AfterValidator(_single_line)]


class L7RuleSingleCreate(RequestModel):
    """A rule inside an L7 policy create (or a fully-populated create)."""

    type: RuleType
    compare_type: CompareType
    key: RuleText | None = None
    value: RuleText
    invert: bool | None = False
    admin_state_up: bool | None = True
    tags: list[Tag] | None = None


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
    tags: list[Tag] | None = None


class L7RuleUpdateRoot(RequestModel):
    rule: L7RuleUpdate


class L7RuleResponse(ResponseModel):
    id: str
    type: str
    compare_type: str
    key: str | None
    value: str
    invert: bool
    provisioning_status: str
    operating_status: str
    created_at: Timestamp
    updated_at: Timestamp
    project_id: str | None
    admin_state_up: bool
    tags: list[str]

    @classmethod
    def dump(cls, rule: m.L7Rule) -> dict[str, Any]:
        """The JSON body of ``rule`` in Octavia's shape."""
        return cls.model_validate({
            **{k: getattr(rule, k) for k in cls.model_fields if k != "tags"},
            "tags": list(rule.tags),
        }).model_dump(mode="json")


class L7RuleRoot(ResponseModel):
    rule: L7RuleResponse


class L7RulesRoot(ResponseModel):
    rules: list[L7RuleResponse]
    rules_links: list[PageLink]
