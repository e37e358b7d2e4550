"""Builders of :class:`~lbaas.dataplane.spec.LoadBalancerSpec` values for data-plane tests.

Ids are short readable strings ("lb1", "pool1", "m-web1"): the renderer
accepts any id of letters, digits, '.', '_' and '-'.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lbaas.dataplane import spec as s


def member(mid: str, port: int, address: str = "127.0.0.1", **kw: Any) -> s.MemberSpec:
    """A member on ``address:port``."""
    return s.MemberSpec(id=mid, address=address, protocol_port=port, **kw)


def http_lb(lb_id: str, port: int, members: tuple[s.MemberSpec, ...], vip: str = "127.0.0.1",
            protocol: str = "HTTP", algorithm: str = "ROUND_ROBIN",
            listener: dict[str, Any] | None = None, **pool: Any) -> s.LoadBalancerSpec:
    """One listener on ``vip:port`` with one pool ``pool1`` of ``members``."""
    p = s.PoolSpec(id="pool1", protocol=protocol, lb_algorithm=algorithm, members=members,
                   **pool)
    li = s.ListenerSpec(id="listener1", protocol=protocol, protocol_port=port,
                        default_pool_id="pool1", **(listener or {}))
    return s.LoadBalancerSpec(id=lb_id, project_id="project", vip=s.VipSpec(address=vip),
                              listeners=(li,), pools=(p,))


def with_members(lb: s.LoadBalancerSpec, *members: s.MemberSpec) -> s.LoadBalancerSpec:
    """``lb`` with its first pool's members replaced."""
    pool = dataclasses.replace(lb.pools[0], members=tuple(members))
    return dataclasses.replace(lb, pools=(pool, *lb.pools[1:]))


def with_listener(lb: s.LoadBalancerSpec, **changes: Any) -> s.LoadBalancerSpec:
    """``lb`` with its first listener changed."""
    li = dataclasses.replace(lb.listeners[0], **changes)
    return dataclasses.replace(lb, listeners=(li, *lb.listeners[1:]))


def with_pool(lb: s.LoadBalancerSpec, **changes: Any) -> s.LoadBalancerSpec:
    """``lb`` with its first pool changed."""
    pool = dataclasses.replace(lb.pools[0], **changes)
    return dataclasses.replace(lb, pools=(pool, *lb.pools[1:]))
