"""Availability zone profiles: /v2/lbaas/availabilityzoneprofiles (after
Octavia's test_availability_zone_profiles.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api.base import GHOST, Api, create_az, create_az_profile

PATH = "/availabilityzoneprofiles"
KEY = "availability_zone_profile"


def profile(api: Api, profile_id: str) -> dict[str, Any]:
    return dict(api.get(f"{PATH}/{profile_id}", status=200).json()[KEY])


def test_empty_list(api: Api) -> None:
    assert api.get(PATH, status=200).json() == {
        "availability_zone_profiles": [], "availability_zone_profile_links": []}


def test_create_returns_what_was_sent(api: Api) -> None:
    body = {"name": "azp", "provider_name": "noop", "availability_zone_data": "{}"}
    azp = api.post(PATH, {KEY: body}, status=201).json()[KEY]
    assert set(azp) == {"id", "name", "provider_name", "availability_zone_data"}
    assert str(uuid.UUID(azp["id"])) == azp["id"]
    assert {k: azp[k] for k in body} == body
    assert profile(api, azp["id"]) == azp
    assert create_az_profile(api, provider="amphora")["provider_name"] == "amphora"


@pytest.mark.parametrize("missing", ["name", "provider_name", "availability_zone_data"])
def test_create_requires_every_field(api: Api, missing: str) -> None:
    body = {"name": "azp", "provider_name": "noop", "availability_zone_data": "{}"}
    del body[missing]
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r) == (f"Invalid input for field/attribute {missing}. Value: 'None'. "
                            "Mandatory field missing.")


@pytest.mark.parametrize(("field", "value"), [
    ("name", "n" * 256), ("provider_name", "p" * 256), ("availability_zone_data", "x" * 4097),
    ("provider_name", ["noop"]), ("availability_zone_data", {}),
])
def test_create_refuses_bad_fields_naming_them(api: Api, field: str, value: Any) -> None:
    body = {"name": "azp", "provider_name": "noop", "availability_zone_data": "{}",
            field: value}
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert api.get(PATH).json()["availability_zone_profiles"] == []


@pytest.mark.parametrize("data", ["{bad json", "[]", "42"])
def test_data_must_be_a_json_object(api: Api, data: str) -> None:
    body = {"name": "azp", "provider_name": "noop", "availability_zone_data": data}
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r) == f"{data} is not a valid option for availability_zone_data"


def test_provider_must_be_enabled_and_accept_the_data(api: Api) -> None:
    body = {"name": "azp", "provider_name": "bogus", "availability_zone_data": "{}"}
    r = api.post(PATH, {KEY: body}, status=400)
    assert api.fault(r) == "Provider 'bogus' is not enabled."
    body = {**body, "provider_name": "noop", "availability_zone_data": '{"nova_zone": "a"}'}
    r = api.post(PATH, {KEY: body}, status=501)
    assert api.fault(r) == ("Provider 'noop' does not support a requested option: "
                            "unknown availability zone keys: nova_zone")
    assert api.get(PATH).json()["availability_zone_profiles"] == []


def test_show_unknown_is_404_and_fields_select(api: Api) -> None:
    r = api.get(f"{PATH}/{GHOST}", status=404)
    assert api.fault(r) == f"Availability Zone Profile {GHOST} not found."
    azp = create_az_profile(api)
    r = api.get(f"{PATH}/{azp['id']}", params={"fields": "name"}, status=200)
    assert r.json() == {KEY: {"name": "azp"}}


def test_list_fields_filters_sort_and_pages(api: Api) -> None:
    a = create_az_profile(api, name="a")
    b = create_az_profile(api, name="b", provider="haproxy")
    rows = api.get(PATH, params={"sort": "name:desc", "fields": "id"}).json()
    assert rows["availability_zone_profiles"] == [{"id": b["id"]}, {"id": a["id"]}]
    rows = api.get(PATH, params={"provider_name": "noop"}).json()
    assert rows["availability_zone_profiles"] == [a]
    first = api.get(PATH, params={"sort": "name", "limit": 1}).json()
    assert first["availability_zone_profiles"] == [a]
    assert [link["rel"] for link in first["availability_zone_profile_links"]] == ["next"]
    rest = api.get(PATH, params={"sort": "name", "limit": 1, "marker": a["id"]}).json()
    assert rest["availability_zone_profiles"] == [b]
    api.get(PATH, params={"marker": GHOST}, status=400)


def test_update(api: Api) -> None:
    azp = create_az_profile(api)
    body = {"name": "renamed", "provider_name": "haproxy", "availability_zone_data": " {} "}
    r = api.put(f"{PATH}/{azp['id']}", {KEY: body}, status=200)
    assert r.json()[KEY] == {"id": azp["id"], **body}
    assert profile(api, azp["id"]) == {"id": azp["id"], **body}
    api.put(f"{PATH}/{azp['id']}", {KEY: {}}, status=200)
    assert profile(api, azp["id"]) == {"id": azp["id"], **body}


@pytest.mark.parametrize("field", ["name", "provider_name", "availability_zone_data"])
def test_update_to_null_is_refused(api: Api, field: str) -> None:
    azp = create_az_profile(api)
    r = api.put(f"{PATH}/{azp['id']}", {KEY: {field: None}}, status=400)
    assert api.fault(r) == f"None is not a valid option for {field}"


def test_update_validates_data_and_provider(api: Api) -> None:
    azp = create_az_profile(api)
    path = f"{PATH}/{azp['id']}"
    api.put(path, {KEY: {"availability_zone_data": "nope"}}, status=400)
    api.put(path, {KEY: {"availability_zone_data": '{"zone": "a"}'}}, status=501)
    api.put(path, {KEY: {"provider_name": "octavia"}}, status=400)
    assert profile(api, azp["id"]) == azp
    r = api.put(f"{PATH}/{GHOST}", {KEY: {"name": "x"}}, status=404)
    assert api.fault(r) == f"Availability Zone Profile {GHOST} not found."


def test_profile_in_use_keeps_provider_and_data_but_may_be_renamed(api: Api) -> None:
    azp = create_az_profile(api)
    create_az(api, profile_id=azp["id"])
    path = f"{PATH}/{azp['id']}"
    message = f"Availability Zone Profile {azp['id']} is in use and cannot be modified."
    r = api.put(path, {KEY: {"provider_name": "haproxy"}}, status=409)
    assert api.fault(r) == message
    r = api.put(path, {KEY: {"availability_zone_data": "{}"}}, status=409)
    assert api.fault(r) == message
    api.put(path, {KEY: {"name": "renamed"}}, status=200)
    assert profile(api, azp["id"]) == {**azp, "name": "renamed"}


def test_delete(api: Api) -> None:
    azp = create_az_profile(api)
    zone = create_az(api, profile_id=azp["id"])
    r = api.delete(f"{PATH}/{azp['id']}", status=409)
    assert api.fault(r) == (f"Availability Zone Profile {azp['id']} is in use and cannot be "
                            "modified.")
    api.delete(f"/availabilityzones/{zone['name']}", status=204)
    api.delete(f"{PATH}/{azp['id']}", status=204)
    api.get(f"{PATH}/{azp['id']}", status=404)
    r = api.delete(f"{PATH}/{azp['id']}", status=404)
    assert api.fault(r) == f"Availability Zone Profile {azp['id']} not found."


@pytest.mark.parametrize("roles", ["load-balancer_member", "member", "reader",
                                   "load-balancer_global_observer"])
def test_only_admins_touch_profiles(api: Api, roles: str) -> None:
    azp = create_az_profile(api)
    who: dict[str, Any] = {"project": "p1", "roles": roles}
    body = {"name": "x", "provider_name": "noop", "availability_zone_data": "{}"}
    api.get(PATH, status=403, **who)
    api.get(f"{PATH}/{azp['id']}", status=403, **who)
    api.post(PATH, {KEY: body}, status=403, **who)
    api.put(f"{PATH}/{azp['id']}", {KEY: {"name": "x"}}, status=403, **who)
    api.delete(f"{PATH}/{azp['id']}", status=403, **who)
    assert api.get(PATH).json()["availability_zone_profiles"] == [azp]


@pytest.mark.parametrize("roles", ["admin"])
def test_admin_roles_manage_profiles(api: Api, roles: str) -> None:
    who: dict[str, Any] = {"project": "ops", "roles": roles}
    body = {"name": "x", "provider_name": "noop", "availability_zone_data": "{}"}
    azp = api.post(PATH, {KEY: body}, status=201, **who).json()[KEY]
    api.get(PATH, status=200, **who)
    api.put(f"{PATH}/{azp['id']}", {KEY: {"name": "y"}}, status=200, **who)
    api.delete(f"{PATH}/{azp['id']}", status=204, **who)
