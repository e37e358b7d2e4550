"""Load balancers: /v2/lbaas/loadbalancers."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import event

from lbaas.common import constants as c
from lbaas.db import models as m
from tests.api.base import GHOST, Api, held

LB_FIELDS = {
    "tenant_id",
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "project_id", "created_at", "updated_at", "vip_address", "vip_port_id", "vip_subnet_id",
    "vip_network_id", "vip_qos_policy_id", "vip_sg_ids", "vip_vnic_type", "additional_vips",
    "listeners", "pools", "provider", "flavor_id", "availability_zone", "tags",
    "provisioning_status_reason",
}


def test_create_returns_pending_create_with_octavia_shape(api: Api) -> None:
    lb = api.create_lb(wait=False, description="d", tags=["x", "y"])
    assert set(lb) == LB_FIELDS
    assert lb["provisioning_status"] == c.PENDING_CREATE
    assert lb["operating_status"] == c.OFFLINE
    assert lb["admin_state_up"] is True
    assert lb["project_id"] == "admin"
    assert lb["provider"] == "noop"
    assert lb["vip_address"].startswith("127.1.")
    assert lb["vip_vnic_type"] == "normal"
    assert sorted(lb["tags"]) == ["x", "y"]
    assert lb["listeners"] == [] and lb["pools"] == []
    api.wait_idle()
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_vips_are_distinct_and_recorded_as_ports(api: Api) -> None:
    first = api.create_lb(wait=False)
    second = api.create_lb(wait=False)
    assert first["vip_address"] != second["vip_address"]
    assert first["vip_subnet_id"] == second["vip_subnet_id"]
    assert first["vip_port_id"] != second["vip_port_id"]


def test_create_with_vip_address_and_conflict(api: Api) -> None:
    lb = api.create_lb(vip_address="127.1.9.9")
    assert lb["vip_address"] == "127.1.9.9"
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_address": "127.1.9.9",
                                                     "vip_subnet_id": lb["vip_subnet_id"]}},
                 status=409)
    assert "already in use" in api.fault(r)


@pytest.mark.parametrize("address", ["10.0.0.1", "127.0.0.1", "127.1.0.0", "127.1.255.255"])
def test_vip_address_outside_the_subnet_or_reserved_is_refused(api: Api, address: str) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_address": address}}, status=400)
    assert api.fault(r) == f"The IP Address {address} is invalid."


def test_vip_address_is_freed_on_delete(api: Api) -> None:
    lb = api.create_lb(vip_address="127.1.9.8")
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    again = api.create_lb(vip_address="127.1.9.8")
    assert again["vip_address"] == "127.1.9.8"


@pytest.mark.parametrize(("body", "field"), [
    ({"name": 5}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"description": "x" * 256}, "description"),
    ({"admin_state_up": "yes"}, "admin_state_up"),
    ({"vip_address": "not-an-ip"}, "vip_address"),
    ({"vip_subnet_id": "not-a-uuid"}, "vip_subnet_id"),
    ({"vip_network_id": 12}, "vip_network_id"),
    ({"tags": "x"}, "tags"),
    ({"tags": ["x" * 256]}, "tags"),
    ({"provider": "x" * 65}, "provider"),
    ({"flavor_id": "nope"}, "flavor_id"),
])
def test_create_refuses_bad_fields_naming_them(api: Api, body: dict, field: str) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": body}, status=400)
    assert f"Invalid input for field/attribute {field}" in api.fault(r)
    assert api.get("/loadbalancers").json()["loadbalancers"] == []


def test_create_refuses_unknown_attributes(api: Api) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {"bogus": 1}}, status=400)
    assert api.fault(r) == "Unknown attribute for argument loadbalancer: bogus"


def test_create_refuses_missing_envelope_and_bad_json(api: Api) -> None:
    r = api.post("/loadbalancers", {"name": "x"}, status=400)
    assert "loadbalancer" in api.fault(r)
    r = api.client.post("/v2/lbaas/loadbalancers", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_unknown_subnet_and_network_are_400(api: Api) -> None:
    ghost = "6f8a3c1e-0000-4000-8000-000000000000"
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": ghost}}, status=400)
    assert api.fault(r) == f"Subnet {ghost} not found."
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_network_id": ghost}}, status=400)
    assert api.fault(r) == f"Network {ghost} not found."


def test_vip_network_id_picks_its_subnet(api: Api) -> None:
    net = api.create_lb()["vip_network_id"]
    lb = api.create_lb(vip_network_id=net)
    assert lb["vip_network_id"] == net


def test_provider_must_be_enabled_and_known(api: Api) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {"provider": "octavia"}}, status=400)
    assert api.fault(r) == "Provider 'octavia' is not enabled."
    lb = api.create_lb(provider="amphora")
    assert lb["provider"] == "amphora"


def test_show_and_v2_0_prefix(api: Api) -> None:
    lb = api.create_lb()
    shown = api.get(f"/loadbalancers/{lb['id']}", status=200).json()["loadbalancer"]
    assert shown["id"] == lb["id"] and shown["provisioning_status"] == c.ACTIVE
    old = api.get(f"/v2.0/lbaas/loadbalancers/{lb['id']}", status=200).json()["loadbalancer"]
    assert old == shown


def test_show_unknown_is_404(api: Api) -> None:
    r = api.get("/loadbalancers/8a2b0000-0000-4000-8000-000000000000", status=404)
    assert api.fault(r) == "Load Balancer 8a2b0000-0000-4000-8000-000000000000 not found."


def test_update_changes_only_given_fields(api: Api) -> None:
    lb = api.create_lb(description="keep", tags=["a"])
    r = api.put(f"/loadbalancers/{lb['id']}",
                {"loadbalancer": {"name": "renamed", "admin_state_up": False}}, status=200)
    body = r.json()["loadbalancer"]
    assert body["provisioning_status"] == c.PENDING_UPDATE
    assert body["name"] == "renamed" and body["description"] == "keep"
    assert body["admin_state_up"] is False and body["tags"] == ["a"]
    api.wait_idle()
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_update_refuses_read_only_fields(api: Api) -> None:
    lb = api.create_lb()
    r = api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"vip_address": "127.0.0.5"}},
                status=400)
    assert "vip_address" in api.fault(r)


@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, pending: str) -> None:
    lb = api.create_lb()
    with held(api):
        api.set_lb_status(lb["id"], pending)
        r = api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}, status=409)
        assert api.fault(r) == f"Load Balancer {lb['id']} is immutable and cannot be updated."
        api.delete(f"/loadbalancers/{lb['id']}", status=409)
        api.put(f"/loadbalancers/{lb['id']}/failover", status=409)
        assert api.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["name"] == "lb"


def test_error_load_balancer_may_be_changed_and_deleted(api: Api) -> None:
    lb = api.create_lb()
    api.set_lb_status(lb["id"], c.ERROR)
    api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "fixed"}}, status=200)
    api.wait_idle()
    assert api.lb_status(lb["id"]) == c.ACTIVE
    api.set_lb_status(lb["id"], c.ERROR)
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    api.get(f"/loadbalancers/{lb['id']}", status=404)


def test_delete_goes_pending_delete_then_away(api: Api) -> None:
    lb = api.create_lb()
    with held(api):
        api.delete(f"/loadbalancers/{lb['id']}", status=204)
        assert api.lb_status(lb["id"]) == c.PENDING_DELETE
    api.get(f"/loadbalancers/{lb['id']}", status=404)
    api.delete(f"/loadbalancers/{lb['id']}", status=404)


def test_failover_is_admin_only_and_reapplies(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    api.put(f"/loadbalancers/{lb['id']}/failover", project="p1", status=403)
    api.put(f"/loadbalancers/{lb['id']}/failover", status=202)
    api.wait_idle()
    assert api.lb_status(lb["id"]) == c.ACTIVE
    assert ("failover", lb["id"]) in api.service.drivers["noop"].calls  # type: ignore[attr-defined]


def test_status_tree_and_stats_of_an_empty_load_balancer(api: Api) -> None:
    lb = api.create_lb(name="tree")
    tree = api.get(f"/loadbalancers/{lb['id']}/status", status=200).json()
    assert tree == {"statuses": {"loadbalancer": {
        "id": lb["id"], "name": "tree", "operating_status": c.OFFLINE,
        "provisioning_status": c.ACTIVE, "listeners": []}}}
    stats = api.get(f"/loadbalancers/{lb['id']}/stats", status=200).json()
    assert stats == {"stats": {"active_connections": 0, "bytes_in": 0, "bytes_out": 0,
                               "request_errors": 0, "total_connections": 0}}


# -- projects and policy ----------------------------------------------------------

def test_other_projects_objects_are_403(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    assert lb["project_id"] == "p1"
    api.get(f"/loadbalancers/{lb['id']}", project="p2", status=403)
    api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}, project="p2",
            status=403)
    api.delete(f"/loadbalancers/{lb['id']}", project="p2", status=403)
    api.get(f"/loadbalancers/{lb['id']}/status", project="p2", status=403)
    api.get(f"/loadbalancers/{lb['id']}/stats", project="p2", status=403)
    assert api.get("/loadbalancers", project="p2").json()["loadbalancers"] == []
    assert len(api.get("/loadbalancers", project="p1").json()["loadbalancers"]) == 1


def test_list_bodies_are_the_shows_and_page_filter_and_select(api: Api) -> None:
    # The list writes its bodies its own way (issue 12): each must be its show, in
    # the same order of keys, with listeners, pools and tags in their order.
    full = api.create_lb(name="full", tags=["b", "a"])
    first = api.create_listener(full["id"], protocol_port=81)
    second = api.create_listener(full["id"], protocol_port=82)
    pool = api.create_pool(loadbalancer_id=full["id"])
    bare = api.create_lb(name=None, description=None, tags=["a"])
    # Disabled, with security groups: a boolean and JSON (in SQLite 0 and text, read
    # by the list from the driver's rows as SQLAlchemy would).
    other = api.create_lb(name="other", _project="p1", admin_state_up=False,
                          vip_sg_ids=[GHOST])
    listed = api.get("/loadbalancers").json()
    assert [lb["id"] for lb in listed["loadbalancers"]] == [full["id"], bare["id"], other["id"]]
    assert listed["loadbalancers_links"] == []
    for lb in listed["loadbalancers"]:
        shown = api.show("loadbalancers", "loadbalancer", lb["id"])
        assert list(lb.items()) == list(shown.items())
    assert listed["loadbalancers"][0]["listeners"] == [{"id": first["id"]},
                                                       {"id": second["id"]}]
    assert listed["loadbalancers"][0]["pools"] == [{"id": pool["id"]}]
    assert listed["loadbalancers"][0]["tags"] == ["a", "b"]
    assert listed["loadbalancers"][1]["name"] == ""
    assert listed["loadbalancers"][1]["listeners"] == []
    assert listed["loadbalancers"][2]["admin_state_up"] is False
    assert listed["loadbalancers"][2]["vip_sg_ids"] == [GHOST]

    def ids(**params: object) -> list[str]:
        return [lb["id"] for lb in api.get("/loadbalancers", params=params)
                .json()["loadbalancers"]]

    # A page that holds all there is, and one that does not: the same bodies.
    whole = api.get("/loadbalancers", params={"limit": 3}).json()["loadbalancers"]
    assert whole == listed["loadbalancers"]
    two = api.get("/loadbalancers", params={"limit": 2}).json()
    assert two["loadbalancers"] == listed["loadbalancers"][:2]
    assert [link["rel"] for link in two["loadbalancers_links"]] == ["next"]
    page = api.get("/loadbalancers", params={"limit": 1, "marker": full["id"]}).json()
    assert [lb["id"] for lb in page["loadbalancers"]] == [bare["id"]]
    assert {link["rel"] for link in page["loadbalancers_links"]} == {"previous", "next"}
    assert ids(limit=1, marker=other["id"], page_reverse="true") == [bare["id"]]
    assert ids(sort="name:desc") == [other["id"], full["id"], bare["id"]]
    assert ids(tags="a,b") == [full["id"]]
    assert ids(**{"tags-any": "a"}) == [full["id"], bare["id"]]
    assert ids(**{"not-tags-any": "b"}) == [bare["id"], other["id"]]
    assert ids(project_id="p1") == [other["id"]]
    assert ids(name="full", fields="id") == [full["id"]]
    some = api.get("/loadbalancers", params={"fields": "listeners,id", "name": "full"}).json()
    assert some["loadbalancers"] == [{"id": full["id"], "listeners": [{"id": first["id"]},
                                                                      {"id": second["id"]}]}]
    # fields= selects columns and children (timestamps written by the database, tenant_id
    # without project_id): each body is its show's selection, in the show's order.
    order = [full["id"], bare["id"], other["id"]]
    for selection in ("tenant_id,created_at", "updated_at,tags,name", "pools,tenant_id,id",
                      "bogus", "tags"):
        some_bodies = api.get("/loadbalancers", params={"fields": selection}).json()
        shown_some = [api.get(f"/loadbalancers/{i}", params={"fields": selection})
                      .json()["loadbalancer"] for i in order]
        assert [list(b.items()) for b in some_bodies["loadbalancers"]] == [
            list(b.items()) for b in shown_some]
    # Filtered pages: the children of exactly the load balancers listed.
    for params in ({"tags": "a"}, {"tags-any": "b", "not-tags": "x"},
                   {"limit": 1, "marker": full["id"]},
                   {"sort": "created_at:desc", "limit": 2, "marker": other["id"]}):
        for lb in api.get("/loadbalancers", params=params).json()["loadbalancers"]:
            assert lb == api.show("loadbalancers", "loadbalancer", lb["id"])
    assert ids(sort="created_at:desc", limit=2, marker=other["id"]) == [bare["id"], full["id"]]
    assert api.get("/loadbalancers", params={"name": "none"}).json() == {
        "loadbalancers": [], "loadbalancers_links": []}


def test_a_listed_body_is_written_again_only_once_its_load_balancer_changed(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed bodies are kept (deps.KeptBodies, issue 12) and stay their shows through
    every kind of change: its fields, its children, their deletion settled by the
    worker, its tags, the health manager's operating_status."""
    kept = api.service.app.state.lbaas.load_balancer_bodies
    written: list[str] = []
    put = kept.put

    def counted(ident: str, key: object, body: dict[str, object]) -> bytes:
        written.append(ident)
        return put(ident, key, body)

    monkeypatch.setattr(kept, "put", counted)
    one, two = api.create_lb(name="one")["id"], api.create_lb(name="two")["id"]

    def listed_again(*changed: str) -> None:
        written.clear()
        listed = api.get("/loadbalancers").json()["loadbalancers"]
        assert [list(lb.items()) for lb in listed] == [
            list(api.show("loadbalancers", "loadbalancer", i).items()) for i in (one, two)]
        assert sorted(written) == sorted(changed)

    listed_again(one, two)
    listed_again()
    with held(api):
        api.put(f"/loadbalancers/{one}", {"loadbalancer": {"name": "uno", "tags": ["t"]}},
                status=200)
        listed_again(one)  # PENDING_UPDATE
    listed_again(one)  # ACTIVE
    listener = api.create_listener(two)["id"]
    listed_again(two)
    with held(api):
        api.delete(f"/listeners/{listener}", status=204)
        listed_again(two)  # PENDING_UPDATE, the listener still shown
    listed_again(two)  # settled: the listener removed
    # A change begun and settled within a second, as PostgreSQL's rows tell the time:
    # only graph_version tells its row from the one listed before it.
    with api.service.sessions() as session:
        stamp = session.get(m.LoadBalancer, two).updated_at  # type: ignore[union-attr]
    api.create_listener(two)
    with api.service.sessions() as session, session.begin():
        session.get(m.LoadBalancer, two).updated_at = stamp  # type: ignore[union-attr]
    listed_again(two)
    with api.service.sessions() as session, session.begin():
        lb = session.get(m.LoadBalancer, one)
        assert lb is not None
        lb.operating_status = c.ERROR
    listed_again(one)
    listed_again()
    with api.service.sessions() as session, session.begin():
        lb = session.get(m.LoadBalancer, one)
        assert lb is not None
        lb.operating_status = c.ONLINE  # as before: its first body again, rightly
    listed_again(one)
    assert api.get("/loadbalancers", params={"fields": "id,name"}).json()[
        "loadbalancers"] == [{"id": one, "name": "uno"}, {"id": two, "name": "two"}]
    assert written == [one]  # fields=: written for the request, none kept
    # graph_version is internal: no filter nor sort by it.
    api.get("/loadbalancers", params={"graph_version": "1"}, status=400)
    api.get("/loadbalancers", params={"sort": "graph_version"}, status=400)


def test_admin_and_global_observer_see_every_project(api: Api) -> None:
    api.create_lb(_project="p1")
    api.create_lb(_project="p2")
    assert len(api.get("/loadbalancers").json()["loadbalancers"]) == 2
    seen = api.get("/loadbalancers", project="p3",
                   roles="admin").json()["loadbalancers"]
    assert len(seen) == 2
    only = api.get("/loadbalancers", params={"project_id": "p1"}).json()["loadbalancers"]
    assert [lb["project_id"] for lb in only] == ["p1"]


def test_roles_follow_octavia_policy(api: Api) -> None:
    body = {"loadbalancer": {"name": "x"}}
    api.post("/loadbalancers", body, project="p1", roles="reader", status=403)
    api.post("/loadbalancers", body, project="p1", roles="load-balancer_observer", status=403)
    api.post("/loadbalancers", body, project="p1", roles="nothing", status=403)
    lb = api.post("/loadbalancers", body, project="p1", roles="member", status=201).json()
    api.get("/loadbalancers", project="p1", roles="nothing", status=403)
    api.get("/loadbalancers", project="p1", roles="reader", status=200)
    api.get(f"/loadbalancers/{lb['loadbalancer']['id']}", project="p1",
            roles="reader", status=200)
    r = api.post("/loadbalancers", body, project="p1", roles="reader", status=403)
    assert api.fault(r) == "Policy does not allow this request to be performed."


def test_only_admins_create_in_other_projects(api: Api) -> None:
    body = {"loadbalancer": {"project_id": "p2"}}
    api.post("/loadbalancers", body, project="p1", status=403)
    lb = api.post("/loadbalancers", body, status=201).json()["loadbalancer"]
    assert lb["project_id"] == "p2"
    lb = api.post("/loadbalancers", {"loadbalancer": {"tenant_id": "p3"}},
                  status=201).json()["loadbalancer"]
    assert lb["project_id"] == "p3"


def test_quota_on_load_balancers(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"loadbalancer": 1}}, status=202)
    api.create_lb(_project="p1")
    r = api.post("/loadbalancers", {"loadbalancer": {}}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Load Balancer"
    api.create_lb(_project="p2")


def test_version_discovery(api: Api) -> None:
    versions = api.get("/", status=200).json()["versions"]
    assert versions[0]["id"] == "v2.0"
    assert [v["status"] for v in versions].count("CURRENT") == 1
    assert all(v["links"][0]["href"].endswith("/v2") for v in versions)


def test_deletes_remove_the_tags_the_worker_does_not_load(api: Api) -> None:
    """The worker loads a graph without its tags (issue 12); deleting objects (a member,
    then the whole tree) still removes every tag row of theirs, without reading them
    (status._drop_tags: one DELETE)."""
    lb = api.create_lb(tags=["lb"])
    li = api.create_listener(lb["id"], tags=["li"])
    pool = api.create_pool(listener_id=li["id"], tags=["pool"])
    api.create_health_monitor(pool["id"], tags=["hm"])
    members = [api.create_member(pool["id"], address=f"127.0.0.{i}", tags=[f"m{i}"])
               for i in (10, 11)]
    policy = api.create_l7policy(li["id"], action="REJECT", tags=["policy"])
    api.create_l7rule(policy["id"], tags=["rule"])
    with api.service.sessions() as session:
        assert session.query(m.Tag).count() == 8
    api.delete(f"/pools/{pool['id']}/members/{members[0]['id']}", status=204)
    api.wait_idle()
    with api.service.sessions() as session:
        assert sorted(t.tag for t in session.query(m.Tag)) == \
            ["hm", "lb", "li", "m11", "policy", "pool", "rule"]
    tag_reads: list[str] = []  # the worker's cascade: one DELETE for all, no reads
    engine = api.service.engine

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.current_thread().name.startswith("lbaas-worker") and \
                re.search(r"\bFROM tag\b", statement) and \
                statement.lstrip().upper().startswith("SELECT"):
            tag_reads.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        api.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"}, status=204)
        api.wait_idle()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    api.get(f"/loadbalancers/{lb['id']}", status=404)
    with api.service.sessions() as session:
        assert session.query(m.Tag).count() == 0
    assert tag_reads == []
