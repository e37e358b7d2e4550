"""Operating status: what HAProxy reports, rolled up the load balancer graph.

Pure functions from a load balancer's graph (frozen nodes read from the
database) and one ``show stat`` (:class:`~lbaas.dataplane.runtime.LoadBalancerStats`)
to the operating status each object should have. Octavia's health manager
(``amphorae/drivers/health/heartbeat_udp.py``) is the model; where lbaas
differs it says so.

Member, from its ``server`` row(s) (one per backend the pool is used in; the
worst wins, ERROR > DRAINING > OFFLINE > NO_MONITOR > ONLINE)::

    HAProxy status                  operating_status
    UP, "UP 1/3" (going down)       ONLINE     (DRAINING if weight is 0, as Octavia)
    DOWN, "DOWN 1/2" (going up)     ERROR
    DRAIN, NOLB                     DRAINING
    MAINT (admin_state_up false)    OFFLINE
    "no check" (no health monitor)  NO_MONITOR (DRAINING if weight is 0)
    no row (pool not in HAProxy)    OFFLINE    (as Octavia)
    anything else                   unchanged

Pool, from its ``backend <pool>:<listener>`` rows: OFFLINE if it is
admin-down or in no backend (no enabled listener uses it: Octavia's
"potential offline pools"). Each backend is ERROR if HAProxy reports it DOWN
(no usable server: every member down, disabled or at weight 0), DEGRADED if
some member in it is ERROR, else ONLINE; the pool is ERROR if all its
backends are ERROR, DEGRADED if any is ERROR or DEGRADED, else ONLINE.

Listener: OFFLINE if it or its load balancer is admin-down; ERROR if enabled
but HAProxy has no frontend for it (as Octavia); otherwise from its frontend
(OPEN -> ONLINE, FULL -> DEGRADED, as Octavia) combined with its backends
(default pool and L7 redirect pools) like a pool: all ERROR -> ERROR, any
ERROR or DEGRADED -> DEGRADED. Octavia leaves a listener ONLINE while its
pool is down; lbaas rolls it up, so that a tenant sees the fault at every
level.

Load balancer: OFFLINE if admin-down; ERROR if its HAProxy is missing or
dead (and its enabled listeners ERROR too: nothing serves them; pools and
members keep their last status, nothing was observed); otherwise its
enabled listeners combined the same way (none: ONLINE), and at least
DEGRADED while one amphora of an ACTIVE_STANDBY load balancer is not
running (the other serves, but nothing would if it failed too). Octavia marks the
whole load balancer ERROR as soon as one pool is down; lbaas says DEGRADED
unless every listener is ERROR.

Health monitor: ONLINE if enabled and its pool is in HAProxy, else OFFLINE
(Octavia sets ONLINE or OFFLINE from admin_state_up when it is provisioned).

Objects being created or deleted (PENDING_CREATE, PENDING_DELETE) are not in
the data plane yet or any more: they get no status and take no part in a
roll-up.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from lbaas.common import constants as c
from lbaas.dataplane.runtime import LoadBalancerStats, StatRow

LOADBALANCER = "loadbalancer"
LISTENER = "listener"
POOL = "pool"
MEMBER = "member"
HEALTHMONITOR = "healthmonitor"

Ref = tuple[str, str]
"""(kind, object id): one of the kinds above and the object's id."""

UNSETTLED = (c.PENDING_CREATE, c.PENDING_DELETE)

# Worst first: for a member reported by several backends.
_MEMBER_RANK = {c.ERROR: 0, c.DRAINING: 1, c.OFFLINE: 2, c.NO_MONITOR: 3, c.ONLINE: 4}


@dataclass(frozen=True)
class Node:
    """An object of the graph with what decides its status."""

    id: str
    admin_state_up: bool
    provisioning_status: str
    operating_status: str

    @property
    def settled(self) -> bool:
        """True unless being created or deleted."""
        return self.provisioning_status not in UNSETTLED


@dataclass(frozen=True)
class PoolNode(Node):
    """A pool with its members and health monitor."""

    members: tuple[Node, ...] = ()
    health_monitor: Node | None = None


@dataclass(frozen=True)
class LoadBalancerNode(Node):
    """A load balancer's graph as the health manager needs it."""

    project_id: str | None = None
    provider: str = c.PROVIDER_HAPROXY
    listeners: tuple[Node, ...] = ()
    pools: tuple[PoolNode, ...] = ()
    amphorae: tuple[tuple[str, str], ...] = ()  # ACTIVE_STANDBY: (amphora id, role) as stored

    def refs(self) -> Iterable[tuple[Ref, Node]]:
        """Every object with its reference, the load balancer first."""
        yield (LOADBALANCER, self.id), self
        for li in self.listeners:
            yield (LISTENER, li.id), li
        for pool in self.pools:
            yield (POOL, pool.id), pool
            for m in pool.members:
                yield (MEMBER, m.id), m
            if pool.health_monitor is not None:
                yield (HEALTHMONITOR, pool.health_monitor.id), pool.health_monitor


def combine(children: Iterable[str]) -> str:
    """Roll children's statuses up: none -> ONLINE, all ERROR -> ERROR,
    any ERROR or DEGRADED -> DEGRADED, else ONLINE."""
    seen = list(children)
    if seen and all(s == c.ERROR for s in seen):
        return c.ERROR
    if any(s in (c.ERROR, c.DEGRADED) for s in seen):
        return c.DEGRADED
    return c.ONLINE


def member_status(row: StatRow) -> str | None:
    """The operating status HAProxy's ``server`` row means (None: unknown, keep)."""
    status = row.status
    if status.startswith("MAINT"):
        return c.OFFLINE
    if status.startswith("DOWN"):
        return c.ERROR
    if status.startswith(("DRAIN", "NOLB")):
        return c.DRAINING
    if status.startswith("UP") or status == "no check":
        if row.weight == 0:
            return c.DRAINING
        return c.ONLINE if status.startswith("UP") else c.NO_MONITOR
    return None


def listener_rollup(frontend: str, backends: list[str]) -> str:
    """A listener from its frontend's status and its backends' statuses.

    ERROR if the frontend is missing (``frontend`` ERROR) or every backend is
    ERROR; DEGRADED if the frontend is FULL or any backend is ERROR or
    DEGRADED; else ONLINE.
    """
    if frontend == c.ERROR or (backends and all(b == c.ERROR for b in backends)):
        return c.ERROR
    return combine([frontend, *backends])


def _worst(statuses: Iterable[str | None]) -> str | None:
    known = [s for s in statuses if s is not None]
    return min(known, key=lambda s: _MEMBER_RANK.get(s, 0)) if known else None


def frontend_status(row: StatRow) -> str | None:
    """OPEN -> ONLINE, FULL -> DEGRADED (as Octavia); anything else None (keep)."""
    return {"OPEN": c.ONLINE, "FULL": c.DEGRADED}.get(row.status)


def dead(lb: LoadBalancerNode) -> dict[Ref, str]:
    """Statuses when ``lb``'s HAProxy is missing, dead or not answering."""
    out: dict[Ref, str] = {(LOADBALANCER, lb.id): c.ERROR if lb.admin_state_up else c.OFFLINE}
    for li in lb.listeners:
        if li.settled:
            out[(LISTENER, li.id)] = c.ERROR if lb.admin_state_up and li.admin_state_up \
                else c.OFFLINE
    return out


def evaluate(lb: LoadBalancerNode, stats: LoadBalancerStats) -> dict[Ref, str]:
    """The operating status of every settled object of ``lb``, from ``stats``.

    ``stats`` must be an answered poll of ``lb``'s HAProxy, or one with
    ``running=False`` (then :func:`dead`). Objects whose status cannot be
    told (an unknown HAProxy state) are left out. Rules: module docstring.
    """
    if not stats.running:
        return dead(lb)
    frontends = {r.proxy: r for r in stats.rows if r.type == "frontend"}
    backends: dict[str, list[StatRow]] = defaultdict(list)  # by pool id
    servers: dict[tuple[str, str], list[StatRow]] = defaultdict(list)  # (backend, member)
    for r in stats.rows:
        if r.type == "backend" and r.pool_id is not None:
            backends[r.pool_id].append(r)
        elif r.type == "server":
            servers[(r.proxy, r.name)].append(r)

    out: dict[Ref, str] = {}
    backend_status: dict[str, str] = {}  # by backend (proxy) name
    for pool in lb.pools:
        served = pool.admin_state_up and pool.id in backends
        for m in pool.members:
            if not m.settled:
                continue
            if not served or not m.admin_state_up:
                out[(MEMBER, m.id)] = c.OFFLINE
                continue
            rows = [row for be in backends[pool.id] for row in servers.get((be.proxy, m.id), ())]
            status = _worst(member_status(row) for row in rows) if rows else c.OFFLINE
            if status is not None:
                out[(MEMBER, m.id)] = status
        hm = pool.health_monitor
        if hm is not None and hm.settled:
            out[(HEALTHMONITOR, hm.id)] = c.ONLINE if served and hm.admin_state_up \
                else c.OFFLINE
        if not served:
            if pool.settled:
                out[(POOL, pool.id)] = c.OFFLINE
            continue
        members = [m for m in pool.members if m.settled]
        for be in backends[pool.id]:
            if be.status.startswith("DOWN"):
                backend_status[be.proxy] = c.ERROR
            elif any(member_status(row) == c.ERROR for m in members
                     for row in servers.get((be.proxy, m.id), ())):
                backend_status[be.proxy] = c.DEGRADED
            else:
                backend_status[be.proxy] = c.ONLINE
        if pool.settled:
            out[(POOL, pool.id)] = combine(backend_status[be.proxy] for be in backends[pool.id])

    by_listener: dict[str, list[str]] = defaultdict(list)
    for proxy, status in backend_status.items():
        by_listener[proxy.rsplit(":", 1)[-1]].append(status)
    listener_status: list[str] = []
    for li in lb.listeners:
        if not li.settled:
            continue
        if not (lb.admin_state_up and li.admin_state_up):
            out[(LISTENER, li.id)] = c.OFFLINE
            continue
        fe = frontends.get(li.id)
        own = frontend_status(fe) if fe is not None else c.ERROR
        if own is None:  # a state Octavia does not map either (STOP): keep the last one
            listener_status.append(li.operating_status)
            continue
        status = listener_rollup(own, by_listener.get(li.id, []))
        out[(LISTENER, li.id)] = status
        listener_status.append(status)
    lb_status = combine(listener_status) if lb.admin_state_up else c.OFFLINE
    if lb_status == c.ONLINE and not all(a.running for a in stats.amphorae):
        lb_status = c.DEGRADED
    out[(LOADBALANCER, lb.id)] = lb_status
    return out


def amphora_roles(lb: LoadBalancerNode, stats: LoadBalancerStats) -> dict[str, str]:
    """The ACTIVE_STANDBY amphorae whose role keepalived now reports otherwise than stored:
    amphora id -> MASTER or BACKUP (FAULT, STOP or no report changes nothing)."""
    stored = dict(lb.amphorae)
    return {a.id: a.vrrp_state for a in stats.amphorae
            if a.vrrp_state in (c.AMPHORA_ROLE_MASTER, c.AMPHORA_ROLE_BACKUP)
            and a.id in stored and stored[a.id] != a.vrrp_state}


def changes(lb: LoadBalancerNode, statuses: dict[Ref, str]) -> dict[Ref, str]:
    """The entries of ``statuses`` that differ from what ``lb``'s nodes hold."""
    current = {ref: node.operating_status for ref, node in lb.refs()}
    return {ref: s for ref, s in statuses.items() if ref in current and current[ref] != s}


def with_roles(lb: LoadBalancerNode, roles: dict[str, str]) -> LoadBalancerNode:
    """``lb`` with its amphorae's roles of ``roles`` (amphora id -> role, as written)."""
    return dataclasses.replace(lb, amphorae=tuple((a, roles.get(a, role))
                                                  for a, role in lb.amphorae))


def with_statuses(lb: LoadBalancerNode, statuses: dict[Ref, str]) -> LoadBalancerNode:
    """``lb`` with the operating statuses of ``statuses`` (as written to the database)."""
    def moved(kind: str, node: Node) -> Node:
        status = statuses.get((kind, node.id))
        return node if status is None else dataclasses.replace(node, operating_status=status)

    pools = tuple(dataclasses.replace(
        pool, operating_status=moved(POOL, pool).operating_status,
        members=tuple(moved(MEMBER, mb) for mb in pool.members),
        health_monitor=moved(HEALTHMONITOR, pool.health_monitor)
        if pool.health_monitor is not None else None) for pool in lb.pools)
    return dataclasses.replace(
        lb, operating_status=moved(LOADBALANCER, lb).operating_status,
        listeners=tuple(moved(LISTENER, li) for li in lb.listeners), pools=pools)
