"""The haproxy provider's validation: what it refuses and why."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lbaas.common.exceptions import UnsupportedOption
from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import ApplyResult
from lbaas.dataplane.runtime import LoadBalancerHealth, LoadBalancerStats
from lbaas.drivers.haproxy import HaproxyDriver
from tests.support.specs import http_lb, member, with_listener, with_pool


class FakeAgent:
    """Records calls (an AgentClient that runs nothing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def validate(self, lb: s.LoadBalancerSpec) -> None:
        self.calls.append(("validate", lb.id))

    def apply(self, lb: s.LoadBalancerSpec) -> ApplyResult:
        self.calls.append(("apply", lb.id))
        return ApplyResult(lb_id=lb.id, action="started", master_pid=1)

    def delete(self, lb_id: str) -> None:
        self.calls.append(("delete", lb_id))

    def failover(self, lb: s.LoadBalancerSpec) -> ApplyResult:
        self.calls.append(("failover", lb.id))
        return ApplyResult(lb_id=lb.id, action="started", master_pid=1)

    def stats(self, lb_id: str) -> LoadBalancerStats:
        return LoadBalancerStats(lb_id=lb_id, running=False)

    def health(self, lb_id: str) -> LoadBalancerHealth:
        return LoadBalancerHealth(lb_id=lb_id, alive=False)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def driver() -> HaproxyDriver:
    return HaproxyDriver(FakeAgent(), ping_available=True)


LB = http_lb("lb1", 80, (member("m1", 8001),))
HM = s.HealthMonitorSpec(id="hm", type="HTTP", delay=1, timeout=1, max_retries=1,
                         max_retries_down=1)


def test_a_plain_load_balancer_is_accepted(driver: HaproxyDriver) -> None:
    driver.validate(LB)


@pytest.mark.parametrize(("lb", "reason"), [
    (dataclasses.replace(LB, topology="ACTIVE_STANDBY"), "ACTIVE_STANDBY topology"),
    (dataclasses.replace(LB, vip=s.VipSpec(address="127.0.0.1", qos_policy_id="q")), "QoS"),
    (dataclasses.replace(LB, vip=s.VipSpec(address="127.0.0.1", sg_ids=("sg",))),
     "security groups"),
    (with_listener(LB, protocol="UDP"), "UDP protocol listeners"),
    (with_listener(LB, protocol="SCTP"), "SCTP protocol listeners"),
    (with_listener(LB, protocol="TERMINATED_HTTPS"), "terminates TLS but has no certificate"),
    (with_listener(LB, protocol="TERMINATED_HTTPS", default_tls_container_ref="ref",
                   client_authentication="MANDATORY"), "MANDATORY needs a client CA"),
    (with_pool(LB, protocol="UDP"), "UDP protocol pools"),
    (with_pool(LB, lb_algorithm="SOURCE_IP_PORT"), "SOURCE_IP_PORT algorithm"),
    (with_pool(LB, health_monitor=dataclasses.replace(HM, type="UDP-CONNECT")),
     "UDP-CONNECT health monitors"),
    (with_pool(LB, health_monitor=dataclasses.replace(HM, type="SCTP")), "SCTP health"),
    (with_pool(with_listener(LB, protocol="TCP"), protocol="TCP",
               session_persistence=s.SessionPersistenceSpec(type="HTTP_COOKIE")),
     "HTTP_COOKIE session persistence on TCP pools"),
    (with_listener(with_pool(LB, protocol="TCP"), protocol="TCP", l7policies=(
        s.L7PolicySpec(id="p", action="REJECT", position=1, rules=(
            s.L7RuleSpec(id="r", type="PATH", compare_type="EQUAL_TO", value="/"),)),)),
     "L7 policies on TCP listeners"),
    (with_listener(LB, l7policies=(s.L7PolicySpec(id="p", action="REJECT", position=1, rules=(
        s.L7RuleSpec(id="r", type="SSL_CONN_HAS_CERT", compare_type="EQUAL_TO",
                     value="True"),)),)), "SSL_CONN_HAS_CERT L7 rules"),
    (with_pool(LB, session_persistence=s.SessionPersistenceSpec(
        type="APP_COOKIE", cookie_name="bad\nname")), "cookie_name"),
    (with_pool(LB, health_monitor=dataclasses.replace(HM, url_path="/x y")), "url_path"),
])
def test_refused(driver: HaproxyDriver, lb: s.LoadBalancerSpec, reason: str) -> None:
    with pytest.raises(UnsupportedOption, match=reason):
        driver.validate(lb)


def test_a_member_change_is_checked_without_the_agent() -> None:
    # A member change's part of a load balancer (graph.member_change_spec): its server
    # line is rendered; the placement (VIPs, listener ports, amphorae) is not asked again.
    agent = FakeAgent()
    driver = HaproxyDriver(agent, ping_available=True)
    driver.validate_members(with_pool(LB, health_monitor=HM, members=(
        member("m2", 8002, monitor_address="127.0.0.2", monitor_port=9000),)))
    with pytest.raises(UnsupportedOption, match="member address"):
        driver.validate_members(with_pool(LB, members=(member("m2", 8002, address="x y"),)))
    with pytest.raises(UnsupportedOption, match="monitor_address"):
        driver.validate_members(with_pool(LB, health_monitor=HM, members=(
            member("m2", 8002, monitor_address="127.0.0.2\nbind"),)))
    assert agent.calls == []


def test_tls_is_realised(driver: HaproxyDriver) -> None:
    rule = s.L7RuleSpec(id="r", type="SSL_CONN_HAS_CERT", compare_type="EQUAL_TO", value="True")
    lb = with_listener(LB, protocol="TERMINATED_HTTPS", default_tls_container_ref="ref",
                       client_ca_tls_container_ref="ca", client_authentication="OPTIONAL",
                       l7policies=(s.L7PolicySpec(id="p", action="REJECT", position=1,
                                                  rules=(rule,)),))
    driver.validate(with_pool(lb, tls_enabled=True, ca_tls_container_ref="ca2"))


def test_ping_needs_the_ping_command() -> None:
    lb = with_pool(LB, health_monitor=dataclasses.replace(HM, type="PING"))
    HaproxyDriver(FakeAgent(), ping_available=True).validate(lb)
    with pytest.raises(UnsupportedOption, match="ping command"):
        HaproxyDriver(FakeAgent(), ping_available=False).validate(lb)


def test_flavor_capabilities_advertise_only_what_is_served(driver: HaproxyDriver) -> None:
    description = driver.flavor_capabilities()["loadbalancer_topology"]
    assert "SINGLE" in description
    assert "ACTIVE_STANDBY" not in description  # refused by validate_flavor
    refusal = r"ACTIVE_STANDBY topology needs the namespace placement"
    with pytest.raises(UnsupportedOption, match=refusal):
        driver.validate_flavor({"loadbalancer_topology": "ACTIVE_STANDBY"})
    with pytest.raises(UnsupportedOption, match=refusal):
        driver.validate(dataclasses.replace(LB, topology="ACTIVE_STANDBY"))


def test_where_the_placement_serves_active_standby_it_is_advertised_and_accepted() -> None:
    driver = HaproxyDriver(FakeAgent(), ping_available=True,
                           topologies=("SINGLE", "ACTIVE_STANDBY"))
    assert driver.flavor_capabilities()["loadbalancer_topology"] == (
        "The load balancer topology. One of: SINGLE - One amphora per load balancer. "
        "ACTIVE_STANDBY - Two amphora per load balancer.")
    driver.validate_flavor({"loadbalancer_topology": "ACTIVE_STANDBY"})
    driver.validate(dataclasses.replace(LB, topology="ACTIVE_STANDBY"))


# Flavor and zone profile keys: tests/unit/drivers/test_profiles.py


def test_operations_go_to_the_agent() -> None:
    agent = FakeAgent()
    driver = HaproxyDriver(agent, ping_available=True)
    driver.apply(LB)
    driver.failover(LB)
    driver.delete(LB)
    assert agent.calls == [("apply", "lb1"), ("failover", "lb1"), ("delete", "lb1")]


def test_specs_cross_the_agent_boundary_as_json() -> None:
    lb = with_pool(LB, health_monitor=HM)
    assert s.from_json(s.to_json(lb)) == lb


def test_spec_json_is_ascii_and_the_same_for_equal_specs() -> None:
    # spec.json and the agents' spec digests compare texts: equal specs, equal text,
    # whatever the order they were built in; written as ASCII whatever the locale.
    lb = dataclasses.replace(with_pool(LB, health_monitor=HM), project_id="projet-\u00e9")
    again = s.from_json(json.loads(s.to_json(lb)))
    assert again == lb and again is not lb
    text = s.to_json(lb)
    assert s.to_json(again) == text
    assert text.isascii() and "projet-\\u00e9" in text
    assert s.from_json(text) == lb


def test_active_standby_specs_cross_the_agent_boundary_as_json() -> None:
    lb = dataclasses.replace(
        LB, topology="ACTIVE_STANDBY",
        amphorae=(s.AmphoraSpec(id="a1", role="MASTER", vrrp_ip="198.18.9.11", vrrp_priority=100),
                  s.AmphoraSpec(id="a2", role="BACKUP", vrrp_ip="198.18.9.12", vrrp_priority=90)),
        vrrp=s.VrrpSpec(vrrp_id=7, auth_pass="abcd1234", advert_int=0.5))
    assert s.from_json(s.to_json(lb)) == lb
    # A spec written before ACTIVE_STANDBY existed (an older agent's spec.json) still reads.
    old = json.loads(s.to_json(LB))
    del old["amphorae"], old["vrrp"]
    assert s.from_json(old) == LB
