"""Shapes of the fully-populated load balancer create (api-ref "Creating a Fully
Populated Load Balancer").

A listener may carry its ``default_pool`` and ``l7policies`` (each with
``rules`` and an optional ``redirect_pool``); pools may be given in full, or
named in one place and defined in another (the top-level ``pools`` list).
"""

from __future__ import annotations

from typing import Any

from lbaas.api.schemas.l7policy import L7PolicyResponse, L7PolicySingleCreate
from lbaas.api.schemas.l7rule import L7RuleResponse, L7RuleSingleCreate
from lbaas.api.schemas.listener import ListenerResponse, ListenerSingleCreate
from lbaas.api.schemas.pool import PoolSingleCreate
from lbaas.db import models as m


class L7PolicyGraph(L7PolicySingleCreate):
    """An L7 policy with its rules; ``redirect_pool`` is a pool (or its name)."""

    redirect_pool: PoolSingleCreate | None = None
    rules: list[L7RuleSingleCreate] = []


class ListenerGraph(ListenerSingleCreate):
    """A listener with its default pool (or the name of one) and L7 policies."""

    default_pool: PoolSingleCreate | None = None
    l7policies: list[L7PolicyGraph] = []


class L7PolicyFullResponse(L7PolicyResponse):
    rules: list[L7RuleResponse]  # type: ignore[assignment]

    @classmethod
    def dump(cls, policy: m.L7Policy) -> dict[str, Any]:
        """``policy`` with its rules in full."""
        return {**L7PolicyResponse.dump(policy),
                "rules": [L7RuleResponse.dump(r) for r in policy.rules]}


class ListenerFullResponse(ListenerResponse):
    """As Octavia's: policies in full, no ``loadbalancers``."""

    l7policies: list[L7PolicyFullResponse]  # type: ignore[assignment]
    loadbalancers: None = None  # type: ignore[assignment]

    @classmethod
    def dump(cls, listener: m.Listener) -> dict[str, Any]:
        """``listener`` with its L7 policies and rules in full."""
        body = ListenerResponse.dump(listener)
        del body["loadbalancers"]
        body["l7policies"] = [L7PolicyFullResponse.dump(p) for p in
                              sorted(listener.l7policies, key=lambda p: p.position)]
        return body
