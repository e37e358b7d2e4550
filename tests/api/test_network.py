"""Networks: /v2.0/networks (Neutron's shapes, lbaas's error body)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from lbaas.db import ipam
from tests.api.base import GHOST, Api, create_network, create_subnet

PATH = "/v2.0/networks"
NETWORK_FIELDS = {"id", "name", "description", "project_id", "tenant_id", "admin_state_up",
                  "status", "shared", "subnets", "created_at", "updated_at"}
NEUTRON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MEMBER = {"project": "p1", "roles": "member"}
OTHER = {"project": "p2", "roles": "member"}


def networks(api: Api, **kw: Any) -> list[dict[str, Any]]:
    return list(api.get(PATH, status=200, **kw).json()["networks"])


def default_network(api: Api) -> dict[str, Any]:
    return next(n for n in networks(api) if n["name"] == ipam.DEFAULT_NETWORK_NAME)


def test_default_network_is_listed_for_everyone(api: Api) -> None:
    net = default_network(api)
    assert set(net) == NETWORK_FIELDS
    assert net["shared"] is True and net["project_id"] is None and net["tenant_id"] is None
    assert net["status"] == "ACTIVE" and len(net["subnets"]) == 1
    assert NEUTRON_TIME.match(net["created_at"])
    assert networks(api, **MEMBER) == [net]
    assert networks(api, project="p1", roles="reader") == [net]
    assert api.get(f"{PATH}/{net['id']}", status=200, **OTHER).json()["network"] == net


def test_create_defaults(api: Api) -> None:
    r = api.post(PATH, {"network": {}}, status=201)
    net = r.json()["network"]
    assert set(net) == NETWORK_FIELDS
    assert net["project_id"] == net["tenant_id"] == "admin"
    assert (net["name"], net["description"]) == ("", "")
    assert net["admin_state_up"] is True and net["shared"] is False
    assert net["status"] == "ACTIVE" and net["subnets"] == []
    assert NEUTRON_TIME.match(net["created_at"]) and net["updated_at"] is None
    assert api.get(f"{PATH}/{net['id']}", status=200).json()["network"] == net


def test_create_for_a_project(api: Api) -> None:
    net = create_network(api, name="n1", description="d", project_id="p1", shared=True,
                         admin_state_up=False)
    assert (net["name"], net["description"], net["project_id"]) == ("n1", "d", "p1")
    assert net["shared"] is True and net["admin_state_up"] is False
    assert create_network(api, tenant_id="p2")["project_id"] == "p2"


@pytest.mark.parametrize(("field", "value"), [
    ("name", "n" * 256), ("description", "d" * 256), ("admin_state_up", "yes"),
    ("shared", "no"), ("project_id", "p" * 37), ("name", 1),
])
def test_create_refuses_bad_fields_naming_them(api: Api, field: str, value: Any) -> None:
    r = api.post(PATH, {"network": {field: value}}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert len(networks(api)) == 1


def test_create_refuses_unknown_attributes_and_a_missing_envelope(api: Api) -> None:
    r = api.post(PATH, {"network": {"mtu": 1500}}, status=400)
    assert api.fault(r) == "Unknown attribute for argument network: mtu"
    r = api.post(PATH, {"name": "x"}, status=400)
    assert "network" in api.fault(r)


@pytest.mark.parametrize("roles", ["member", "load-balancer_member", "reader",
                                   "load-balancer_global_observer"])
def test_only_admins_write_networks(api: Api, roles: str) -> None:
    mine = create_network(api, project_id="p1")
    who: dict[str, Any] = {"project": "p1", "roles": roles}
    r = api.post(PATH, {"network": {"name": "x"}}, status=403, **who)
    assert api.fault(r) == "Policy does not allow this request to be performed."
    api.put(f"{PATH}/{mine['id']}", {"network": {"name": "x"}}, status=403, **who)
    api.delete(f"{PATH}/{mine['id']}", status=403, **who)
    assert api.get(f"{PATH}/{mine['id']}").json()["network"] == mine


def test_load_balancer_admins_write_networks(api: Api) -> None:
    who: dict[str, Any] = {"project": "ops", "roles": "admin"}
    net = api.post(PATH, {"network": {"project_id": "p1"}}, status=201, **who).json()["network"]
    api.put(f"{PATH}/{net['id']}", {"network": {"name": "y"}}, status=200, **who)
    api.delete(f"{PATH}/{net['id']}", status=204, **who)


def test_projects_see_their_own_and_shared_networks(api: Api) -> None:
    private = create_network(api, name="private", project_id="p1")
    shared = create_network(api, name="shared", project_id="p1", shared=True)
    admins = create_network(api, name="admins")
    default = default_network(api)
    assert {n["name"] for n in networks(api, **MEMBER)} == {"private", "shared",
                                                           default["name"]}
    assert {n["name"] for n in networks(api, **OTHER)} == {"shared", default["name"]}
    assert len(networks(api)) == 4
    assert len(networks(api, project="x", roles="admin")) == 4
    api.get(f"{PATH}/{private['id']}", status=200, **MEMBER)
    api.get(f"{PATH}/{shared['id']}", status=200, **OTHER)
    for hidden in (private, admins):
        r = api.get(f"{PATH}/{hidden['id']}", status=404, **OTHER)
        assert api.fault(r) == f"Network {hidden['id']} not found."
        api.put(f"{PATH}/{hidden['id']}", {"network": {"name": "x"}}, status=404, **OTHER)
        api.delete(f"{PATH}/{hidden['id']}", status=404, **OTHER)
    api.get(PATH, project="p1", roles="nothing", status=403)
    api.get(f"{PATH}/{shared['id']}", project="p1", roles="nothing", status=403)


def test_show_unknown_is_404_and_fields_select(api: Api) -> None:
    r = api.get(f"{PATH}/{GHOST}", status=404)
    assert api.fault(r) == f"Network {GHOST} not found."
    net = create_network(api)
    r = api.get(f"{PATH}/{net['id']}", params={"fields": "id,status"}, status=200)
    assert r.json() == {"network": {"id": net["id"], "status": "ACTIVE"}}


def test_list_filters_sort_fields_and_pages(api: Api) -> None:
    for name, project, shared in (("b", "p1", False), ("c", "p2", True), ("a", "p1", True)):
        create_network(api, name=name, project_id=project, shared=shared)
    rows = networks(api, params={"project_id": "p1", "sort": "name", "fields": "name"})
    assert rows == [{"name": "a"}, {"name": "b"}]
    rows = networks(api, params={"tenant_id": "p2", "fields": "name"})
    assert rows == [{"name": "c"}]
    rows = networks(api, params={"shared": "true", "sort": "name:desc", "fields": "name"})
    assert [n["name"] for n in rows] == [ipam.DEFAULT_NETWORK_NAME, "c", "a"]
    first = api.get(PATH, params={"sort_key": "name", "sort_dir": "asc", "limit": 2}).json()
    assert [n["name"] for n in first["networks"]] == ["a", "b"]
    assert [link["rel"] for link in first["networks_links"]] == ["next"]
    rest = api.get(PATH, params={"sort_key": "name", "limit": 2,
                                 "marker": first["networks"][1]["id"]}).json()
    assert [n["name"] for n in rest["networks"]] == ["c", ipam.DEFAULT_NETWORK_NAME]
    api.get(PATH, params={"bogus": "1"}, status=400)
    api.get(PATH, params={"sort": "subnets"}, status=400)


def test_update(api: Api) -> None:
    net = create_network(api, project_id="p1")
    body = {"name": "renamed", "description": "d", "admin_state_up": False, "shared": True}
    r = api.put(f"{PATH}/{net['id']}", {"network": body}, status=200)
    updated = r.json()["network"]
    assert {k: updated[k] for k in body} == body
    assert NEUTRON_TIME.match(updated["updated_at"])
    api.put(f"{PATH}/{net['id']}", {"network": {"name": None}}, status=200)
    assert api.get(f"{PATH}/{net['id']}").json()["network"]["name"] == ""


@pytest.mark.parametrize("body", [{"shared": None}, {"admin_state_up": None},
                                  {"project_id": "p2"}, {"subnets": []}, {"shared": "yes"}])
def test_update_refuses_nulls_and_fixed_fields(api: Api, body: dict[str, Any]) -> None:
    net = create_network(api, project_id="p1")
    api.put(f"{PATH}/{net['id']}", {"network": body}, status=400)
    assert api.get(f"{PATH}/{net['id']}").json()["network"] == net


def test_update_unknown_is_404(api: Api) -> None:
    api.put(f"{PATH}/{GHOST}", {"network": {"name": "x"}}, status=404)


def test_unsharing_a_network_other_projects_use_is_409(api: Api) -> None:
    net = create_network(api, project_id="p1", shared=True)
    create_subnet(api, net["id"], "127.42.0.0/24")
    mine = api.create_lb(vip_network_id=net["id"], _project="p1")
    theirs = api.create_lb(vip_network_id=net["id"], _project="p2")
    r = api.put(f"{PATH}/{net['id']}", {"network": {"shared": False}}, status=409)
    assert api.fault(r) == (f"Unable to reconfigure sharing settings for network "
                            f"{net['id']}. Multiple tenants are using it.")
    api.delete(f"/loadbalancers/{theirs['id']}", status=204)
    api.wait_idle()
    api.put(f"{PATH}/{net['id']}", {"network": {"shared": False}}, status=200)
    assert mine["vip_network_id"] == net["id"]


def test_delete_takes_the_subnets_along(api: Api) -> None:
    net = create_network(api)
    subnet = create_subnet(api, net["id"], "127.42.0.0/24")
    assert api.get(f"{PATH}/{net['id']}").json()["network"]["subnets"] == [subnet["id"]]
    api.delete(f"{PATH}/{net['id']}", status=204)
    api.get(f"{PATH}/{net['id']}", status=404)
    api.get(f"/v2.0/subnets/{subnet['id']}", status=404)
    r = api.delete(f"{PATH}/{net['id']}", status=404)
    assert api.fault(r) == f"Network {net['id']} not found."


def test_network_with_a_vip_cannot_be_deleted(api: Api) -> None:
    net = create_network(api, project_id="p1")
    create_subnet(api, net["id"], "127.42.0.0/24")
    lb = api.create_lb(vip_network_id=net["id"], _project="p1")
    r = api.delete(f"{PATH}/{net['id']}", status=409)
    assert api.fault(r) == (f"Unable to complete operation on network {net['id']}. "
                            "There are one or more ports still in use on the network.")
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    api.delete(f"{PATH}/{net['id']}", status=204)


def test_default_network_is_deletable_only_when_unused(api: Api) -> None:
    default = default_network(api)
    lb = api.create_lb()
    assert lb["vip_network_id"] == default["id"]
    api.delete(f"{PATH}/{default['id']}", status=409)
    api.delete(f"{PATH}/{default['id']}", project="p1", roles="member", status=403)
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    api.delete(f"{PATH}/{default['id']}", status=204)
    assert networks(api) == []
    # the next load balancer without a VIP network brings the default back
    again = api.create_lb()
    assert default_network(api)["id"] == again["vip_network_id"] != default["id"]


def test_load_balancer_vip_on_a_new_network(api: Api) -> None:
    net = create_network(api, project_id="p1")
    subnet = create_subnet(api, net["id"], "127.42.0.0/24")
    lb = api.create_lb(vip_network_id=net["id"], _project="p1")
    assert (lb["vip_network_id"], lb["vip_subnet_id"]) == (net["id"], subnet["id"])
    assert lb["vip_address"] == "127.42.0.2"


def test_load_balancer_vip_network_must_be_visible_and_have_a_subnet(api: Api) -> None:
    net = create_network(api, project_id="p1")
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_network_id": net["id"]}},
                 project="p1", status=400)
    assert api.fault(r) == "Validation failure: Supplied network does not contain a subnet."
    create_subnet(api, net["id"], "127.42.0.0/24")
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_network_id": net["id"]}},
                 project="p2", status=400)
    assert api.fault(r) == f"Network {net['id']} not found."
