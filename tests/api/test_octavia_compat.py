"""What Octavia's clients and its tempest suite rely on beyond the api-ref's letter.

Each case is a difference found by running python-octaviaclient, openstacksdk
or octavia-tempest-plugin against lbaas (issue 14): numeric strings in
integer fields (wsme converts them), ``tenant_id`` beside ``project_id``,
``vip_sg_ids`` as ``[]``, member addresses echoed as sent, a health
monitor, L7 policy and L7 rule ONLINE once provisioned, and amphora profile keys.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.api.base import Api, create_az_profile, create_flavor_profile

# -- integers sent as strings ------------------------------------------------------


def test_integer_fields_take_numeric_strings(api: Api) -> None:
    lb = api.create_lb()
    # python-octaviaclient sends --connection-limit as a string
    li = api.create_listener(lb["id"], protocol_port="8080", connection_limit="1000",
                             timeout_client_data="+2000")
    assert (li["protocol_port"], li["connection_limit"], li["timeout_client_data"]) == \
        (8080, 1000, 2000)
    r = api.put(f"/listeners/{li['id']}", {"listener": {"connection_limit": "-1"}}, status=200)
    assert r.json()["listener"]["connection_limit"] == -1
    api.wait_idle()
    pool = api.create_pool(listener_id=li["id"])
    member = api.create_member(pool["id"], protocol_port="80", weight="7", monitor_port="81")
    assert (member["protocol_port"], member["weight"], member["monitor_port"]) == (80, 7, 81)
    hm = api.create_health_monitor(pool["id"], delay="5", timeout="3", max_retries="2")
    assert (hm["delay"], hm["timeout"], hm["max_retries"]) == (5, 3, 2)
    policy = api.create_l7policy(li["id"], position="1")
    assert policy["position"] == 1
    r = api.put("/quotas/p1", {"quota": {"listener": "12"}}, status=202)
    assert r.json()["quota"]["listener"] == 12


@pytest.mark.parametrize("value", ["80.0", "8o", "", " ", "0x50", True])
def test_integer_fields_refuse_other_strings(api: Api, lb: dict[str, object],
                                             value: object) -> None:
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": value}
    r = api.post("/listeners", {"listener": body}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute protocol_port.")
    assert api.get("/listeners").json()["listeners"] == []


def test_range_still_applies_to_numeric_strings(api: Api, lb: dict[str, object]) -> None:
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": "65536"}
    r = api.post("/listeners", {"listener": body}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute protocol_port.")


def test_string_fields_keep_digit_strings(api: Api) -> None:
    lb = api.create_lb(name="1234", description="42")
    assert (lb["name"], lb["description"]) == ("1234", "42")


# -- tenant_id, vip_sg_ids -----------------------------------------------------------

def test_tenant_id_beside_project_id_on_every_object(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    pool = api.create_pool(listener_id=li["id"], _project="p1")
    member = api.create_member(pool["id"], _project="p1")
    hm = api.create_health_monitor(pool["id"], _project="p1")
    policy = api.create_l7policy(li["id"], _project="p1")
    rule = api.create_l7rule(policy["id"], _project="p1")
    for obj in (lb, li, pool, member, hm, policy, rule):
        assert obj["tenant_id"] == obj["project_id"] == "p1"
    shown = api.get(f"/loadbalancers/{lb['id']}", project="p1").json()["loadbalancer"]
    assert shown["tenant_id"] == "p1"
    listed = api.get("/members", prefix=f"/v2/lbaas/pools/{pool['id']}", project="p1").json()
    assert [m["tenant_id"] for m in listed["members"]] == ["p1"]
    # fields= can pick it, as any other field
    r = api.get(f"/pools/{pool['id']}", params={"fields": "tenant_id"}, project="p1")
    assert r.json() == {"pool": {"tenant_id": "p1"}}


def test_tenant_id_in_a_fully_populated_answer(api: Api) -> None:
    body = {"name": "full", "listeners": [{"protocol": "HTTP", "protocol_port": 80,
                                           "default_pool": {
                                               "name": "pool", "protocol": "HTTP",
                                               "lb_algorithm": "ROUND_ROBIN",
                                               "members": [{"address": "127.0.0.9",
                                                            "protocol_port": 80}],
                                               "healthmonitor": {"type": "TCP", "delay": 3,
                                                                 "timeout": 2,
                                                                 "max_retries": 2}}}]}
    lb = api.post("/loadbalancers", {"loadbalancer": body}, status=201).json()["loadbalancer"]
    pool = lb["pools"][0]
    assert pool["tenant_id"] == pool["members"][0]["tenant_id"] == "admin"
    assert pool["healthmonitor"]["tenant_id"] == lb["tenant_id"] == "admin"
    api.wait_idle()


def test_quota_defaults_name_no_project(api: Api) -> None:
    quota = api.get("/quotas/defaults", status=200).json()["quota"]
    assert quota["project_id"] is None and quota["tenant_id"] is None


def test_vip_sg_ids_is_an_empty_list_when_unset(api: Api) -> None:
    lb = api.create_lb()
    assert lb["vip_sg_ids"] == []
    assert api.show("loadbalancers", "loadbalancer", lb["id"])["vip_sg_ids"] == []


# -- member addresses ----------------------------------------------------------------

def test_member_addresses_come_back_as_sent(api: Api, pool: dict[str, object]) -> None:
    member = api.create_member(pool["id"], address="2001:db8:0:0:0:0:0:1",
                               monitor_address="2001:DB8::2")
    assert member["address"] == "2001:db8:0:0:0:0:0:1"
    assert member["monitor_address"] == "2001:DB8::2"
    shown = api.show(f"pools/{pool['id']}/members", "member", member["id"])
    assert shown["address"] == "2001:db8:0:0:0:0:0:1"


def test_one_address_however_written_is_one_member(api: Api, pool: dict[str, object]) -> None:
    api.create_member(pool["id"], address="2001:db8:0:0:0:0:0:1", protocol_port=80)
    r = api.post(f"/pools/{pool['id']}/members",
                 {"member": {"address": "2001:db8::1", "protocol_port": 80}}, status=409)
    assert "2001:db8::1" in api.fault(r)
    # a batch update matches the existing member under either spelling
    r = api.put(f"/pools/{pool['id']}/members",
                {"members": [{"address": "2001:DB8::1", "protocol_port": 80, "weight": 3}]},
                status=202)
    api.wait_idle()
    members = api.get(f"/pools/{pool['id']}/members").json()["members"]
    assert [(m["address"], m["weight"]) for m in members] == [("2001:db8:0:0:0:0:0:1", 3)]


# -- health monitor operating status ------------------------------------------------

def test_health_monitor_online_once_provisioned(api: Api, pool: dict[str, object]) -> None:
    hm = api.create_health_monitor(pool["id"], wait=False)
    assert hm["operating_status"] == "OFFLINE"
    api.wait_idle()
    assert api.show("healthmonitors", "healthmonitor", hm["id"])["operating_status"] == "ONLINE"
    api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": {"admin_state_up": False}},
            status=200)
    api.wait_idle()
    shown = api.show("healthmonitors", "healthmonitor", hm["id"])
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "OFFLINE")
    api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": {"admin_state_up": True}},
            status=200)
    api.wait_idle()
    assert api.show("healthmonitors", "healthmonitor", hm["id"])["operating_status"] == "ONLINE"


def test_disabled_health_monitor_is_offline_once_provisioned(api: Api,
                                                              pool: dict[str, object]) -> None:
    hm = api.create_health_monitor(pool["id"], admin_state_up=False)
    assert api.show("healthmonitors", "healthmonitor", hm["id"])["operating_status"] == "OFFLINE"


@pytest.mark.parametrize("kind", ["l7policy", "l7rule"])
def test_l7_policy_and_rule_online_once_provisioned(api: Api, listener: dict[str, object],
                                                    kind: str) -> None:
    """Octavia's MarkL7PolicyActiveInDB / MarkL7RuleActiveInDB: ONLINE when enabled,
    OFFLINE when not, whatever the provider (octavia-tempest-plugin's L7 tests)."""
    policy = api.create_l7policy(listener["id"], wait=kind == "l7rule")
    obj = policy if kind == "l7policy" else api.create_l7rule(policy["id"], wait=False)
    path = (f"/l7policies/{policy['id']}" if kind == "l7policy"
            else f"/l7policies/{policy['id']}/rules/{obj['id']}")
    assert obj["operating_status"] == "OFFLINE"
    api.wait_idle()

    def shown() -> tuple[str, str]:
        got = api.get(path).json()[kind if kind == "l7policy" else "rule"]
        return got["provisioning_status"], got["operating_status"]

    assert shown() == ("ACTIVE", "ONLINE")
    api.put(path, {kind if kind == "l7policy" else "rule": {"admin_state_up": False}},
            status=200)
    api.wait_idle()
    assert shown() == ("ACTIVE", "OFFLINE")


# -- amphora profile keys -------------------------------------------------------------

AMPHORA_FLAVOR = {"loadbalancer_topology": "SINGLE", "compute_flavor": "m1.amphora",
                  "amp_image_tag": "amphora", "sriov_vip": False, "allow_member_sriov": False}
AMPHORA_ZONE = {"compute_zone": "nova", "volume_zone": "cinder-az",
                "management_network": "5e5b5d4e-0000-4000-8000-000000000001"}


@pytest.mark.parametrize("provider", ["haproxy", "amphora", "noop"])
def test_amphora_flavor_keys_are_stored_and_logged_as_ignored(
        api: Api, provider: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lbaas.drivers.profiles"):
        profile = create_flavor_profile(api, provider=provider, data=json.dumps(AMPHORA_FLAVOR))
    assert json.loads(profile["flavor_data"]) == AMPHORA_FLAVOR
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "amp_image_tag, compute_flavor accepted and ignored" in warning
    flavor = api.post("/flavors", {"flavor": {"name": "amp", "flavor_profile_id": profile["id"]}},
                      status=201).json()["flavor"]
    lb = api.create_lb(flavor_id=flavor["id"], provider=provider)
    assert lb["flavor_id"] == flavor["id"]


@pytest.mark.parametrize("provider", ["haproxy", "noop"])
def test_amphora_zone_keys_are_stored_and_logged_as_ignored(
        api: Api, provider: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lbaas.drivers.profiles"):
        profile = create_az_profile(api, provider=provider, data=json.dumps(AMPHORA_ZONE))
    assert json.loads(profile["availability_zone_data"]) == AMPHORA_ZONE
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "compute_zone, management_network, volume_zone accepted and ignored" in warning


@pytest.mark.parametrize(("path", "key", "field", "data", "refusal"), [
    ("/flavorprofiles", "flavorprofile", "flavor_data", {"sriov_vip": True},
     "SR-IOV VIP ports (sriov_vip)"),
    ("/flavorprofiles", "flavorprofile", "flavor_data",
     {"allow_member_sriov": True, "compute_flavor": "x"}, "SR-IOV member ports"),
    ("/flavorprofiles", "flavorprofile", "flavor_data", {"nova_flavor": "x"},
     "unknown flavor keys: nova_flavor"),
    ("/availabilityzoneprofiles", "availability_zone_profile", "availability_zone_data",
     {"valid_vip_networks": ["5e5b5d4e-0000-4000-8000-000000000001"]},
     "VIP network restrictions per availability zone (valid_vip_networks)"),
])
def test_amphora_keys_that_change_behaviour_are_501(api: Api, path: str, key: str, field: str,
                                                    data: dict[str, object],
                                                    refusal: str) -> None:
    body = {"name": "p", "provider_name": "haproxy", field: json.dumps(data)}
    r = api.post(path, {key: body}, status=501)
    assert refusal in api.fault(r)
    assert api.get(path).json()[f"{key}s"] == []


def test_noop_accepts_either_topology(api: Api) -> None:
    # (the haproxy provider's 501 for ACTIVE_STANDBY: tests/unit/drivers/test_profiles.py)
    for topology in ("SINGLE", "ACTIVE_STANDBY"):
        create_flavor_profile(api, provider="noop",
                              data=json.dumps({"loadbalancer_topology": topology}))
