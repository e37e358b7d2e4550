"""What each placement can serve, refused before anything is built (the API's 501)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lbaas.common.endpoints import control_plane_endpoints
from lbaas.common.exceptions import UnsupportedOption
from lbaas.config import Settings
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.dataplane.netns import NamespacePlacement
from lbaas.dataplane.placement import LocalPlacement, parse_port_ranges
from lbaas.dataplane.spec import AmphoraSpec, ListenerSpec, LoadBalancerSpec, VipSpec, VrrpSpec

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


def _listening(address: str, *ports: int) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        id="9c1f7a40-0000-4000-8000-000000000001", project_id="p",
        vip=VipSpec(address=address, subnet_id=SUBNET),
        listeners=tuple(ListenerSpec(id=f"l{p}", protocol="TCP", protocol_port=p)
                        for p in ports))


@pytest.mark.parametrize("port", [22, 25, 80, 443, 1023])
def test_local_placement_keeps_the_hosts_well_known_ports_by_default(port: int) -> None:
    with pytest.raises(UnsupportedOption, match=f"listener port {port}: in the local placement "
                       "listeners share the host's ports and may use 1024-65535"):
        LocalPlacement().validate(_listening("127.1.0.5", 8080, port))
    LocalPlacement().validate(_listening("127.1.0.5", 1024, 8080, 65535))


def test_local_placement_ports_are_the_operators() -> None:
    placement = LocalPlacement(parse_port_ranges("80, 443,8000-8999"))
    placement.validate(_listening("127.1.0.5", 80, 443, 8000, 8999))
    with pytest.raises(UnsupportedOption, match="may use 80,443,8000-8999"):
        placement.validate(_listening("127.1.0.5", 9000))


@pytest.mark.parametrize("text", ["", "http", "0-10", "10-5", "1-65536", "80,", "1-2-3"])
def test_bad_port_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_port_ranges(text)


def test_local_placement_never_takes_the_apis_port() -> None:
    wildcard = LocalPlacement(control_plane=control_plane_endpoints(
        Settings(host="0.0.0.0", port=9876)))
    with pytest.raises(UnsupportedOption, match=r"listener port 9876 on VIP 127.1.0.5: it is "
                       r"the lbaas API \(0.0.0.0:9876\)"):
        wildcard.validate(_listening("127.1.0.5", 9876))
    wildcard.validate(_listening("127.1.0.5", 9875))
    specific = LocalPlacement(control_plane=control_plane_endpoints(Settings(port=9876)))
    specific.validate(_listening("127.1.0.5", 9876))  # the API listens on 127.0.0.1 only


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


def _pair(master: str = "198.18.77.11", backup: str = "198.18.77.12",
          roles: tuple[str, str] = ("MASTER", "BACKUP"), vrrp: bool = True,
          ) -> LoadBalancerSpec:
    return dataclasses.replace(
        _lb("198.18.77.10", "198.18.77.0/24", "198.18.77.1"), topology="ACTIVE_STANDBY",
        amphorae=(AmphoraSpec(id="a1", role=roles[0], vrrp_ip=master, vrrp_priority=100),
                  AmphoraSpec(id="a2", role=roles[1], vrrp_ip=backup, vrrp_priority=90)),
        vrrp=VrrpSpec(advert_int=0.5) if vrrp else None)


def test_the_local_placement_refuses_active_standby_with_the_reason() -> None:
    with pytest.raises(UnsupportedOption, match=r"ACTIVE_STANDBY topology needs the namespace "
                                                r"placement \(\[haproxy_amphora\] placement = "):
        LocalPlacement().validate(dataclasses.replace(_lb("127.1.0.5"),
                                                      topology="ACTIVE_STANDBY"))


def test_the_namespace_placement_serves_a_pair_on_the_vips_subnet() -> None:
    NamespacePlacement().validate(_pair())


@pytest.mark.parametrize(("lb", "reason"), [
    (_pair(master="198.18.78.11"), r"vrrp_ip 198\.18\.78\.11 is not in subnet"),
    (_pair(backup="198.18.77.10"), "is the VIP"),
    (_pair(backup="198.18.77.1"), "is the gateway address"),
    (_pair(backup="198.18.77.11"), "both amphorae have vrrp_ip"),
    (_pair(roles=("MASTER", "MASTER")), "one MASTER and one BACKUP"),
    (_pair(vrrp=False), "needs a VRRP group"),
    (dataclasses.replace(_pair(), amphorae=()), "one MASTER and one BACKUP amphora, not none"),
])
def test_the_namespace_placement_refuses_a_pair_that_cannot_work(lb: LoadBalancerSpec,
                                                                 reason: str) -> None:
    with pytest.raises(UnsupportedOption, match=reason):
        NamespacePlacement().validate(lb)


def test_an_agent_runs_only_the_amphorae_placed_on_its_host(tmp_path: Path) -> None:
    """ACTIVE_STANDBY over two agents: each gets the whole spec (keepalived needs the
    peer) and runs its own amphora; one not placed on any host runs wherever sent."""
    lb = dataclasses.replace(_lb("198.18.7.100", "198.18.7.0/24", "198.18.7.1"),
                             topology="ACTIVE_STANDBY", amphorae=(
        AmphoraSpec(id="m", role="MASTER", vrrp_ip="198.18.7.101", host="agent-1"),
        AmphoraSpec(id="b", role="BACKUP", vrrp_ip="198.18.7.102", host="agent-2"),
        AmphoraSpec(id="n", role="BACKUP", vrrp_ip="198.18.7.103")))
    one = Amphorae(AmphoraSettings(base_path=tmp_path / "one", host="agent-1"))
    assert [a.id for a in one.here(lb)] == ["m", "n"]
    assert [a.id for a in Amphorae(AmphoraSettings(base_path=tmp_path / "any")).here(lb)] == [
        "m", "b", "n"]
