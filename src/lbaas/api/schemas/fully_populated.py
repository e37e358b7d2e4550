"""Shapes of the fully-populated load balancer create (api-ref "Creating a Fully
Populated Load Balancer").

A listener may carry its ``default_pool`` and ``l7policies`` (each with
``rules`` and an optional ``redirect_pool``); pools may be given in full, or
named in one place and defined in another (the top-level ``pools`` list).
The answer shows the graph in full (``LoadBalancerFullResponse`` and the
``*FullResponse`` of each resource).
"""

from __future__ import annotations

from lbaas.api.schemas.l7policy import L7PolicySingleCreate
from lbaas.api.schemas.l7rule import L7RuleSingleCreate
from lbaas.api.schemas.listener import ListenerSingleCreate
from lbaas.api.schemas.pool import PoolSingleCreate


class L7PolicyGraph(L7PolicySingleCreate):
    """An L7 policy with its rules; ``redirect_pool`` is a pool (or its name)."""

    redirect_pool: PoolSingleCreate | None = None
    rules: list[L7RuleSingleCreate] = []


class ListenerGraph(ListenerSingleCreate):
    """A listener with its default pool (or the name of one) and L7 policies."""

    default_pool: PoolSingleCreate | None = None
    l7policies: list[L7PolicyGraph] = []

