"""The fully-populated load balancer create: a whole graph in one request.

Follows Octavia's rules (api-ref "Creating a Fully Populated Load Balancer"):
every pool is named; a pool given with more than its name is a definition
(wherever it appears: top-level ``pools``, a listener's ``default_pool``, a
policy's ``redirect_pool``), a pool given by name only is a reference to a
definition elsewhere in the request; names are unique. Pools are built
first, then listeners with their policies and rules, all through the same
builders as the single-object creates, so every rule and quota applies.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from lbaas.api.deps import ApiState
from lbaas.api.policy import RequestContext
from lbaas.api.routes import l7policy, l7rule, listener, pool
from lbaas.api.schemas.fully_populated import ListenerGraph
from lbaas.api.schemas.pool import PoolSingleCreate
from lbaas.common import exceptions as exc
from lbaas.db import models as m


def _is_definition(data: PoolSingleCreate) -> bool:
    return bool(data.model_fields_set - {"name"})


def _named(data: PoolSingleCreate) -> str:
    if not data.name:
        raise exc.ValidationError(
            detail="Pools must be named when creating a fully populated loadbalancer.")
    return data.name


def build_graph(db: Session, ctx: RequestContext, state: ApiState, lb: m.LoadBalancer,
                listeners: list[ListenerGraph], pools: list[PoolSingleCreate]) -> None:
    """Add ``pools`` and ``listeners`` (with everything nested) to the new ``lb``.

    No locking and no commit (the load balancer is new). Raises
    ValidationError (400) for unnamed, duplicate or undefined pools, and
    whatever the per-resource builders raise (400, 403 quota, 404, 409).
    """
    definitions = list(pools)
    referenced: set[str] = set()
    for li in listeners:
        candidates = [li.default_pool] + [p.redirect_pool for p in li.l7policies]
        for ref in candidates:
            if ref is None:
                continue
            name = _named(ref)
            if _is_definition(ref):
                definitions.append(ref)
            else:
                referenced.add(name)
    names = [d.name for d in definitions]
    if len(set(names)) != len(names):
        raise exc.ValidationError(detail="Pool names must be unique when creating a fully "
                                         "populated loadbalancer.")
    for name in sorted(referenced - set(names)):
        raise exc.ValidationError(
            detail=f"Pool '{name}' was referenced but no full definition was found.")

    by_name: dict[str | None, m.Pool] = {}
    for definition in definitions:
        by_name[definition.name] = pool.build_pool(db, ctx, state, lb, definition)

    for li in listeners:
        default_pool = by_name[li.default_pool.name] if li.default_pool else None
        new_listener = listener.build_listener(db, ctx, state, lb, li, default_pool)
        for policy_data in li.l7policies:
            redirect = (by_name[policy_data.redirect_pool.name]
                        if policy_data.redirect_pool else None)
            policy = l7policy.build_l7policy(db, state, new_listener, policy_data, redirect)
            for rule_data in policy_data.rules:
                l7rule.build_l7rule(db, state, policy, rule_data)
