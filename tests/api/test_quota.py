"""Quotas: /v2/lbaas/quotas (after Octavia's functional test_quotas.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lbaas.config import QuotaDefaults
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import Api
from tests.conftest import make_settings

# Distinct defaults, so that a default is never mistaken for a set value.
DEFAULTS = QuotaDefaults(loadbalancer=7, listener=8, member=9, pool=-1, healthmonitor=10,
                         l7policy=11, l7rule=12)
KEYS = ("loadbalancer", "load_balancer", "listener", "member", "pool", "healthmonitor",
        "health_monitor", "l7policy", "l7rule")
QUOTA_ADMIN = "admin"


@pytest.fixture
def service(tmp_path: Path, db_url: str, noop: NoopDriver) -> Iterator[Service]:
    svc = Service(make_settings(tmp_path, database_url=db_url, quotas=DEFAULTS),
                  drivers={"noop": noop, "haproxy": noop})
    svc.start()
    yield svc
    svc.stop()


def values(**current: int) -> dict[str, int]:
    """Quota values by current name -> the body Octavia prints (both spellings)."""
    body = {"loadbalancer": DEFAULTS.loadbalancer, "listener": DEFAULTS.listener,
            "member": DEFAULTS.member, "pool": DEFAULTS.pool,
            "healthmonitor": DEFAULTS.healthmonitor, "l7policy": DEFAULTS.l7policy,
            "l7rule": DEFAULTS.l7rule, **current}
    body["load_balancer"] = body["loadbalancer"]
    body["health_monitor"] = body["healthmonitor"]
    return body


def quota_of(api: Api, of: str, **kw: Any) -> dict[str, Any]:
    return dict(api.get(f"/quotas/{of}", status=200, **kw).json()["quota"])


# -- show, set, reset ---------------------------------------------------------

def test_no_quotas_set_lists_nothing(api: Api) -> None:
    assert api.get("/quotas", status=200).json() == {"quotas": [], "quotas_links": []}


def test_unset_project_shows_the_configured_defaults(api: Api) -> None:
    assert quota_of(api, "p1") == {"project_id": "p1", "tenant_id": "p1", **values()}


def test_put_answers_202_with_the_effective_quotas(api: Api) -> None:
    r = api.put("/quotas/p1", {"quota": {"loadbalancer": 5, "member": 0, "pool": 30}},
                status=202)
    expected = {"project_id": "p1", "tenant_id": "p1",
                **values(loadbalancer=5, member=0, pool=30)}
    assert r.json() == {"quota": expected}
    assert quota_of(api, "p1") == expected


def test_put_of_the_full_set_with_limits(api: Api) -> None:
    body = {"loadbalancer": -1, "listener": 2000000000, "member": 0, "pool": 1,
            "healthmonitor": 2, "l7policy": 3, "l7rule": 4}
    api.put("/quotas/p1", {"quota": body}, status=202)
    assert quota_of(api, "p1") == {"project_id": "p1", "tenant_id": "p1", **values(**body)}


def test_deprecated_spellings_set_the_same_quotas(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"load_balancer": 3, "health_monitor": 4}}, status=202)
    shown = quota_of(api, "p1")
    assert (shown["loadbalancer"], shown["load_balancer"]) == (3, 3)
    assert (shown["healthmonitor"], shown["health_monitor"]) == (4, 4)


def test_current_spelling_wins_over_the_deprecated_one(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"load_balancer": 3, "loadbalancer": 5}}, status=202)
    assert quota_of(api, "p1")["loadbalancer"] == 5


def test_keys_left_out_keep_their_value_and_null_resets_one(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"loadbalancer": 30, "listener": 30}}, status=202)
    api.put("/quotas/p1", {"quota": {"pool": 30}}, status=202)
    assert quota_of(api, "p1") == {"project_id": "p1", "tenant_id": "p1",
                                   **values(loadbalancer=30, listener=30, pool=30)}
    api.put("/quotas/p1", {"quota": {"listener": None}}, status=202)
    assert quota_of(api, "p1")["listener"] == DEFAULTS.listener
    assert quota_of(api, "p1")["loadbalancer"] == 30


def test_delete_resets_to_the_defaults(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"loadbalancer": 30, "l7rule": 1}}, status=202)
    r = api.delete("/quotas/p1", status=202)
    assert r.content == b""
    assert quota_of(api, "p1") == {"project_id": "p1", "tenant_id": "p1", **values()}
    assert api.get("/quotas").json()["quotas"] == []


def test_delete_of_a_project_without_quotas_is_404(api: Api) -> None:
    r = api.delete("/quotas/bogus", status=404)
    assert api.fault(r) == "Quotas bogus not found."


def test_defaults_ignore_what_is_set(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"loadbalancer": 30}}, status=202)
    assert api.get("/quotas/defaults", status=200).json() == {
        "quota": {"project_id": None, "tenant_id": None, **values()}}
    r = api.get("/quotas/p1/default", status=200)
    assert r.json() == {"quota": {"project_id": "p1", "tenant_id": "p1", **values()}}


def test_show_with_fields(api: Api) -> None:
    r = api.get("/quotas/p1", params={"fields": "project_id,pool"}, status=200)
    assert r.json() == {"quota": {"project_id": "p1", "pool": DEFAULTS.pool}}


# -- validation -----------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"loadbalancer": -2}, "loadbalancer"),
    ({"load_balancer": 2000000001}, "load_balancer"),
    ({"listener": "five"}, "listener"),
    ({"member": 1.5}, "member"),
    ({"pool": True}, "pool"),
    ({"healthmonitor": [1]}, "healthmonitor"),
    ({"health_monitor": -5}, "health_monitor"),
    ({"l7policy": {}}, "l7policy"),
    ({"l7rule": 2**40}, "l7rule"),
])
def test_put_refuses_bad_values_naming_the_field(api: Api, body: dict[str, Any],
                                                 field: str) -> None:
    r = api.put("/quotas/p1", {"quota": body}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert api.get("/quotas").json()["quotas"] == []


def test_put_refuses_unknown_keys_and_a_missing_envelope(api: Api) -> None:
    r = api.put("/quotas/p1", {"quota": {"loadbalancer": 1, "amphora": 2}}, status=400)
    assert api.fault(r) == "Unknown attribute for argument quota: amphora"
    r = api.put("/quotas/p1", {"loadbalancer": 1}, status=400)
    assert "quota" in api.fault(r)
    assert api.get("/quotas").json()["quotas"] == []


# -- lists ------------------------------------------------------------------------

def set_three(api: Api) -> None:
    for project, lb, member in (("p1", 3, 8), ("p2", 2, 10), ("p3", 1, 9)):
        api.put(f"/quotas/{project}", {"quota": {"loadbalancer": lb, "member": member}},
                status=202)


def test_list_shows_each_project_with_quotas(api: Api) -> None:
    set_three(api)
    quotas = api.get("/quotas", status=200).json()["quotas"]
    assert [(q["project_id"], q["tenant_id"], q["load_balancer"], q["member"])
            for q in quotas] == [("p1", "p1", 3, 8), ("p2", "p2", 2, 10), ("p3", "p3", 1, 9)]
    assert all(q["listener"] == DEFAULTS.listener for q in quotas)


@pytest.mark.parametrize("key", ["loadbalancer", "load_balancer"])
def test_list_sorts_by_either_spelling(api: Api, key: str) -> None:
    set_three(api)
    desc = api.get("/quotas", params={"sort": f"{key}:desc"}).json()["quotas"]
    asc = api.get("/quotas", params={"sort": f"{key}:asc"}).json()["quotas"]
    assert [q["project_id"] for q in desc] == ["p1", "p2", "p3"]
    assert [q["project_id"] for q in asc] == ["p3", "p2", "p1"]


def test_list_filters(api: Api) -> None:
    set_three(api)
    r = api.get("/quotas", params={"member": "10"}, status=200)
    assert [q["project_id"] for q in r.json()["quotas"]] == ["p2"]
    r = api.get("/quotas", params={"project_id": "p3", "fields": "project_id"}, status=200)
    assert r.json()["quotas"] == [{"project_id": "p3"}]
    api.get("/quotas", params={"bogus": "1"}, status=400)


def test_list_pages_by_project(api: Api) -> None:
    set_three(api)
    first = api.get("/quotas", params={"limit": 2}, status=200).json()
    assert [q["project_id"] for q in first["quotas"]] == ["p1", "p2"]
    assert [link["rel"] for link in first["quotas_links"]] == ["next"]
    rest = api.get("/quotas", params={"limit": 2, "marker": "p2"}, status=200).json()
    assert [q["project_id"] for q in rest["quotas"]] == ["p3"]
    assert [link["rel"] for link in rest["quotas_links"]] == ["previous"]
    api.get("/quotas", params={"marker": "nobody"}, status=400)


# -- policy -----------------------------------------------------------------------

@pytest.mark.parametrize("roles", ["member", "reader"])
def test_project_roles_read_only_their_own_quotas(api: Api, roles: str) -> None:
    set_three(api)
    assert quota_of(api, "p1", project="p1", roles=roles)["loadbalancer"] == 3
    api.get("/quotas/p1/default", project="p1", roles=roles, status=200)
    api.get("/quotas/defaults", project="p1", roles=roles, status=200)
    api.get("/quotas/p2", project="p1", roles=roles, status=403)
    api.get("/quotas/p2/default", project="p1", roles=roles, status=403)
    mine = api.get("/quotas", project="p1", roles=roles, status=200).json()["quotas"]
    assert [q["project_id"] for q in mine] == ["p1"]
    api.get("/quotas", params={"project_id": "p2"}, project="p1", roles=roles, status=403)


@pytest.mark.parametrize("roles", ["load-balancer_member", "member", "reader",
                                   "load-balancer_global_observer"])
def test_only_quota_admins_and_admins_write(api: Api, roles: str) -> None:
    api.put("/quotas/p1", {"quota": {"loadbalancer": 3}}, status=202)
    r = api.put("/quotas/p1", {"quota": {"loadbalancer": 30}}, project="p1", roles=roles,
                status=403)
    assert api.fault(r) == "Policy does not allow this request to be performed."
    api.delete("/quotas/p1", project="p1", roles=roles, status=403)
    assert quota_of(api, "p1")["loadbalancer"] == 3


@pytest.mark.parametrize("roles", [QUOTA_ADMIN])
def test_quota_admins_manage_every_project(api: Api, roles: str) -> None:
    set_three(api)
    seen = api.get("/quotas", project="ops", roles=roles, status=200).json()["quotas"]
    assert len(seen) == 3
    api.put("/quotas/p2", {"quota": {"loadbalancer": 20}}, project="ops", roles=roles,
            status=202)
    assert quota_of(api, "p2", project="ops", roles=roles)["loadbalancer"] == 20
    api.delete("/quotas/p3", project="ops", roles=roles, status=202)
    assert len(api.get("/quotas").json()["quotas"]) == 2


def test_global_observer_reads_every_project(api: Api) -> None:
    set_three(api)
    roles = "admin"  # Octavia's load-balancer:global_observer is role:admin by default
    assert len(api.get("/quotas", project="x", roles=roles).json()["quotas"]) == 3
    assert quota_of(api, "p2", project="x", roles=roles)["member"] == 10


@pytest.mark.parametrize("roles", ["", "load-balancer_bogus"])
def test_callers_without_a_role_read_nothing(api: Api, roles: str) -> None:
    set_three(api)
    api.get("/quotas", project="p1", roles=roles, status=403)
    api.get("/quotas/p1", project="p1", roles=roles, status=403)
    api.get("/quotas/defaults", project="p1", roles=roles, status=403)
    api.get("/quotas/p1/default", project="p1", roles=roles, status=403)


# -- enforcement --------------------------------------------------------------------

def _next_object(api: Api, kind: str) -> Callable[[], httpx.Response]:
    """Create what ``kind`` needs in project p1; return a call posting one more ``kind``."""
    counter = iter(range(10, 1000))

    def post(path: str, key: str,
             make: Callable[[int], dict[str, Any]]) -> Callable[[], httpx.Response]:
        return lambda: api.post(path, {key: make(next(counter))}, project="p1")

    if kind == "loadbalancer":
        return post("/loadbalancers", "loadbalancer", lambda n: {})
    lb = api.create_lb(_project="p1")
    if kind == "listener":
        return post("/listeners", "listener", lambda n: {
            "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": n})
    if kind == "pool":
        return post("/pools", "pool", lambda n: {
            "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
    if kind in ("member", "healthmonitor"):
        pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
        if kind == "healthmonitor":
            return post("/healthmonitors", "healthmonitor", lambda n: {
                "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3,
                "max_retries": 2})
        return post(f"/pools/{pool['id']}/members", "member", lambda n: {
            "address": f"127.0.0.{n}", "protocol_port": 8080})
    listener = api.create_listener(lb["id"], _project="p1")
    if kind == "l7policy":
        return post("/l7policies", "l7policy", lambda n: {
            "listener_id": listener["id"], "action": "REJECT"})
    policy = api.create_l7policy(listener["id"], _project="p1")
    return post(f"/l7policies/{policy['id']}/rules", "rule", lambda n: {
        "type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"})


QUOTA_NAMES = {"loadbalancer": "Load Balancer", "listener": "Listener", "pool": "Pool",
               "member": "Member", "healthmonitor": "Health Monitor",
               "l7policy": "L7 Policy", "l7rule": "L7 Rule"}


@pytest.mark.parametrize("kind", list(QUOTA_NAMES))
def test_quota_of_zero_blocks_and_unlimited_unblocks(api: Api, kind: str) -> None:
    create_one = _next_object(api, kind)
    api.put("/quotas/p1", {"quota": {kind: 0}}, status=202)
    r = create_one()
    assert r.status_code == 403, r.text
    assert api.fault(r) == f"Quota has been met for resources: {QUOTA_NAMES[kind]}"
    api.wait_idle()
    api.put("/quotas/p1", {"quota": {kind: -1}}, status=202)
    r = create_one()
    assert r.status_code == 201, r.text


def test_load_balancer_quota_counts_and_resets_to_the_default(api: Api) -> None:
    api.put("/quotas/p1", {"quota": {"loadbalancer": 1}}, status=202)
    api.create_lb(_project="p1")
    r = api.post("/loadbalancers", {"loadbalancer": {}}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Load Balancer"
    api.create_lb(_project="p2")  # another project is not counted
    api.put("/quotas/p1", {"quota": {"loadbalancer": 2}}, status=202)
    api.create_lb(_project="p1")
    api.delete("/quotas/p1", status=202)  # back to the default of 7
    for _ in range(DEFAULTS.loadbalancer - 2):
        api.create_lb(_project="p1", wait=False)
    api.post("/loadbalancers", {"loadbalancer": {}}, project="p1", status=403)
    api.wait_idle()
