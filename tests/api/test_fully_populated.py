"""The fully-populated load balancer create (api-ref "Creating a Fully Populated
Load Balancer")."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.common import constants as c
from lbaas.drivers.noop import NoopDriver
from tests.api.base import Api


def _pool(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **fields}


def _graph() -> dict[str, Any]:
    return {"loadbalancer": {
        "name": "full", "tags": ["t"],
        "listeners": [
            {"name": "http", "protocol": "HTTP", "protocol_port": 80,
             "default_pool": _pool("web", members=[
                 {"address": "127.0.0.10", "protocol_port": 8080, "weight": 2},
                 {"address": "127.0.0.11", "protocol_port": 8080}],
                 healthmonitor={"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2,
                                "url_path": "/health"}),
             "l7policies": [{"action": "REDIRECT_TO_POOL", "redirect_pool": {"name": "api"},
                             "rules": [{"type": "PATH", "compare_type": "STARTS_WITH",
                                        "value": "/api"}]},
                            {"action": "REJECT", "position": 1,
                             "rules": [{"type": "HEADER", "key": "X-Bad",
                                        "compare_type": "EQUAL_TO", "value": "1"}]}]},
            {"name": "tcp", "protocol": "TCP", "protocol_port": 5000,
             "default_pool": {"name": "api"}},
        ],
        "pools": [_pool("api", lb_algorithm="LEAST_CONNECTIONS",
                        members=[{"address": "127.0.0.12", "protocol_port": 9000}])],
    }}


def _counts(api: Api) -> tuple[int, ...]:
    return tuple(len(api.get(f"/{kind}").json()[kind])
                 for kind in ("loadbalancers", "listeners", "pools", "healthmonitors",
                              "l7policies"))


def test_whole_graph_in_one_request(api: Api, noop: NoopDriver) -> None:
    lb = api.post("/loadbalancers", _graph(), status=201).json()["loadbalancer"]
    assert lb["provisioning_status"] == c.PENDING_CREATE
    listeners = {li["name"]: li for li in lb["listeners"]}
    pools = {p["name"]: p for p in lb["pools"]}
    assert set(listeners) == {"http", "tcp"} and set(pools) == {"web", "api"}
    assert "loadbalancers" not in listeners["http"]
    assert listeners["http"]["default_pool_id"] == pools["web"]["id"]
    assert listeners["tcp"]["default_pool_id"] == pools["api"]["id"]
    policies = listeners["http"]["l7policies"]
    assert [p["action"] for p in policies] == ["REJECT", "REDIRECT_TO_POOL"]
    assert [p["position"] for p in policies] == [1, 2]
    assert policies[1]["redirect_pool_id"] == pools["api"]["id"]
    assert policies[1]["rules"][0]["value"] == "/api"
    assert pools["web"]["healthmonitor"]["url_path"] == "/health"
    assert sorted(mb["weight"] for mb in pools["web"]["members"]) == [1, 2]
    assert "healthmonitor" not in pools["api"]
    everything = [lb, *lb["listeners"], *lb["pools"], *policies,
                  *[r for p in policies for r in p["rules"]],
                  *[mb for p in lb["pools"] for mb in p["members"]],
                  pools["web"]["healthmonitor"]]
    assert {o["provisioning_status"] for o in everything} == {c.PENDING_CREATE}

    api.wait_idle()
    tree = api.get(f"/loadbalancers/{lb['id']}/status").json()["statuses"]["loadbalancer"]
    assert tree["provisioning_status"] == c.ACTIVE
    assert {li["provisioning_status"] for li in tree["listeners"]} == {c.ACTIVE}
    spec = noop.applied[lb["id"]]
    assert len(spec.listeners) == 2 and len(spec.pools) == 2
    assert spec.pool(pools["web"]["id"]).health_monitor.url_path == "/health"  # type: ignore[union-attr]
    assert api.get(f"/l7policies/{policies[0]['id']}/rules"
                   ).json()["rules"][0]["key"] == "X-Bad"


def test_cascade_delete_removes_the_whole_graph(api: Api) -> None:
    lb = api.post("/loadbalancers", _graph(), status=201).json()["loadbalancer"]
    api.wait_idle()
    api.delete(f"/loadbalancers/{lb['id']}", status=400)
    api.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"}, status=204)
    api.wait_idle()
    assert _counts(api) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(("mutate", "fault"), [
    (lambda g: g["listeners"][0]["default_pool"].pop("name"),
     "Validation failure: Pools must be named when creating a fully populated loadbalancer."),
    (lambda g: g["pools"].append(_pool("web")),
     "Validation failure: Pool names must be unique when creating a fully populated "
     "loadbalancer."),
    (lambda g: g["pools"].clear(),
     "Validation failure: Pool 'api' was referenced but no full definition was found."),
    (lambda g: g["pools"][0].pop("protocol"),
     "Validation failure: Pool definition for 'api' missing required attribute: protocol"),
])
def test_pool_naming_rules(api: Api, mutate: Any, fault: str) -> None:
    graph = _graph()
    mutate(graph["loadbalancer"])
    r = api.post("/loadbalancers", graph, status=400)
    assert api.fault(r) == fault
    assert _counts(api) == (0, 0, 0, 0, 0)


def test_a_bad_nested_field_creates_nothing(api: Api) -> None:
    graph = _graph()
    graph["loadbalancer"]["listeners"][0]["default_pool"]["members"][0]["weight"] = 300
    r = api.post("/loadbalancers", graph, status=400)
    assert "weight" in api.fault(r)
    graph = _graph()
    graph["loadbalancer"]["listeners"][1]["protocol_port"] = 80
    graph["loadbalancer"]["listeners"][1]["protocol"] = "HTTP"
    api.post("/loadbalancers", graph, status=409)
    assert _counts(api) == (0, 0, 0, 0, 0)
    # and no VIP was kept: the next load balancer gets the first pool address
    assert api.create_lb()["vip_address"] == "127.1.0.1"


def test_quotas_count_the_whole_graph(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"member": 2}}, status=202)
    r = api.post("/loadbalancers", _graph(), project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Member"
    assert _counts(api) == (0, 0, 0, 0, 0)
