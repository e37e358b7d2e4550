"""Providers: /v2/lbaas/providers (after Octavia's functional test_provider.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import Api
from tests.conftest import make_settings

TOPOLOGY = NoopDriver().flavor_capabilities()["loadbalancer_topology"]


class ZonedDriver(NoopDriver):
    """A noop provider with settings of its own, for capability lists."""

    def flavor_capabilities(self) -> dict[str, str]:
        return {"loadbalancer_topology": TOPOLOGY, "compute_flavor": "The compute flavor."}

    def availability_zone_capabilities(self) -> dict[str, str]:
        return {"compute_zone": "The compute zone.", "management_network": "A network."}


class MuteDriver(NoopDriver):
    """A provider that implements no capability listing."""

    def flavor_capabilities(self) -> dict[str, str]:
        raise NotImplementedError

    def availability_zone_capabilities(self) -> dict[str, str]:
        raise NotImplementedError


PROVIDERS = {"haproxy": "HAProxy here.", "amphora": "Alias of haproxy.",
             "noop": "Nothing.", "mute": "Lists nothing.", "ghost": "Enabled, not loaded."}


@pytest.fixture
def service(tmp_path: Path, db_url: str, noop: NoopDriver) -> Iterator[Service]:
    settings = make_settings(tmp_path, database_url=db_url, enabled_providers=PROVIDERS)
    svc = Service(settings, drivers={"noop": noop, "haproxy": ZonedDriver(),
                                     "mute": MuteDriver()})
    svc.start()
    yield svc
    svc.stop()


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [row["name"] for row in rows]


def test_list_enabled_providers(api: Api) -> None:
    r = api.get("/providers", status=200)
    assert r.json() == {"providers": [{"name": k, "description": v}
                                      for k, v in PROVIDERS.items()]}


def test_list_providers_with_fields_and_filters(api: Api) -> None:
    rows = api.get("/providers", params={"fields": "name"}).json()["providers"]
    assert rows == [{"name": k} for k in PROVIDERS]
    rows = api.get("/providers", params={"name": "noop"}).json()["providers"]
    assert rows == [{"name": "noop", "description": "Nothing."}]
    rows = api.get("/providers", params={"description": "Alias of haproxy."}).json()
    assert names(rows["providers"]) == ["amphora"]


def test_default_settings_list_haproxy_amphora_and_noop(tmp_path: Path, noop: NoopDriver) -> None:
    from fastapi.testclient import TestClient

    svc = Service(make_settings(tmp_path), drivers={"noop": noop, "haproxy": noop})
    with TestClient(svc.app) as client:
        rows = client.get("/v2/lbaas/providers").json()["providers"]
    svc.engine.dispose()
    assert names(rows) == ["haproxy", "amphora", "noop"]


def test_everyone_with_a_role_lists_providers(api: Api) -> None:
    api.get("/providers", project="p1", roles="reader", status=200)
    api.get("/providers", project="p1", roles="member", status=200)
    api.get("/providers", project="p1", roles="load-balancer_member", status=403)
    r = api.get("/providers", project="p1", roles="nothing", status=403)
    assert api.fault(r) == "Policy does not allow this request to be performed."


@pytest.mark.parametrize(("what", "key"), [
    ("flavor_capabilities", "flavor_capabilities"),
    ("availability_zone_capabilities", "availability_zone_capabilities"),
])
def test_capabilities_come_from_the_driver(api: Api, what: str, key: str) -> None:
    expected = (ZonedDriver().flavor_capabilities() if what == "flavor_capabilities"
                else ZonedDriver().availability_zone_capabilities())
    rows = api.get(f"/providers/haproxy/{what}", status=200).json()[key]
    assert rows == [{"name": k, "description": v} for k, v in expected.items()]
    # amphora is haproxy under Octavia's name
    assert api.get(f"/providers/amphora/{what}", status=200).json()[key] == rows


def test_noop_capabilities_are_octavias_amphora_keys(api: Api) -> None:
    rows = api.get("/providers/noop/flavor_capabilities").json()["flavor_capabilities"]
    assert rows[0] == {"name": "loadbalancer_topology", "description": TOPOLOGY}
    assert names(rows) == ["loadbalancer_topology", "compute_flavor", "amp_image_tag",
                           "sriov_vip", "allow_member_sriov"]
    r = api.get("/providers/noop/availability_zone_capabilities", status=200)
    assert r.json()["availability_zone_capabilities"][0] == {
        "name": "compute_zone", "description": "The compute availability zone."}
    assert names(r.json()["availability_zone_capabilities"]) == [
        "compute_zone", "volume_zone", "management_network", "valid_vip_networks"]


def test_capabilities_filters_and_fields(api: Api) -> None:
    path = "/providers/haproxy/flavor_capabilities"
    rows = api.get(path, params={"name": "compute_flavor"}).json()["flavor_capabilities"]
    assert rows == [{"name": "compute_flavor", "description": "The compute flavor."}]
    rows = api.get(path, params={"description": TOPOLOGY}).json()["flavor_capabilities"]
    assert names(rows) == ["loadbalancer_topology"]
    rows = api.get(path, params={"name": "compute_flavor",
                                 "description": "The compute flavor."}).json()
    assert names(rows["flavor_capabilities"]) == ["compute_flavor"]
    rows = api.get(path, params={"name": "compute_flavor", "description": "other"}).json()
    assert rows == {"flavor_capabilities": []}
    rows = api.get(path, params={"name": "compute_flavor", "fields": "name"}).json()
    assert rows == {"flavor_capabilities": [{"name": "compute_flavor"}]}
    path = "/providers/haproxy/availability_zone_capabilities"
    rows = api.get(path, params={"name": "compute_zone", "fields": "description"}).json()
    assert rows == {"availability_zone_capabilities": [{"description": "The compute zone."}]}


@pytest.mark.parametrize("what", ["flavor_capabilities", "availability_zone_capabilities"])
def test_capabilities_of_unknown_disabled_missing_and_mute_providers(api: Api,
                                                                     what: str) -> None:
    r = api.get(f"/providers/bogus/{what}", status=400)
    assert api.fault(r) == "Provider 'bogus' is not enabled."
    r = api.get(f"/providers/ghost/{what}", status=501)
    assert api.fault(r) == "Provider 'ghost' was not found."
    r = api.get(f"/providers/mute/{what}", status=501)
    assert api.fault(r) == ("Provider 'mute' does not support a requested action: "
                            "This feature is not implemented by the provider.")


@pytest.mark.parametrize("what", ["flavor_capabilities", "availability_zone_capabilities"])
@pytest.mark.parametrize("roles", ["load-balancer_member", "member", "reader",
                                   "load-balancer_global_observer"])
def test_capabilities_are_for_admins(api: Api, what: str, roles: str) -> None:
    api.get(f"/providers/noop/{what}", project="p1", roles=roles, status=403)
    api.get(f"/providers/noop/{what}", project="p1", roles="load-balancer_admin",
            status=403)
    api.get(f"/providers/noop/{what}", project="p1", roles="admin", status=200)
