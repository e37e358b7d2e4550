"""``[controller_worker] network_driver = neutron``: VIP subnets read from a Neutron.

A second ``lbaas serve`` (keystone auth) plays Neutron: it is the catalog's
``network`` endpoint in a region of its own, and holds a network and subnet
of project lb-one that the lbaas under test (in process, keystone auth, its
own empty database) has never seen. That lbaas reads them through
openstacksdk as its service user (``[service_auth]``), and its IPAM gives
the VIP from the Neutron subnet's allocation pool.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from lbaas.config import NeutronSettings
from lbaas.service import Service
from lbaas.testing.keystone import Keystone
from tests.api.base import HeldNoopDriver, wait_for
from tests.conftest import fresh_database, make_settings
from tests.support.serve import Serve, free_port, keystone_serve, region_of

LBS = "/v2/lbaas/loadbalancers"
CIDR = "198.18.40.0/24"
POOL = ("198.18.40.10", "198.18.40.11")


@pytest.fixture(scope="module")
def neutron(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Serve]:
    """lbaas's Neutron-shaped API playing Neutron, in the catalog as ``network``."""
    s = keystone_serve(tmp_path_factory.mktemp("neutron") / "state", keystone, ("network",))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def subnet(neutron: Serve, keystone: Keystone) -> dict[str, str]:
    """A network and subnet of project lb-one, known only to ``neutron``."""
    headers = {"X-Auth-Token": keystone.token("admin")}  # networks are the cloud admin's
    project = keystone.info["projects"]["lb-one"]
    with httpx.Client(base_url=neutron.url, headers=headers, timeout=30) as api:
        net = api.post("/v2.0/networks", json={"network": {"name": "tenant-net",
                                                           "project_id": project}})
        assert net.status_code == 201, net.text
        sub = api.post("/v2.0/subnets", json={"subnet": {
            "name": "tenant-subnet", "project_id": project,
            "network_id": net.json()["network"]["id"],
            "ip_version": 4, "cidr": CIDR, "gateway_ip": "198.18.40.1",
            "allocation_pools": [{"start": POOL[0], "end": POOL[1]}]}})
        assert sub.status_code == 201, sub.text
        shared = api.post("/v2.0/networks", json={"network": {"name": "shared-net",
                                                              "shared": True}})
        assert shared.status_code == 201, shared.text
        shared_sub = api.post("/v2.0/subnets", json={"subnet": {
            "name": "shared-subnet", "network_id": shared.json()["network"]["id"],
            "ip_version": 4, "cidr": "198.18.41.0/24",
            "allocation_pools": [{"start": "198.18.41.10", "end": "198.18.41.20"}]}})
        assert shared_sub.status_code == 201, shared_sub.text
    return {"id": sub.json()["subnet"]["id"], "network_id": net.json()["network"]["id"],
            "shared_id": shared_sub.json()["subnet"]["id"]}


def service_auth(keystone: Keystone) -> str:
    """``[service_auth]`` as the Keystone's admin: lbaas's service user must read every
    project's subnets (in a real cloud: Neutron's admin or service role)."""
    return ("[service_auth]\nauth_type = password\n"
            f"auth_url = {keystone.auth_url}\nusername = admin\n"
            f"password = {keystone.info['admin_password']}\nproject_name = admin\n"
            "user_domain_name = Default\nproject_domain_name = Default\n")


def neutron_lbaas(tmp_path: Path, keystone: Keystone, template: Path,
                  where: NeutronSettings) -> Service:
    """The lbaas under test: network_driver = neutron, Neutron at ``where``."""
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\nauth_strategy = keystone\n"
                    + keystone.authtoken_config() + service_auth(keystone))
    fresh_database(tmp_path, "", template)
    noop = HeldNoopDriver()
    return Service(make_settings(tmp_path, auth_strategy="keystone", config_files=(str(conf),),
                                 network_driver="neutron", neutron=where),
                   drivers={"noop": noop, "haproxy": noop})


@pytest.fixture(params=["catalog", "endpoint_override"])
def client(request: pytest.FixtureRequest, tmp_path: Path, keystone: Keystone,
           neutron: Serve, sqlite_template: Path) -> Iterator[TestClient]:
    """Neutron found in the catalog (``[neutron] region_name``) or at ``[neutron]
    endpoint_override``."""
    where = (NeutronSettings(region_name=region_of(neutron)) if request.param == "catalog"
             else NeutronSettings(endpoint_override=neutron.url + "/v2.0"))
    svc = neutron_lbaas(tmp_path, keystone, sqlite_template, where)
    svc.start()
    with TestClient(svc.app, raise_server_exceptions=False) as c:
        yield c
    svc.stop()


def create_lb(client: TestClient, keystone: Keystone, user: str,
              **vip: str) -> httpx.Response:
    return client.post(LBS, headers={"X-Auth-Token": keystone.token(user)},
                       json={"loadbalancer": {"name": "web", **vip}})


def test_vip_from_a_subnet_only_neutron_knows(client: TestClient, keystone: Keystone,
                                              subnet: dict[str, str]) -> None:
    first = create_lb(client, keystone, "lb-one-member", vip_subnet_id=subnet["id"])
    assert first.status_code == 201, first.text
    lb = first.json()["loadbalancer"]
    assert (lb["vip_subnet_id"], lb["vip_network_id"]) == (subnet["id"], subnet["network_id"])
    assert lb["vip_address"] == POOL[0]
    # the next VIP is the next free pool address, then the pool is exhausted (409)
    by_network = create_lb(client, keystone, "lb-one-member",
                           vip_network_id=subnet["network_id"])
    assert by_network.status_code == 201, by_network.text
    assert by_network.json()["loadbalancer"]["vip_address"] == POOL[1]
    full = create_lb(client, keystone, "lb-one-member", vip_subnet_id=subnet["id"])
    assert full.status_code == 409, full.text
    assert ipaddress.ip_address(lb["vip_address"]) in ipaddress.ip_network(CIDR)


def test_unknown_or_foreign_subnet_is_400_naming_vip_subnet_id(
        client: TestClient, keystone: Keystone, subnet: dict[str, str]) -> None:
    unknown = create_lb(client, keystone, "lb-one-member",
                        vip_subnet_id="0b6c3d3e-7f1a-4c1e-9a55-000000000000")
    assert unknown.status_code == 400, unknown.text
    assert "vip_subnet_id" in unknown.json()["faultstring"]
    # lb-two may not use lb-one's (unshared) subnet: Neutron's rule, the same answer
    foreign = create_lb(client, keystone, "lb-two-member", vip_subnet_id=subnet["id"])
    assert foreign.status_code == 400, foreign.text
    assert "vip_subnet_id" in foreign.json()["faultstring"]
    # a subnet of the admin's project on a shared network: anyone's
    on_shared = create_lb(client, keystone, "lb-two-member", vip_subnet_id=subnet["shared_id"])
    assert on_shared.status_code == 201, on_shared.text
    assert on_shared.json()["loadbalancer"]["vip_address"] == "198.18.41.10"
    port = create_lb(client, keystone, "lb-one-member",
                     vip_port_id="0b6c3d3e-7f1a-4c1e-9a55-000000000001")
    assert port.status_code == 400 and "vip_port_id" in port.json()["faultstring"]
    assert [lb["id"] for lb in client.get(LBS, headers={
        "X-Auth-Token": keystone.token("admin")}).json()["loadbalancers"]] == \
        [on_shared.json()["loadbalancer"]["id"]]


def test_member_subnets_are_neutrons(client: TestClient, keystone: Keystone,
                                     subnet: dict[str, str]) -> None:
    headers = {"X-Auth-Token": keystone.token("lb-one-member")}
    lb = create_lb(client, keystone, "lb-one-member", vip_subnet_id=subnet["id"])
    assert lb.status_code == 201, lb.text
    lb_id = lb.json()["loadbalancer"]["id"]

    def active() -> bool:
        got = client.get(f"{LBS}/{lb_id}", headers=headers).json()["loadbalancer"]
        return bool(got["provisioning_status"] == "ACTIVE")

    wait_for(active, timeout=20)
    pool = client.post("/v2/lbaas/pools", headers=headers, json={"pool": {
        "loadbalancer_id": lb_id, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert pool.status_code == 201, pool.text
    wait_for(active, timeout=20)
    members = f"/v2/lbaas/pools/{pool.json()['pool']['id']}/members"
    unknown = client.post(members, headers=headers, json={"member": {
        "address": "198.18.40.50", "protocol_port": 80,
        "subnet_id": "0b6c3d3e-7f1a-4c1e-9a55-000000000002"}})
    assert unknown.status_code == 400, unknown.text
    assert "Subnet 0b6c3d3e-7f1a-4c1e-9a55-000000000002 not found" in \
        unknown.json()["faultstring"]
    member = client.post(members, headers=headers, json={"member": {
        "address": "198.18.40.50", "protocol_port": 80, "subnet_id": subnet["id"]}})
    assert member.status_code == 201, member.text


def test_neutron_unreachable_is_503_and_changes_nothing(
        tmp_path: Path, keystone: Keystone, sqlite_template: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v2.0"  # nothing listens there
    svc = neutron_lbaas(tmp_path, keystone, sqlite_template,
                        NeutronSettings(endpoint_override=dead))
    svc.start()
    try:
        with TestClient(svc.app, raise_server_exceptions=False) as c:
            answer = create_lb(c, keystone, "lb-one-member",
                               vip_subnet_id="0b6c3d3e-7f1a-4c1e-9a55-000000000003")
            assert answer.status_code == 503, answer.text
            assert "Neutron cannot be read" in answer.json()["faultstring"]
            assert c.get(LBS, headers={"X-Auth-Token": keystone.token("admin")}).json()[
                "loadbalancers"] == []
    finally:
        svc.stop()
