"""What each placement can serve, refused before anything is built (the API's 501)."""

from __future__ import annotations

import pytest

from lbaas.common.exceptions import UnsupportedOption
from lbaas.dataplane.netns import NamespacePlacement
from lbaas.dataplane.placement import LocalPlacement
from lbaas.dataplane.spec import LoadBalancerSpec, VipSpec

SUBNET = "6d1a0c2e-1111-4222-8333-444455556666"


def _lb(address: str, cidr: str | None = None, gateway: str | None = None,
        *extra: str) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        id="9c1f7a40-0000-4000-8000-000000000001", project_id="p",
        vip=VipSpec(address=address, subnet_id=SUBNET, subnet_cidr=cidr, gateway_ip=gateway),
        additional_vips=tuple(VipSpec(address=a) for a in extra))


@pytest.mark.parametrize("address", ["127.1.0.5", "127.200.3.4", "::1"])
def test_local_placement_serves_addresses_of_this_host(address: str) -> None:
    LocalPlacement().validate(_lb(address))


@pytest.mark.parametrize("lb", [_lb("198.18.77.10"), _lb("127.1.0.5", None, None,
                                                          "198.18.77.11")])
def test_local_placement_refuses_addresses_elsewhere(lb: LoadBalancerSpec) -> None:
    with pytest.raises(UnsupportedOption, match="is not an address of this host"):
        LocalPlacement().validate(lb)


def test_namespace_placement_serves_an_ipv4_vip_on_a_subnet_with_a_gateway() -> None:
    NamespacePlacement().validate(_lb("198.18.77.10", "198.18.77.0/24", "198.18.77.1"))


@pytest.mark.parametrize(("lb", "reason"), [
    (_lb("198.18.77.10", "198.18.77.0/24", None), "has no gateway_ip"),
    (_lb("fd00:77::10", "fd00:77::/64", "fd00:77::1"), "IPv4 VIPs only"),
    (_lb("198.18.77.10", "198.18.77.0/24", "198.18.77.1", "198.18.77.11"),
     "additional VIPs"),
    (_lb("198.18.77.1", "198.18.77.0/24", "198.18.77.1"), "is the gateway address"),
])
def test_namespace_placement_refuses_what_it_cannot_plumb(lb: LoadBalancerSpec,
                                                          reason: str) -> None:
    with pytest.raises(UnsupportedOption, match=reason):
        NamespacePlacement().validate(lb)
