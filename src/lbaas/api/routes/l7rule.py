"""L7 rules: /v2/lbaas/l7policies/{l7policy_id}/rules (api-ref "L7 Rules").

A rule is one condition of its L7 policy. Creating, changing or deleting one
locks the load balancer and marks the listener and the policy PENDING_UPDATE
(Octavia's ``test_and_set_lb_and_listeners_prov_status`` with the policy).
A policy holds at most 50 rules. :func:`check_rule` ports Octavia's
``validate.l7rule_data``; :func:`build_l7rule` is the one place a rule is
constructed.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of, paginate
from lbaas.api.schemas import l7rule as s
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.common import validate
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["L7 Rules"])
RESOURCE = "l7rule"
COLUMNS = columns_of(m.L7Rule)

HOST_NAME, PATH, FILE_TYPE, HEADER, COOKIE = "HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE"
SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT, SSL_DN_FIELD = (
    "SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD")
REGEX, EQUAL_TO = "REGEX", "EQUAL_TO"
LITERAL_COMPARES = ("STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO")

# Octavia's HTTP_HEADER_VALUE_REGEX / HTTP_QUOTED_HEADER_VALUE_REGEX: visible
# ASCII, or a double-quoted string that may also hold spaces and tabs.
_HEADER_VALUE = re.compile(r'[\x21-\x7e]+|"[\x20-\x7e\t]*"')
# RFC 6265 cookie-octet (Octavia's HTTP_COOKIE_VALUE_REGEX without its comma).
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")
# octavia-lib DISTINGUISHED_NAME_FIELD_REGEX.
_DN_FIELD = re.compile(r"[a-zA-Z][A-Za-z0-9-]*")


def get_l7policy(db: Session, ctx: RequestContext, l7policy_id: str) -> m.L7Policy:
    """The L7 policy ``l7policy_id`` if the caller may see it, else NotFound (404)."""
    policy = db.get(m.L7Policy, l7policy_id)
    return deps.visible_or_404(ctx, policy, "L7 Policy", l7policy_id)


def get_l7rule(db: Session, ctx: RequestContext, policy: m.L7Policy,
               l7rule_id: str) -> m.L7Rule:
    """Rule ``l7rule_id`` of ``policy`` if the caller may see it, else NotFound (404)."""
    rule = db.get(m.L7Rule, l7rule_id)
    if rule is not None and rule.l7policy_id != policy.id:
        rule = None
    return deps.visible_or_404(ctx, rule, "L7 Rule", l7rule_id)


@router.get("/l7policies/{l7policy_id}/rules", response_model=s.L7RulesRoot)
def list_l7rules(l7policy_id: str, request: Request, ctx: Ctx, db: Db, listing: Listing,
                 state: State) -> JSONResponse:
    """List the rules of one L7 policy."""
    policy = get_l7policy(db, ctx, l7policy_id)
    ctx.authorize(RESOURCE, "get_all", policy.project_id)
    stmt = select(m.L7Rule).where(m.L7Rule.l7policy_id == policy.id)
    page = paginate(db, request, listing, stmt, m.L7Rule, COLUMNS, state.settings.api_base_uri)
    return deps.respond_list("rules", [s.L7RuleResponse.dump(r) for r in page.rows],
                             page.links, listing.fields)


@router.post("/l7policies/{l7policy_id}/rules", status_code=201, response_model=s.L7RuleRoot)
def create_l7rule(l7policy_id: str, body: s.L7RuleCreateRoot, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Add a rule (PENDING_CREATE); load balancer, listener and policy go PENDING_UPDATE."""
    policy = get_l7policy(db, ctx, l7policy_id)
    ctx.authorize(RESOURCE, "post", policy.project_id)
    rule = build_l7rule(db, ctx, state, policy, body.rule)
    listener = policy.listener
    status.begin_create(db, listener.load_balancer_id, [rule], parents=[listener, policy])
    db.flush()
    deps.check_provider(state, listener.load_balancer)
    deps.commit(db, state)
    return deps.respond("rule", s.L7RuleResponse.dump(rule), 201)


@router.get("/l7policies/{l7policy_id}/rules/{l7rule_id}", response_model=s.L7RuleRoot)
def show_l7rule(l7policy_id: str, l7rule_id: str, request: Request, ctx: Ctx,
                db: Db) -> JSONResponse:
    """Show one rule."""
    policy = get_l7policy(db, ctx, l7policy_id)
    rule = get_l7rule(db, ctx, policy, l7rule_id)
    ctx.authorize(RESOURCE, "get_one", rule.project_id)
    return deps.respond("rule", s.L7RuleResponse.dump(rule), fields=deps.fields_of(request))


@router.put("/l7policies/{l7policy_id}/rules/{l7rule_id}", response_model=s.L7RuleRoot)
def update_l7rule(l7policy_id: str, l7rule_id: str, body: s.L7RuleUpdateRoot, ctx: Ctx,
                  db: Db, state: State) -> JSONResponse:
    """Change a rule; the rule as changed must be valid whole (PENDING_UPDATE)."""
    policy = get_l7policy(db, ctx, l7policy_id)
    rule = get_l7rule(db, ctx, policy, l7rule_id)
    ctx.authorize(RESOURCE, "put", rule.project_id)
    changes = body.rule.model_dump(exclude_unset=True)
    if "invert" in changes and changes["invert"] is None:
        changes["invert"] = False
    merged = {k: changes.get(k, getattr(rule, k)) for k in ("type", "compare_type", "key",
                                                           "value")}
    check_rule(merged["type"], merged["compare_type"], merged["key"], merged["value"])
    listener = policy.listener
    status.begin_update(db, listener.load_balancer_id, rule, parents=[listener, policy])
    for key, value in changes.items():
        if key == "tags":
            rule.tags = list(value or [])
        elif key == "admin_state_up":
            if value is not None:
                rule.admin_state_up = value
        else:
            setattr(rule, key, value)
    deps.check_provider(state, listener.load_balancer)
    deps.commit(db, state)
    return deps.respond("rule", s.L7RuleResponse.dump(rule))


@router.delete("/l7policies/{l7policy_id}/rules/{l7rule_id}", status_code=204,
               response_class=Response)
def delete_l7rule(l7policy_id: str, l7rule_id: str, ctx: Ctx, db: Db,
                  state: State) -> Response:
    """Delete a rule (PENDING_DELETE; the worker removes it)."""
    policy = get_l7policy(db, ctx, l7policy_id)
    rule = get_l7rule(db, ctx, policy, l7rule_id)
    ctx.authorize(RESOURCE, "delete", rule.project_id)
    listener = policy.listener
    status.begin_delete(db, listener.load_balancer_id, rule, parents=[listener, policy])
    deps.commit(db, state)
    return deps.no_content()


# -- construction and rules ----------------------------------------------------

def build_l7rule(db: Session, ctx: RequestContext, state: ApiState, policy: m.L7Policy,
                 data: s.L7RuleSingleCreate) -> m.L7Rule:
    """Validate ``data`` and add a new rule to ``policy.rules``.

    Checks the rule (:func:`check_rule`), the 50-rule limit and the ``l7rule``
    quota of the policy's project. Neither locks nor commits.

    Raises BadRequest (400, "Error parsing L7Rule: ..."),
    TooManyL7RulesOnL7Policy (409), QuotaExceeded (403).
    """
    check_rule(data.type, data.compare_type, data.key, data.value)
    if len(policy.rules) >= c.MAX_L7RULES_PER_L7POLICY:
        raise exc.TooManyL7RulesOnL7Policy(id=policy.id)
    deps.check_quota(db, state, policy.project_id or "", "l7rule")
    rule = m.L7Rule(id=m.new_id(), project_id=policy.project_id, type=data.type,
                    compare_type=data.compare_type, key=data.key, value=data.value,
                    invert=bool(data.invert), admin_state_up=data.admin_state_up is not False,
                    operating_status=c.OFFLINE)
    rule.tags = list(data.tags or [])
    policy.rules.append(rule)
    return rule


def _invalid(reason: str) -> exc.BadRequest:
    return exc.BadRequest(detail=f"Error parsing L7Rule: {reason}")


def check_rule(rule_type: str | None, compare_type: str | None, key: str | None,
               value: str | None) -> None:
    """Raise BadRequest (400) unless the four fields make a rule HAProxy can test.

    Octavia's ``validate.l7rule_data``: every rule needs a value; HEADER and
    COOKIE need a key that is a header/cookie name; REGEX values must compile;
    literal values are visible ASCII (or a quoted string) for headers, host
    names and paths, cookie-octets for cookies; FILE_TYPE compares only with
    REGEX or EQUAL_TO; SSL_CONN_HAS_CERT takes "true", SSL_VERIFY_RESULT a
    number, both with EQUAL_TO and no key; SSL_DN_FIELD needs a key naming a
    DN field. Messages are Octavia's ("Error parsing L7Rule: Invalid L7 Rule:
    ...").
    """
    if not value:
        raise _invalid("Invalid L7 Rule: L7 rule type requires a value")
    if rule_type in (HEADER, COOKIE):
        if not key:
            raise _invalid("Invalid L7 Rule: L7 rule type requires a key")
        try:
            validate.header_name(key)
        except ValueError:
            raise _invalid("Invalid characters in key") from None
        grammar, what = ((_HEADER_VALUE, "header value") if rule_type == HEADER
                         else (_COOKIE_VALUE, "cookie value"))
        _check_value(compare_type, value, grammar, what, LITERAL_COMPARES)
    elif rule_type in (HOST_NAME, PATH):
        _check_value(compare_type, value, _HEADER_VALUE, "comparison value", LITERAL_COMPARES)
    elif rule_type == FILE_TYPE:
        _check_value(compare_type, value, _HEADER_VALUE, "comparison value", (EQUAL_TO,))
    elif rule_type in (SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT, SSL_DN_FIELD):
        _check_ssl_rule(rule_type, compare_type, key, value)
    else:
        raise _invalid("Invalid L7 Rule: invalid rule type")


def _check_value(compare_type: str | None, value: str, grammar: re.Pattern[str], what: str,
                 literal: tuple[str, ...]) -> None:
    if compare_type == REGEX:
        _check_regex(value)
    elif compare_type in literal:
        if not grammar.fullmatch(value):
            raise _invalid(f"Invalid characters in {what}")
    else:
        raise _invalid("Invalid L7 Rule: invalid comparison type for rule type")


def _check_regex(value: str) -> None:
    try:
        validate.regex(value)
    except ValueError as e:
        raise _invalid(str(e)) from None


def _check_ssl_rule(rule_type: str, compare_type: str | None, key: str | None,
                    value: str) -> None:
    reason = None
    if rule_type in (SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT):
        if key:
            reason = f'L7rule type {rule_type} does not use the "key" field.'
        elif rule_type == SSL_CONN_HAS_CERT and value.lower() != "true":
            reason = f"L7rule value {value} is not a boolean True string."
        elif rule_type == SSL_VERIFY_RESULT and not (value.isascii() and value.isdigit()):
            reason = f"L7rule type {rule_type} needs a int value, which is >= 0"
        elif compare_type != EQUAL_TO:
            reason = f"L7rule type {rule_type} only supports the {EQUAL_TO} compare type."
    else:
        if compare_type == REGEX:
            _check_regex(value)
        if compare_type not in c.L7RULE_COMPARE_TYPES:
            reason = "invalid comparison type for rule type"
        elif not key:
            reason = f"L7rule type {rule_type} needs to specify a key and a value."
        elif not _DN_FIELD.fullmatch(key):
            reason = "Invalid L7rule distinguished name field."
    if reason:
        raise _invalid(f"Invalid L7 Rule: {reason}")
