"""Members: /v2/lbaas/pools/{pool_id}/members (after Octavia's functional test_member.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event

from lbaas.common import constants as c
from tests.api.base import GHOST, Api, create_network, create_subnet, held

MEMBER_FIELDS = {
    "tenant_id",
    "id", "name", "operating_status", "provisioning_status", "admin_state_up", "address",
    "protocol_port", "weight", "backup", "subnet_id", "project_id", "created_at", "updated_at",
    "monitor_address", "monitor_port", "tags", "vnic_type",
}


def _path(pool: dict[str, Any], member_id: str = "") -> str:
    return f"/pools/{pool['id']}/members" + (f"/{member_id}" if member_id else "")


def _get(api: Api, pool: dict[str, Any], member_id: str) -> dict[str, Any]:
    return api.show(f"pools/{pool['id']}/members", "member", member_id)


def _members(api: Api, pool: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    listed = api.get(_path(pool), status=200).json()["members"]
    return {(mb["address"], mb["protocol_port"]): mb for mb in listed}


# -- create ----------------------------------------------------------------------

def test_create_asks_the_database_little(api: Api, lb: dict[str, Any]) -> None:
    """A member add reads the pool with what the change needs (its load balancer, health
    monitor and listeners, not their tags), flushes once, checks the provider with what
    it read, and reads nothing after the commit (issue 12: 24 statements, then 17 when
    the provider check read the whole load balancer, 11 when the pool's listeners were
    selected apart, on SQLite)."""
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not threading.current_thread().name.startswith("lbaas-"):  # not the worker's
            statements.append(statement)

    event.listen(api.service.engine, "before_cursor_execute", count)
    try:
        api.create_member(pool["id"], wait=False, address="127.0.0.21", protocol_port=80)
    finally:
        event.remove(api.service.engine, "before_cursor_execute", count)
    api.wait_idle()
    assert len(statements) <= 9, "\n".join(statements)
    assert not any(s.lstrip().upper().startswith("SELECT TAG") for s in statements)


def test_create_has_octavia_shape_and_marks_parents(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    with held(api):
        member = api.create_member(pool["id"], wait=False, address="127.0.0.20",
                                   protocol_port=80, tags=["t"])
        assert set(member) == MEMBER_FIELDS
        assert member["provisioning_status"] == c.PENDING_CREATE
        assert member["operating_status"] == c.NO_MONITOR
        assert (member["address"], member["protocol_port"]) == ("127.0.0.20", 80)
        assert member["weight"] == 1 and member["backup"] is False
        assert member["admin_state_up"] is True and member["vnic_type"] == "normal"
        assert member["subnet_id"] is None and member["monitor_address"] is None
        assert member["monitor_port"] is None and member["name"] == ""
        assert member["tags"] == ["t"] and member["project_id"] == lb["project_id"]
        assert member["created_at"] is not None and member["updated_at"] is None
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    assert _get(api, pool, member["id"])["provisioning_status"] == c.ACTIVE
    assert api.status_of("pools", "pool", pool["id"]) == c.ACTIVE
    assert api.status_of("listeners", "listener", listener["id"]) == c.ACTIVE
    pool_body = api.get(f"/pools/{pool['id']}").json()["pool"]
    assert pool_body["members"] == [{"id": member["id"]}]


def test_create_with_every_field(api: Api, pool: dict[str, Any]) -> None:
    member = api.create_member(pool["id"], name="m", address="::1", protocol_port=443,
                               weight=0, backup=True, admin_state_up=False,
                               monitor_address="127.0.0.3", monitor_port=9000,
                               request_sriov=False, project_id="ignored")
    assert (member["name"], member["address"], member["weight"]) == ("m", "::1", 0)
    assert member["backup"] is True and member["admin_state_up"] is False
    assert (member["monitor_address"], member["monitor_port"]) == ("127.0.0.3", 9000)
    assert member["project_id"] == pool["project_id"]
    assert api.create_member(pool["id"], protocol_port=2, weight=256)["weight"] == 256


def test_initial_operating_status_follows_the_health_monitor(api: Api,
                                                             pool: dict[str, Any]) -> None:
    assert api.create_member(pool["id"], protocol_port=1)["operating_status"] == c.NO_MONITOR
    api.create_health_monitor(pool["id"])
    assert api.create_member(pool["id"], protocol_port=2)["operating_status"] == c.OFFLINE


def test_address_and_port_are_unique_in_a_pool(api: Api, lb: dict[str, Any],
                                               pool: dict[str, Any]) -> None:
    api.create_member(pool["id"], address="127.0.0.2", protocol_port=80)
    r = api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 80}},
                 status=409)
    assert api.fault(r) == ("Another member on this pool is already using ip 127.0.0.2 on "
                            "protocol_port 80")
    api.create_member(pool["id"], address="127.0.0.2", protocol_port=81)
    other = api.create_pool(loadbalancer_id=lb["id"])
    api.create_member(other["id"], address="127.0.0.2", protocol_port=80)
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_an_ipv6_address_is_unique_however_written(api: Api, lb: dict[str, Any],
                                                   pool: dict[str, Any]) -> None:
    # The duplicate check asks the database (not the pool's loaded members): an IPv6
    # address is compared parsed, whatever its spelling.
    api.create_member(pool["id"], address="2001:db8::1", protocol_port=80)
    api.create_member(pool["id"], address="127.0.0.2", protocol_port=80)
    r = api.post(_path(pool), {"member": {"address": "2001:db8:0:0:0:0:0:1",
                                          "protocol_port": 80}}, status=409)
    assert api.fault(r) == ("Another member on this pool is already using ip "
                            "2001:db8:0:0:0:0:0:1 on protocol_port 80")
    api.create_member(pool["id"], address="2001:db8::2", protocol_port=80)
    api.create_member(pool["id"], address="2001:db8::1", protocol_port=81)
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_reserved_addresses_are_refused(api: Api, pool: dict[str, Any]) -> None:
    r = api.post(_path(pool), {"member": {"address": "169.254.169.254", "protocol_port": 80}},
                 status=400)
    assert api.fault(r) == "169.254.169.254 is not a valid option for member address"


def test_subnet_must_exist(api: Api, lb: dict[str, Any], pool: dict[str, Any]) -> None:
    r = api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 80,
                                          "subnet_id": GHOST}}, status=400)
    assert api.fault(r) == f"Subnet {GHOST} not found."
    member = api.create_member(pool["id"], subnet_id=lb["vip_subnet_id"])
    assert member["subnet_id"] == lb["vip_subnet_id"]


def test_another_projects_private_subnet_is_not_found(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    private = create_network(api, project_id="p9")
    subnet = create_subnet(api, private["id"], "10.9.0.0/24")
    body = {"member": {"address": "10.9.0.5", "protocol_port": 80, "subnet_id": subnet["id"]}}
    r = api.post(_path(pool), body, project="p1", status=400)
    assert api.fault(r) == f"Subnet {subnet['id']} not found."
    shared = create_network(api, project_id="p9", shared=True)
    subnet = create_subnet(api, shared["id"], "10.8.0.0/24")
    body["member"]["subnet_id"] = subnet["id"]
    api.post(_path(pool), body, project="p1", status=201)


@pytest.mark.parametrize(("network", "subnet_project", "roles", "usable"), [
    ({"project_id": "p1"}, None, None, True),  # the caller's network
    ({"project_id": "p9", "shared": True}, None, None, True),  # a shared network
    ({"project_id": "p9"}, "p1", None, True),  # the caller's subnet
    ({"project_id": "p9"}, None, None, False),  # another project's
    ({"project_id": "p9"}, None, "admin", True),  # an admin may use any
])
def test_members_and_vips_may_use_the_same_subnets(api: Api, network: dict[str, Any],
                                                   subnet_project: str | None,
                                                   roles: str | None, usable: bool) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    net = create_network(api, **network)
    subnet = create_subnet(api, net["id"], "10.9.0.0/24",
                           **({"project_id": subnet_project} if subnet_project else {}))
    member = {"member": {"address": "10.9.0.5", "protocol_port": 80, "subnet_id": subnet["id"]}}
    vip = {"loadbalancer": {"vip_subnet_id": subnet["id"]}}
    for path, body in ((_path(pool), member), ("/loadbalancers", vip)):
        r = api.post(path, body, project="p1", roles=roles, status=201 if usable else 400)
        if not usable:
            assert api.fault(r) == f"Subnet {subnet['id']} not found."
    api.wait_idle()


def test_sriov_is_not_offered(api: Api, pool: dict[str, Any]) -> None:
    r = api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 80,
                                          "request_sriov": True}}, status=400)
    assert api.fault(r) == "The load balancer flavor does not allow SR-IOV member ports."


BAD_FIELDS = [
    ({"address": "not-an-ip"}, "address"),
    ({"address": None}, "address"),
    ({"address": 12}, "address"),
    ({"protocol_port": 0}, "protocol_port"),
    ({"protocol_port": 65536}, "protocol_port"),
    ({"protocol_port": "8o"}, "protocol_port"),
    ({"weight": -1}, "weight"),
    ({"weight": 257}, "weight"),
    ({"weight": 1.5}, "weight"),
    ({"backup": "yes"}, "backup"),
    ({"admin_state_up": 1}, "admin_state_up"),
    ({"monitor_port": 0}, "monitor_port"),
    ({"monitor_address": "x"}, "monitor_address"),
    ({"subnet_id": "nope"}, "subnet_id"),
    ({"name": "x" * 256}, "name"),
    ({"tags": [1]}, "tags"),
    ({"request_sriov": "no"}, "request_sriov"),
]


def test_create_refuses_bad_fields_naming_them(api: Api, lb: dict[str, Any],
                                               pool: dict[str, Any]) -> None:
    for body, field in BAD_FIELDS:
        full = {"address": "127.0.0.2", "protocol_port": 80, **body}
        r = api.post(_path(pool), {"member": full}, status=400)
        assert api.fault(r).startswith(f"Invalid input for field/attribute {field}"), body
    r = api.post(_path(pool), {"member": {"address": "127.0.0.2"}}, status=400)
    assert api.fault(r) == ("Invalid input for field/attribute protocol_port. Value: 'None'. "
                            "Mandatory field missing.")
    r = api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 80,
                                          "ip_address": "127.0.0.3"}}, status=400)
    assert api.fault(r) == "Unknown attribute for argument member: ip_address"
    assert _members(api, pool) == {}
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_unknown_pool_is_404(api: Api) -> None:
    r = api.post(f"/pools/{GHOST}/members", {"member": {"address": "127.0.0.2",
                                                         "protocol_port": 80}}, status=404)
    assert api.fault(r) == f"Pool {GHOST} not found."
    api.get(f"/pools/{GHOST}/members", status=404)


# -- show, update, delete -------------------------------------------------------

def test_show_only_through_its_own_pool(api: Api, lb: dict[str, Any],
                                        pool: dict[str, Any]) -> None:
    member = api.create_member(pool["id"], name="m")
    shown = _get(api, pool, member["id"])
    assert shown["id"] == member["id"] and shown["provisioning_status"] == c.ACTIVE
    only = api.get(_path(pool, member["id"]), params={"fields": "name"}).json()["member"]
    assert only == {"name": "m"}
    other = api.create_pool(loadbalancer_id=lb["id"])
    r = api.get(_path(other, member["id"]), status=404)
    assert api.fault(r) == f"Member {member['id']} not found."
    api.put(_path(other, member["id"]), {"member": {"name": "x"}}, status=404)
    api.delete(_path(other, member["id"]), status=404)
    api.get(_path(pool, GHOST), status=404)


def test_update_changes_given_fields_and_marks_parents(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    member = api.create_member(pool["id"], name="old", weight=3, tags=["a"])
    with held(api):
        body = api.put(_path(pool, member["id"]), {"member": {
            "name": "new", "weight": 7, "backup": True, "monitor_port": 8081,
            "monitor_address": "127.0.0.9", "admin_state_up": False, "tags": ["b"]}},
            status=200).json()["member"]
        assert body["provisioning_status"] == c.PENDING_UPDATE
        assert (body["name"], body["weight"], body["backup"], body["tags"]) == (
            "new", 7, True, ["b"])
        assert (body["monitor_address"], body["monitor_port"]) == ("127.0.0.9", 8081)
        assert body["admin_state_up"] is False
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    shown = _get(api, pool, member["id"])
    assert shown["provisioning_status"] == c.ACTIVE and shown["updated_at"] is not None
    # Null resets weight and backup to their defaults and clears the rest.
    body = api.put(_path(pool, member["id"]), {"member": {
        "weight": None, "backup": None, "name": None, "monitor_port": None,
        "monitor_address": None, "tags": None}}, status=200).json()["member"]
    assert (body["weight"], body["backup"], body["name"], body["tags"]) == (1, False, "", [])
    assert body["monitor_port"] is None and body["monitor_address"] is None


def test_update_refuses_read_only_and_bad_fields(api: Api, pool: dict[str, Any]) -> None:
    member = api.create_member(pool["id"])
    path = _path(pool, member["id"])
    for field in ("address", "protocol_port", "subnet_id", "request_sriov"):
        r = api.put(path, {"member": {field: None}}, status=400)
        assert api.fault(r) == f"Unknown attribute for argument member: {field}"
    for body in ({"weight": 257}, {"monitor_port": 70000}, {"backup": "x"}):
        api.put(path, {"member": body}, status=400)
    assert _get(api, pool, member["id"])["provisioning_status"] == c.ACTIVE


def test_delete(api: Api, lb: dict[str, Any], pool: dict[str, Any]) -> None:
    member = api.create_member(pool["id"])
    with held(api):
        api.delete(_path(pool, member["id"]), status=204)
        assert _get(api, pool, member["id"])["provisioning_status"] == c.PENDING_DELETE
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    api.get(_path(pool, member["id"]), status=404)
    api.delete(_path(pool, member["id"]), status=404)
    assert api.get(f"/pools/{pool['id']}").json()["pool"]["members"] == []
    api.create_member(pool["id"])  # the address+port is free again


@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, lb: dict[str, Any],
                                            pool: dict[str, Any], pending: str) -> None:
    member = api.create_member(pool["id"], name="m")
    with held(api):
        api.set_lb_status(lb["id"], pending)
        r = api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 80}},
                     status=409)
        assert api.fault(r) == f"Load Balancer {lb['id']} is immutable and cannot be updated."
        api.put(_path(pool, member["id"]), {"member": {"name": "x"}}, status=409)
        api.delete(_path(pool, member["id"]), status=409)
        api.put(_path(pool), {"members": []}, status=409)
        api.put(_path(pool), {"members": [{"address": "127.0.0.2", "protocol_port": 80}]},
                status=409)
        assert [(mb["name"], mb["provisioning_status"]) for mb in
                _members(api, pool).values()] == [("m", c.ACTIVE)]


# -- lists -------------------------------------------------------------------------

def test_list_pagination_sorting_filters_and_fields(api: Api, lb: dict[str, Any],
                                                    pool: dict[str, Any]) -> None:
    a = api.create_member(pool["id"], name="a", protocol_port=3, weight=5, tags=["x"])
    b = api.create_member(pool["id"], name="b", protocol_port=1, backup=True)
    cc = api.create_member(pool["id"], name="c", protocol_port=2, tags=["x", "y"])
    elsewhere = api.create_pool(loadbalancer_id=lb["id"])
    api.create_member(elsewhere["id"], name="z")
    path = _path(pool)
    ports = [mb["protocol_port"] for mb in
             api.get(path, params={"sort": "protocol_port:desc"}).json()["members"]]
    assert ports == [3, 2, 1]
    page = api.get(path, params={"limit": 2, "sort": "name"}).json()
    assert [mb["name"] for mb in page["members"]] == ["a", "b"]
    assert page["members_links"][0]["rel"] == "next"
    rest = api.get(path, params={"limit": 2, "sort": "name", "marker": b["id"]}).json()
    assert [mb["id"] for mb in rest["members"]] == [cc["id"]]
    assert [mb["id"] for mb in api.get(path, params={"weight": 5}).json()["members"]] == [
        a["id"]]
    assert [mb["id"] for mb in api.get(path, params={"backup": "true"}).json()["members"]] == [
        b["id"]]
    tagged = api.get(path, params={"tags": "x", "sort": "name"}).json()["members"]
    assert [mb["name"] for mb in tagged] == ["a", "c"]
    assert api.get(path, params={"fields": "name", "name": "c"}).json()["members"] == [
        {"name": "c"}]
    api.get(path, params={"weight": "heavy"}, status=400)
    api.get(path, params={"bogus": "1"}, status=400)


# -- projects, policy, quota ------------------------------------------------------------

def test_other_projects_members_are_403(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    member = api.create_member(pool["id"], _project="p1")
    assert member["project_id"] == "p1"
    api.get(_path(pool), project="p2", status=403)
    api.get(_path(pool, member["id"]), project="p2", status=403)
    api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 80}},
             project="p2", status=403)
    api.put(_path(pool, member["id"]), {"member": {"name": "x"}}, project="p2", status=403)
    api.put(_path(pool), {"members": []}, project="p2", status=403)
    api.delete(_path(pool, member["id"]), project="p2", status=403)
    assert len(api.get(_path(pool), project="p1").json()["members"]) == 1


def test_roles_follow_octavia_policy(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    member = api.create_member(pool["id"], _project="p1")
    body = {"member": {"address": "127.0.0.2", "protocol_port": 80}}
    for role in ("reader",):
        api.post(_path(pool), body, project="p1", roles=role, status=403)
        api.put(_path(pool, member["id"]), {"member": {"name": "x"}}, project="p1", roles=role,
                status=403)
        api.put(_path(pool), {"members": []}, project="p1", roles=role, status=403)
        api.put(_path(pool), {"members": []}, params={"additive_only": "true"}, project="p1",
                roles=role, status=403)
        api.delete(_path(pool, member["id"]), project="p1", roles=role, status=403)
        api.get(_path(pool, member["id"]), project="p1", roles=role, status=200)
        api.get(_path(pool), project="p1", roles=role, status=200)
    api.get(_path(pool), project="p1", roles="nothing", status=403)
    api.post(_path(pool), body, project="p1", roles="member", status=201)


def test_quota_on_members(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    api.put("/quotas/p1", {"quota": {"member": 2}}, status=202)
    first = api.create_member(pool["id"], _project="p1", protocol_port=1)
    api.create_member(pool["id"], _project="p1", protocol_port=2)
    r = api.post(_path(pool), {"member": {"address": "127.0.0.2", "protocol_port": 3}},
                 project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Member"
    # A batch may swap members at the quota: one out, one in.
    swap = [{"address": "127.0.0.10", "protocol_port": 2},
            {"address": "127.0.0.10", "protocol_port": 3}]
    api.put(_path(pool), {"members": swap}, project="p1", status=202)
    api.wait_idle()
    assert sorted(_members(api, pool)) == [("127.0.0.10", 2), ("127.0.0.10", 3)]
    grow = [*swap, {"address": "127.0.0.10", "protocol_port": 4}]
    r = api.put(_path(pool), {"members": grow}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Member"
    api.put(_path(pool), {"members": grow[2:]}, params={"additive_only": "true"},
            project="p1", status=403)
    api.get(_path(pool, first["id"]), status=404)


# -- batch update -----------------------------------------------------------------

def test_batch_creates_updates_and_deletes(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    for port in (1, 2, 3, 4):
        api.create_member(pool["id"], protocol_port=port, weight=9, name=f"m{port}",
                          tags=["keep"], monitor_port=9999)
    body = {"members": [
        {"address": "127.0.0.10", "protocol_port": 1},
        {"address": "127.0.0.10", "protocol_port": 2, "weight": 4, "name": "two",
         "tags": ["new"]},
        {"address": "127.0.0.10", "protocol_port": 5, "tags": ["five"]},
        {"address": "127.0.0.11", "protocol_port": 1, "backup": True},
    ]}
    with held(api):
        r = api.put(_path(pool), body, status=202)
        assert r.content == b""
        members = _members(api, pool)
        assert {key: mb["provisioning_status"] for key, mb in members.items()} == {
            ("127.0.0.10", 1): c.PENDING_UPDATE, ("127.0.0.10", 2): c.PENDING_UPDATE,
            ("127.0.0.10", 3): c.PENDING_DELETE, ("127.0.0.10", 4): c.PENDING_DELETE,
            ("127.0.0.10", 5): c.PENDING_CREATE, ("127.0.0.11", 1): c.PENDING_CREATE}
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    members = _members(api, pool)
    assert sorted(members) == [("127.0.0.10", 1), ("127.0.0.10", 2), ("127.0.0.10", 5),
                               ("127.0.0.11", 1)]
    assert all(mb["provisioning_status"] == c.ACTIVE for mb in members.values())
    one, two = members[("127.0.0.10", 1)], members[("127.0.0.10", 2)]
    # As in Octavia, an entry is the member's whole definition: what it leaves out
    # returns to the default, except name, tags and subnet, which are kept.
    assert (one["weight"], one["monitor_port"], one["name"], one["tags"]) == (
        1, None, "m1", ["keep"])
    assert (two["weight"], two["name"], two["tags"]) == (4, "two", ["new"])
    assert members[("127.0.0.10", 5)]["tags"] == ["five"]
    assert members[("127.0.0.11", 1)]["backup"] is True
    assert members[("127.0.0.11", 1)]["operating_status"] == c.NO_MONITOR


def test_batch_additive_only_keeps_the_rest(api: Api, pool: dict[str, Any]) -> None:
    for port in (1, 2):
        api.create_member(pool["id"], protocol_port=port)
    body = {"members": [{"address": "127.0.0.10", "protocol_port": 2, "weight": 3},
                        {"address": "127.0.0.10", "protocol_port": 3}]}
    with held(api):
        api.put(_path(pool), body, params={"additive_only": "true"}, status=202)
        statuses = {key: mb["provisioning_status"] for key, mb in _members(api, pool).items()}
        assert statuses == {("127.0.0.10", 1): c.ACTIVE, ("127.0.0.10", 2): c.PENDING_UPDATE,
                            ("127.0.0.10", 3): c.PENDING_CREATE}
    assert sorted(_members(api, pool)) == [("127.0.0.10", 1), ("127.0.0.10", 2),
                                           ("127.0.0.10", 3)]
    assert _members(api, pool)[("127.0.0.10", 2)]["weight"] == 3


def test_batch_empty_list_deletes_all_and_noop_leaves_the_lb_alone(
        api: Api, lb: dict[str, Any], pool: dict[str, Any]) -> None:
    api.put(_path(pool), {"members": []}, status=202)
    assert api.lb_status(lb["id"]) == c.ACTIVE  # nothing to do: not even locked
    api.put(_path(pool), {"members": []}, params={"additive_only": "true"}, status=202)
    for port in (1, 2):
        api.create_member(pool["id"], protocol_port=port)
    api.put(_path(pool), {"members": []}, params={"additive_only": "true"}, status=202)
    assert api.lb_status(lb["id"]) == c.ACTIVE and len(_members(api, pool)) == 2
    with held(api):
        api.put(_path(pool), {"members": []}, status=202)
        assert {mb["provisioning_status"] for mb in _members(api, pool).values()} == {
            c.PENDING_DELETE}
    assert _members(api, pool) == {}


def test_batch_new_members_follow_the_health_monitor(api: Api, pool: dict[str, Any]) -> None:
    api.create_health_monitor(pool["id"], type="TCP")
    api.put(_path(pool), {"members": [{"address": "127.0.0.2", "protocol_port": 80}]},
            status=202)
    api.wait_idle()
    assert _members(api, pool)[("127.0.0.2", 80)]["operating_status"] == c.OFFLINE


def test_batch_validation(api: Api, lb: dict[str, Any], pool: dict[str, Any]) -> None:
    api.create_member(pool["id"], address="127.0.0.2", protocol_port=80)
    path = _path(pool)
    twice = {"address": "127.0.0.2", "protocol_port": 80}
    r = api.put(path, {"members": [twice, {**twice, "name": "again"}]}, status=400)
    assert api.fault(r) == ("Validation failure: Member must be updated only once in the "
                            "same request.")
    new = {"address": "127.0.0.3", "protocol_port": 80}
    r = api.put(path, {"members": [new, new]}, status=409)
    assert api.fault(r) == ("Another member on this pool is already using ip 127.0.0.3 on "
                            "protocol_port 80")
    r = api.put(path, {"members": [{"address": "169.254.169.254", "protocol_port": 80}]},
                status=400)
    assert api.fault(r) == "169.254.169.254 is not a valid option for member address"
    r = api.put(path, {"members": [{**new, "subnet_id": GHOST}]}, status=400)
    assert api.fault(r) == f"Subnet {GHOST} not found."
    r = api.put(path, {"members": [{**twice, "subnet_id": GHOST}]}, status=400)
    assert api.fault(r) == f"Subnet {GHOST} not found."
    r = api.put(path, {"members": [{**new, "request_sriov": True}]}, status=400)
    assert "SR-IOV" in api.fault(r)
    r = api.put(path, {"members": [{**new, "weight": 300}]}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute weight")
    r = api.put(path, {"members": [{"address": "127.0.0.4"}]}, status=400)
    assert "protocol_port" in api.fault(r)
    r = api.put(path, {"member": []}, status=400)
    assert "members" in api.fault(r)
    api.put(path, {"members": "all"}, status=400)
    api.put(path, {"members": []}, params={"additive_only": "maybe"}, status=400)
    assert [mb["provisioning_status"] for mb in _members(api, pool).values()] == [c.ACTIVE]
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_members_list_in_creation_order(api: Api, lb: dict[str, Any]) -> None:
    """Octavia's default order is creation order: members made within one second (ids
    are random) come back as they were created, in the list and in the status tree."""
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    names = [f"m{i}" for i in range(6)]
    for port, name in enumerate(names, 1):
        api.create_member(pool["id"], protocol_port=port, name=name)
    batch = [f"b{i}" for i in range(6)]
    body = {"members": [{"address": "127.0.0.10", "protocol_port": port, "name": name}
                        for port, name in enumerate(names + batch, 1)]}
    api.put(_path(pool), body, params={"additive_only": "true"}, status=202)
    api.wait_idle()
    listed = [mb["name"] for mb in api.get(_path(pool), status=200).json()["members"]]
    assert listed == names + batch
    tree = api.get(f"/loadbalancers/{lb['id']}/status", status=200).json()
    members = tree["statuses"]["loadbalancer"]["listeners"][0]["pools"][0]["members"]
    assert [mb["name"] for mb in members] == names + batch
