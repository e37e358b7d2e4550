"""Subnets: /v2.0/subnets (Neutron's shapes and address rules, lbaas's error body)."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.db import ipam
from tests.api.base import GHOST, Api, create_network, create_subnet

PATH = "/v2.0/subnets"
SUBNET_FIELDS = {"id", "name", "description", "network_id", "project_id", "tenant_id",
                 "ip_version", "cidr", "gateway_ip", "allocation_pools", "enable_dhcp",
                 "dns_nameservers", "host_routes", "created_at", "updated_at"}
MEMBER = {"project": "p1", "roles": "member"}
OTHER = {"project": "p2", "roles": "member"}


@pytest.fixture
def net(api: Api) -> dict[str, Any]:
    return create_network(api, project_id="p1")


def subnets(api: Api, **kw: Any) -> list[dict[str, Any]]:
    return list(api.get(PATH, status=200, **kw).json()["subnets"])


def subnet_of(api: Api, subnet_id: str) -> dict[str, Any]:
    return dict(api.get(f"{PATH}/{subnet_id}", status=200).json()["subnet"])


def refused(api: Api, body: dict[str, Any]) -> str:
    """POST ``body`` expecting a 400; its faultstring."""
    return api.fault(api.post(PATH, {"subnet": body}, status=400))


def pools(*ranges: tuple[str, str]) -> list[dict[str, str]]:
    return [{"start": a, "end": b} for a, b in ranges]


# -- create ---------------------------------------------------------------------

def test_default_subnet_is_listed_for_everyone_and_used_by_default(api: Api) -> None:
    rows = subnets(api, **MEMBER)
    assert [s["name"] for s in rows] == [ipam.DEFAULT_SUBNET_NAME]
    default = rows[0]
    assert set(default) == SUBNET_FIELDS
    assert default["cidr"] == "127.1.0.0/16" and default["project_id"] is None
    assert default["allocation_pools"] == pools(("127.1.0.1", "127.1.255.254"))
    assert subnets(api, **OTHER) == rows == subnets(api)
    lb = api.create_lb(_project="p2")
    assert lb["vip_subnet_id"] == default["id"]


def test_create_fills_in_neutrons_defaults(api: Api, net: dict[str, Any]) -> None:
    body = {"network_id": net["id"], "cidr": "10.20.0.0/24"}
    sn = api.post(PATH, {"subnet": body}, status=201).json()["subnet"]
    assert set(sn) == SUBNET_FIELDS
    assert sn["ip_version"] == 4 and sn["gateway_ip"] == "10.20.0.1"
    assert sn["allocation_pools"] == pools(("10.20.0.2", "10.20.0.254"))
    assert sn["project_id"] == sn["tenant_id"] == "p1"  # the network's
    assert (sn["name"], sn["description"]) == ("", "")
    assert sn["enable_dhcp"] is False
    assert sn["dns_nameservers"] == [] and sn["host_routes"] == []
    assert subnet_of(api, sn["id"]) == sn
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["subnets"] == [sn["id"]]


def test_create_with_every_field(api: Api, net: dict[str, Any]) -> None:
    body = {"network_id": net["id"], "cidr": "10.20.0.0/24", "ip_version": 4, "name": "sn",
            "description": "d", "gateway_ip": "10.20.0.254",
            "allocation_pools": pools(("10.20.0.10", "10.20.0.19"), ("10.20.0.100",
                                                                      "10.20.0.100")),
            "enable_dhcp": True, "dns_nameservers": ["10.20.0.53"],
            "host_routes": [{"destination": "10.30.0.0/16", "nexthop": "10.20.0.254"}],
            "project_id": "p9"}
    sn = api.post(PATH, {"subnet": body}, status=201).json()["subnet"]
    assert {k: sn[k] for k in body} == body
    assert sn["tenant_id"] == "p9"


def test_gateway_in_the_middle_splits_the_default_pool(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/24", gateway_ip="10.20.0.100")
    assert sn["allocation_pools"] == pools(("10.20.0.1", "10.20.0.99"),
                                           ("10.20.0.101", "10.20.0.254"))


def test_no_gateway_leaves_every_host_to_the_pool(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/29", gateway_ip=None)
    assert sn["gateway_ip"] is None
    assert sn["allocation_pools"] == pools(("10.20.0.1", "10.20.0.6"))


def test_ipv6_subnet(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "2001:db8::/64")
    assert sn["ip_version"] == 6 and sn["gateway_ip"] == "2001:db8::1"
    assert sn["allocation_pools"] == pools(("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff"))
    again = create_subnet(api, create_network(api)["id"], "2001:DB8:0:1::/64", ip_version=6)
    assert again["cidr"] == "2001:db8:0:1::/64"


def test_overlapping_cidrs_only_on_different_networks(api: Api, net: dict[str, Any]) -> None:
    create_subnet(api, net["id"], "10.20.0.0/24")
    message = refused(api, {"network_id": net["id"], "cidr": "10.20.0.128/25"})
    assert message == ("Invalid input for field/attribute cidr. Value: '10.20.0.128/25'. "
                       f"Requested subnet with cidr: 10.20.0.128/25 for network: {net['id']} "
                       "overlaps with another subnet.")
    create_subnet(api, net["id"], "10.21.0.0/24")
    create_subnet(api, create_network(api)["id"], "10.20.0.0/24")


@pytest.mark.parametrize(("cidr", "detail"), [
    ("10.20.0.1/24", "'10.20.0.1/24' isn't a recognized IP subnet cidr, '10.20.0.0/24' is "
                     "recommended."),
    ("10.20.0.0", "'10.20.0.0' isn't a recognized IP subnet cidr, '10.20.0.0/32' is "
                  "recommended."),
    ("10.20.0.0/33", "'10.20.0.0/33' is not a valid IP subnet."),
    ("nope", "'nope' is not a valid IP subnet."),
    ("2001:db8::1/64", "'2001:db8::1/64' isn't a recognized IP subnet cidr, '2001:db8::/64' is "
                       "recommended."),
])
def test_cidr_must_be_a_network(api: Api, net: dict[str, Any], cidr: str, detail: str) -> None:
    message = refused(api, {"network_id": net["id"], "cidr": cidr})
    assert message == f"Invalid input for field/attribute cidr. Value: '{cidr}'. {detail}"


@pytest.mark.parametrize(("changes", "field"), [
    ({"ip_version": 6}, "ip_version"),
    ({"ip_version": 5}, "ip_version"),
    ({"ip_version": "four"}, "ip_version"),
    ({"gateway_ip": "10.21.0.1"}, "gateway_ip"),
    ({"gateway_ip": "2001:db8::1"}, "gateway_ip"),
    ({"gateway_ip": "10.20.0.0"}, "gateway_ip"),
    ({"gateway_ip": "10.20.0.255"}, "gateway_ip"),
    ({"gateway_ip": "10.20.0.300"}, "gateway_ip"),
    ({"network_id": "net-1"}, "network_id"),
    ({"name": "n" * 256}, "name"),
    ({"description": "d" * 256}, "description"),
    ({"enable_dhcp": "yes"}, "enable_dhcp"),
    ({"dns_nameservers": ["dns.example"]}, "dns_nameservers"),
    ({"host_routes": [{"destination": "10.30.0.0/16"}]}, "nexthop"),
    ({"host_routes": [{"destination": "x", "nexthop": "10.20.0.1"}]}, "destination"),
    ({"allocation_pools": [{"start": "10.20.0.5"}]}, "end"),
    ({"allocation_pools": [{"start": "10.20.0.5", "end": "x"}]}, "end"),
    ({"project_id": "p" * 37}, "project_id"),
])
def test_create_refuses_bad_fields_naming_them(api: Api, net: dict[str, Any],
                                               changes: dict[str, Any], field: str) -> None:
    message = refused(api, {"network_id": net["id"], "cidr": "10.20.0.0/24", **changes})
    assert message.startswith(f"Invalid input for field/attribute {field}.")
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["subnets"] == []


@pytest.mark.parametrize("missing", ["network_id", "cidr"])
def test_network_and_cidr_are_mandatory(api: Api, net: dict[str, Any], missing: str) -> None:
    body = {"network_id": net["id"], "cidr": "10.20.0.0/24"}
    del body[missing]
    assert refused(api, body) == (f"Invalid input for field/attribute {missing}. "
                                  "Value: 'None'. Mandatory field missing.")


def test_unknown_attribute_and_unknown_network(api: Api, net: dict[str, Any]) -> None:
    body = {"network_id": net["id"], "cidr": "10.20.0.0/24", "subnetpool_id": GHOST}
    assert refused(api, body) == "Unknown attribute for argument subnet: subnetpool_id"
    r = api.post(PATH, {"subnet": {"network_id": GHOST, "cidr": "10.20.0.0/24"}}, status=404)
    assert api.fault(r) == f"Network {GHOST} not found."


@pytest.mark.parametrize(("body", "detail"), [
    ({"allocation_pools": pools(("10.20.0.9", "10.20.0.5"))},
     "The allocation pool 10.20.0.9-10.20.0.5 is not valid."),
    ({"allocation_pools": pools(("2001:db8::2", "2001:db8::9"))},
     "The allocation pool 2001:db8::2-2001:db8::9 is not valid."),
    ({"allocation_pools": pools(("10.20.0.200", "10.20.1.10"))},
     "The allocation pool 10.20.0.200-10.20.1.10 spans beyond the subnet cidr 10.20.0.0/24."),
    ({"allocation_pools": pools(("10.20.0.0", "10.20.0.10"))},
     "The allocation pool 10.20.0.0-10.20.0.10 spans beyond the subnet cidr 10.20.0.0/24."),
    ({"allocation_pools": pools(("10.20.0.250", "10.20.0.255"))},
     "The allocation pool 10.20.0.250-10.20.0.255 spans beyond the subnet cidr 10.20.0.0/24."),
    ({"allocation_pools": pools(("10.20.0.20", "10.20.0.30"), ("10.20.0.2", "10.20.0.20"))},
     "Found overlapping allocation pools: 10.20.0.2-10.20.0.20 10.20.0.20-10.20.0.30 for "
     "subnet 10.20.0.0/24."),
    ({"allocation_pools": pools(("10.20.0.1", "10.20.0.10"))},
     "Gateway ip 10.20.0.1 conflicts with allocation pool 10.20.0.1-10.20.0.10."),
    ({"gateway_ip": "10.20.0.50", "allocation_pools": pools(("10.20.0.40", "10.20.0.60"))},
     "Gateway ip 10.20.0.50 conflicts with allocation pool 10.20.0.40-10.20.0.60."),
])
def test_allocation_pools_follow_neutrons_rules(api: Api, net: dict[str, Any],
                                                body: dict[str, Any], detail: str) -> None:
    message = refused(api, {"network_id": net["id"], "cidr": "10.20.0.0/24", **body})
    assert message.startswith("Invalid input for field/attribute allocation_pools.")
    assert message.endswith(detail)


def test_gateway_rules_in_neutrons_words(api: Api, net: dict[str, Any]) -> None:
    message = refused(api, {"network_id": net["id"], "cidr": "10.20.0.0/24",
                            "gateway_ip": "10.20.0.255"})
    assert message == ("Invalid input for field/attribute gateway_ip. Value: '10.20.0.255'. "
                       "Gateway is not valid on subnet.")
    message = refused(api, {"network_id": net["id"], "cidr": "10.20.0.0/24",
                            "gateway_ip": "10.9.0.1"})
    assert message.endswith("Gateway IP 10.9.0.1 is outside subnet 10.20.0.0/24.")


@pytest.mark.parametrize("roles", ["member", "load-balancer_member", "reader",
                                   "load-balancer_global_observer"])
def test_only_admins_write_subnets(api: Api, net: dict[str, Any], roles: str) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/24")
    who: dict[str, Any] = {"project": "p1", "roles": roles}
    body = {"network_id": net["id"], "cidr": "10.21.0.0/24"}
    r = api.post(PATH, {"subnet": body}, status=403, **who)
    assert api.fault(r) == "Policy does not allow this request to be performed."
    api.put(f"{PATH}/{sn['id']}", {"subnet": {"name": "x"}}, status=403, **who)
    api.delete(f"{PATH}/{sn['id']}", status=403, **who)
    assert subnet_of(api, sn["id"]) == sn


# -- read ---------------------------------------------------------------------------

def test_projects_see_subnets_of_the_networks_they_see(api: Api, net: dict[str, Any]) -> None:
    private = create_subnet(api, net["id"], "10.20.0.0/24", name="private")
    shared_net = create_network(api, project_id="p1", shared=True)
    shared = create_subnet(api, shared_net["id"], "10.21.0.0/24", name="shared")
    admins = create_subnet(api, create_network(api)["id"], "10.22.0.0/24", name="admins")
    names = {ipam.DEFAULT_SUBNET_NAME, "shared"}
    assert {s["name"] for s in subnets(api, **MEMBER)} == names | {"private"}
    assert {s["name"] for s in subnets(api, **OTHER)} == names
    assert len(subnets(api)) == 4
    assert subnet_of(api, shared["id"]) == api.get(f"{PATH}/{shared['id']}",
                                                   **OTHER).json()["subnet"]
    api.get(f"{PATH}/{private['id']}", status=200, **MEMBER)
    for hidden in (private, admins):
        r = api.get(f"{PATH}/{hidden['id']}", status=404, **OTHER)
        assert api.fault(r) == f"Subnet {hidden['id']} not found."
        api.put(f"{PATH}/{hidden['id']}", {"subnet": {"name": "x"}}, status=404, **OTHER)
        api.delete(f"{PATH}/{hidden['id']}", status=404, **OTHER)
    api.get(PATH, project="p1", roles="nothing", status=403)


def test_subnet_of_a_project_on_an_admin_network_is_theirs(api: Api) -> None:
    admin_net = create_network(api)
    sn = create_subnet(api, admin_net["id"], "10.20.0.0/24", project_id="p2")
    assert [s["id"] for s in subnets(api, **OTHER) if s["id"] == sn["id"]] == [sn["id"]]
    api.get(f"{PATH}/{sn['id']}", status=404, **MEMBER)


def test_show_unknown_is_404_and_fields_select(api: Api, net: dict[str, Any]) -> None:
    r = api.get(f"{PATH}/{GHOST}", status=404)
    assert api.fault(r) == f"Subnet {GHOST} not found."
    sn = create_subnet(api, net["id"], "10.20.0.0/24")
    r = api.get(f"{PATH}/{sn['id']}", params={"fields": ["cidr", "gateway_ip"]}, status=200)
    assert r.json() == {"subnet": {"cidr": "10.20.0.0/24", "gateway_ip": "10.20.0.1"}}


def test_list_filters_sort_fields_and_pages(api: Api, net: dict[str, Any]) -> None:
    a = create_subnet(api, net["id"], "10.20.0.0/24", name="a")
    b = create_subnet(api, net["id"], "2001:db8::/64", name="b")
    c = create_subnet(api, create_network(api)["id"], "10.21.0.0/24", name="c")
    rows = subnets(api, params={"network_id": net["id"], "fields": "name", "sort": "name"})
    assert rows == [{"name": "a"}, {"name": "b"}]
    assert [s["id"] for s in subnets(api, params={"ip_version": "6"})] == [b["id"]]
    assert [s["id"] for s in subnets(api, params={"cidr": "10.21.0.0/24"})] == [c["id"]]
    assert [s["id"] for s in subnets(api, params={"tenant_id": "p1", "sort": "name:desc"})] \
        == [b["id"], a["id"]]
    first = api.get(PATH, params={"sort": "name", "limit": 2}).json()
    assert [s["name"] for s in first["subnets"]] == ["a", "b"]
    assert [link["rel"] for link in first["subnets_links"]] == ["next"]
    rest = api.get(PATH, params={"sort": "name", "limit": 2, "marker": b["id"]}).json()
    assert [s["name"] for s in rest["subnets"]] == ["c", ipam.DEFAULT_SUBNET_NAME]
    api.get(PATH, params={"ip_version": "four"}, status=400)
    api.get(PATH, params={"allocation_pools": "x"}, status=400)


# -- update ---------------------------------------------------------------------------

def test_update_names_and_recorded_settings(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/24")
    body = {"name": "n", "description": "d", "enable_dhcp": True,
            "dns_nameservers": ["10.20.0.53", "2001:db8::53"],
            "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.20.0.1"}]}
    updated = api.put(f"{PATH}/{sn['id']}", {"subnet": body}, status=200).json()["subnet"]
    assert {k: updated[k] for k in body} == body
    assert updated["updated_at"] is not None
    assert subnet_of(api, sn["id"]) == updated


def test_update_gateway_and_pools_together(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/24")
    path = f"{PATH}/{sn['id']}"
    r = api.put(path, {"subnet": {"gateway_ip": "10.20.0.20"}}, status=400)
    assert api.fault(r).endswith(
        "Gateway ip 10.20.0.20 conflicts with allocation pool 10.20.0.2-10.20.0.254.")
    new_pools = pools(("10.20.0.30", "10.20.0.40"))
    body = {"gateway_ip": "10.20.0.20", "allocation_pools": new_pools}
    updated = api.put(path, {"subnet": body}, status=200).json()["subnet"]
    assert (updated["gateway_ip"], updated["allocation_pools"]) == ("10.20.0.20", new_pools)
    r = api.put(path, {"subnet": {"allocation_pools": pools(("10.20.0.10", "10.20.0.20"))}},
                status=400)
    assert "conflicts with allocation pool" in api.fault(r)
    api.put(path, {"subnet": {"allocation_pools": pools(("10.21.0.1", "10.21.0.2"))}},
            status=400)
    api.put(path, {"subnet": {"gateway_ip": "10.20.0.0"}}, status=400)
    none = api.put(path, {"subnet": {"gateway_ip": None}}, status=200).json()["subnet"]
    assert none["gateway_ip"] is None and none["allocation_pools"] == new_pools


@pytest.mark.parametrize("body", [
    {"cidr": "10.30.0.0/24"}, {"ip_version": 4}, {"network_id": GHOST},
    {"allocation_pools": None}, {"enable_dhcp": None}, {"dns_nameservers": None},
    {"host_routes": None}, {"gateway_ip": "x"},
])
def test_update_refuses_fixed_fields_and_nulls(api: Api, net: dict[str, Any],
                                               body: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/24")
    api.put(f"{PATH}/{sn['id']}", {"subnet": body}, status=400)
    assert subnet_of(api, sn["id"]) == sn


def test_update_unknown_is_404(api: Api) -> None:
    api.put(f"{PATH}/{GHOST}", {"subnet": {"name": "x"}}, status=404)


def test_gateway_cannot_move_onto_a_vip(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "127.42.0.0/24", gateway_ip=None,
                       allocation_pools=pools(("127.42.0.10", "127.42.0.20")))
    lb = api.create_lb(vip_subnet_id=sn["id"], _project="p1")
    assert lb["vip_address"] == "127.42.0.10"
    body = {"gateway_ip": "127.42.0.10", "allocation_pools": pools(("127.42.0.11",
                                                                     "127.42.0.20"))}
    r = api.put(f"{PATH}/{sn['id']}", {"subnet": body}, status=409)
    assert api.fault(r) == (f"Unable to complete operation for network {net['id']}. "
                            "The IP address 127.42.0.10 is in use.")


# -- delete and VIPs --------------------------------------------------------------------

def test_delete(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "10.20.0.0/24")
    api.delete(f"{PATH}/{sn['id']}", status=204)
    api.get(f"{PATH}/{sn['id']}", status=404)
    r = api.delete(f"{PATH}/{sn['id']}", status=404)
    assert api.fault(r) == f"Subnet {sn['id']} not found."
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["subnets"] == []


def test_subnet_with_a_vip_cannot_be_deleted(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "127.42.0.0/24")
    lb = api.create_lb(vip_subnet_id=sn["id"], _project="p1")
    r = api.delete(f"{PATH}/{sn['id']}", status=409)
    assert api.fault(r) == (f"Unable to complete operation on subnet {sn['id']}: One or more "
                            "ports have an IP allocation from this subnet.")
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    api.delete(f"{PATH}/{sn['id']}", status=204)


def test_default_subnet_with_a_vip_cannot_be_deleted(api: Api) -> None:
    lb = api.create_lb()
    r = api.delete(f"{PATH}/{lb['vip_subnet_id']}", status=409)
    assert "One or more ports have an IP allocation from this subnet." in api.fault(r)


def test_load_balancer_vips_come_from_the_pools_in_order(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "127.42.0.0/24",
                       allocation_pools=pools(("127.42.0.50", "127.42.0.51"),
                                              ("127.42.0.10", "127.42.0.10")))
    first = api.create_lb(vip_subnet_id=sn["id"], _project="p1")
    second = api.create_lb(vip_subnet_id=sn["id"], _project="p1")
    third = api.create_lb(vip_subnet_id=sn["id"], vip_network_id=net["id"], _project="p1")
    assert [lb["vip_address"] for lb in (first, second, third)] == [
        "127.42.0.50", "127.42.0.51", "127.42.0.10"]
    assert {lb["vip_subnet_id"] for lb in (first, second, third)} == {sn["id"]}
    assert {lb["vip_network_id"] for lb in (first, second, third)} == {net["id"]}


def test_exhausted_pool_is_409_until_an_address_is_freed(api: Api, net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "127.42.0.0/24",
                       allocation_pools=pools(("127.42.0.7", "127.42.0.7")))
    lb = api.create_lb(vip_subnet_id=sn["id"], _project="p1")
    assert lb["vip_address"] == "127.42.0.7"
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": sn["id"]}}, project="p1",
                 status=409)
    assert api.fault(r) == f"No more IP addresses available on network {net['id']}."
    # an explicit address outside the pools is still allowed, as in Neutron
    api.create_lb(vip_subnet_id=sn["id"], vip_address="127.42.0.200", _project="p1")
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    assert api.create_lb(vip_subnet_id=sn["id"], _project="p1")["vip_address"] == "127.42.0.7"


def test_tenant_cannot_take_a_vip_on_a_private_subnet_of_another(api: Api,
                                                                 net: dict[str, Any]) -> None:
    sn = create_subnet(api, net["id"], "127.42.0.0/24")
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": sn["id"]}}, project="p2",
                 status=400)
    assert api.fault(r) == f"Subnet {sn['id']} not found."
    api.put(f"/v2.0/networks/{net['id']}", {"network": {"shared": True}}, status=200)
    lb = api.create_lb(vip_subnet_id=sn["id"], _project="p2")
    assert lb["vip_subnet_id"] == sn["id"]
