"""L7 rules: /v2/lbaas/l7policies/{l7policy_id}/rules (api-ref "L7 Rules").

A rule is one condition of its L7 policy. Creating, changing or deleting one
locks the load balancer and marks the listener and the policy PENDING_UPDATE
(Octavia's ``test_and_set_lb_and_listeners_prov_status`` with the policy).
A policy holds at most 50 rules. :func:`check_rule` ports Octavia's
``validate.l7rule_data`` with the grammars of :mod:`lbaas.common.validate`;
:func:`build_l7rule` is the one place a rule is constructed.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
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


def _policy_and_rule(db: Session, ctx: RequestContext, l7policy_id: str,
                     l7rule_id: str) -> tuple[m.L7Policy, m.L7Rule]:
    """The L7 policy in the path and its rule, else NotFound (404), also for
    another policy's rule."""
    policy = deps.get_visible(db, ctx, m.L7Policy, l7policy_id)
    return policy, deps.get_visible(db, ctx, m.L7Rule, l7rule_id, l7policy_id=policy.id)


@router.get("/l7policies/{l7policy_id}/rules", response_model=s.L7RulePage)
def list_l7rules(l7policy_id: str, ctx: Ctx, db: Db, listing: Listing) -> JSONResponse:
    """List the rules of one L7 policy."""
    policy = deps.get_visible(db, ctx, m.L7Policy, l7policy_id)
    ctx.authorize(RESOURCE, "get_all", policy.project_id)
    return listing.respond("rules", select(m.L7Rule).where(m.L7Rule.l7policy_id == policy.id),
                           m.L7Rule, COLUMNS, s.L7RuleResponse.dump)


@router.post("/l7policies/{l7policy_id}/rules", status_code=201, response_model=s.L7RuleRoot)
def create_l7rule(l7policy_id: str, body: s.L7RuleCreateRoot, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Add a rule (PENDING_CREATE); load balancer, listener and policy go PENDING_UPDATE."""
    policy = deps.get_visible(db, ctx, m.L7Policy, l7policy_id)
    ctx.authorize(RESOURCE, "post", policy.project_id)
    rule = build_l7rule(db, state, policy, body.rule)
    listener = policy.listener
    status.begin_create(db, listener.load_balancer_id, [rule], parents=[listener, policy])
    db.flush()
    deps.check_provider(state, listener.load_balancer)
    deps.commit(db, state)
    return deps.respond("rule", s.L7RuleResponse.dump(rule), 201)


@router.get("/l7policies/{l7policy_id}/rules/{l7rule_id}", response_model=s.L7RuleRoot)
def show_l7rule(l7policy_id: str, l7rule_id: str, fields: Fields, ctx: Ctx,
                db: Db) -> JSONResponse:
    """Show one rule."""
    _policy, rule = _policy_and_rule(db, ctx, l7policy_id, l7rule_id)
    ctx.authorize(RESOURCE, "get_one", rule.project_id)
    return deps.respond("rule", s.L7RuleResponse.dump(rule), fields=fields)


@router.put("/l7policies/{l7policy_id}/rules/{l7rule_id}", response_model=s.L7RuleRoot)
def update_l7rule(l7policy_id: str, l7rule_id: str, body: s.L7RuleUpdateRoot, ctx: Ctx,
                  db: Db, state: State) -> JSONResponse:
    """Change a rule; the rule as changed must be valid whole (PENDING_UPDATE)."""
    policy, rule = _policy_and_rule(db, ctx, l7policy_id, l7rule_id)
    ctx.authorize(RESOURCE, "put", rule.project_id)
    changes = body.rule.model_dump(exclude_unset=True)
    if "invert" in changes and changes["invert"] is None:
        changes["invert"] = False
    merged = {k: changes.get(k, getattr(rule, k)) for k in ("type", "compare_type", "key",
                                                           "value")}
    check_rule(merged["type"], merged["compare_type"], merged["key"], merged["value"])
    listener = policy.listener
    status.begin_update(db, listener.load_balancer_id, rule, parents=[listener, policy])
    deps.apply_changes(rule, changes)
    deps.check_provider(state, listener.load_balancer)
    deps.commit(db, state)
    return deps.respond("rule", s.L7RuleResponse.dump(rule))


@router.delete("/l7policies/{l7policy_id}/rules/{l7rule_id}", status_code=204,
               response_class=Response)
def delete_l7rule(l7policy_id: str, l7rule_id: str, ctx: Ctx, db: Db,
                  state: State) -> Response:
    """Delete a rule (PENDING_DELETE; the worker removes it)."""
    policy, rule = _policy_and_rule(db, ctx, l7policy_id, l7rule_id)
    ctx.authorize(RESOURCE, "delete", rule.project_id)
    listener = policy.listener
    status.begin_delete(db, listener.load_balancer_id, rule, parents=[listener, policy])
    deps.commit(db, state)
    return deps.no_content()


# -- construction and rules ----------------------------------------------------

def build_l7rule(db: Session, state: ApiState, policy: m.L7Policy,
                 data: s.L7RuleSingleCreate) -> m.L7Rule:
    """Validate ``data`` and add a new rule to ``policy.rules``.

    Checks the rule (:func:`check_rule`), the 50-rule limit and the ``l7rule``
    quota of the load balancer's project. Neither locks nor commits.

    Raises L7RuleValidation (400, "Error parsing L7Rule: ..."),
    TooManyL7RulesOnL7Policy (409), QuotaExceeded (403).
    """
    check_rule(data.type, data.compare_type, data.key, data.value)
    if len(policy.rules) >= c.MAX_L7RULES_PER_L7POLICY:
        raise exc.TooManyL7RulesOnL7Policy(id=policy.id)
    deps.check_quota(db, state, policy.listener.load_balancer, "l7rule")
    rule = m.L7Rule(id=m.new_id(), project_id=policy.project_id, type=data.type,
                    compare_type=data.compare_type, key=data.key, value=data.value,
                    invert=bool(data.invert), admin_state_up=data.admin_state_up is not False,
                    operating_status=c.OFFLINE)
    rule.tags = list(data.tags or [])
    policy.rules.append(rule)
    return rule


def _invalid_rule(reason: str) -> exc.L7RuleValidation:
    # Octavia wraps its InvalidL7Rule ("Invalid L7 Rule: ...") in L7RuleValidation.
    return exc.L7RuleValidation(error=f"Invalid L7 Rule: {reason}")


def _check(check: Callable[[str], None], value: str, what: str) -> None:
    """``check`` (a :mod:`lbaas.common.validate` grammar) as Octavia's
    InvalidString: "Invalid characters in <what>"."""
    try:
        check(value)
    except ValueError:
        raise exc.L7RuleValidation(error=f"Invalid characters in {what}") from None


def _check_regex(value: str) -> None:
    try:
        validate.regex(value)
    except ValueError as e:
        raise exc.L7RuleValidation(error=str(e)) from None


def check_rule(rule_type: str | None, compare_type: str | None, key: str | None,
               value: str | None) -> None:
    """Raise L7RuleValidation (400) unless the four fields make a rule HAProxy can test.

    Octavia's ``validate.l7rule_data``: every rule needs a value; HEADER and
    COOKIE need a key that is a header / cookie name; REGEX values must
    compile; literal values are HTTP header values (visible ASCII, or a
    quoted string) for headers, host names, paths and file types, cookie
    values for cookies; FILE_TYPE compares only with REGEX or EQUAL_TO;
    SSL_CONN_HAS_CERT takes "true", SSL_VERIFY_RESULT a number, both with
    EQUAL_TO and no key; SSL_DN_FIELD needs a key naming a DN field.
    Messages are Octavia's ("Error parsing L7Rule: Invalid L7 Rule: ...").
    """
    if not value:
        raise _invalid_rule("L7 rule type requires a value")
    if rule_type in (HEADER, COOKIE):
        if not key:
            raise _invalid_rule("L7 rule type requires a key")
        if rule_type == HEADER:
            _check(validate.header_name, key, "key")
            _check_value(compare_type, value, validate.header_value, "header value",
                         LITERAL_COMPARES)
        else:
            _check(validate.cookie_name, key, "key")
            _check_value(compare_type, value, validate.cookie_value, "cookie value",
                         LITERAL_COMPARES)
    elif rule_type in (HOST_NAME, PATH):
        _check_value(compare_type, value, validate.header_value, "comparison value",
                     LITERAL_COMPARES)
    elif rule_type == FILE_TYPE:
        _check_value(compare_type, value, validate.header_value, "comparison value", (EQUAL_TO,))
    elif rule_type in (SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT, SSL_DN_FIELD):
        _check_ssl_rule(rule_type, compare_type, key, value)
    else:
        raise _invalid_rule("invalid rule type")


def _check_value(compare_type: str | None, value: str, grammar: Callable[[str], None],
                 what: str, literal: tuple[str, ...]) -> None:
    if compare_type == REGEX:
        _check_regex(value)
    elif compare_type in literal:
        _check(grammar, value, what)
    else:
        raise _invalid_rule("invalid comparison type for rule type")


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
        else:
            try:
                validate.dn_field(key)
            except ValueError:
                reason = "Invalid L7rule distinguished name field."
    if reason:
        raise _invalid_rule(reason)
