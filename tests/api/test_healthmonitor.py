"""Health monitors: /v2/lbaas/healthmonitors (after Octavia's test_health_monitor.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.common import constants as c
from tests.api.base import GHOST, Api, held

HM_FIELDS = {
    "tenant_id",
    "id", "name", "type", "delay", "timeout", "max_retries", "max_retries_down",
    "http_method", "url_path", "expected_codes", "admin_state_up", "project_id", "pools",
    "provisioning_status", "operating_status", "created_at", "updated_at", "tags",
    "http_version", "domain_name",
}


def _body(pool_id: str | None, **fields: Any) -> dict[str, Any]:
    return {"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": 5, "timeout": 3,
                              "max_retries": 2, **fields}}


# -- create ----------------------------------------------------------------------

def test_create_has_octavia_shape_and_marks_parents(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    with held(api):
        hm = api.create_health_monitor(pool["id"], wait=False, tags=["t"])
        assert set(hm) == HM_FIELDS
        assert hm["provisioning_status"] == c.PENDING_CREATE
        assert hm["operating_status"] == c.OFFLINE
        assert hm["pools"] == [{"id": pool["id"]}]
        assert (hm["type"], hm["delay"], hm["timeout"], hm["max_retries"]) == ("HTTP", 5, 3, 2)
        assert hm["max_retries_down"] == 3
        assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == ("GET", "/", "200")
        assert hm["http_version"] is None and hm["domain_name"] is None
        assert hm["admin_state_up"] is True and hm["name"] == "" and hm["tags"] == ["t"]
        assert hm["project_id"] == lb["project_id"] and hm["updated_at"] is None
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    assert api.status_of("healthmonitors", "healthmonitor", hm["id"]) == c.ACTIVE
    assert api.get(f"/pools/{pool['id']}").json()["pool"]["healthmonitor_id"] == hm["id"]
    assert api.status_of("listeners", "listener", listener["id"]) == c.ACTIVE


def test_create_https_full(api: Api, pool: dict[str, Any]) -> None:
    hm = api.create_health_monitor(
        pool["id"], type="HTTPS", delay=1, timeout=1, max_retries=1, max_retries_down=1,
        admin_state_up=False, expected_codes="200-204", http_method="HEAD", name="Test HM",
        url_path="/health?x=1", http_version=1.1, domain_name="testlab.com",
        project_id="ignored")
    assert (hm["type"], hm["max_retries_down"], hm["admin_state_up"]) == ("HTTPS", 1, False)
    assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == (
        "HEAD", "/health?x=1", "200-204")
    assert (hm["http_version"], hm["domain_name"], hm["name"]) == (1.1, "testlab.com", "Test HM")
    assert hm["project_id"] == pool["project_id"]


def test_http_version_is_taken_as_a_number_or_a_string(api: Api, lb: dict[str, Any]) -> None:
    for version, expected in (("1.0", 1.0), (1, 1.0), ("1.1", 1.1)):
        pool = api.create_pool(loadbalancer_id=lb["id"])
        assert api.create_health_monitor(pool["id"], http_version=version)[
            "http_version"] == expected


def test_non_http_monitors_have_no_http_fields(api: Api, lb: dict[str, Any]) -> None:
    for hm_type in ("TCP", "PING", "TLS-HELLO"):
        pool = api.create_pool(loadbalancer_id=lb["id"])
        for field, value in (("http_method", "GET"), ("url_path", "/"),
                             ("expected_codes", "200")):
            r = api.post("/healthmonitors", _body(pool["id"], type=hm_type, **{field: value}),
                         status=400)
            assert api.fault(r) == (f"{field} is not a valid option for health monitors of "
                                    f"type {hm_type}")
        hm = api.create_health_monitor(pool["id"], type=hm_type)
        assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == (None, None, None)


def test_one_monitor_per_pool(api: Api, pool: dict[str, Any]) -> None:
    api.create_health_monitor(pool["id"])
    r = api.post("/healthmonitors", _body(pool["id"]), status=409)
    assert api.fault(r) == "This pool already has a health monitor"


TYPE_RULES = [
    ("UDP", "TLS-HELLO", 3,
     "The associated pool protocol is UDP, so only a UDP-CONNECT/SCTP/TCP/HTTP health "
     "monitor is supported."),
    ("SCTP", "HTTPS", 3,
     "The associated pool protocol is SCTP, so only a UDP-CONNECT/SCTP/TCP/HTTP health "
     "monitor is supported."),
    ("UDP", "UDP-CONNECT", 1,
     "The request delay value 1 should be larger than 3 for UDP-CONNECT health monitor "
     "type."),
    ("HTTP", "UDP-CONNECT", 5, "The UDP-CONNECT type is only supported for pools of type "
                               "UDP/SCTP."),
    ("TCP", "SCTP", 5, "The SCTP type is only supported for pools of type UDP/SCTP."),
]


def test_type_must_suit_the_pool_protocol(api: Api, lb: dict[str, Any]) -> None:
    pools = {p: api.create_pool(loadbalancer_id=lb["id"], protocol=p)["id"]
             for p in ("UDP", "SCTP", "HTTP", "TCP")}
    for pool_protocol, hm_type, delay, message in TYPE_RULES:
        r = api.post("/healthmonitors", _body(pools[pool_protocol], type=hm_type, delay=delay),
                     status=400)
        assert api.fault(r) == f"Validation failure: {message}", (pool_protocol, hm_type)
    assert api.get("/healthmonitors").json()["healthmonitors"] == []


def test_udp_and_sctp_pools_take_their_monitors(api: Api, lb: dict[str, Any]) -> None:
    for protocol, hm_type in (("UDP", "UDP-CONNECT"), ("UDP", "SCTP"), ("UDP", "TCP"),
                              ("UDP", "HTTP"), ("SCTP", "SCTP"), ("SCTP", "UDP-CONNECT")):
        pool = api.create_pool(loadbalancer_id=lb["id"], protocol=protocol)
        hm = api.create_health_monitor(pool["id"], type=hm_type, delay=3)
        assert hm["type"] == hm_type


def test_domain_name_needs_http_1_1(api: Api, pool: dict[str, Any]) -> None:
    r = api.post("/healthmonitors", _body(pool["id"], domain_name="testlab.com"), status=400)
    assert api.fault(r) == ("Validation failure: 'http_version' must be specified when "
                            "'domain_name' is provided.")
    r = api.post("/healthmonitors", _body(pool["id"], domain_name="testlab.com",
                                          http_version=1.0), status=400)
    assert api.fault(r) == ("http_version 1.0 is not a valid option for health monitors "
                            "HTTP 1.1 domain name health check")
    for bad in ("^testla&b.com", "testla\nb.com", "", "testlab.com\n"):
        r = api.post("/healthmonitors", _body(pool["id"], domain_name=bad, http_version=1.1),
                     status=400)
        assert api.fault(r).startswith("Invalid input for field/attribute domain_name"), bad


BAD_FIELDS = [
    ({"type": "BOGUS"}, "type"),
    ({"type": None}, "type"),
    ({"delay": -1}, "delay"),
    ({"delay": "5s"}, "delay"),
    ({"delay": None}, "delay"),
    ({"delay": 24 * 24 * 3600 + 1}, "delay"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": 1.5}, "timeout"),
    ({"timeout": 2**31}, "timeout"),
    ({"max_retries": 0}, "max_retries"),
    ({"max_retries": 11}, "max_retries"),
    ({"max_retries": None}, "max_retries"),
    ({"max_retries_down": 0}, "max_retries_down"),
    ({"max_retries_down": 11}, "max_retries_down"),
    ({"http_method": "FETCH"}, "http_method"),
    ({"url_path": "https://openstack.org"}, "url_path"),
    ({"url_path": "/a b"}, "url_path"),
    ({"expected_codes": "abc"}, "expected_codes"),
    ({"expected_codes": "2000"}, "expected_codes"),
    ({"expected_codes": "200\n"}, "expected_codes"),  # a grammar matches the whole value
    ({"http_version": 2.0}, "http_version"),
    ({"http_version": "one"}, "http_version"),
    ({"admin_state_up": "no"}, "admin_state_up"),
    ({"name": "x" * 256}, "name"),
    ({"tags": [None]}, "tags"),
    ({"pool_id": "not-a-uuid"}, "pool_id"),
    ({"pool_id": None}, "pool_id"),
]


def test_create_refuses_bad_fields_naming_them(api: Api, lb: dict[str, Any],
                                               pool: dict[str, Any]) -> None:
    for fields, field in BAD_FIELDS:
        r = api.post("/healthmonitors", _body(**{"pool_id": pool["id"], **fields}), status=400)
        assert api.fault(r).startswith(f"Invalid input for field/attribute {field}"), fields
    r = api.post("/healthmonitors", _body(pool["id"], type="PING", bogus=1), status=400)
    assert api.fault(r) == "Unknown attribute for argument healthmonitor: bogus"
    r = api.post("/healthmonitors", {"healthmonitor": {"pool_id": pool["id"], "type": "TCP"}},
                 status=400)
    assert "Mandatory field missing" in api.fault(r)
    assert api.get("/healthmonitors").json()["healthmonitors"] == []
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_unknown_pool_is_404(api: Api) -> None:
    r = api.post("/healthmonitors", _body(GHOST), status=404)
    assert api.fault(r) == f"Pool {GHOST} not found."


def test_members_keep_their_operating_status(api: Api, pool: dict[str, Any]) -> None:
    member = api.create_member(pool["id"])
    assert member["operating_status"] == c.NO_MONITOR
    api.create_health_monitor(pool["id"])
    # Octavia's API leaves members' operating status to the health manager.
    shown = api.get(f"/pools/{pool['id']}/members/{member['id']}").json()["member"]
    assert shown["operating_status"] == c.NO_MONITOR


# -- show, update, delete -------------------------------------------------------

def test_show(api: Api, pool: dict[str, Any]) -> None:
    hm = api.create_health_monitor(pool["id"], name="hm")
    shown = api.show("healthmonitors", "healthmonitor", hm["id"])
    assert shown["provisioning_status"] == c.ACTIVE and shown["name"] == "hm"
    assert shown["pools"] == [{"id": pool["id"]}]
    only = api.get(f"/healthmonitors/{hm['id']}", params={"fields": "id,type"}).json()
    assert only == {"healthmonitor": {"id": hm["id"], "type": "HTTP"}}
    r = api.get(f"/healthmonitors/{GHOST}", status=404)
    assert api.fault(r) == f"Health Monitor {GHOST} not found."
    assert api.get(f"/v2.0/lbaas/healthmonitors/{hm['id']}").json()["healthmonitor"] == shown


def test_update_changes_given_fields_and_marks_parents(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    hm = api.create_health_monitor(pool["id"], tags=["old"])
    with held(api):
        body = api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": {
            "max_retries": 4, "delay": 10, "timeout": 8, "url_path": "/health",
            "tags": ["new"], "admin_state_up": False, "http_version": 1.1,
            "domain_name": "example.org"}}, status=200).json()["healthmonitor"]
        assert body["provisioning_status"] == c.PENDING_UPDATE
        assert (body["max_retries"], body["delay"], body["timeout"]) == (4, 10, 8)
        assert (body["url_path"], body["tags"], body["admin_state_up"]) == (
            "/health", ["new"], False)
        assert (body["http_version"], body["domain_name"]) == (1.1, "example.org")
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    shown = api.show("healthmonitors", "healthmonitor", hm["id"])
    assert shown["provisioning_status"] == c.ACTIVE and shown["updated_at"] is not None


def test_update_null_resets_defaults(api: Api, pool: dict[str, Any]) -> None:
    hm = api.create_health_monitor(pool["id"], name="test", domain_name="test.example.com",
                                   expected_codes="400", http_method="HEAD", http_version="1.1",
                                   url_path="/test", max_retries_down=5)
    nulls = {k: None for k in ("domain_name", "expected_codes", "http_method", "http_version",
                               "max_retries_down", "name", "url_path")}
    body = api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": nulls},
                   status=200).json()["healthmonitor"]
    assert body["domain_name"] is None and body["http_version"] is None
    assert (body["expected_codes"], body["http_method"], body["url_path"]) == (
        "200", "GET", "/")
    assert body["max_retries_down"] == 3 and body["name"] == ""


def test_update_rules(api: Api, lb: dict[str, Any], pool: dict[str, Any]) -> None:
    hm = api.create_health_monitor(pool["id"])
    path = f"/healthmonitors/{hm['id']}"
    for field in ("delay", "timeout", "max_retries"):
        r = api.put(path, {"healthmonitor": {field: None}}, status=400)
        assert api.fault(r) == f"None is not a valid option for {field}"
    r = api.put(path, {"healthmonitor": {"domain_name": "a.example"}}, status=400)
    assert "'http_version' must be specified" in api.fault(r)
    r = api.put(path, {"healthmonitor": {"domain_name": "a.example", "http_version": 1.0}},
                status=400)
    assert api.fault(r).startswith("http_version 1.0 is not a valid option")
    r = api.put(path, {"healthmonitor": {"http_method": "bad_method", "delay": 2}}, status=400)
    assert "http_method" in api.fault(r)
    for field in ("type", "pool_id"):
        r = api.put(path, {"healthmonitor": {field: None}}, status=400)
        assert api.fault(r) == f"Unknown attribute for argument healthmonitor: {field}"
    tcp_pool = api.create_pool(loadbalancer_id=lb["id"], protocol="TCP")
    tcp = api.create_health_monitor(tcp_pool["id"], type="TCP")
    for field, value in (("http_method", "GET"), ("url_path", "/"), ("expected_codes", "200"),
                         ("http_method", None)):
        r = api.put(f"/healthmonitors/{tcp['id']}", {"healthmonitor": {field: value}},
                    status=400)
        assert api.fault(r) == f"{field} is not a valid option for health monitors of type TCP"
    udp_pool = api.create_pool(loadbalancer_id=lb["id"], protocol="UDP")
    udp = api.create_health_monitor(udp_pool["id"], type="UDP-CONNECT", delay=3)
    r = api.put(f"/healthmonitors/{udp['id']}", {"healthmonitor": {"delay": 1}}, status=400)
    assert api.fault(r) == ("Validation failure: The request delay value 1 should be larger "
                            "than 3 for UDP-CONNECT health monitor type.")
    api.put(f"/healthmonitors/{udp['id']}", {"healthmonitor": {"timeout": 2}}, status=200)
    api.wait_idle()
    assert api.show("healthmonitors", "healthmonitor", hm["id"])["delay"] == 5


def test_delete(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    hm = api.create_health_monitor(pool["id"])
    with held(api):
        api.delete(f"/healthmonitors/{hm['id']}", status=204)
        assert api.status_of("healthmonitors", "healthmonitor", hm["id"]) == c.PENDING_DELETE
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    api.get(f"/healthmonitors/{hm['id']}", status=404)
    api.delete(f"/healthmonitors/{hm['id']}", status=404)
    assert api.get(f"/pools/{pool['id']}").json()["pool"]["healthmonitor_id"] is None
    api.create_health_monitor(pool["id"])  # the pool may get a new one


@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, lb: dict[str, Any], pending: str) -> None:
    pool = api.create_pool(loadbalancer_id=lb["id"])
    hm = api.create_health_monitor(pool["id"], name="hm")
    other = api.create_pool(loadbalancer_id=lb["id"])
    with held(api):
        api.set_lb_status(lb["id"], pending)
        r = api.post("/healthmonitors", _body(other["id"]), status=409)
        assert api.fault(r) == f"Load Balancer {lb['id']} is immutable and cannot be updated."
        api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": {"name": "x"}}, status=409)
        api.delete(f"/healthmonitors/{hm['id']}", status=409)
        monitors = api.get("/healthmonitors").json()["healthmonitors"]
        assert [(h["name"], h["provisioning_status"]) for h in monitors] == [("hm", c.ACTIVE)]


# -- lists -------------------------------------------------------------------------

def test_list_pagination_sorting_filters_and_fields(api: Api, lb: dict[str, Any]) -> None:
    pools = [api.create_pool(loadbalancer_id=lb["id"], protocol="TCP") for _ in range(3)]
    a = api.create_health_monitor(pools[0]["id"], name="a", type="TCP", max_retries=3,
                                  tags=["x"])
    b = api.create_health_monitor(pools[1]["id"], name="b", type="PING", max_retries=1)
    cc = api.create_health_monitor(pools[2]["id"], name="c", type="HTTP", max_retries=2,
                                   tags=["x", "y"])
    by_retries = api.get("/healthmonitors", params={"sort": "max_retries:asc"}).json()
    assert [h["name"] for h in by_retries["healthmonitors"]] == ["b", "c", "a"]
    page = api.get("/healthmonitors", params={"limit": 2, "sort": "name"}).json()
    assert [h["name"] for h in page["healthmonitors"]] == ["a", "b"]
    assert page["healthmonitors_links"][0]["rel"] == "next"
    rest = api.get("/healthmonitors", params={"limit": 2, "sort": "name",
                                              "marker": b["id"]}).json()["healthmonitors"]
    assert [h["id"] for h in rest] == [cc["id"]]
    assert [h["id"] for h in api.get("/healthmonitors", params={"type": "PING"})
            .json()["healthmonitors"]] == [b["id"]]
    assert [h["id"] for h in api.get("/healthmonitors", params={"pool_id": pools[0]["id"]})
            .json()["healthmonitors"]] == [a["id"]]
    tagged = api.get("/healthmonitors", params={"tags-any": "y", "sort": "name"}).json()
    assert [h["name"] for h in tagged["healthmonitors"]] == ["c"]
    only = api.get("/healthmonitors", params={"fields": "name", "sort": "name:desc"}).json()
    assert only["healthmonitors"] == [{"name": "c"}, {"name": "b"}, {"name": "a"}]
    api.get("/healthmonitors", params={"delay": "soon"}, status=400)


# -- projects, policy, quota ------------------------------------------------------------

def test_other_projects_monitors_are_403(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    hm = api.create_health_monitor(pool["id"], _project="p1")
    assert hm["project_id"] == "p1"
    api.get(f"/healthmonitors/{hm['id']}", project="p2", status=403)
    api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": {"name": "x"}}, project="p2",
            status=403)
    api.delete(f"/healthmonitors/{hm['id']}", project="p2", status=403)
    r = api.post("/healthmonitors", _body(pool["id"]), project="p2", status=403)
    assert api.fault(r) == "Policy does not allow this request to be performed."
    assert api.get("/healthmonitors", project="p2").json()["healthmonitors"] == []
    assert len(api.get("/healthmonitors", project="p1").json()["healthmonitors"]) == 1


def test_roles_follow_octavia_policy(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    hm = api.create_health_monitor(pool["id"], _project="p1")
    other = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    for role in ("reader",):
        api.post("/healthmonitors", _body(other["id"]), project="p1", roles=role, status=403)
        api.put(f"/healthmonitors/{hm['id']}", {"healthmonitor": {"name": "x"}}, project="p1",
                roles=role, status=403)
        api.delete(f"/healthmonitors/{hm['id']}", project="p1", roles=role, status=403)
        api.get(f"/healthmonitors/{hm['id']}", project="p1", roles=role, status=200)
        api.get("/healthmonitors", project="p1", roles=role, status=200)
    api.get("/healthmonitors", project="p1", roles="nothing", status=403)
    api.post("/healthmonitors", _body(other["id"]), project="p1", roles="member", status=201)


def test_quota_on_monitors(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pools = [api.create_pool(loadbalancer_id=lb["id"], _project="p1") for _ in range(2)]
    api.put("/quotas/p1", {"quota": {"healthmonitor": 1}}, status=202)
    api.create_health_monitor(pools[0]["id"], _project="p1")
    r = api.post("/healthmonitors", _body(pools[1]["id"]), project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Health Monitor"
