"""Which member changes go through the runtime API, and with which commands."""

from __future__ import annotations

import dataclasses

from lbaas.dataplane import changes, render
from lbaas.dataplane import spec as s
from tests.support.specs import http_lb, member, with_listener, with_members, with_pool

PATHS = render.ConfigPaths()
HM = s.HealthMonitorSpec(id="hm", type="HTTP", delay=2, timeout=1, max_retries=2,
                         max_retries_down=3)


def plan(old: s.LoadBalancerSpec, new: s.LoadBalancerSpec) -> changes.RuntimePlan | None:
    return changes.plan(render.build_view(old, PATHS), render.build_view(new, PATHS))


BASE = http_lb("lb1", 80, (member("m1", 8001), member("m2", 8002)), health_monitor=HM)
B = "pool1:listener1"


def test_nothing_changed_is_an_empty_plan() -> None:
    p = plan(BASE, BASE)
    assert p is not None and not p


def test_added_member() -> None:
    p = plan(BASE, with_members(BASE, *BASE.pools[0].members, member("m3", 8003, weight=4)))
    assert p is not None
    assert p.commands == (
        f"add server {B}/m3 127.0.0.1:8003 weight 4 check inter 2s fall 3 rise 2",
        f"enable health {B}/m3",
        f"set server {B}/m3 state ready")
    assert p.deletions == ()


def test_a_change_anywhere_in_a_pool_is_found_among_the_servers_it_shares() -> None:
    many = with_members(BASE, *(member(f"m{i}", 8000 + i) for i in range(1, 9)))
    old, new = many.pools[0].members, list(many.pools[0].members)
    del new[0]  # the first goes, one comes in the middle, the last changes
    new.insert(3, member("m20", 8020))
    new[-1] = member("m8", 8008, weight=3)
    p = plan(many, with_members(many, *new))
    assert p is not None
    assert p.commands == (
        f"add server {B}/m20 127.0.0.1:8020 weight 1 check inter 2s fall 3 rise 2",
        f"enable health {B}/m20", f"set server {B}/m20 state ready",
        f"set server {B}/m8 weight 3", f"set server {B}/m1 state maint")
    assert p.deletions == (f"{B}/m1",)
    assert plan(many, with_members(many, *reversed(old))) == changes.RuntimePlan((), ())


def test_added_disabled_member_stays_in_maintenance() -> None:
    p = plan(BASE, with_members(BASE, *BASE.pools[0].members,
                                member("m3", 8003, admin_state_up=False)))
    assert p is not None and p.commands[-1] == f"enable health {B}/m3"
    assert p.commands[0].endswith(" disabled")


def test_removed_member_goes_to_maintenance_then_is_deleted() -> None:
    p = plan(BASE, with_members(BASE, member("m1", 8001)))
    assert p is not None
    assert p.commands == (f"set server {B}/m2 state maint",)
    assert p.deletions == (f"{B}/m2",)


def test_weight_state_address_and_monitor_port_changes() -> None:
    new = with_members(BASE, member("m1", 8001, weight=0, admin_state_up=False),
                       member("m2", 9002, address="127.0.0.2", monitor_port=9100,
                              monitor_address="127.0.0.3"))
    p = plan(BASE, new)
    assert p is not None
    assert set(p.commands) == {
        f"set server {B}/m1 weight 0", f"set server {B}/m1 state maint",
        f"set server {B}/m2 addr 127.0.0.2 port 9002",
        f"set server {B}/m2 check-addr 127.0.0.3", f"set server {B}/m2 check-port 9100"}


def test_what_needs_a_reload() -> None:
    assert plan(BASE, with_listener(BASE, timeout_client_data=1000)) is None
    assert plan(BASE, with_members(BASE, member("m1", 8001, backup=True),
                                   member("m2", 8002))) is None
    assert plan(BASE, with_pool(BASE, health_monitor=None)) is None
    with_check_port = with_members(BASE, member("m1", 8001, monitor_port=9000),
                                   member("m2", 8002))
    assert plan(with_check_port, BASE) is None  # a monitor port cannot be unset at runtime
    cookies = with_pool(BASE, session_persistence=s.SessionPersistenceSpec(type="HTTP_COOKIE"))
    grown = with_members(cookies, *cookies.pools[0].members, member("m3", 8003))
    assert plan(cookies, grown) is None  # "add server" refuses "cookie" in 2.6
    assert plan(cookies, with_members(cookies, member("m1", 8001))) is not None


def test_source_ip_pools_are_dynamic() -> None:
    lb = with_pool(BASE, lb_algorithm="SOURCE_IP")
    view = render.build_view(lb, PATHS)
    assert view.backends[0].hash_type == "consistent"
    assert plan(lb, with_members(lb, *lb.pools[0].members, member("m3", 8003))) is not None


def test_plan_is_empty_for_a_renamed_object_only_if_nothing_renders_differently() -> None:
    renamed = dataclasses.replace(BASE, project_id="another")
    p = plan(BASE, renamed)
    assert p is not None and not p
