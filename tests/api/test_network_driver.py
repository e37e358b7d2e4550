"""``[controller_worker] network_driver``: local (the default) and noop.

The noop driver is what octavia-tempest-plugin's noop mode needs: it makes
up network and subnet ids and asks for fixed VIPs (198.18.33.33,
2001:db8:33:33:33:33:33:33) on them, as Octavia's network_noop_driver
accepts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lbaas.drivers.noop import NoopDriver
from lbaas.network.noop import NOOP_VIP_ADDRESS
from lbaas.service import Service
from tests.api.base import Api
from tests.conftest import fresh_database, make_settings


@pytest.fixture
def noop_api(tmp_path: Path, db_url: str, noop: NoopDriver,
             sqlite_template: Path) -> Iterator[Api]:
    fresh_database(tmp_path, db_url, sqlite_template)
    svc = Service(make_settings(tmp_path, database_url=db_url, network_driver="noop"),
                  drivers={"noop": noop, "haproxy": noop})
    svc.start()
    with TestClient(svc.app, raise_server_exceptions=False) as client:
        yield Api(client, svc)
    svc.stop()


def ids() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


def test_noop_accepts_made_up_subnets_and_fixed_vips(noop_api: Api) -> None:
    network_id, subnet_id = ids()
    first = noop_api.create_lb(vip_subnet_id=subnet_id, vip_network_id=network_id,
                               vip_address="198.18.33.33")
    assert (first["vip_subnet_id"], first["vip_network_id"], first["vip_address"]) == \
        (subnet_id, network_id, "198.18.33.33")
    assert str(uuid.UUID(first["vip_port_id"])) == first["vip_port_id"]
    # the same address again: nothing is allocated, so nothing conflicts
    second = noop_api.create_lb(vip_subnet_id=subnet_id, vip_network_id=network_id,
                                vip_address="2001:db8:33:33:33:33:33:33")
    assert second["vip_address"] == "2001:db8:33:33:33:33:33:33"
    again = noop_api.create_lb(vip_subnet_id=subnet_id, vip_address="198.18.33.33")
    assert again["vip_port_id"] != first["vip_port_id"]
    assert noop_api.lb_status(again["id"]) == "ACTIVE"


def test_noop_fills_in_what_is_not_given(noop_api: Api) -> None:
    network_id, port_id = ids()
    lb = noop_api.create_lb(vip_network_id=network_id)
    assert lb["vip_network_id"] == network_id and lb["vip_address"] == NOOP_VIP_ADDRESS
    assert str(uuid.UUID(lb["vip_subnet_id"])) == lb["vip_subnet_id"]
    lb = noop_api.create_lb(vip_port_id=port_id)
    assert lb["vip_port_id"] == port_id


def test_noop_members_on_any_subnet_and_delete(noop_api: Api) -> None:
    _, subnet_id = ids()
    lb = noop_api.create_lb(vip_subnet_id=subnet_id)
    pool = noop_api.create_pool(loadbalancer_id=lb["id"])
    member = noop_api.create_member(pool["id"], subnet_id=str(uuid.uuid4()))
    assert member["subnet_id"] != subnet_id
    noop_api.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"}, status=204)
    noop_api.wait_idle()
    noop_api.get(f"/loadbalancers/{lb['id']}", status=404)


def test_local_refuses_unknown_subnets(api: Api) -> None:
    network_id, subnet_id = ids()
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": subnet_id}}, status=400)
    assert api.fault(r) == f"Subnet {subnet_id} not found."
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_network_id": network_id}},
                 status=400)
    assert api.fault(r) == f"Network {network_id} not found."
    assert api.get("/loadbalancers").json()["loadbalancers"] == []
