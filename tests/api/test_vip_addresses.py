"""VIPs never take the host's own addresses (issue 9, item 2).

In the local placement HAProxy binds the VIP in the host's network
namespace: a VIP of 127.0.0.1 (or of an interface's address) would put a
tenant's listener beside the host's own services. The default subnet is
127.1.0.0/16 (it held 127.0.0.1 as 127.0.0.0/8), no VIP, allocated or
asked for, is an address of the host's interfaces, and a database made
with the old default subnet is narrowed on start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas.db import ipam
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import Api, create_network, create_subnet
from tests.conftest import make_settings

MEMBER = {"project": "p1", "roles": "member"}


def test_a_tenant_cannot_take_127_0_0_1(api: Api) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_address": "127.0.0.1"}}, status=400,
                 **MEMBER)
    assert api.fault(r) == "The IP Address 127.0.0.1 is invalid."
    default = api.get("/v2.0/subnets", params={"name": ipam.DEFAULT_SUBNET_NAME}).json()
    assert default["subnets"][0]["cidr"] == "127.1.0.0/16"
    assert api.create_lb(_project="p1")["vip_address"] == "127.1.0.1"


def test_no_vip_is_an_address_of_the_host(api: Api) -> None:
    """On a subnet holding 127.0.0.1 (the host's), allocation skips it and asking for it is 409."""
    net = create_network(api, shared=True)
    sn = create_subnet(api, net["id"], "127.0.0.0/29", gateway_ip=None,
                       allocation_pools=[{"start": "127.0.0.1", "end": "127.0.0.3"}])
    lb = api.create_lb(vip_subnet_id=sn["id"], _project="p1")
    assert lb["vip_address"] == "127.0.0.2"
    r = api.post("/loadbalancers", {"loadbalancer": {"vip_subnet_id": sn["id"],
                                                     "vip_address": "127.0.0.1"}},
                 status=409, **MEMBER)
    assert api.fault(r) == ("The VIP IP address is already in use: 127.0.0.1 is an address "
                            "of this host")
    extra = {"vip_address": "127.1.3.3", "additional_vips": [
        {"subnet_id": sn["id"], "ip_address": "127.0.0.1"}]}
    api.post("/loadbalancers", {"loadbalancer": extra}, status=409, **MEMBER)
    assert [x["vip_address"] for x in api.get("/loadbalancers").json()["loadbalancers"]] == [
        "127.0.0.2"]


def _service(tmp_path: Path, **settings: Any) -> Service:
    noop = NoopDriver()
    return Service(make_settings(tmp_path, **settings), drivers={"noop": noop, "haproxy": noop})


def _default_subnet(svc: Service) -> dict[str, Any]:
    with TestClient(svc.app) as client:
        rows = client.get("/v2.0/subnets", params={"name": ipam.DEFAULT_SUBNET_NAME}).json()
    return dict(rows["subnets"][0])


def _make_lb(svc: Service, **body: Any) -> dict[str, Any]:
    svc.start()
    try:
        with TestClient(svc.app) as client:
            r = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": body})
            assert r.status_code == 201, r.text
            assert svc.reconciler.wait_idle()
            return dict(r.json()["loadbalancer"])
    finally:
        svc.stop()


def test_an_old_default_subnet_is_narrowed_on_start(tmp_path: Path) -> None:
    old = _service(tmp_path, default_subnet_cidr="127.0.0.0/8")
    lb = _make_lb(old)
    assert lb["vip_address"] == "127.1.0.1"
    new = _service(tmp_path)
    try:
        narrowed = _default_subnet(new)
        assert narrowed["id"] == lb["vip_subnet_id"]
        assert narrowed["cidr"] == "127.1.0.0/16"
        assert narrowed["allocation_pools"] == [{"start": "127.1.0.1", "end": "127.1.255.254"}]
        with TestClient(new.app) as client:
            kept = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
        assert kept["vip_address"] == "127.1.0.1"
    finally:
        new.stop()


def test_an_old_default_subnet_with_vips_outside_is_kept(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    lb = _make_lb(_service(tmp_path, default_subnet_cidr="127.0.0.0/8"), vip_address="127.9.9.9")
    with caplog.at_level(logging.WARNING, logger="lbaas.db.ipam"):
        new = _service(tmp_path)
    try:
        assert _default_subnet(new)["cidr"] == "127.0.0.0/8"
        assert f"127.9.9.9 of load balancer {lb['id']}" in caplog.text
    finally:
        new.stop()


def test_a_default_pool_outside_the_default_cidr_is_a_configuration_error(
        tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"is not inside default_subnet_cidr 127\.1\.0\.0/16"):
        _service(tmp_path, default_subnet_pool=("127.200.0.1", "127.200.0.254"))
