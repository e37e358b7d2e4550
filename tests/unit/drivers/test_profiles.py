"""Amphora profile keys: served, ignored (logged) or refused, per provider."""

from __future__ import annotations

import logging

import pytest

from lbaas.common.exceptions import UnsupportedOption
from lbaas.drivers import profiles
from lbaas.drivers.haproxy.driver import HaproxyDriver
from lbaas.drivers.noop import NoopDriver
from tests.unit.dataplane.test_driver import FakeAgent


def haproxy() -> HaproxyDriver:
    return HaproxyDriver(FakeAgent(), ping_available=True)


def test_capabilities_are_octavias_amphora_keys() -> None:
    for driver in (haproxy(), NoopDriver()):
        assert list(driver.flavor_capabilities()) == [  # (haproxy's topology text: SINGLE)
            "loadbalancer_topology", "compute_flavor", "amp_image_tag", "sriov_vip",
            "allow_member_sriov"]
        assert driver.availability_zone_capabilities()["compute_zone"] == \
            "The compute availability zone."


def test_haproxy_serves_single_only() -> None:
    haproxy().validate_flavor({"loadbalancer_topology": "SINGLE"})
    with pytest.raises(UnsupportedOption, match="ACTIVE_STANDBY topology"):
        haproxy().validate_flavor({"loadbalancer_topology": "ACTIVE_STANDBY"})
    with pytest.raises(UnsupportedOption, match="'ROUND' is not one of SINGLE, ACTIVE_STANDBY"):
        haproxy().validate_flavor({"loadbalancer_topology": "ROUND"})
    NoopDriver().validate_flavor({"loadbalancer_topology": "ACTIVE_STANDBY"})


@pytest.mark.parametrize("data", [{"sriov_vip": True}, {"allow_member_sriov": 1},
                                  {"sriov_vip": False, "bogus": 1}])
def test_refused_flavor_keys(data: dict[str, object]) -> None:
    for driver in (haproxy(), NoopDriver()):
        with pytest.raises(UnsupportedOption):
            driver.validate_flavor(data)


def test_false_or_empty_asks_for_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lbaas.drivers.profiles"):
        haproxy().validate_flavor({"sriov_vip": False, "allow_member_sriov": False})
        haproxy().validate_availability_zone({"valid_vip_networks": []})
    assert caplog.records == []


def test_ignored_keys_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lbaas.drivers.profiles"):
        haproxy().validate_availability_zone({"management_network": "n", "compute_zone": "z"})
    assert [r.getMessage() for r in caplog.records] == [
        "availability zone profile for provider haproxy: compute_zone, management_network "
        "accepted and ignored (Octavia amphora settings for compute, image or volume services "
        "that lbaas does not use)"]
    assert set(profiles.FLAVOR_KEYS) | set(
        profiles.AVAILABILITY_ZONE_KEYS) >= profiles.IGNORED_KEYS
