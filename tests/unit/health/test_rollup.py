"""Operating statuses from HAProxy's rows, rolled up the graph (lbaas.health.rollup)."""

from __future__ import annotations

import dataclasses

import pytest

from lbaas.common import constants as c
from lbaas.dataplane.runtime import LoadBalancerStats, StatRow
from lbaas.health import rollup
from lbaas.health.rollup import (
    HEALTHMONITOR,
    LISTENER,
    LOADBALANCER,
    MEMBER,
    POOL,
    LoadBalancerNode,
    Node,
    PoolNode,
)


def server(member: str, status: str, weight: int = 1, backend: str = "p1:l1") -> StatRow:
    return StatRow(proxy=backend, name=member, type="server", status=status, weight=weight)


def backend(status: str, name: str = "p1:l1") -> StatRow:
    return StatRow(proxy=name, name="BACKEND", type="backend", status=status)


def frontend(status: str = "OPEN", name: str = "l1") -> StatRow:
    return StatRow(proxy=name, name="FRONTEND", type="frontend", status=status)


def node(oid: str, admin: bool = True, prov: str = c.ACTIVE, op: str = c.OFFLINE) -> Node:
    return Node(id=oid, admin_state_up=admin, provisioning_status=prov, operating_status=op)


def graph(members: tuple[Node, ...] = (node("m1"), node("m2")), pool_admin: bool = True,
          listener_admin: bool = True, lb_admin: bool = True,
          monitor: Node | None = node("hm1")) -> LoadBalancerNode:
    pool = PoolNode(id="p1", admin_state_up=pool_admin, provisioning_status=c.ACTIVE,
                    operating_status=c.OFFLINE, members=members, health_monitor=monitor)
    return LoadBalancerNode(id="lb1", admin_state_up=lb_admin, provisioning_status=c.ACTIVE,
                            operating_status=c.OFFLINE, listeners=(node("l1", listener_admin),),
                            pools=(pool,))


def stats(*rows: StatRow, running: bool = True) -> LoadBalancerStats:
    return LoadBalancerStats(lb_id="lb1", running=running, rows=rows, worker="1@1")


@pytest.mark.parametrize(("status", "weight", "expected"), [
    ("UP", 1, c.ONLINE),
    ("UP 1/3", 1, c.ONLINE),  # going down, still up
    ("UP", 0, c.DRAINING),  # weight 0 (Octavia's DRAIN spoofing)
    ("DOWN", 1, c.ERROR),
    ("DOWN 1/2", 1, c.ERROR),  # going up, still down
    ("DOWN", 0, c.ERROR),
    ("DRAIN", 1, c.DRAINING),
    ("DRAIN (agent)", 1, c.DRAINING),
    ("NOLB", 1, c.DRAINING),
    ("MAINT", 1, c.OFFLINE),
    ("MAINT (via p1:l1/m2)", 1, c.OFFLINE),
    ("MAINT (resolution)", 1, c.OFFLINE),
    ("no check", 1, c.NO_MONITOR),
    ("no check", 0, c.DRAINING),
    ("unknown", 1, None),
    ("", 1, None),
])
def test_member_status(status: str, weight: int, expected: str | None) -> None:
    assert rollup.member_status(server("m1", status, weight)) == expected


@pytest.mark.parametrize(("children", "expected"), [
    ([], c.ONLINE),
    ([c.ONLINE], c.ONLINE),
    ([c.ONLINE, c.ONLINE], c.ONLINE),
    ([c.ERROR], c.ERROR),
    ([c.ERROR, c.ERROR], c.ERROR),
    ([c.ERROR, c.ONLINE], c.DEGRADED),
    ([c.DEGRADED], c.DEGRADED),
    ([c.DEGRADED, c.ERROR], c.DEGRADED),
    ([c.ONLINE, c.DEGRADED], c.DEGRADED),
])
def test_combine(children: list[str], expected: str) -> None:
    assert rollup.combine(children) == expected


@pytest.mark.parametrize(("fe", "backends", "expected"), [
    (c.ONLINE, [], c.ONLINE),
    (c.ONLINE, [c.ONLINE], c.ONLINE),
    (c.ONLINE, [c.DEGRADED], c.DEGRADED),
    (c.ONLINE, [c.ERROR], c.ERROR),
    (c.ONLINE, [c.ERROR, c.ONLINE], c.DEGRADED),
    (c.ONLINE, [c.ERROR, c.ERROR], c.ERROR),
    (c.DEGRADED, [], c.DEGRADED),  # FULL
    (c.DEGRADED, [c.ONLINE], c.DEGRADED),
    (c.DEGRADED, [c.ERROR], c.ERROR),
    (c.ERROR, [c.ONLINE], c.ERROR),  # no frontend
])
def test_listener_rollup(fe: str, backends: list[str], expected: str) -> None:
    assert rollup.listener_rollup(fe, backends) == expected


def test_frontend_status() -> None:
    assert rollup.frontend_status(frontend("OPEN")) == c.ONLINE
    assert rollup.frontend_status(frontend("FULL")) == c.DEGRADED
    assert rollup.frontend_status(frontend("STOP")) is None


def test_all_up() -> None:
    out = rollup.evaluate(graph(), stats(frontend(), backend("UP"), server("m1", "UP"),
                                         server("m2", "UP")))
    assert out == {(LOADBALANCER, "lb1"): c.ONLINE, (LISTENER, "l1"): c.ONLINE,
                   (POOL, "p1"): c.ONLINE, (MEMBER, "m1"): c.ONLINE, (MEMBER, "m2"): c.ONLINE,
                   (HEALTHMONITOR, "hm1"): c.ONLINE}


def test_one_member_down_degrades_pool_listener_and_load_balancer() -> None:
    out = rollup.evaluate(graph(), stats(frontend(), backend("UP"), server("m1", "UP"),
                                         server("m2", "DOWN")))
    assert out[(MEMBER, "m2")] == c.ERROR and out[(MEMBER, "m1")] == c.ONLINE
    assert out[(POOL, "p1")] == out[(LISTENER, "l1")] == out[(LOADBALANCER, "lb1")] == \
        c.DEGRADED


def test_all_members_down_is_error_everywhere() -> None:
    out = rollup.evaluate(graph(), stats(frontend(), backend("DOWN"), server("m1", "DOWN"),
                                         server("m2", "DOWN 1/2")))
    assert {out[(k, i)] for k, i in [(MEMBER, "m1"), (MEMBER, "m2"), (POOL, "p1"),
                                     (LISTENER, "l1"), (LOADBALANCER, "lb1")]} == {c.ERROR}


def test_no_monitor_members() -> None:
    g = graph(monitor=None)
    out = rollup.evaluate(g, stats(frontend(), backend("UP"), server("m1", "no check"),
                                   server("m2", "no check", weight=0)))
    assert (out[(MEMBER, "m1")], out[(MEMBER, "m2")]) == (c.NO_MONITOR, c.DRAINING)
    assert out[(POOL, "p1")] == out[(LOADBALANCER, "lb1")] == c.ONLINE
    assert not any(k == HEALTHMONITOR for k, _ in out)


def test_admin_down_member_is_offline_and_does_not_degrade() -> None:
    g = graph(members=(node("m1"), node("m2", admin=False)))
    out = rollup.evaluate(g, stats(frontend(), backend("UP"), server("m1", "UP"),
                                   server("m2", "MAINT")))
    assert out[(MEMBER, "m2")] == c.OFFLINE
    assert out[(POOL, "p1")] == out[(LOADBALANCER, "lb1")] == c.ONLINE


def test_every_member_unusable_makes_the_pool_error() -> None:
    # HAProxy's backend is DOWN when no server can take traffic (disabled, weight 0).
    g = graph(members=(node("m1", admin=False), node("m2")))
    out = rollup.evaluate(g, stats(frontend(), backend("DOWN"), server("m1", "MAINT"),
                                   server("m2", "UP", weight=0)))
    assert (out[(MEMBER, "m1")], out[(MEMBER, "m2")]) == (c.OFFLINE, c.DRAINING)
    assert out[(POOL, "p1")] == out[(LISTENER, "l1")] == out[(LOADBALANCER, "lb1")] == c.ERROR


def test_empty_pool_is_online() -> None:
    out = rollup.evaluate(graph(members=()), stats(frontend(), backend("UP")))
    assert out[(POOL, "p1")] == out[(LOADBALANCER, "lb1")] == c.ONLINE


def test_admin_down_pool_and_its_members_are_offline() -> None:
    out = rollup.evaluate(graph(pool_admin=False), stats(frontend()))
    assert out[(POOL, "p1")] == out[(MEMBER, "m1")] == out[(HEALTHMONITOR, "hm1")] == \
        c.OFFLINE
    assert out[(LISTENER, "l1")] == out[(LOADBALANCER, "lb1")] == c.ONLINE


def test_admin_down_health_monitor_is_offline() -> None:
    g = graph(monitor=node("hm1", admin=False))
    out = rollup.evaluate(g, stats(frontend(), backend("UP"), server("m1", "no check"),
                                   server("m2", "no check")))
    assert out[(HEALTHMONITOR, "hm1")] == c.OFFLINE
    assert out[(MEMBER, "m1")] == c.NO_MONITOR


def test_admin_down_listener() -> None:
    out = rollup.evaluate(graph(listener_admin=False), stats())
    assert out[(LISTENER, "l1")] == out[(POOL, "p1")] == out[(MEMBER, "m1")] == c.OFFLINE
    assert out[(LOADBALANCER, "lb1")] == c.ONLINE  # running, no enabled listener


def test_admin_down_load_balancer() -> None:
    out = rollup.evaluate(graph(lb_admin=False), stats())
    assert set(out.values()) == {c.OFFLINE}


def test_missing_frontend_is_error() -> None:
    out = rollup.evaluate(graph(), stats(backend("UP"), server("m1", "UP"), server("m2", "UP")))
    assert out[(LISTENER, "l1")] == out[(LOADBALANCER, "lb1")] == c.ERROR


def test_full_frontend_degrades() -> None:
    out = rollup.evaluate(graph(), stats(frontend("FULL"), backend("UP"), server("m1", "UP"),
                                         server("m2", "UP")))
    assert out[(LISTENER, "l1")] == out[(LOADBALANCER, "lb1")] == c.DEGRADED


def test_unknown_frontend_state_keeps_the_listener() -> None:
    g = graph()
    g = dataclasses.replace(g, listeners=(node("l1", op=c.DEGRADED),))
    out = rollup.evaluate(g, stats(frontend("STOP"), backend("UP"), server("m1", "UP"),
                                   server("m2", "UP")))
    assert (LISTENER, "l1") not in out
    assert out[(LOADBALANCER, "lb1")] == c.DEGRADED


def test_member_missing_from_a_served_backend_is_offline() -> None:
    out = rollup.evaluate(graph(), stats(frontend(), backend("UP"), server("m1", "UP")))
    assert out[(MEMBER, "m2")] == c.OFFLINE


def test_unknown_member_state_is_left_alone() -> None:
    out = rollup.evaluate(graph(), stats(frontend(), backend("UP"), server("m1", "UP"),
                                         server("m2", "weird")))
    assert (MEMBER, "m2") not in out


def test_pool_shared_by_two_listeners() -> None:
    g = graph()
    g = dataclasses.replace(g, listeners=(node("l1"), node("l2")))
    rows = (frontend(), frontend(name="l2"), backend("UP"), backend("UP", "p1:l2"),
            server("m1", "UP"), server("m2", "UP"),
            server("m1", "UP", backend="p1:l2"), server("m2", "DOWN", backend="p1:l2"))
    out = rollup.evaluate(g, stats(*rows))
    assert out[(MEMBER, "m2")] == c.ERROR  # the worst of its two backends
    assert out[(LISTENER, "l1")] == c.ONLINE and out[(LISTENER, "l2")] == c.DEGRADED
    assert out[(POOL, "p1")] == out[(LOADBALANCER, "lb1")] == c.DEGRADED


def test_listener_with_a_down_redirect_pool() -> None:
    p2 = PoolNode(id="p2", admin_state_up=True, provisioning_status=c.ACTIVE,
                  operating_status=c.OFFLINE, members=(node("m3"),))
    g = graph()
    g = dataclasses.replace(g, pools=(*g.pools, p2))
    rows = (frontend(), backend("UP"), server("m1", "UP"), server("m2", "UP"),
            backend("DOWN", "p2:l1"), server("m3", "DOWN", backend="p2:l1"))
    out = rollup.evaluate(g, stats(*rows))
    assert out[(POOL, "p2")] == c.ERROR and out[(POOL, "p1")] == c.ONLINE
    assert out[(LISTENER, "l1")] == out[(LOADBALANCER, "lb1")] == c.DEGRADED


def test_unused_pool_is_offline() -> None:
    out = rollup.evaluate(graph(), stats(frontend()))
    assert out[(POOL, "p1")] == out[(MEMBER, "m1")] == c.OFFLINE
    assert out[(LISTENER, "l1")] == c.ONLINE


def test_dead_haproxy() -> None:
    g = graph()
    g = dataclasses.replace(g, listeners=(node("l1"), node("l2", admin=False)))
    out = rollup.evaluate(g, stats(running=False))
    assert out == {(LOADBALANCER, "lb1"): c.ERROR, (LISTENER, "l1"): c.ERROR,
                   (LISTENER, "l2"): c.OFFLINE}
    assert rollup.dead(graph(lb_admin=False)) == {(LOADBALANCER, "lb1"): c.OFFLINE,
                                                  (LISTENER, "l1"): c.OFFLINE}


def test_objects_being_created_or_deleted_get_no_status() -> None:
    g = graph(members=(node("m1"), node("m2", prov=c.PENDING_CREATE)),
              monitor=node("hm1", prov=c.PENDING_DELETE))
    g = dataclasses.replace(g, listeners=(node("l1"), node("l2", prov=c.PENDING_DELETE)))
    out = rollup.evaluate(g, stats(frontend(), backend("UP"), server("m1", "UP")))
    assert (MEMBER, "m2") not in out and (HEALTHMONITOR, "hm1") not in out
    assert (LISTENER, "l2") not in out
    assert out[(LOADBALANCER, "lb1")] == out[(POOL, "p1")] == c.ONLINE
    assert (LISTENER, "l2") not in rollup.dead(g)


def test_changes_are_only_what_differs() -> None:
    g = graph(members=(node("m1", op=c.ONLINE), node("m2", op=c.ONLINE)))
    out = rollup.evaluate(g, stats(frontend(), backend("UP"), server("m1", "UP"),
                                   server("m2", "DOWN")))
    changed = rollup.changes(g, out)
    assert (MEMBER, "m1") not in changed and changed[(MEMBER, "m2")] == c.ERROR
    assert changed[(LOADBALANCER, "lb1")] == c.DEGRADED
    assert rollup.changes(g, {(MEMBER, "ghost"): c.ERROR}) == {}
