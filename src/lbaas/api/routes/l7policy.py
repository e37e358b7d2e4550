"""L7 policies: /v2/lbaas/l7policies (api-ref "L7 Policies").

A policy belongs to a listener; creating, changing or deleting one locks the
load balancer and marks the listener PENDING_UPDATE (Octavia's
``test_and_set_lb_and_listeners_prov_status``). A create may carry the
policy's ``rules``.

Positions: a listener's live policies are numbered 1..n in evaluation order.
A new policy goes where its ``position`` says (last by default, and a
position past the end means last); moving one shifts the others; deleting
one closes the gap. This is what Octavia's ordering list does
(``L7PolicyRepository.create/update/delete``).

How ``action`` and the redirect fields are made consistent is
:func:`sanitize`, a port of Octavia's ``sanitize_l7policy_api_args``.
:func:`build_l7policy` is the one place a policy is constructed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.query import columns_of
from lbaas.api.routes.l7rule import build_l7rule
from lbaas.api.routes.listener import check_pool_protocol, pool_of
from lbaas.api.schemas import l7policy as s
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["L7 Policies"])
RESOURCE = "l7policy"
COLUMNS = columns_of(m.L7Policy)

REJECT, REDIRECT_TO_URL, REDIRECT_TO_POOL, REDIRECT_PREFIX = c.L7POLICY_ACTIONS
DEFAULT_REDIRECT_HTTP_CODE = 302
_REDIRECTS = ("redirect_pool_id", "redirect_url", "redirect_prefix", "redirect_http_code")
# What each action keeps of the redirect fields; the others are cleared.
_KEEPS = {REJECT: (), REDIRECT_TO_POOL: ("redirect_pool_id",),
          REDIRECT_TO_URL: ("redirect_url", "redirect_http_code"),
          REDIRECT_PREFIX: ("redirect_prefix", "redirect_http_code")}
# The field each action needs.
_NEEDS = {REDIRECT_TO_POOL: ("redirect_pool_id", "redirect_pool_id or redirect_pool"),
          REDIRECT_TO_URL: ("redirect_url", "redirect_url"),
          REDIRECT_PREFIX: ("redirect_prefix", "redirect_prefix")}


@router.get("/l7policies", response_model=s.L7PolicyPage)
def list_l7policies(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List L7 policies visible to the caller (``listener_id`` filters by listener)."""
    stmt = select(m.L7Policy).options(selectinload(m.L7Policy.rules))
    stmt = deps.listed_rows(ctx, listing, RESOURCE, stmt, m.L7Policy)
    return listing.respond("l7policies", stmt, m.L7Policy,
                           COLUMNS, s.L7PolicyResponse.dump)


@router.post("/l7policies", status_code=201, response_model=s.L7PolicyRoot)
def create_l7policy(body: s.L7PolicyCreateRoot, ctx: Ctx, db: Db,
                    state: State) -> JSONResponse:
    """Create a policy, with its rules (PENDING_CREATE); listener and load balancer
    go PENDING_UPDATE."""
    data = body.l7policy
    listener = deps.get_visible(db, ctx, m.Listener, data.listener_id)
    ctx.authorize(RESOURCE, "post", listener.project_id)
    policy = build_l7policy(db, state, listener, data, None)
    rules = data.rules or []
    if len(rules) > c.MAX_L7RULES_PER_L7POLICY:
        raise exc.TooManyL7RulesOnL7Policy(id=policy.id)
    for rule in rules:
        build_l7rule(db, state, policy, rule)
    status.begin_create(db, listener.load_balancer_id, [policy], parents=[listener])
    db.flush()
    deps.check_provider(state, listener.load_balancer)
    deps.commit(db, state)
    return deps.respond("l7policy", s.L7PolicyResponse.dump(policy), 201)


@router.get("/l7policies/{l7policy_id}", response_model=s.L7PolicyRoot)
def show_l7policy(l7policy_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one L7 policy."""
    policy = deps.get_visible(db, ctx, m.L7Policy, l7policy_id)
    ctx.authorize(RESOURCE, "get_one", policy.project_id)
    return deps.respond("l7policy", s.L7PolicyResponse.dump(policy), fields=fields)


@router.put("/l7policies/{l7policy_id}", response_model=s.L7PolicyRoot)
def update_l7policy(l7policy_id: str, body: s.L7PolicyUpdateRoot, ctx: Ctx, db: Db,
                    state: State) -> JSONResponse:
    """Change a policy; a redirect field given switches the action to match
    (PENDING_UPDATE)."""
    policy = deps.get_visible(db, ctx, m.L7Policy, l7policy_id)
    ctx.authorize(RESOURCE, "put", policy.project_id)
    listener = policy.listener
    changes = sanitize(body.l7policy.model_dump(exclude_unset=True))
    pool = None
    if changes.get("redirect_pool_id"):
        pool = pool_of(db, listener.load_balancer, changes["redirect_pool_id"])
        check_pool_protocol(listener.protocol, pool.protocol)
    action = changes.get("action", policy.action)
    redirects = {k: changes.get(k, getattr(policy, k)) for k in _REDIRECTS}
    redirects = _settle(action, redirects)
    status.begin_update(db, listener.load_balancer_id, policy, parents=[listener])
    policy.action = action
    for key in ("redirect_url", "redirect_prefix", "redirect_http_code"):
        setattr(policy, key, redirects[key])
    if redirects["redirect_pool_id"] is None:
        policy.redirect_pool = None
    elif pool is not None:
        policy.redirect_pool = pool
    deps.apply_changes(policy, {k: v for k, v in changes.items()
                                if k in ("name", "description", "admin_state_up", "tags")})
    if changes.get("position") is not None:
        _place(listener, policy, changes["position"])
    deps.check_provider(state, listener.load_balancer)
    deps.commit(db, state)
    return deps.respond("l7policy", s.L7PolicyResponse.dump(policy))


@router.delete("/l7policies/{l7policy_id}", status_code=204, response_class=Response)
def delete_l7policy(l7policy_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a policy and its rules (PENDING_DELETE; the worker removes them).

    The listener's other policies are renumbered at once.
    """
    policy = deps.get_visible(db, ctx, m.L7Policy, l7policy_id)
    ctx.authorize(RESOURCE, "delete", policy.project_id)
    listener = policy.listener
    status.begin_delete(db, listener.load_balancer_id, policy, parents=[listener])
    _renumber(_live_policies(listener, policy))
    deps.commit(db, state)
    return deps.no_content()


# -- construction and rules ----------------------------------------------------

def build_l7policy(db: Session, state: ApiState, listener: m.Listener,
                   data: s.L7PolicySingleCreate, redirect_pool: m.Pool | None,
                   ) -> m.L7Policy:
    """Validate ``data`` and add a new policy to ``listener.l7policies`` at its position.

    ``redirect_pool`` is the pool of a REDIRECT_TO_POOL policy when the caller
    has it in hand (a pool created in the same request); otherwise a
    ``redirect_pool_id`` of ``data`` (:class:`L7PolicyCreate`) is looked up.
    Checks the ``l7policy`` quota. Rules are added by the caller
    (:func:`lbaas.api.routes.l7rule.build_l7rule`). Neither locks nor commits.

    Raises ListenerNoChildren (400: PROMETHEUS listener), InvalidL7PolicyArgs /
    InvalidL7PolicyAction (400: inconsistent action and redirect fields),
    NotFound (404: the pool is not on the listener's load balancer),
    ValidationError (400: incompatible pool protocol), QuotaExceeded (403).
    """
    if listener.protocol == c.PROMETHEUS:
        raise exc.ListenerNoChildren(protocol=c.PROMETHEUS)
    if redirect_pool is None and isinstance(data, s.L7PolicyCreate) and data.redirect_pool_id:
        redirect_pool = pool_of(db, listener.load_balancer, data.redirect_pool_id)
    if redirect_pool is not None:
        check_pool_protocol(listener.protocol, redirect_pool.protocol)
    fields: dict[str, Any] = {
        "action": data.action, "redirect_url": data.redirect_url,
        "redirect_prefix": data.redirect_prefix, "redirect_http_code": data.redirect_http_code,
        "redirect_pool_id": (redirect_pool.id or "new") if redirect_pool else None}
    fields = sanitize(fields, create=True)
    redirects = _settle(fields["action"], {k: fields.get(k) for k in _REDIRECTS})
    deps.check_quota(db, state, listener.load_balancer, "l7policy")
    # No autoflush until the policy hangs from its listener: the pool's
    # backref would otherwise flush a policy that is in no session yet.
    with db.no_autoflush:
        policy = m.L7Policy(
            id=m.new_id(), project_id=listener.project_id, name=data.name,
            description=data.description, admin_state_up=data.admin_state_up is not False,
            action=fields["action"], redirect_url=redirects["redirect_url"],
            redirect_prefix=redirects["redirect_prefix"],
            redirect_http_code=redirects["redirect_http_code"],
            redirect_pool=redirect_pool if redirects["redirect_pool_id"] else None,
            position=c.MAX_POLICY_POSITION, operating_status=c.OFFLINE)
        policy.tags = list(data.tags or [])
        _place(listener, policy, data.position or c.MAX_POLICY_POSITION)
        listener.l7policies.append(policy)
    return policy


def sanitize(fields: dict[str, Any], create: bool = False) -> dict[str, Any]:
    """Make ``action`` and the redirect fields of a request consistent.

    Octavia's ``sanitize_l7policy_api_args``, on the fields a request gives:
    an action requires its target (REDIRECT_TO_URL a ``redirect_url``...) and
    drops the others; a pool and a URL/prefix together are refused; a
    redirect target given without an action sets the action (the pool first,
    then the URL, then the prefix), and a URL or prefix redirect defaults to
    HTTP 302. Unlike Octavia, REJECT also drops a ``redirect_prefix`` rather
    than turning into REDIRECT_PREFIX. Returns the changed copy; raises
    InvalidL7PolicyArgs (400, "Invalid L7 Policy arguments: ..."), also for an
    empty update ("Invalid update options"), and InvalidL7PolicyAction (400)
    for a create without an action.
    """
    out = dict(fields)
    if "action" in out:
        action = out["action"]
        if action == REJECT:
            out.update(redirect_url=None, redirect_pool_id=None, redirect_prefix=None)
        elif action in _NEEDS:
            needed, words = _NEEDS[action]
            if not out.get(needed):
                raise exc.InvalidL7PolicyArgs(msg=f"{words} must not be None")
            if action == REDIRECT_TO_URL:
                out["redirect_pool_id"] = None
            elif action == REDIRECT_TO_POOL:
                out["redirect_url"] = None
    if out.get("redirect_pool_id") and (out.get("redirect_url") or out.get("redirect_prefix")):
        raise exc.InvalidL7PolicyArgs(msg="Cannot specify redirect_pool_id and redirect_url "
                                          "or redirect_prefix at the same time")
    if out.get("redirect_pool_id"):
        out.update(action=REDIRECT_TO_POOL, redirect_url=None, redirect_prefix=None,
                   redirect_http_code=None)
    for target, action in (("redirect_url", REDIRECT_TO_URL),
                           ("redirect_prefix", REDIRECT_PREFIX)):
        if out.get(target):
            out.update(action=action)
            out.update({k: None for k in ("redirect_pool_id", "redirect_url", "redirect_prefix")
                        if k != target})
            if not out.get("redirect_http_code"):
                out["redirect_http_code"] = DEFAULT_REDIRECT_HTTP_CODE
    if create and "action" not in out:
        raise exc.InvalidL7PolicyAction(action="None")
    if not out:
        raise exc.InvalidL7PolicyArgs(msg="Invalid update options")
    return out


def _settle(action: str, redirects: dict[str, Any]) -> dict[str, Any]:
    """The redirect fields as stored for ``action``: those it does not use are
    cleared, the one it needs must be there (InvalidL7PolicyArgs, 400)."""
    keep = _KEEPS[action]
    out = {k: (v if k in keep else None) for k, v in redirects.items()}
    if action in _NEEDS:
        needed, words = _NEEDS[action]
        if not out.get(needed):
            raise exc.InvalidL7PolicyArgs(msg=f"{words} must not be None")
    return out


def _live_policies(listener: m.Listener, leaving: m.L7Policy | None = None,
                   ) -> list[m.L7Policy]:
    """``listener``'s policies in evaluation order, without ``leaving`` and
    those being deleted."""
    return [p for p in sorted(listener.l7policies, key=lambda p: p.position)
            if p is not leaving and p.provisioning_status != c.PENDING_DELETE]


def _renumber(policies: list[m.L7Policy]) -> None:
    for number, policy in enumerate(policies, start=1):
        if policy.position != number:
            policy.position = number


def _place(listener: m.Listener, policy: m.L7Policy, position: int) -> None:
    """Put ``policy`` at ``position`` (1-based; past the end is last) among
    ``listener``'s policies and renumber them 1..n."""
    others = _live_policies(listener, policy)
    others.insert(min(position, len(others) + 1) - 1, policy)
    _renumber(others)
