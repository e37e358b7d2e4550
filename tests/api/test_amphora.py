"""Amphorae: /v2/octavia/amphorae (after octavia-tempest-plugin's test_amphora.py).

In these tests the ``haproxy`` provider is the noop driver under the name
haproxy: amphora rows follow the provider's name, statuses follow the worker.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from lbaas.common.exceptions import DriverError
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.db import models as m
from tests.api.base import GHOST, Api, held

PATH = "/v2/octavia/amphorae"
FIELDS = {"id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip",
          "vrrp_port_id", "ha_port_id", "cert_expiration", "cert_busy", "role", "status",
          "vrrp_interface", "vrrp_id", "vrrp_priority", "cached_zone", "created_at",
          "updated_at", "image_id", "compute_flavor"}


def amphorae(api: Api, **params: Any) -> list[dict[str, Any]]:
    return list(api.get(PATH, params=params, status=200).json()["amphorae"])


def test_one_standalone_amphora_per_haproxy_load_balancer(api: Api) -> None:
    lb = api.create_lb(provider="haproxy")
    api.create_lb(provider="amphora")
    api.create_lb(provider="noop")  # nothing runs: no amphora
    assert len(amphorae(api)) == 2
    [amp] = amphorae(api, loadbalancer_id=lb["id"])
    assert set(amp) == FIELDS
    assert (amp["role"], amp["status"], amp["loadbalancer_id"]) == \
        ("STANDALONE", "ALLOCATED", lb["id"])
    assert (amp["ha_ip"], amp["ha_port_id"]) == (lb["vip_address"], lb["vip_port_id"])
    assert amp["compute_id"] == socket.gethostname()
    assert amp["created_at"] and amp["updated_at"]
    shown = api.get(f"{PATH}/{amp['id']}", status=200).json()["amphora"]
    assert shown == amp
    # /v2.0 is an alias, as in Octavia (openstacksdk on an unversioned endpoint uses it)
    assert api.get(f"/v2.0/octavia/amphorae/{amp['id']}", status=200).json()["amphora"] == amp
    r = api.get(f"{PATH}/{amp['id']}", params={"fields": ["id", "status"]}, status=200)
    assert r.json() == {"amphora": {"id": amp["id"], "status": "ALLOCATED"}}


def test_unknown_amphora_is_404(api: Api) -> None:
    for method, suffix in (("GET", ""), ("PUT", "/config"), ("PUT", "/failover"),
                           ("GET", "/stats")):
        r = api.request(method, f"{PATH}/{GHOST}{suffix}", status=404)
        assert api.fault(r) == f"Amphora {GHOST} not found."


@pytest.mark.parametrize("roles", ["load-balancer_member", "member",
                                   "load-balancer_global_observer", "reader"])
def test_admin_only(api: Api, roles: str) -> None:
    lb = api.create_lb(provider="haproxy")
    [amp] = amphorae(api)
    api.get(PATH, project=lb["project_id"], roles=roles, status=403)
    for method, suffix in (("GET", ""), ("PUT", "/config"), ("PUT", "/failover"),
                           ("GET", "/stats")):
        api.request(method, f"{PATH}/{amp['id']}{suffix}", project=lb["project_id"],
                    roles=roles, status=403)
    api.get(PATH, project="p9", roles="load-balancer_admin", status=403)  # advanced RBAC only
    api.get(PATH, project="p9", roles="admin", status=200)


def test_status_follows_the_load_balancer(api: Api) -> None:
    with held(api):
        lb = api.create_lb(provider="haproxy", wait=False)
        assert [a["status"] for a in amphorae(api)] == ["PENDING_CREATE"]
    api.wait_idle()
    assert [a["status"] for a in amphorae(api)] == ["ALLOCATED"]
    with held(api):
        api.delete(f"/loadbalancers/{lb['id']}", status=204)
        assert [a["status"] for a in amphorae(api)] == ["PENDING_DELETE"]
    api.wait_idle()
    assert amphorae(api) == []


def test_config_and_failover_reapply_the_load_balancer(api: Api) -> None:
    lb = api.create_lb(provider="haproxy")
    [amp] = amphorae(api)
    calls = api.service.drivers["haproxy"].calls  # type: ignore[attr-defined]
    before = len(calls)
    api.put(f"{PATH}/{amp['id']}/config", status=202)
    api.wait_idle()
    api.put(f"{PATH}/{amp['id']}/failover", status=202)
    api.wait_idle()
    assert calls[before:] == [("apply", lb["id"]), ("failover", lb["id"])]
    assert api.lb_status(lb["id"]) == "ACTIVE"
    with held(api):
        api.put(f"{PATH}/{amp['id']}/config", status=202)
        r = api.put(f"{PATH}/{amp['id']}/failover", status=409)
        assert "is immutable" in api.fault(r)


def test_stats_per_listener(api: Api) -> None:
    lb = api.create_lb(provider="haproxy")
    [amp] = amphorae(api)
    assert api.get(f"{PATH}/{amp['id']}/stats", status=200).json() == {"amphora_stats": []}
    first = api.create_listener(lb["id"], protocol_port=81)
    second = api.create_listener(lb["id"], protocol_port=82)
    with api.service.sessions() as session, session.begin():
        session.add(m.ListenerStatistics(listener_id=first["id"], bytes_in=10, bytes_out=20,
                                         active_connections=1, total_connections=3,
                                         request_errors=0))
    stats = api.get(f"{PATH}/{amp['id']}/stats", status=200).json()["amphora_stats"]
    zeros = {"active_connections": 0, "bytes_in": 0, "bytes_out": 0, "request_errors": 0,
             "total_connections": 0}
    ids = {"id": amp["id"], "loadbalancer_id": lb["id"]}
    assert stats == [
        {**ids, "listener_id": first["id"], "active_connections": 1, "bytes_in": 10,
         "bytes_out": 20, "request_errors": 0, "total_connections": 3},
        {**ids, "listener_id": second["id"], **zeros}]


def test_a_failed_first_start_is_error(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(lb: LoadBalancerSpec) -> None:
        raise DriverError("cannot bind socket")

    monkeypatch.setattr(api.service.drivers["haproxy"], "apply", refuse)
    lb = api.create_lb(provider="haproxy")
    assert api.lb_status(lb["id"]) == "ERROR"
    assert [a["status"] for a in amphorae(api)] == ["ERROR"]
    # a later failure of a change leaves a serving amphora ALLOCATED
    monkeypatch.undo()
    api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}, status=200)
    api.wait_idle()
    assert [a["status"] for a in amphorae(api)] == ["ALLOCATED"]
    monkeypatch.setattr(api.service.drivers["haproxy"], "apply", refuse)
    api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "y"}}, status=200)
    api.wait_idle()
    assert api.lb_status(lb["id"]) == "ERROR"
    assert [a["status"] for a in amphorae(api)] == ["ALLOCATED"]
