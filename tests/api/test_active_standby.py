"""ACTIVE_STANDBY through the API: topology, the two amphorae and their ports, failovers.

As in the rest of the API suite the ``haproxy`` provider is the noop driver
under that name (amphora rows follow the provider's name); this one records
every spec it is given, so that the order of a failover's steps shows.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import (
    Api,
    create_flavor,
    create_flavor_profile,
    create_network,
    create_subnet,
)
from tests.conftest import fresh_database, make_settings

PATH = "/v2/octavia/amphorae"
CIDR = "198.18.120.0/24"


class RecordingDriver(NoopDriver):
    """A noop driver that keeps every spec it applied, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.specs: list[LoadBalancerSpec] = []

    def apply(self, lb: LoadBalancerSpec) -> None:
        self.specs.append(lb)
        super().apply(lb)


@pytest.fixture
def recorder() -> RecordingDriver:
    return RecordingDriver()


def _service(tmp_path: Path, db_url: str, template: Path, driver: NoopDriver,
             **settings: Any) -> Service:
    fresh_database(tmp_path, db_url, template)
    svc = Service(make_settings(tmp_path, database_url=db_url, **settings),
                  drivers={"noop": driver, "haproxy": driver})
    svc.start()
    return svc


@pytest.fixture
def api(tmp_path: Path, db_url: str, sqlite_template: Path,
        recorder: RecordingDriver) -> Iterator[Api]:
    svc = _service(tmp_path, db_url, sqlite_template, recorder)
    with TestClient(svc.app, raise_server_exceptions=False) as client:
        yield Api(client, svc)
    svc.stop()


def _subnet(api: Api) -> dict[str, Any]:
    net = create_network(api)
    return create_subnet(api, net["id"], CIDR, gateway_ip="198.18.120.1")


def _active_standby(api: Api, subnet: dict[str, Any], **fields: Any) -> dict[str, Any]:
    profile = create_flavor_profile(api, provider="haproxy", data=json.dumps(
        {"loadbalancer_topology": "ACTIVE_STANDBY"}))
    flavor = create_flavor(api, profile["id"], name=f"ha-{len(fields)}")
    return api.create_lb(vip_subnet_id=subnet["id"], flavor_id=flavor["id"], **fields)


def amphorae(api: Api, lb_id: str) -> list[dict[str, Any]]:
    found = api.get(PATH, params={"loadbalancer_id": lb_id}, status=200).json()["amphorae"]
    return sorted(found, key=lambda a: -(a["vrrp_priority"] or 0))


def test_a_flavor_makes_two_amphorae_each_on_its_own_port(api: Api,
                                                          recorder: RecordingDriver) -> None:
    subnet = _subnet(api)
    lb = _active_standby(api, subnet)
    master, backup = amphorae(api, lb["id"])
    assert (master["role"], master["vrrp_priority"], backup["role"], backup["vrrp_priority"]) \
        == ("MASTER", 100, "BACKUP", 90)
    host = socket.gethostname()
    for amp in (master, backup):
        assert amp["status"] == "ALLOCATED"
        assert amp["vrrp_id"] == 1
        assert (amp["ha_ip"], amp["ha_port_id"]) == (lb["vip_address"], lb["vip_port_id"])
        assert amp["compute_id"] == f"{host}:amphora-{amp['id']}"
        assert ipaddress.ip_address(amp["vrrp_ip"]) in ipaddress.ip_network(CIDR)
        assert amp["vrrp_port_id"]
    assert len({lb["vip_address"], master["vrrp_ip"], backup["vrrp_ip"]}) == 3
    # The spec the provider got names both, and the VRRP group.
    spec = recorder.specs[-1]
    assert spec.topology == "ACTIVE_STANDBY"
    assert [(a.id, a.role, a.vrrp_ip, a.vrrp_priority) for a in spec.amphorae] == [
        (master["id"], "MASTER", master["vrrp_ip"], 100),
        (backup["id"], "BACKUP", backup["vrrp_ip"], 90)]
    assert spec.vrrp is not None
    assert (spec.vrrp.vrrp_id, spec.vrrp.advert_int, len(spec.vrrp.auth_pass)) == (1, 0.5, 8)
    # Their addresses are taken: no VIP may have them.
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet["id"],
                                                     "vip_address": master["vrrp_ip"]}},
                 status=409)
    assert master["vrrp_ip"] in api.fault(r)


def test_deleting_it_frees_the_amphorae_ports(api: Api) -> None:
    subnet = _subnet(api)
    lb = _active_standby(api, subnet)
    addresses = [a["vrrp_ip"] for a in amphorae(api, lb["id"])]
    api.delete(f"/loadbalancers/{lb['id']}", status=204)
    api.wait_idle()
    assert amphorae(api, lb["id"]) == []
    for address in addresses:
        api.create_lb(vip_subnet_id=subnet["id"], vip_address=address)


def test_a_load_balancer_failover_replaces_the_backup_then_the_master_on_their_ports(
        api: Api, recorder: RecordingDriver) -> None:
    subnet = _subnet(api)
    lb = _active_standby(api, subnet)
    master, backup = amphorae(api, lb["id"])
    recorder.specs.clear()
    api.put(f"/loadbalancers/{lb['id']}/failover", status=202)
    api.wait_idle()
    assert api.lb_status(lb["id"]) == "ACTIVE"
    new_master, new_backup = amphorae(api, lb["id"])
    assert {new_master["id"], new_backup["id"]}.isdisjoint({master["id"], backup["id"]})
    for old, new in ((master, new_master), (backup, new_backup)):
        assert (new["vrrp_ip"], new["vrrp_port_id"], new["vrrp_priority"], new["status"]) == \
            (old["vrrp_ip"], old["vrrp_port_id"], old["vrrp_priority"], "ALLOCATED")
        api.get(f"{PATH}/{old['id']}", status=404)
    # One at a time, the backup first; then the whole spec once more.
    steps = [{a.vrrp_ip: a.id for a in spec.amphorae} for spec in recorder.specs]
    assert steps == [
        {master["vrrp_ip"]: master["id"], backup["vrrp_ip"]: new_backup["id"]},
        {master["vrrp_ip"]: new_master["id"], backup["vrrp_ip"]: new_backup["id"]},
        {master["vrrp_ip"]: new_master["id"], backup["vrrp_ip"]: new_backup["id"]}]


def test_an_amphora_failover_replaces_that_amphora_only(api: Api) -> None:
    lb = _active_standby(api, _subnet(api))
    master, backup = amphorae(api, lb["id"])
    api.put(f"{PATH}/{master['id']}/failover", status=202)
    api.wait_idle()
    new_master, same_backup = amphorae(api, lb["id"])
    assert same_backup == backup
    assert new_master["id"] != master["id"]
    assert new_master["vrrp_ip"] == master["vrrp_ip"]
    assert new_master["status"] == "ALLOCATED"


def test_the_operators_default_topology(tmp_path: Path, db_url: str,
                                        sqlite_template: Path) -> None:
    driver = RecordingDriver()
    svc = _service(tmp_path, db_url, sqlite_template, driver,
                   loadbalancer_topology="ACTIVE_STANDBY")
    try:
        with TestClient(svc.app, raise_server_exceptions=False) as client:
            api = Api(client, svc)
            subnet = _subnet(api)
            lb = api.create_lb(vip_subnet_id=subnet["id"], provider="haproxy")
            assert [a["vrrp_priority"] for a in amphorae(api, lb["id"])] == [100, 90]
            # A flavor still says otherwise.
            profile = create_flavor_profile(api, provider="haproxy", data=json.dumps(
                {"loadbalancer_topology": "SINGLE"}))
            flavor = create_flavor(api, profile["id"])
            single = api.create_lb(vip_subnet_id=subnet["id"], flavor_id=flavor["id"])
            assert [a["role"] for a in amphorae(api, single["id"])] == ["STANDALONE"]
    finally:
        svc.stop()
