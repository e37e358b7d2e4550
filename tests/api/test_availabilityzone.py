"""Availability zones: /v2/lbaas/availabilityzones (after Octavia's
test_availability_zones.py), and load balancers created in a zone.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.base import GHOST, Api, create_az, create_az_profile

PATH = "/availabilityzones"
KEY = "availability_zone"


@pytest.fixture
def azp(api: Api) -> dict[str, Any]:
    return create_az_profile(api)


def zone(api: Api, name: str, **kw: Any) -> dict[str, Any]:
    return dict(api.get(f"{PATH}/{name}", status=200, **kw).json()[KEY])


def test_empty_list(api: Api) -> None:
    assert api.get(PATH, status=200).json() == {"availability_zones": [],
                                                "availability_zones_links": []}


def test_create_and_show(api: Api, azp: dict[str, Any]) -> None:
    body = {"name": "zone-a", "description": "The first zone",
            "availability_zone_profile_id": azp["id"]}
    created = api.post(PATH, {KEY: body}, status=201).json()[KEY]
    assert created == {**body, "enabled": True}
    assert zone(api, "zone-a") == created
    plain = create_az(api, "zone-b", azp["id"], enabled=False)
    assert plain["description"] == "" and plain["enabled"] is False


@pytest.mark.parametrize(("body", "message"), [
    ({"availability_zone_profile_id": GHOST},
     "Invalid input for field/attribute name. Value: 'None'. Mandatory field missing."),
    ({"name": "z"}, "Invalid input for field/attribute availability_zone_profile_id. "
                    "Value: 'None'. Mandatory field missing."),
    ({"name": "z", "availability_zone_profile_id": "bogus"},
     "Invalid input for field/attribute availability_zone_profile_id. Value: 'bogus'. "
     "Value should be UUID format."),
])
def test_create_requires_name_and_profile(api: Api, body: dict[str, Any], message: str) -> None:
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r) == message


@pytest.mark.parametrize(("field", "value"), [
    ("name", "n" * 256), ("description", "d" * 256), ("enabled", 1), ("name", 3),
])
def test_create_refuses_bad_fields_naming_them(api: Api, azp: dict[str, Any], field: str,
                                               value: Any) -> None:
    body = {"name": "z", "availability_zone_profile_id": azp["id"], field: value}
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert api.get(PATH).json()["availability_zones"] == []


def test_create_with_unknown_profile_is_400(api: Api) -> None:
    body = {"name": "z", "availability_zone_profile_id": GHOST}
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r) == f"Availability zone profile {GHOST} not found."


def test_names_are_unique(api: Api, azp: dict[str, Any]) -> None:
    create_az(api, "name", azp["id"])
    body = {"name": "name", "availability_zone_profile_id": azp["id"]}
    r = api.post(PATH, {KEY: body}, status=409)
    assert api.fault(r) == "A availability zone of name already exists."


def test_show_unknown_is_404_and_fields_select(api: Api, azp: dict[str, Any]) -> None:
    r = api.get(f"{PATH}/bogus_name", status=404)
    assert api.fault(r) == "Availability Zone bogus_name not found."
    create_az(api, "z", azp["id"])
    r = api.get(f"{PATH}/z", params={"fields": "name,enabled"}, status=200)
    assert r.json() == {KEY: {"name": "z", "enabled": True}}


def test_list_orders_by_name_filters_and_pages(api: Api, azp: dict[str, Any]) -> None:
    for name in ("b", "c", "a"):
        create_az(api, name, azp["id"], enabled=name != "c")
    rows = api.get(PATH, params={"fields": "name"}).json()["availability_zones"]
    assert rows == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    rows = api.get(PATH, params={"sort": "name:desc"}).json()["availability_zones"]
    assert [z["name"] for z in rows] == ["c", "b", "a"]
    rows = api.get(PATH, params={"enabled": "false"}).json()["availability_zones"]
    assert [z["name"] for z in rows] == ["c"]
    first = api.get(PATH, params={"limit": 2}).json()
    assert [z["name"] for z in first["availability_zones"]] == ["a", "b"]
    assert [link["rel"] for link in first["availability_zones_links"]] == ["next"]
    rest = api.get(PATH, params={"limit": 2, "marker": "b"}).json()
    assert [z["name"] for z in rest["availability_zones"]] == ["c"]
    back = api.get(PATH, params={"limit": 2, "marker": "c", "page_reverse": "true"}).json()
    assert [z["name"] for z in back["availability_zones"]] == ["a", "b"]
    api.get(PATH, params={"marker": "nope"}, status=400)


def test_update(api: Api, azp: dict[str, Any]) -> None:
    z = create_az(api, "z", azp["id"], description="old")
    body = {"description": "new", "enabled": False}
    r = api.put(f"{PATH}/z", {KEY: body}, status=200)
    assert r.json()[KEY] == {**z, **body}
    api.put(f"{PATH}/z", {KEY: {}}, status=200)
    assert zone(api, "z") == {**z, **body}
    api.put(f"{PATH}/z", {KEY: {"description": None}}, status=200)
    assert zone(api, "z")["description"] == ""


@pytest.mark.parametrize(("body", "status"), [
    ({"enabled": None}, 400), ({"name": "other"}, 400),
    ({"availability_zone_profile_id": GHOST}, 400), ({"description": "d" * 256}, 400),
])
def test_update_refuses_what_cannot_change(api: Api, azp: dict[str, Any],
                                           body: dict[str, Any], status: int) -> None:
    z = create_az(api, "z", azp["id"])
    api.put(f"{PATH}/z", {KEY: body}, status=status)
    assert zone(api, "z") == z


def test_update_unknown_is_404(api: Api) -> None:
    r = api.put(f"{PATH}/ghost", {KEY: {"enabled": False}}, status=404)
    assert api.fault(r) == "Availability Zone ghost not found."


def test_delete(api: Api, azp: dict[str, Any]) -> None:
    create_az(api, "z", azp["id"])
    api.delete(f"{PATH}/z", status=204)
    r = api.get(f"{PATH}/z", status=404)
    assert api.fault(r) == "Availability Zone z not found."
    r = api.delete(f"{PATH}/z", status=404)
    assert api.fault(r) == "Availability Zone z not found."


def test_zone_of_a_load_balancer_cannot_be_deleted(api: Api, azp: dict[str, Any]) -> None:
    create_az(api, "z", azp["id"])
    lb = api.create_lb(availability_zone="z", _project="p1")
    r = api.delete(f"{PATH}/z", status=409)
    assert api.fault(r) == "Availability Zone z is in use and cannot be modified."
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    api.delete(f"{PATH}/z", status=204)


@pytest.mark.parametrize("roles", ["member", "reader"])
def test_everyone_reads_only_admins_write(api: Api, azp: dict[str, Any], roles: str) -> None:
    z = create_az(api, "z", azp["id"])
    who: dict[str, Any] = {"project": "p1", "roles": roles}
    assert api.get(PATH, status=200, **who).json()["availability_zones"] == [z]
    assert zone(api, "z", **who) == z
    body = {"name": "mine", "availability_zone_profile_id": azp["id"]}
    api.post(PATH, {KEY: body}, status=403, **who)
    api.put(f"{PATH}/z", {KEY: {"enabled": False}}, status=403, **who)
    api.delete(f"{PATH}/z", status=403, **who)
    assert zone(api, "z") == z
    api.get(PATH, project="p1", roles="nothing", status=403)


@pytest.mark.parametrize("roles", ["admin"])
def test_admin_roles_manage_zones(api: Api, azp: dict[str, Any], roles: str) -> None:
    who: dict[str, Any] = {"project": "ops", "roles": roles}
    body = {"name": "z", "availability_zone_profile_id": azp["id"]}
    api.post(PATH, {KEY: body}, status=201, **who)
    api.put(f"{PATH}/z", {KEY: {"enabled": False}}, status=200, **who)
    api.delete(f"{PATH}/z", status=204, **who)


# -- load balancers in a zone -------------------------------------------------------

def test_load_balancer_in_a_zone(api: Api, azp: dict[str, Any]) -> None:
    create_az(api, "z", azp["id"])
    lb = api.create_lb(availability_zone="z", _project="p1")
    assert lb["availability_zone"] == "z"
    assert api.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"][
        "availability_zone"] == "z"


def test_load_balancer_in_a_disabled_zone_is_refused(api: Api, azp: dict[str, Any]) -> None:
    create_az(api, "z", azp["id"], enabled=False)
    r = api.post("/loadbalancers", {"loadbalancer": {"availability_zone": "z"}}, project="p1",
                 status=400)
    assert api.fault(r) == "The selected availability_zone is not allowed in this deployment: z"
    api.put(f"{PATH}/z", {KEY: {"enabled": True}}, status=200)
    api.create_lb(availability_zone="z", _project="p1")


def test_load_balancer_in_an_unknown_zone_is_refused(api: Api) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {"availability_zone": "nowhere"}},
                 status=400)
    assert api.fault(r) == "nowhere is not a valid option for availability_zone"
    assert api.get("/loadbalancers").json()["loadbalancers"] == []
