"""Names and VIP checks of the namespace placement (no root, no kernel)."""

from __future__ import annotations

import dataclasses

import pytest

from lbaas.dataplane import netns
from lbaas.dataplane.spec import LoadBalancerSpec, VipSpec

LB_ID = "3f2a9c1e-7b4d-4e8a-9c2f-0123456789ab"
SUBNET_ID = "b7e1d2c3-aaaa-4bbb-8ccc-0123456789ab"


def _lb(**vip: object) -> LoadBalancerSpec:
    fields: dict[str, object] = {"address": "198.18.9.10", "subnet_id": SUBNET_ID,
                                 "subnet_cidr": "198.18.9.0/24", "gateway_ip": "198.18.9.1"}
    fields.update(vip)
    return LoadBalancerSpec(id=LB_ID, project_id="p", vip=VipSpec(**fields))  # type: ignore[arg-type]


def test_namespace_is_qlbaas_and_the_full_id() -> None:
    assert netns.namespace_name(LB_ID) == f"qlbaas-{LB_ID}"
    assert netns.NamespacePlacement().namespace(LB_ID) == f"qlbaas-{LB_ID}"
    assert netns.namespace_path("qlbaas-x") == "/var/run/netns/qlbaas-x"


def test_interface_names_fit_ifnamsiz_and_come_from_the_ids() -> None:
    assert netns.bridge_name(SUBNET_ID) == "lbr-b7e1d2c3aaa"
    assert netns.veth_names(LB_ID) == ("lbh-3f2a9c1e7b4", "lbn-3f2a9c1e7b4")
    for name in (netns.bridge_name(SUBNET_ID), *netns.veth_names(LB_ID)):
        assert len(name) == netns.IFNAME_MAX == 15


def test_names_are_case_insensitive_and_short_ids_work() -> None:
    assert netns.bridge_name(SUBNET_ID.upper()) == netns.bridge_name(SUBNET_ID)
    assert netns.veth_names("lb1") == ("lbh-lb1", "lbn-lb1")
    assert netns.namespace_name("lb1") == "qlbaas-lb1"


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "-x", "a b", "x" * 300, "---"])
def test_ids_that_cannot_be_names_are_refused(bad: str) -> None:
    with pytest.raises(netns.PlacementError):
        netns.veth_names(bad)
    with pytest.raises(netns.PlacementError):
        netns.bridge_name(bad)


def test_bridge_mac_is_stable_unicast_and_locally_administered() -> None:
    mac = netns.bridge_mac(SUBNET_ID)
    assert mac == netns.bridge_mac(SUBNET_ID) != netns.bridge_mac(LB_ID)
    assert mac.startswith("fa:16:3e:") and len(mac.split(":")) == 6
    first = int(mac.split(":")[0], 16)
    assert first & 0b10 and not first & 0b01


def test_vip_plan_of_a_good_spec() -> None:
    plan = netns.PortPlan.of(_lb())
    assert (str(plan.address), str(plan.subnet.network), str(plan.subnet.gateway)) == (
        "198.18.9.10", "198.18.9.0/24", "198.18.9.1")
    assert plan.namespace == f"qlbaas-{LB_ID}"
    assert plan.subnet.bridge == "lbr-b7e1d2c3aaa"
    # A host address in the CIDR is accepted as the subnet (not strict).
    plan = netns.PortPlan.of(_lb(subnet_cidr="198.18.9.7/24"))
    assert str(plan.subnet.network) == "198.18.9.0/24"


@pytest.mark.parametrize(("vip", "message"), [
    ({"gateway_ip": None}, "no gateway_ip"),
    ({"subnet_cidr": None}, "no CIDR"),
    ({"subnet_id": None}, "needs the VIP's subnet_id"),
    ({"subnet_cidr": "nonsense"}, "invalid CIDR"),
    ({"address": "198.18.10.10"}, "not in subnet"),
    ({"address": "198.18.9.1"}, "is the gateway"),
    ({"gateway_ip": "198.18.10.1"}, "gateway 198.18.10.1 is not in subnet"),
    ({"address": "2001:db8::10", "subnet_cidr": "2001:db8::/64", "gateway_ip": "2001:db8::1"},
     "IPv4 VIPs only"),
])
def test_vips_the_placement_cannot_realise_are_refused(vip: dict[str, object],
                                                       message: str) -> None:
    with pytest.raises(netns.PlacementError, match=message):
        netns.PortPlan.of(_lb(**vip))


def test_additional_vips_are_refused() -> None:
    lb = dataclasses.replace(_lb(), additional_vips=(VipSpec(address="198.18.9.11"),))
    with pytest.raises(netns.PlacementError, match="additional VIPs"):
        netns.PortPlan.of(lb)


def test_placement_error_is_a_driver_error_with_its_reason() -> None:
    from lbaas.common.exceptions import DriverError

    err = netns.PlacementError("subnet s has no gateway_ip")
    assert isinstance(err, DriverError)
    assert err.reason == "subnet s has no gateway_ip"


def test_preexec_for_a_missing_namespace_fails_in_the_parent() -> None:
    with pytest.raises(netns.PlacementError, match="does not exist"):
        netns.NamespacePlacement().preexec("no-such-lb-" + LB_ID)
    with pytest.raises(TypeError):
        netns.popen_in_namespace("x", ["true"], preexec_fn=lambda: None)
