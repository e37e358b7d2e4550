"""Database rows -> frozen :class:`LoadBalancerSpec` (the desired state).

Objects being deleted (PENDING_DELETE) are left out, so the spec is what the
data plane must serve once the change is done.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload, lazyload, selectinload

from lbaas.common import constants as c
from lbaas.dataplane import spec as s
from lbaas.db import models as m
from lbaas.network.base import NetworkDriver, Subnet
from lbaas.worker import amphorae as amph


def _live(objs: Sequence[Any]) -> list[Any]:
    return [o for o in objs if o.provisioning_status != c.PENDING_DELETE]


def _tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


def _graph_statement(members: str) -> Select[m.LoadBalancer]:
    """The query of :func:`load_graph` for ``members``, the load balancer's id a bind
    parameter (``lb_id``)."""
    listeners = selectinload(m.LoadBalancer.listeners)
    policies = listeners.joinedload(m.Listener.l7policies)
    pools = selectinload(m.LoadBalancer.pools)
    if members == "none":
        member_option = pools.raiseload(m.Pool.members)
    else:
        loaded = m.Pool.members if members == "all" else m.Pool.members.and_(
            m.Member.provisioning_status.in_(c.PENDING_STATUSES))
        member_option = pools.selectinload(loaded).lazyload(m.Member._tags)
    return select(m.LoadBalancer).where(m.LoadBalancer.id == bindparam("lb_id")).options(
        lazyload(m.LoadBalancer._tags),
        listeners.lazyload(m.Listener._tags),
        policies.lazyload(m.L7Policy._tags),
        policies.selectinload(m.L7Policy.rules).lazyload(m.L7Rule._tags),
        pools.lazyload(m.Pool._tags),
        member_option,
        pools.joinedload(m.Pool.health_monitor).lazyload(m.HealthMonitor._tags),
        joinedload(m.LoadBalancer.amphorae).joinedload(m.Amphora.agent),
        joinedload(m.LoadBalancer.vrrp_group),
    )


# Made once: SQLAlchemy keeps a statement's cache key on it, so that each run does not
# walk its dozen loader options again to find its compiled form (issue 12: a quarter of
# the time of load_graph, 0.8 ms on every change).
_GRAPH_STATEMENTS = {members: _graph_statement(members) for members in ("all", "pending", "none")}


def load_graph(session: Session, lb_id: str, members: str = "all") -> m.LoadBalancer | None:
    """Load ``lb_id`` with its whole graph in a few queries (None if gone): its VRRP
    group and amphorae (with their agents) joined to it, each listener's L7 policies
    to the listeners, each pool's health monitor to the pools (a query less for each:
    three queries instead of eight, and the L7 rules' if there are policies; issue 12).

    Tags are not part of a spec: they are loaded only if used (a delete
    cascading to them), not with every object of the graph (issue 12: half
    the cost of loading a pool of a thousand members). ``members``: what each
    pool's ``members`` holds: ``all``; ``pending``, only its PENDING_* members
    (what :func:`lbaas.worker.status.finish` settles, so that a member add in
    a pool of a thousand loads one; never for a change that deletes the load
    balancer, whose cascade needs them all); ``none``, not loaded (reading
    them raises; :func:`spec_of` reads them as plain rows, a fifth of the
    time of ORM objects).
    """
    return session.scalars(_GRAPH_STATEMENTS[members],
                           {"lb_id": lb_id}).unique().one_or_none()


def build_spec(lb: m.LoadBalancer, subnet: Subnet | None = None,
               amphorae: Sequence[m.Amphora] = (),
               members: Members | None = None) -> s.LoadBalancerSpec:
    """The desired state of ``lb``; ``subnet`` is its VIP subnet, if known; ``amphorae``
    where it runs (:meth:`lbaas.worker.scheduler.Scheduler.place`). ``members``: if
    given, each pool's members by pool id (a pool left out has none) instead of the
    pools' own (not loaded then): :func:`read_members`, :class:`MemberCache`."""
    return _load_balancer(
        lb,
        vip=s.VipSpec(
            address=lb.vip_address or "",
            subnet_id=lb.vip_subnet_id,
            network_id=lb.vip_network_id,
            port_id=lb.vip_port_id,
            subnet_cidr=subnet.cidr if subnet else None,
            gateway_ip=subnet.gateway_ip if subnet else None,
            qos_policy_id=lb.vip_qos_policy_id,
            sg_ids=tuple(lb.vip_sg_ids or ()),
        ),
        additional_vips=tuple(
            s.VipSpec(address=v.get("ip_address") or "", subnet_id=v.get("subnet_id"),
                      port_id=v.get("port_id"))
            for v in lb.additional_vips or ()),
        listeners=tuple(_listener(li) for li in _live(lb.listeners)),
        pools=tuple(_pool(p, members) for p in _live(lb.pools)),
        amphorae=_amphorae(lb, amphorae),
        vrrp=_vrrp(lb),
    )


def member_change_spec(pool: m.Pool, members: Sequence[m.Member]) -> s.LoadBalancerSpec:
    """What a change of ``members`` (members of ``pool``, in the session) can make a
    provider refuse, for its ``validate_members``: ``pool``'s load balancer (its VIP
    address, no subnet, amphorae or additional VIPs), each listener using ``pool``
    shown with ``pool`` as its default pool and no L7 policies (a member's server
    line depends on the listener and the pool, not on how one reaches the other),
    and ``pool`` holding just ``members``.

    Reads only what a member change's handler loads with the pool
    (:data:`lbaas.api.routes.member.POOL_OF_A_CHANGE`): no query (issue 12).
    """
    return _load_balancer(
        pool.load_balancer,
        vip=s.VipSpec(address=pool.load_balancer.vip_address or ""),
        listeners=tuple(_listener(li, only_pool=pool.id) for li in _live(pool.listeners)),
        pools=(_pool(pool, {pool.id: _entries(members)}),),
    )


def _load_balancer(lb: m.LoadBalancer, **parts: Any) -> s.LoadBalancerSpec:
    """The spec of ``lb`` made of its own fields and ``parts`` (vip, listeners, ...)."""
    return s.LoadBalancerSpec(id=lb.id, project_id=lb.project_id,
                              admin_state_up=lb.admin_state_up, provider=lb.provider,
                              topology=lb.topology, **parts)


def _amphorae(lb: m.LoadBalancer, amphorae: Sequence[m.Amphora]) -> tuple[s.AmphoraSpec, ...]:
    """``amphorae`` as the data plane gets them; ACTIVE_STANDBY: each with the role it
    was built for (not the one keepalived last reported), the MASTER's first."""
    if lb.topology != c.TOPOLOGY_ACTIVE_STANDBY:
        return tuple(s.AmphoraSpec(id=a.id, role=a.role, vrrp_ip=a.vrrp_ip or "",
                                   vrrp_priority=a.vrrp_priority or 0, agent_id=a.agent_id,
                                   host=_host(a)) for a in amphorae)
    return tuple(s.AmphoraSpec(id=a.id, role=amph.built_as(a), vrrp_ip=a.vrrp_ip or "",
                               vrrp_priority=a.vrrp_priority or 0, agent_id=a.agent_id,
                               host=_host(a))
                 for a in sorted(amphorae, key=lambda a: -(a.vrrp_priority or 0)))


def _host(amphora: m.Amphora) -> str | None:
    """The host of ``amphora``'s agent (None: not placed)."""
    return amphora.agent.host if amphora.agent_id is not None and amphora.agent else None


def _vrrp(lb: m.LoadBalancer) -> s.VrrpSpec | None:
    """An ACTIVE_STANDBY load balancer's VRRP group (None for SINGLE)."""
    group = lb.vrrp_group
    if lb.topology != c.TOPOLOGY_ACTIVE_STANDBY or group is None:
        return None
    return s.VrrpSpec(vrrp_id=next((a.vrrp_id for a in lb.amphorae if a.vrrp_id), 1),
                      auth_type=group.vrrp_auth_type, auth_pass=group.vrrp_auth_pass[:8],
                      advert_int=group.advert_int)


def _listener(li: m.Listener, only_pool: str | None = None) -> s.ListenerSpec:
    """``li``'s spec; ``only_pool``: shown with that pool as its default pool and no L7
    policies, neither of its own read (:func:`member_change_spec`)."""
    default_pool_id = only_pool
    l7policies: Sequence[m.L7Policy] = ()
    if only_pool is None:
        l7policies = li.l7policies
        default_pool = li.default_pool
        if default_pool is not None and default_pool.provisioning_status != c.PENDING_DELETE:
            default_pool_id = default_pool.id
    return s.ListenerSpec(
        id=li.id,
        protocol=li.protocol,
        protocol_port=li.protocol_port,
        admin_state_up=li.admin_state_up,
        connection_limit=li.connection_limit,
        default_pool_id=default_pool_id,
        timeout_client_data=li.timeout_client_data,
        timeout_member_connect=li.timeout_member_connect,
        timeout_member_data=li.timeout_member_data,
        timeout_tcp_inspect=li.timeout_tcp_inspect,
        insert_headers=tuple(sorted((k, str(v)) for k, v in (li.insert_headers or {}).items())),
        allowed_cidrs=tuple(li.allowed_cidrs or ()),
        l7policies=tuple(_l7policy(p) for p in sorted(_live(l7policies),
                                                        key=lambda p: p.position)),
        default_tls_container_ref=li.default_tls_container_ref,
        sni_container_refs=tuple(li.sni_container_refs or ()),
        client_authentication=li.client_authentication,
        client_ca_tls_container_ref=li.client_ca_tls_container_ref,
        client_crl_container_ref=li.client_crl_container_ref,
        tls_ciphers=li.tls_ciphers,
        tls_versions=_tuple(li.tls_versions),
        alpn_protocols=_tuple(li.alpn_protocols),
        hsts_max_age=li.hsts_max_age,
        hsts_include_subdomains=li.hsts_include_subdomains,
        hsts_preload=li.hsts_preload,
    )


def _l7policy(p: m.L7Policy) -> s.L7PolicySpec:
    redirect_pool_id = p.redirect_pool_id
    if p.redirect_pool is not None and p.redirect_pool.provisioning_status == c.PENDING_DELETE:
        redirect_pool_id = None
    return s.L7PolicySpec(
        id=p.id,
        action=p.action,
        position=p.position,
        admin_state_up=p.admin_state_up,
        redirect_pool_id=redirect_pool_id,
        redirect_url=p.redirect_url,
        redirect_prefix=p.redirect_prefix,
        redirect_http_code=p.redirect_http_code,
        rules=tuple(s.L7RuleSpec(
            id=r.id, type=r.type, compare_type=r.compare_type, value=r.value, key=r.key,
            invert=r.invert, admin_state_up=r.admin_state_up) for r in _live(p.rules)),
    )


def _pool(p: m.Pool, members: Members | None = None) -> s.PoolSpec:
    sp = p.session_persistence
    mine = _entries(p.members) if members is None else members.get(p.id, _NONE)
    hm = p.health_monitor
    return s.PoolSpec(
        id=p.id,
        protocol=p.protocol,
        lb_algorithm=p.lb_algorithm,
        admin_state_up=p.admin_state_up,
        session_persistence=s.SessionPersistenceSpec(
            type=sp["type"], cookie_name=sp.get("cookie_name"),
            persistence_timeout=sp.get("persistence_timeout"),
            persistence_granularity=sp.get("persistence_granularity"),
        ) if sp else None,
        health_monitor=s.HealthMonitorSpec(
            id=hm.id, type=hm.type, delay=hm.delay, timeout=hm.timeout,
            max_retries=hm.max_retries, max_retries_down=hm.max_retries_down,
            admin_state_up=hm.admin_state_up, http_method=hm.http_method,
            url_path=hm.url_path, expected_codes=hm.expected_codes,
            http_version=hm.http_version, domain_name=hm.domain_name,
        ) if hm is not None and hm.provisioning_status != c.PENDING_DELETE else None,
        members=tuple(spec for state, spec in mine.values() if state != c.PENDING_DELETE),
        tls_enabled=p.tls_enabled,
        tls_container_ref=p.tls_container_ref,
        ca_tls_container_ref=p.ca_tls_container_ref,
        crl_container_ref=p.crl_container_ref,
        tls_ciphers=p.tls_ciphers,
        tls_versions=_tuple(p.tls_versions),
        alpn_protocols=_tuple(p.alpn_protocols),
    )


# A member as the worker reads it: (provisioning_status, spec); and the members of a
# load balancer's pools: pool id -> member id -> entry, each pool's in the order of
# Pool.members (created_at, id).
MemberEntry = tuple[str, s.MemberSpec]
Members = dict[str, dict[str, MemberEntry]]
_NONE: dict[str, MemberEntry] = {}

# What a member's entry is read from: its pool id, its provisioning_status, then
# MemberSpec's fields in their order.
_MEMBER_FIELDS = tuple(f.name for f in dataclasses.fields(s.MemberSpec))
_MEMBER_COLUMNS = (m.Member.pool_id, m.Member.provisioning_status,
                   *(getattr(m.Member, name) for name in _MEMBER_FIELDS))
_member_fields = operator.attrgetter(*_MEMBER_FIELDS)
# MemberSpec's booleans, by position: a driver may give them as integers (SQLite's 0/1).
_MEMBER_FLAGS = tuple(i for i, f in enumerate(dataclasses.fields(s.MemberSpec))
                      if f.type in (bool, "bool"))
# Made once, as the graph's (see _GRAPH_STATEMENTS); the pools' ids a bind parameter.
_MEMBER_ROWS = (select(*_MEMBER_COLUMNS)
                .where(m.Member.pool_id.in_(bindparam("pool_ids", expanding=True)))
                .order_by(m.Member.created_at, m.Member.id))
_PENDING_MEMBER_ROWS = _MEMBER_ROWS.where(
    m.Member.provisioning_status.in_(c.PENDING_STATUSES))


def _entries(members: Iterable[m.Member]) -> dict[str, MemberEntry]:
    """``members`` (ORM objects the session holds) as entries, by member id."""
    return {mb.id: (mb.provisioning_status, _member_spec(tuple(_member_fields(mb))))
            for mb in members}


@functools.lru_cache(maxsize=16384)  # a few hundred bytes an entry
def _member_spec(fields: tuple[Any, ...]) -> s.MemberSpec:
    """The spec of a member whose MemberSpec fields are ``fields`` (booleans as the
    database driver gives them: 0 and 1 are False and True, and equal to them as
    keys), built once per distinct row (issue 12; building them all was most of a
    member add's time in a pool of 1,000)."""
    values = list(fields)
    for i in _MEMBER_FLAGS:
        if values[i] is not None:
            values[i] = bool(values[i])
    return s.MemberSpec(*values)


def read_members(session: Session, lb: m.LoadBalancer, pending: bool = False) -> Members:
    """The members of ``lb``'s pools (``pending``: only those PENDING_*), by pool id (a
    pool without any is left out): one Core query on the session's connection (no ORM
    rows, no autoflush: nothing is pending where it is used).

    The rows are the database driver's tuples, not result rows (issue 12: reading
    a pool of 1,000 took 3.9 ms of CPU, 2.3 ms so): booleans may be integers
    there, which :func:`_member_spec` reads as booleans.
    """
    out: Members = {}
    pool_ids = [p.id for p in lb.pools]
    if pool_ids:
        statement = _PENDING_MEMBER_ROWS if pending else _MEMBER_ROWS
        result = session.connection().execute(statement, {"pool_ids": pool_ids})
        try:
            for row in result.cursor.fetchall():
                pool = out.get(row[0])
                if pool is None:
                    pool = out[row[0]] = {}
                pool[row[2]] = (row[1], _member_spec(tuple(row[2:])))
        finally:
            result.close()
    return out


class MemberCache:
    """The members of the load balancers whose change this worker applied, each load
    balancer's kept with the ``graph_version`` it was applied at (issue 12: a member
    added to a pool of 1,000 reads one member, not 1,000).

    Every change of a load balancer's graph begins with the ``UPDATE`` that makes
    it PENDING_* and bumps its ``graph_version`` (:mod:`lbaas.worker.status`), and
    none begins before the one in flight is settled. So when the version read is
    exactly one more than the one kept, the only members that differ from those
    kept are the PENDING_* ones now: they are read and patched in. Anything else
    (nothing kept, another process applied a change in between, a failover) reads
    them all. Entries are taken out while their change runs and put back only
    once it settled ACTIVE (:meth:`keep`): a change that failed or was abandoned
    leaves none. Each load balancer has one change in flight in a process
    (:class:`~lbaas.worker.reconciler.Reconciler`): no lock is needed.
    """

    # A load balancer with fewer members is not kept: read whole, they cost little (a
    # tenth of 1,000's 2.3 ms), and a host of many small load balancers keeps nothing.
    min_members = 100

    def __init__(self) -> None:
        self._kept: dict[str, tuple[int, Members]] = {}

    def read(self, session: Session, lb: m.LoadBalancer) -> Members:
        """The members of ``lb`` (loaded by :func:`load_graph`, any ``members``), from
        what is kept when its version allows, else from the database."""
        kept = self._kept.pop(lb.id, None)
        if kept is None or kept[0] != lb.graph_version - 1 or lb.failover_requested:
            return read_members(session, lb)
        members = {p.id: kept[1].get(p.id) or {} for p in lb.pools}  # pools gone: dropped
        for pool_id, changed in read_members(session, lb, pending=True).items():
            members[pool_id].update(changed)  # in place, or after the others (newer)
        return members

    def keep(self, lb_id: str, version: int, members: Members) -> None:
        """``members`` of ``lb_id`` (from :meth:`read`) were applied at ``version`` and
        the change settled ACTIVE: kept as the database has them now (those that were
        PENDING_DELETE are gone); not if they are fewer than :attr:`min_members`."""
        if sum(len(pool) for pool in members.values()) < self.min_members:
            return
        self._kept[lb_id] = (version, {
            pool_id: pool if all(state != c.PENDING_DELETE for state, _ in pool.values())
            else {k: v for k, v in pool.items() if v[0] != c.PENDING_DELETE}
            for pool_id, pool in members.items()})


def spec_of(session: Session, lb: m.LoadBalancer, network: NetworkDriver,
            amphorae: Sequence[m.Amphora] | None = None,
            members: Members | None = None) -> s.LoadBalancerSpec:
    """The spec of ``lb`` (loaded by :func:`load_graph`, any ``members``) as the worker
    sends it: its VIP subnet from ``network``, its ``amphorae`` (default: those it has),
    its ``members`` (default: read by :func:`read_members`)."""
    subnet = network.vip_subnet(session, lb.vip_subnet_id) if lb.vip_subnet_id else None
    return build_spec(lb, subnet, lb.amphorae if amphorae is None else amphorae,
                      read_members(session, lb) if members is None else members)
