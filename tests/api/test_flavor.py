"""Flavors: /v2/lbaas/flavors (after Octavia's test_flavors.py), and load
balancers created with a flavor.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lbaas.common import constants as c
from lbaas.drivers.noop import NoopDriver
from tests.api.base import GHOST, Api, create_flavor, create_flavor_profile

ACTIVE_STANDBY = '{"loadbalancer_topology": "ACTIVE_STANDBY"}'


@pytest.fixture
def fp(api: Api) -> dict[str, Any]:
    return create_flavor_profile(api)


def flavor(api: Api, flavor_id: str, **kw: Any) -> dict[str, Any]:
    return dict(api.get(f"/flavors/{flavor_id}", status=200, **kw).json()["flavor"])


def test_empty_list(api: Api) -> None:
    assert api.get("/flavors", status=200).json() == {"flavors": [], "flavors_links": []}


def test_create_and_show(api: Api, fp: dict[str, Any]) -> None:
    body = {"name": "Fancy_Flavor", "description": "A great flavor. Pick me!",
            "flavor_profile_id": fp["id"]}
    created = api.post("/flavors", {"flavor": body}, status=201).json()["flavor"]
    assert set(created) == {"id", "name", "description", "enabled", "flavor_profile_id"}
    assert str(uuid.UUID(created["id"])) == created["id"]
    assert created == {"id": created["id"], "enabled": True, **body}
    assert flavor(api, created["id"]) == created


def test_create_defaults(api: Api, fp: dict[str, Any]) -> None:
    created = create_flavor(api, fp["id"], name="plain", enabled=False)
    assert created["description"] == "" and created["enabled"] is False


@pytest.mark.parametrize(("body", "message"), [
    ({"flavor_profile_id": GHOST},
     "Invalid input for field/attribute name. Value: 'None'. Mandatory field missing."),
    ({"name": "xyz"}, "Invalid input for field/attribute flavor_profile_id. Value: 'None'. "
                      "Mandatory field missing."),
    ({"name": "xyz", "flavor_profile_id": "bogus"},
     "Invalid input for field/attribute flavor_profile_id. Value: 'bogus'. "
     "Value should be UUID format."),
])
def test_create_requires_name_and_profile(api: Api, body: dict[str, Any], message: str) -> None:
    r = api.post("/flavors", {"flavor": body}, status=400)
    assert api.fault(r) == message


@pytest.mark.parametrize(("field", "value"), [
    ("name", "n" * 256), ("description", "d" * 256), ("enabled", "yes"), ("name", None),
    ("description", 7),
])
def test_create_refuses_bad_fields_naming_them(api: Api, fp: dict[str, Any], field: str,
                                               value: Any) -> None:
    body = {"name": "f", "flavor_profile_id": fp["id"], field: value}
    r = api.post("/flavors", {"flavor": body}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert api.get("/flavors").json()["flavors"] == []


def test_create_with_unknown_profile_is_400(api: Api) -> None:
    r = api.post("/flavors", {"flavor": {"name": "f", "flavor_profile_id": GHOST}}, status=400)
    assert api.fault(r) == f"Flavor profile {GHOST} not found."


def test_names_are_unique(api: Api, fp: dict[str, Any]) -> None:
    create_flavor(api, fp["id"], name="name")
    r = api.post("/flavors", {"flavor": {"name": "name", "flavor_profile_id": fp["id"]}},
                 status=409)
    assert api.fault(r) == "A flavor of name already exists."
    other = create_flavor(api, fp["id"], name="other")
    r = api.put(f"/flavors/{other['id']}", {"flavor": {"name": "name"}}, status=409)
    assert api.fault(r) == "A flavor of name already exists."
    api.put(f"/flavors/{other['id']}", {"flavor": {"name": "other"}}, status=200)


def test_show_unknown_is_404_and_fields_select(api: Api, fp: dict[str, Any]) -> None:
    r = api.get(f"/flavors/{GHOST}", status=404)
    assert api.fault(r) == f"Flavor {GHOST} not found."
    f = create_flavor(api, fp["id"])
    r = api.get(f"/flavors/{f['id']}", params={"fields": "id,enabled"}, status=200)
    assert r.json() == {"flavor": {"id": f["id"], "enabled": True}}


def test_list_fields_filters_sort_and_pages(api: Api, fp: dict[str, Any]) -> None:
    a = create_flavor(api, fp["id"], name="a")
    b = create_flavor(api, fp["id"], name="b", enabled=False)
    create_flavor(api, fp["id"], name="c")
    rows = api.get("/flavors", params={"fields": "name", "sort": "name"}).json()["flavors"]
    assert rows == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    rows = api.get("/flavors", params={"enabled": "false"}).json()["flavors"]
    assert rows == [b]
    rows = api.get("/flavors", params={"name": ["a", "c"], "sort": "name:desc"}).json()
    assert [f["name"] for f in rows["flavors"]] == ["c", "a"]
    first = api.get("/flavors", params={"limit": 1, "sort": "name"}).json()
    assert first["flavors"] == [a]
    assert [link["rel"] for link in first["flavors_links"]] == ["next"]
    middle = api.get("/flavors", params={"limit": 1, "sort": "name", "marker": a["id"]}).json()
    assert middle["flavors"] == [b]
    assert sorted(link["rel"] for link in middle["flavors_links"]) == ["next", "previous"]
    api.get("/flavors", params={"enabled": "maybe"}, status=400)


def test_update(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"], name="Fancy_Flavor", description="A great flavor.")
    body = {"name": "Better_Flavor", "description": "An even better flavor.", "enabled": False}
    r = api.put(f"/flavors/{f['id']}", {"flavor": body}, status=200)
    assert r.json()["flavor"] == {**f, **body}
    assert flavor(api, f["id"]) == {**f, **body}


def test_update_nothing_and_clear_description(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"], description="words")
    api.put(f"/flavors/{f['id']}", {"flavor": {}}, status=200)
    assert flavor(api, f["id"]) == f
    api.put(f"/flavors/{f['id']}", {"flavor": {"description": None}}, status=200)
    assert flavor(api, f["id"])["description"] == ""


@pytest.mark.parametrize("field", ["name", "enabled"])
def test_update_to_null_is_refused(api: Api, fp: dict[str, Any], field: str) -> None:
    f = create_flavor(api, fp["id"])
    r = api.put(f"/flavors/{f['id']}", {"flavor": {field: None}}, status=400)
    assert api.fault(r) == f"None is not a valid option for {field}"


def test_profile_of_a_flavor_is_fixed(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"])
    other = create_flavor_profile(api)
    r = api.put(f"/flavors/{f['id']}", {"flavor": {"flavor_profile_id": other["id"]}},
                status=400)
    assert api.fault(r) == "Unknown attribute for argument flavor: flavor_profile_id"
    assert flavor(api, f["id"])["flavor_profile_id"] == fp["id"]


def test_update_unknown_is_404(api: Api) -> None:
    r = api.put(f"/flavors/{GHOST}", {"flavor": {"name": "x"}}, status=404)
    assert api.fault(r) == f"Flavor {GHOST} not found."


def test_delete(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"])
    api.delete(f"/flavors/{f['id']}", status=204)
    r = api.get(f"/flavors/{f['id']}", status=404)
    assert api.fault(r) == f"Flavor {f['id']} not found."
    r = api.delete("/flavors/bogus_id", status=404)
    assert api.fault(r) == "Flavor bogus_id not found."


def test_flavor_of_a_load_balancer_cannot_be_deleted(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"])
    lb = api.create_lb(flavor_id=f["id"], _project="p1")
    r = api.delete(f"/flavors/{f['id']}", status=409)
    assert api.fault(r) == f"Flavor {f['id']} is in use and cannot be modified."
    assert flavor(api, f["id"]) == f
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    api.delete(f"/flavors/{f['id']}", status=204)


@pytest.mark.parametrize("roles", ["member", "reader"])
def test_everyone_reads_only_admins_write(api: Api, fp: dict[str, Any], roles: str) -> None:
    f = create_flavor(api, fp["id"])
    who: dict[str, Any] = {"project": "p1", "roles": roles}
    assert api.get("/flavors", status=200, **who).json()["flavors"] == [f]
    assert flavor(api, f["id"], **who) == f
    body = {"name": "mine", "flavor_profile_id": fp["id"]}
    r = api.post("/flavors", {"flavor": body}, status=403, **who)
    assert api.fault(r) == "Policy does not allow this request to be performed."
    api.put(f"/flavors/{f['id']}", {"flavor": {"enabled": False}}, status=403, **who)
    api.delete(f"/flavors/{f['id']}", status=403, **who)
    assert flavor(api, f["id"]) == f


def test_callers_without_a_role_see_no_flavors(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"])
    api.get("/flavors", project="p1", roles="nothing", status=403)
    api.get(f"/flavors/{f['id']}", project="p1", roles="nothing", status=403)


@pytest.mark.parametrize("roles", ["admin"])
def test_admin_roles_manage_flavors(api: Api, fp: dict[str, Any], roles: str) -> None:
    who: dict[str, Any] = {"project": "ops", "roles": roles}
    body = {"name": "f", "flavor_profile_id": fp["id"]}
    f = api.post("/flavors", {"flavor": body}, status=201, **who).json()["flavor"]
    api.put(f"/flavors/{f['id']}", {"flavor": {"enabled": False}}, status=200, **who)
    api.delete(f"/flavors/{f['id']}", status=204, **who)


# -- load balancers with a flavor ---------------------------------------------------

def test_load_balancer_takes_topology_and_provider_from_its_flavor(api: Api,
                                                                   noop: NoopDriver) -> None:
    profile = create_flavor_profile(api, provider="haproxy", data=ACTIVE_STANDBY)
    f = create_flavor(api, profile["id"])
    lb = api.create_lb(flavor_id=f["id"], _project="p1")
    assert lb["flavor_id"] == f["id"]
    assert lb["provider"] == "haproxy"
    assert noop.applied[lb["id"]].topology == c.TOPOLOGY_ACTIVE_STANDBY
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_flavor_without_topology_gives_single(api: Api, noop: NoopDriver,
                                              fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"])
    lb = api.create_lb(flavor_id=f["id"], provider="noop")
    assert lb["provider"] == "noop" and lb["flavor_id"] == f["id"]
    assert noop.applied[lb["id"]].topology == c.TOPOLOGY_SINGLE


def test_load_balancer_with_a_disabled_flavor_is_refused(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"], enabled=False)
    r = api.post("/loadbalancers", {"loadbalancer": {"flavor_id": f["id"]}}, project="p1",
                 status=400)
    assert api.fault(r) == f"The selected flavor is not allowed in this deployment: {f['id']}"
    api.put(f"/flavors/{f['id']}", {"flavor": {"enabled": True}}, status=200)
    api.create_lb(flavor_id=f["id"], _project="p1")


def test_load_balancer_with_an_unknown_flavor_is_refused(api: Api) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {"flavor_id": GHOST}}, status=400)
    assert api.fault(r) == f"{GHOST} is not a valid option for flavor"
    assert api.get("/loadbalancers").json()["loadbalancers"] == []


def test_load_balancer_provider_must_match_its_flavor(api: Api, fp: dict[str, Any]) -> None:
    f = create_flavor(api, fp["id"])  # a noop profile
    r = api.post("/loadbalancers", {"loadbalancer": {"flavor_id": f["id"],
                                                     "provider": "haproxy"}}, status=400)
    assert api.fault(r) == f"Flavor '{f['id']}' is not compatible with provider 'haproxy'"
    assert api.get("/loadbalancers").json()["loadbalancers"] == []
