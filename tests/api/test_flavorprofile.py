"""Flavor profiles: /v2/lbaas/flavorprofiles (after Octavia's test_flavor_profiles.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.base import GHOST, Api, create_flavor, create_flavor_profile

TOPOLOGY = '{"loadbalancer_topology": "ACTIVE_STANDBY"}'


def profile(api: Api, profile_id: str) -> dict[str, Any]:
    return dict(api.get(f"/flavorprofiles/{profile_id}", status=200).json()["flavorprofile"])


def test_empty_list(api: Api) -> None:
    assert api.get("/flavorprofiles", status=200).json() == {
        "flavorprofiles": [], "flavorprofile_links": []}


def test_create_returns_what_was_sent(api: Api) -> None:
    body = {"name": "fp1", "provider_name": "noop", "flavor_data": TOPOLOGY}
    fp = api.post("/flavorprofiles", {"flavorprofile": body}, status=201).json()["flavorprofile"]
    assert set(fp) == {"id", "name", "provider_name", "flavor_data"}
    assert str(uuid.UUID(fp["id"])) == fp["id"]
    assert {k: fp[k] for k in body} == body
    assert profile(api, fp["id"]) == fp


def test_create_with_empty_data_and_with_the_amphora_alias(api: Api) -> None:
    assert create_flavor_profile(api, data="{}")["flavor_data"] == "{}"
    assert create_flavor_profile(api, provider="amphora", data=TOPOLOGY)[
        "provider_name"] == "amphora"


@pytest.mark.parametrize("missing", ["name", "provider_name", "flavor_data"])
def test_create_requires_every_field(api: Api, missing: str) -> None:
    body = {"name": "fp", "provider_name": "noop", "flavor_data": "{}"}
    del body[missing]
    r = api.post("/flavorprofiles", {"flavorprofile": body}, status=400)
    assert api.fault(r) == (f"Invalid input for field/attribute {missing}. Value: 'None'. "
                            "Mandatory field missing.")


@pytest.mark.parametrize(("field", "value"), [
    ("name", "n" * 256), ("provider_name", "p" * 256), ("flavor_data", "x" * 4097),
    ("name", 5), ("flavor_data", {"loadbalancer_topology": "SINGLE"}),
])
def test_create_refuses_bad_fields_naming_them(api: Api, field: str, value: Any) -> None:
    body = {"name": "fp", "provider_name": "noop", "flavor_data": "{}", field: value}
    r = api.post("/flavorprofiles", {"flavorprofile": body}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert api.get("/flavorprofiles").json()["flavorprofiles"] == []


@pytest.mark.parametrize("data", ["{bad json", "[1, 2]", '"text"', ""])
def test_flavor_data_must_be_a_json_object(api: Api, data: str) -> None:
    body = {"name": "fp", "provider_name": "noop", "flavor_data": data}
    r = api.post("/flavorprofiles", {"flavorprofile": body}, status=400)
    assert api.fault(r) == f"{data} is not a valid option for flavor_data"


def test_unknown_attribute_is_refused(api: Api) -> None:
    body = {"name": "fp", "provider_name": "noop", "flavor_data": "{}", "id": GHOST}
    r = api.post("/flavorprofiles", {"flavorprofile": body}, status=400)
    assert api.fault(r) == "Unknown attribute for argument flavorprofile: id"


def test_provider_must_be_enabled(api: Api) -> None:
    body = {"name": "fp", "provider_name": "octavia", "flavor_data": "{}"}
    r = api.post("/flavorprofiles", {"flavorprofile": body}, status=400)
    assert api.fault(r) == "Provider 'octavia' is not enabled."


def test_provider_refusing_the_data_is_its_501(api: Api) -> None:
    body = {"name": "fp", "provider_name": "noop", "flavor_data": '{"image": "ubuntu"}'}
    r = api.post("/flavorprofiles", {"flavorprofile": body}, status=501)
    assert api.fault(r) == ("Provider 'noop' does not support a requested option: "
                            "unknown flavor keys: image")
    assert api.get("/flavorprofiles").json()["flavorprofiles"] == []


def test_show_unknown_is_404_and_fields_select(api: Api) -> None:
    r = api.get(f"/flavorprofiles/{GHOST}", status=404)
    assert api.fault(r) == f"Flavor Profile {GHOST} not found."
    fp = create_flavor_profile(api)
    r = api.get(f"/flavorprofiles/{fp['id']}", params={"fields": "id,provider_name"})
    assert r.json() == {"flavorprofile": {"id": fp["id"], "provider_name": "noop"}}


def test_list_fields_filters_sort_and_pages(api: Api) -> None:
    a = create_flavor_profile(api, name="a")
    b = create_flavor_profile(api, name="b", provider="haproxy", data=TOPOLOGY)
    c = create_flavor_profile(api, name="c")
    rows = api.get("/flavorprofiles", params={"fields": "id,name"}).json()["flavorprofiles"]
    assert sorted(rows, key=lambda r: r["name"]) == [
        {"id": x["id"], "name": x["name"]} for x in (a, b, c)]
    rows = api.get("/flavorprofiles", params={"provider_name": "haproxy"}).json()
    assert [r["id"] for r in rows["flavorprofiles"]] == [b["id"]]
    rows = api.get("/flavorprofiles", params={"sort": "name:desc"}).json()["flavorprofiles"]
    assert [r["name"] for r in rows] == ["c", "b", "a"]
    first = api.get("/flavorprofiles", params={"sort": "name", "limit": 2}).json()
    assert [r["name"] for r in first["flavorprofiles"]] == ["a", "b"]
    assert [link["rel"] for link in first["flavorprofile_links"]] == ["next"]
    rest = api.get("/flavorprofiles", params={"sort": "name", "limit": 2,
                                              "marker": b["id"]}).json()
    assert [r["name"] for r in rest["flavorprofiles"]] == ["c"]
    api.get("/flavorprofiles", params={"sort": "bogus"}, status=400)


def test_update_every_field(api: Api) -> None:
    fp = create_flavor_profile(api, name="test_profile")
    body = {"name": "the_profile", "provider_name": "haproxy", "flavor_data": TOPOLOGY}
    r = api.put(f"/flavorprofiles/{fp['id']}", {"flavorprofile": body}, status=200)
    assert r.json()["flavorprofile"] == {"id": fp["id"], **body}
    assert profile(api, fp["id"]) == {"id": fp["id"], **body}


def test_update_nothing_and_provider_only(api: Api) -> None:
    fp = create_flavor_profile(api, data=TOPOLOGY)
    api.put(f"/flavorprofiles/{fp['id']}", {"flavorprofile": {}}, status=200)
    assert profile(api, fp["id"]) == fp
    api.put(f"/flavorprofiles/{fp['id']}", {"flavorprofile": {"provider_name": "amphora"}},
            status=200)
    assert profile(api, fp["id"]) == {**fp, "provider_name": "amphora"}


@pytest.mark.parametrize("field", ["name", "provider_name", "flavor_data"])
def test_update_to_null_is_refused(api: Api, field: str) -> None:
    fp = create_flavor_profile(api)
    r = api.put(f"/flavorprofiles/{fp['id']}", {"flavorprofile": {field: None}}, status=400)
    assert api.fault(r) == f"None is not a valid option for {field}"
    assert profile(api, fp["id"]) == fp


def test_update_validates_data_and_provider(api: Api) -> None:
    fp = create_flavor_profile(api)
    path = f"/flavorprofiles/{fp['id']}"
    r = api.put(path, {"flavorprofile": {"flavor_data": "nope"}}, status=400)
    assert api.fault(r) == "nope is not a valid option for flavor_data"
    api.put(path, {"flavorprofile": {"flavor_data": '{"x": "y"}'}}, status=501)
    r = api.put(path, {"flavorprofile": {"provider_name": "bogus"}}, status=400)
    assert api.fault(r) == "Provider 'bogus' is not enabled."
    assert profile(api, fp["id"]) == fp


def test_update_unknown_is_404(api: Api) -> None:
    r = api.put(f"/flavorprofiles/{GHOST}", {"flavorprofile": {"name": "x"}}, status=404)
    assert api.fault(r) == f"Flavor Profile {GHOST} not found."


def test_profile_in_use_keeps_provider_and_data_but_may_be_renamed(api: Api) -> None:
    fp = create_flavor_profile(api, name="test_profile")
    create_flavor(api, fp["id"])
    path = f"/flavorprofiles/{fp['id']}"
    message = f"Flavor profile {fp['id']} is in use and cannot be modified."
    r = api.put(path, {"flavorprofile": {"name": "x", "provider_name": "haproxy"}}, status=409)
    assert api.fault(r) == message
    r = api.put(path, {"flavorprofile": {"flavor_data": TOPOLOGY}}, status=409)
    assert api.fault(r) == message
    assert profile(api, fp["id"]) == fp
    api.put(path, {"flavorprofile": {"name": "the_profile"}}, status=200)
    assert profile(api, fp["id"]) == {**fp, "name": "the_profile"}


def test_delete(api: Api) -> None:
    fp = create_flavor_profile(api)
    api.delete(f"/flavorprofiles/{fp['id']}", status=204)
    r = api.get(f"/flavorprofiles/{fp['id']}", status=404)
    assert api.fault(r) == f"Flavor Profile {fp['id']} not found."
    r = api.delete(f"/flavorprofiles/{fp['id']}", status=404)
    assert api.fault(r) == f"Flavor profile {fp['id']} not found."


def test_delete_in_use_is_409(api: Api) -> None:
    fp = create_flavor_profile(api)
    flavor = create_flavor(api, fp["id"])
    r = api.delete(f"/flavorprofiles/{fp['id']}", status=409)
    assert api.fault(r) == f"Flavor profile {fp['id']} is in use and cannot be modified."
    api.delete(f"/flavors/{flavor['id']}", status=204)
    api.delete(f"/flavorprofiles/{fp['id']}", status=204)


@pytest.mark.parametrize("roles", ["load-balancer_member", "member", "reader",
                                   "load-balancer_observer", "load-balancer_global_observer",
                                   "load-balancer_quota_admin"])
def test_only_admins_touch_profiles(api: Api, roles: str) -> None:
    fp = create_flavor_profile(api)
    who: dict[str, Any] = {"project": "p1", "roles": roles}
    body = {"name": "x", "provider_name": "noop", "flavor_data": "{}"}
    api.get("/flavorprofiles", status=403, **who)
    api.get(f"/flavorprofiles/{fp['id']}", status=403, **who)
    api.post("/flavorprofiles", {"flavorprofile": body}, status=403, **who)
    api.put(f"/flavorprofiles/{fp['id']}", {"flavorprofile": {"name": "x"}}, status=403, **who)
    api.delete(f"/flavorprofiles/{fp['id']}", status=403, **who)
    assert api.get("/flavorprofiles").json()["flavorprofiles"] == [fp]


@pytest.mark.parametrize("roles", ["admin"])
def test_admin_roles_manage_profiles(api: Api, roles: str) -> None:
    who: dict[str, Any] = {"project": "ops", "roles": roles}
    body = {"name": "x", "provider_name": "noop", "flavor_data": "{}"}
    fp = api.post("/flavorprofiles", {"flavorprofile": body}, status=201,
                  **who).json()["flavorprofile"]
    api.get("/flavorprofiles", status=200, **who)
    api.put(f"/flavorprofiles/{fp['id']}", {"flavorprofile": {"name": "y"}}, status=200, **who)
    api.delete(f"/flavorprofiles/{fp['id']}", status=204, **who)
