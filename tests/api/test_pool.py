"""Pools: /v2/lbaas/pools (after Octavia's functional test_pool.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.api.routes import pool as pool_routes
from lbaas.api.schemas.pool import PoolFullResponse, PoolSingleCreate
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.testing.pki import Authority
from tests.api.base import GHOST, Api, held

POOL_FIELDS = {
    "tenant_id",
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "protocol", "lb_algorithm", "session_persistence", "project_id", "loadbalancers",
    "listeners", "created_at", "updated_at", "healthmonitor_id", "members", "tags",
    "tls_container_ref", "ca_tls_container_ref", "crl_container_ref", "tls_enabled",
    "tls_ciphers", "tls_versions", "alpn_protocols",
}


def _pool(api: Api, lb: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return api.create_pool(loadbalancer_id=lb["id"], **fields)


# -- create ----------------------------------------------------------------------

def test_create_has_octavia_shape_and_locks_the_load_balancer(api: Api,
                                                              lb: dict[str, Any]) -> None:
    with held(api):
        pool = _pool(api, lb, wait=False, tags=["t1"], description="d")
        assert set(pool) == POOL_FIELDS
        assert pool["provisioning_status"] == c.PENDING_CREATE
        assert pool["operating_status"] == c.OFFLINE
        assert pool["loadbalancers"] == [{"id": lb["id"]}]
        assert pool["listeners"] == [] and pool["members"] == []
        assert pool["healthmonitor_id"] is None and pool["session_persistence"] is None
        assert pool["tags"] == ["t1"] and pool["description"] == "d" and pool["name"] == ""
        assert pool["project_id"] == lb["project_id"]
        assert pool["admin_state_up"] is True and pool["tls_enabled"] is False
        assert pool["tls_ciphers"] is None and pool["tls_versions"] is None
        assert pool["alpn_protocols"] is None
        assert pool["created_at"] is not None and pool["updated_at"] is None
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    assert api.status_of("pools", "pool", pool["id"]) == c.ACTIVE
    assert api.lb_status(lb["id"]) == c.ACTIVE
    shown = api.show("loadbalancers", "loadbalancer", lb["id"])
    assert shown["pools"] == [{"id": pool["id"]}]


def test_create_on_a_listener_makes_it_the_default_pool(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    with held(api):
        pool = api.create_pool(listener_id=listener["id"], wait=False)
        assert pool["listeners"] == [{"id": listener["id"]}]
        assert pool["loadbalancers"] == [{"id": lb["id"]}]
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    assert api.show("listeners", "listener", listener["id"])["default_pool_id"] == pool["id"]
    assert api.status_of("listeners", "listener", listener["id"]) == c.ACTIVE
    # With both ids given, they must agree.
    other = api.create_listener(lb["id"], protocol_port=81)
    pool2 = api.create_pool(listener_id=other["id"], loadbalancer_id=lb["id"])
    assert pool2["listeners"] == [{"id": other["id"]}]


def test_a_listener_has_one_default_pool(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    api.create_pool(listener_id=listener["id"])
    r = api.post("/pools", {"pool": {"listener_id": listener["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN"}}, status=409)
    assert api.fault(r) == "This listener already has a default pool"


def test_listener_of_another_load_balancer_is_refused(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(api.create_lb()["id"])
    r = api.post("/pools", {"pool": {"listener_id": listener["id"], "loadbalancer_id": lb["id"],
                                     "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
                 status=400)
    assert api.fault(r) == (f"Validation failure: Listener {listener['id']} is not on load "
                            f"balancer {lb['id']}.")


def test_a_parent_is_required_and_must_exist(api: Api) -> None:
    body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    r = api.post("/pools", {"pool": body}, status=400)
    assert api.fault(r) == ("Validation failure: Must provide at least one of: "
                            "loadbalancer_id, listener_id")
    r = api.post("/pools", {"pool": {**body, "loadbalancer_id": GHOST}}, status=404)
    assert api.fault(r) == f"Load Balancer {GHOST} not found."
    r = api.post("/pools", {"pool": {**body, "listener_id": GHOST}}, status=404)
    assert api.fault(r) == f"Listener {GHOST} not found."


PROTOCOL_PAIRS = [
    ("HTTP", "HTTP", True), ("HTTP", "PROXY", True), ("HTTP", "TCP", False),
    ("HTTP", "HTTPS", False), ("TCP", "HTTP", True), ("TCP", "PROXYV2", True),
    ("TCP", "UDP", False), ("HTTPS", "TCP", True), ("HTTPS", "HTTP", False),
    ("TERMINATED_HTTPS", "HTTP", True), ("TERMINATED_HTTPS", "HTTPS", False),
    ("UDP", "UDP", True), ("UDP", "TCP", False), ("SCTP", "SCTP", True),
]


def test_pool_protocol_must_suit_the_listener(api: Api, lb: dict[str, Any]) -> None:
    cert = api.store_secret(Authority.new().issue("www.example.com").pkcs12())
    for port, (listener_protocol, pool_protocol, allowed) in enumerate(PROTOCOL_PAIRS, 1000):
        extra = ({"default_tls_container_ref": cert}
                 if listener_protocol == "TERMINATED_HTTPS" else {})
        listener = api.create_listener(lb["id"], protocol=listener_protocol, protocol_port=port,
                                       **extra)
        body = {"listener_id": listener["id"], "protocol": pool_protocol,
                "lb_algorithm": "ROUND_ROBIN"}
        r = api.post("/pools", {"pool": body}, status=201 if allowed else 400)
        api.wait_idle()
        if not allowed:
            assert api.fault(r) == (f"Validation failure: The pool protocol '{pool_protocol}' "
                                    f"is invalid while the listener protocol is "
                                    f"'{listener_protocol}'.")


def test_prometheus_listeners_take_no_pool(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"], protocol="PROMETHEUS", protocol_port=8123)
    r = api.post("/pools", {"pool": {"listener_id": listener["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN"}}, status=400)
    assert api.fault(r) == "Protocol PROMETHEUS listeners cannot have child objects."


def test_every_protocol_and_algorithm_is_accepted(api: Api, lb: dict[str, Any]) -> None:
    pairs = [(p, c.ROUND_ROBIN) for p in c.POOL_PROTOCOLS]
    pairs += [(c.TCP, a) for a in c.LB_ALGORITHMS if a != c.ROUND_ROBIN]
    for protocol, algorithm in pairs:
        pool = _pool(api, lb, protocol=protocol, lb_algorithm=algorithm)
        assert (pool["protocol"], pool["lb_algorithm"]) == (protocol, algorithm)


BAD_FIELDS = [
    ({"protocol": "STUPID"}, "protocol"),
    ({"protocol": None}, "protocol"),
    ({"lb_algorithm": "RANDOM"}, "lb_algorithm"),
    ({"lb_algorithm": 1}, "lb_algorithm"),
    ({"name": 5}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"description": "x" * 256}, "description"),
    ({"admin_state_up": "yes"}, "admin_state_up"),
    ({"listener_id": "not-a-uuid"}, "listener_id"),
    ({"tags": "x"}, "tags"),
    ({"tags": ["x" * 256]}, "tags"),
    ({"session_persistence": {"type": "persistence_type"}}, "type"),
    ({"session_persistence": {"cookie_name": "c"}}, "type"),
    ({"session_persistence": {"type": "APP_COOKIE", "cookie_name": "x" * 256}},
     "cookie_name"),
    ({"session_persistence": {"type": "SOURCE_IP", "persistence_timeout": "3.5"}},
     "persistence_timeout"),
    ({"session_persistence": {"type": "SOURCE_IP", "persistence_granularity": "x"}},
     "persistence_granularity"),
    ({"session_persistence": "SOURCE_IP"}, "session_persistence"),
    ({"tls_enabled": "true"}, "tls_enabled"),
    ({"tls_container_ref": "x" * 256}, "tls_container_ref"),
    ({"ca_tls_container_ref": 7}, "ca_tls_container_ref"),
    ({"crl_container_ref": "x" * 256}, "crl_container_ref"),
    ({"tls_ciphers": "x" * 2049}, "tls_ciphers"),
    ({"tls_versions": "TLSv1.2"}, "tls_versions"),
    ({"tls_versions": ["x" * 33]}, "tls_versions"),
    ({"alpn_protocols": ["spdy/3"]}, "alpn_protocols"),
    ({"members": [{"address": "not-an-ip", "protocol_port": 80}]}, "address"),
    ({"healthmonitor": {"type": "BOGUS", "delay": 1, "timeout": 1, "max_retries": 1}},
     "type"),
]


def test_create_refuses_bad_fields_naming_them(api: Api, lb: dict[str, Any]) -> None:
    for body, field in BAD_FIELDS:
        full = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                **body}
        r = api.post("/pools", {"pool": full}, status=400)
        assert api.fault(r).startswith(f"Invalid input for field/attribute {field}"), body
    assert api.get("/pools").json()["pools"] == []
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_enumerations_are_refused_in_wsme_words(api: Api, lb: dict[str, Any]) -> None:
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "FOO",
                                     "lb_algorithm": "ROUND_ROBIN"}}, status=400)
    assert api.fault(r) == ("Invalid input for field/attribute protocol. Value: 'FOO'. Value "
                            "should be one of: HTTP, HTTPS, PROXY, PROXYV2, TCP, UDP, SCTP.")


def test_create_refuses_unknown_attributes_and_missing_ones(api: Api,
                                                            lb: dict[str, Any]) -> None:
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN", "enabled": True}},
                 status=400)
    assert api.fault(r) == "Unknown attribute for argument pool: enabled"
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "name": "p"}}, status=400)
    assert "Mandatory field missing" in api.fault(r)
    api.post("/pools", {"name": "p"}, status=400)


def test_project_id_in_the_body_is_ignored_and_tags_are_a_set(api: Api,
                                                              lb: dict[str, Any]) -> None:
    pool = _pool(api, lb, project_id="someone-else", tags=["b", "a", "b"])
    assert pool["project_id"] == lb["project_id"]
    assert pool["tags"] == ["b", "a"]
    body = api.put(f"/pools/{pool['id']}", {"pool": {"tags": ["c", "c"]}}, status=200).json()
    assert body["pool"]["tags"] == ["c"]


# -- session persistence -------------------------------------------------------------

def test_session_persistence_is_stored_whole(api: Api, lb: dict[str, Any]) -> None:
    for sp in ({"type": "SOURCE_IP"}, {"type": "HTTP_COOKIE"},
               {"type": "HTTP_COOKIE", "cookie_name": None},
               {"type": "APP_COOKIE", "cookie_name": "JSESSIONID"}):
        pool = _pool(api, lb, session_persistence=sp)
        expected = {"type": sp["type"], "cookie_name": sp.get("cookie_name"),
                    "persistence_timeout": None, "persistence_granularity": None}
        assert pool["session_persistence"] == expected
        assert api.show("pools", "pool", pool["id"])["session_persistence"] == expected


SP_RULES = [
    ("HTTP", {"type": "HTTP_COOKIE", "cookie_name": "c"},
     'Field "cookie_name" can only be specified with session persistence of type '
     '"APP_COOKIE".'),
    ("HTTP", {"type": "SOURCE_IP", "cookie_name": "c"},
     'Field "cookie_name" can only be specified with session persistence of type '
     '"APP_COOKIE".'),
    ("HTTP", {"type": "APP_COOKIE"},
     'Field "cookie_name" must be specified when using the "APP_COOKIE" session '
     "persistence type."),
    ("HTTP", {"type": "APP_COOKIE", "cookie_name": "b@d_cookie_name"},
     'Supplied "cookie_name" is invalid.'),
    ("HTTP", {"type": "APP_COOKIE", "cookie_name": "a b"}, 'Supplied "cookie_name" is invalid.'),
    ("HTTP", {"type": "SOURCE_IP", "persistence_timeout": 3},
     "persistence_timeout and persistence_granularity is only for UDP and SCTP protocol "
     "pools."),
    ("TCP", {"type": "APP_COOKIE", "cookie_name": "c", "persistence_granularity": "255.0.0.0"},
     "persistence_timeout and persistence_granularity is only for UDP and SCTP protocol "
     "pools."),
    ("UDP", {"type": "HTTP_COOKIE", "cookie_name": "c"},
     "Cookie names are not supported for UDP/SCTP pools."),
    ("UDP", {"type": "APP_COOKIE", "persistence_timeout": 3},
     "Session persistence of type APP_COOKIE is not supported for UDP/SCTP protocol pools."),
    ("SCTP", {"type": "HTTP_COOKIE"},
     "Session persistence of type HTTP_COOKIE is not supported for UDP/SCTP protocol pools."),
    ("UDP", {"type": "SOURCE_IP", "persistence_timeout": 3, "cookie_name": "c"},
     "session_persistence SOURCE_IP type for UDP and SCTP protocols only accepts: type, "
     "persistence_timeout, persistence_granularity."),
]


def test_session_persistence_rules(api: Api, lb: dict[str, Any]) -> None:
    for protocol, sp, message in SP_RULES:
        body = {"loadbalancer_id": lb["id"], "protocol": protocol,
                "lb_algorithm": "ROUND_ROBIN", "session_persistence": sp}
        r = api.post("/pools", {"pool": body}, status=400)
        assert api.fault(r) == f"Validation failure: {message}", (protocol, sp)


def test_udp_source_ip_persistence_takes_timeout_and_granularity(api: Api,
                                                                 lb: dict[str, Any]) -> None:
    sp = {"type": "SOURCE_IP", "persistence_timeout": 3,
          "persistence_granularity": "255.255.255.0"}
    pool = _pool(api, lb, protocol="UDP", session_persistence=sp)
    assert pool["session_persistence"] == {**sp, "cookie_name": None}
    # An update without a type keeps the current one.
    changed = {"persistence_timeout": 4, "persistence_granularity": "255.255.0.0"}
    api.put(f"/pools/{pool['id']}", {"pool": {"session_persistence": changed}}, status=200)
    api.wait_idle()
    assert api.show("pools", "pool", pool["id"])["session_persistence"] == {
        "type": "SOURCE_IP", "cookie_name": None, **changed}


def test_update_session_persistence_add_replace_keep_remove(api: Api,
                                                            lb: dict[str, Any]) -> None:
    pool = _pool(api, lb)
    path = f"/pools/{pool['id']}"
    app = {"type": "APP_COOKIE", "cookie_name": "sid"}
    api.put(path, {"pool": {"session_persistence": app}}, status=200)
    api.wait_idle()
    full_app = {**app, "persistence_timeout": None, "persistence_granularity": None}
    assert api.show("pools", "pool", pool["id"])["session_persistence"] == full_app
    api.put(path, {"pool": {"name": "renamed"}}, status=200)
    api.wait_idle()
    assert api.show("pools", "pool", pool["id"])["session_persistence"] == full_app
    # The object given replaces the old one: no cookie_name with SOURCE_IP.
    api.put(path, {"pool": {"session_persistence": {"type": "SOURCE_IP"}}}, status=200)
    api.wait_idle()
    assert api.show("pools", "pool", pool["id"])["session_persistence"]["cookie_name"] is None
    r = api.put(path, {"pool": {"session_persistence": {"cookie_name": "sid"}}}, status=400)
    assert "can only be specified" in api.fault(r)
    api.put(path, {"pool": {"session_persistence": None}}, status=200)
    api.wait_idle()
    assert api.show("pools", "pool", pool["id"])["session_persistence"] is None
    r = api.put(path, {"pool": {"session_persistence": {}}}, status=400)
    assert api.fault(r) == "Validation failure: Invalid session_persistence provided."


def test_update_refuses_bad_session_persistence(api: Api, lb: dict[str, Any]) -> None:
    pool = _pool(api, lb, session_persistence={"type": "APP_COOKIE", "cookie_name": "c"})
    path = f"/pools/{pool['id']}"
    api.put(path, {"pool": {"session_persistence": {"type": "fake_type"}}}, status=400)
    r = api.put(path, {"pool": {"session_persistence": {"type": "APP_COOKIE"}}}, status=400)
    assert "must be specified" in api.fault(r)
    r = api.put(path, {"pool": {"session_persistence": {
        "type": "APP_COOKIE", "cookie_name": "c", "persistence_timeout": 3}}}, status=400)
    # Octavia's update names UDP only (its create says "UDP and SCTP").
    assert api.fault(r) == ("Validation failure: persistence_timeout and "
                            "persistence_granularity is only for UDP protocol pools.")
    assert api.lb_status(lb["id"]) == c.ACTIVE


# -- TLS towards members ------------------------------------------------------------

def test_tls_enabled_gets_octavia_defaults(api: Api, lb: dict[str, Any]) -> None:
    pool = _pool(api, lb, tls_enabled=True)
    assert pool["tls_enabled"] is True
    assert pool["tls_ciphers"] == c.DEFAULT_TLS_CIPHERS
    assert pool["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert pool["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    cert, ca, crl = _tls_refs(api)
    given = _pool(api, lb, tls_enabled=True, tls_versions=["TLSv1.3"], alpn_protocols=["h2"],
                  tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256",
                  tls_container_ref=cert, ca_tls_container_ref=ca, crl_container_ref=crl)
    assert given["tls_versions"] == ["TLSv1.3"] and given["alpn_protocols"] == ["h2"]
    assert given["tls_ciphers"] == "ECDHE-RSA-AES128-GCM-SHA256"
    assert (given["tls_container_ref"], given["ca_tls_container_ref"],
            given["crl_container_ref"]) == (cert, ca, crl)
    # references are checked as the listener's are
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True,
                                     "tls_container_ref": ca}}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute tls_container_ref")
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True,
                                     "ca_tls_container_ref": cert}}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute ca_tls_container_ref")


def _tls_refs(api: Api) -> tuple[str, str, str]:
    """A client certificate (PKCS#12), a CA and its CRL, in the caller's store."""
    ca = Authority.new("members' CA")
    return (api.store_secret(ca.issue("lbaas", client=True).pkcs12()),
            api.store_secret(ca.cert_pem.decode()), api.store_secret(ca.crl().decode()))


TLS_RULES = [
    ({"crl_container_ref": "crl"},
     "A CA certificate reference is required to specify a revocation list."),
    ({"tls_ciphers": "BAD CIPHER"},
     "Invalid characters in cipher string. Only alphanumeric, -, +, !, :, @, =, _, and . are "
     "allowed."),
    ({"tls_enabled": True, "tls_versions": []},
     "Empty TLS version list. Either specify at least one TLS version or remove this "
     "parameter to use the default."),
    ({"tls_enabled": True, "tls_versions": ["TLSv1.2", "TLSv9"]}, "Invalid TLS versions: TLSv9"),
    ({"tls_enabled": True, "alpn_protocols": []},
     "Empty ALPN protocol list. Either specify at least one ALPN protocol or remove this "
     "parameter to use the default."),
]


def test_tls_rules_on_create(api: Api, lb: dict[str, Any]) -> None:
    for fields, message in TLS_RULES:
        body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                **fields}
        r = api.post("/pools", {"pool": body}, status=400)
        assert api.fault(r) == f"Validation failure: {message}", fields


def test_tls_updates(api: Api, lb: dict[str, Any]) -> None:
    pool = _pool(api, lb, tls_enabled=True, tls_versions=["TLSv1.3"], tls_ciphers="AES")
    path = f"/pools/{pool['id']}"
    body = api.put(path, {"pool": {"tls_versions": None, "tls_ciphers": None,
                                   "alpn_protocols": ["http/1.1"]}}, status=200).json()["pool"]
    assert body["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert body["tls_ciphers"] == c.DEFAULT_TLS_CIPHERS
    assert body["alpn_protocols"] == ["http/1.1"]
    api.wait_idle()
    r = api.put(path, {"pool": {"tls_versions": []}}, status=400)
    assert "Empty TLS version list" in api.fault(r)
    r = api.put(path, {"pool": {"alpn_protocols": []}}, status=400)
    assert "Empty ALPN protocol list" in api.fault(r)
    r = api.put(path, {"pool": {"crl_container_ref": "crl"}}, status=400)
    assert api.fault(r) == ("Validation failure: A CA reference is required to specify a "
                            "certificate revocation list.")
    _, ca, crl = _tls_refs(api)
    api.put(path, {"pool": {"ca_tls_container_ref": ca, "crl_container_ref": crl}},
            status=200)
    api.wait_idle()
    r = api.put(path, {"pool": {"ca_tls_container_ref": None}}, status=400)
    assert api.fault(r) == ("Validation failure: A CA reference cannot be removed when a "
                            "certificate revocation list is present.")
    body = api.put(path, {"pool": {"ca_tls_container_ref": None, "crl_container_ref": None,
                                   "tls_enabled": False}}, status=200).json()["pool"]
    assert body["ca_tls_container_ref"] is None and body["crl_container_ref"] is None
    assert body["tls_enabled"] is False


# -- show, update, delete -------------------------------------------------------

def test_show_and_the_v2_0_prefix(api: Api, lb: dict[str, Any]) -> None:
    pool = _pool(api, lb, name="p")
    shown = api.show("pools", "pool", pool["id"])
    assert shown["provisioning_status"] == c.ACTIVE and shown["name"] == "p"
    old = api.get(f"/v2.0/lbaas/pools/{pool['id']}", status=200).json()["pool"]
    assert old == shown
    only = api.get(f"/pools/{pool['id']}", params={"fields": "id,name"}).json()["pool"]
    assert only == {"id": pool["id"], "name": "p"}
    r = api.get(f"/pools/{GHOST}", status=404)
    assert api.fault(r) == f"Pool {GHOST} not found."


def test_update_changes_given_fields_and_marks_parents(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"], name="old", tags=["old"],
                           description="keep")
    with held(api):
        body = api.put(f"/pools/{pool['id']}", {"pool": {
            "name": "new", "tags": ["new"], "lb_algorithm": "LEAST_CONNECTIONS",
            "admin_state_up": False}}, status=200).json()["pool"]
        assert body["provisioning_status"] == c.PENDING_UPDATE
        assert (body["name"], body["tags"], body["lb_algorithm"]) == (
            "new", ["new"], "LEAST_CONNECTIONS")
        assert body["admin_state_up"] is False and body["description"] == "keep"
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
    shown = api.show("pools", "pool", pool["id"])
    assert shown["provisioning_status"] == c.ACTIVE and shown["updated_at"] is not None
    assert api.status_of("listeners", "listener", listener["id"]) == c.ACTIVE


def test_update_refuses_read_only_and_bad_fields(api: Api, lb: dict[str, Any]) -> None:
    pool = _pool(api, lb)
    path = f"/pools/{pool['id']}"
    r = api.put(path, {"pool": {"protocol": "TCP"}}, status=400)
    assert api.fault(r) == "Unknown attribute for argument pool: protocol"
    api.put(path, {"pool": {"loadbalancer_id": lb["id"]}}, status=400)
    api.put(path, {"pool": {"enabled": "one"}}, status=400)
    r = api.put(path, {"pool": {"lb_algorithm": "RANDOM"}}, status=400)
    assert "lb_algorithm" in api.fault(r)
    api.put(path, {"pool": {"alpn_protocols": ["bogus"]}}, status=400)
    api.put(f"/pools/{GHOST}", {"pool": {"name": "x"}}, status=404)
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_delete_clears_the_listeners_default_pool(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    with held(api):
        api.delete(f"/pools/{pool['id']}", status=204)
        assert api.status_of("pools", "pool", pool["id"]) == c.PENDING_DELETE
        assert api.status_of("listeners", "listener", listener["id"]) == c.PENDING_UPDATE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    api.get(f"/pools/{pool['id']}", status=404)
    api.delete(f"/pools/{pool['id']}", status=404)
    shown = api.show("listeners", "listener", listener["id"])
    assert shown["default_pool_id"] is None and shown["provisioning_status"] == c.ACTIVE
    assert api.show("loadbalancers", "loadbalancer", lb["id"])["pools"] == []
    # The listener may get a new default pool.
    api.create_pool(listener_id=listener["id"])


def test_delete_takes_members_and_monitor_along(api: Api, lb: dict[str, Any]) -> None:
    pool = _pool(api, lb)
    member = api.create_member(pool["id"])
    hm = api.create_health_monitor(pool["id"])
    api.delete(f"/pools/{pool['id']}", status=204)
    api.wait_idle()
    api.get(f"/pools/{pool['id']}/members/{member['id']}", status=404)
    api.get(f"/healthmonitors/{hm['id']}", status=404)
    assert api.get("/healthmonitors").json()["healthmonitors"] == []


def test_a_pool_used_by_an_l7_policy_cannot_be_deleted(api: Api, lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = _pool(api, lb)
    policy = api.create_l7policy(listener["id"], action="REDIRECT_TO_POOL",
                                 redirect_pool_id=pool["id"])
    assert api.show("pools", "pool", pool["id"])["listeners"] == [{"id": listener["id"]}]
    r = api.delete(f"/pools/{pool['id']}", status=409)
    assert api.fault(r) == f"Pool {pool['id']} is in use by L7 policy {policy['id']}"
    api.delete(f"/l7policies/{policy['id']}", status=204)
    api.wait_idle()
    api.delete(f"/pools/{pool['id']}", status=204)


@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, lb: dict[str, Any], pending: str) -> None:
    pool = _pool(api, lb, name="p")
    body = {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                     "lb_algorithm": "ROUND_ROBIN"}}
    with held(api):
        api.set_lb_status(lb["id"], pending)
        r = api.post("/pools", body, status=409)
        assert api.fault(r) == f"Load Balancer {lb['id']} is immutable and cannot be updated."
        api.put(f"/pools/{pool['id']}", {"pool": {"name": "x"}}, status=409)
        api.delete(f"/pools/{pool['id']}", status=409)
        pools = api.get("/pools").json()["pools"]
        assert [(p["name"], p["provisioning_status"]) for p in pools] == [("p", c.ACTIVE)]


def test_cascade_delete_of_the_load_balancer_takes_everything(api: Api,
                                                              lb: dict[str, Any]) -> None:
    listener = api.create_listener(lb["id"])
    pool = api.create_pool(listener_id=listener["id"])
    member = api.create_member(pool["id"])
    hm = api.create_health_monitor(pool["id"])
    api.delete(f"/loadbalancers/{lb['id']}", status=400)
    api.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"}, status=204)
    api.wait_idle()
    api.get(f"/loadbalancers/{lb['id']}", status=404)
    api.get(f"/pools/{pool['id']}", status=404)
    api.get(f"/pools/{pool['id']}/members/{member['id']}", status=404)
    api.get(f"/healthmonitors/{hm['id']}", status=404)
    with api.service.sessions() as session:
        assert session.query(m.Member).count() == 0
        assert session.query(m.HealthMonitor).count() == 0


# -- nested create and the builder -------------------------------------------------

def test_create_with_members_and_health_monitor(api: Api, lb: dict[str, Any]) -> None:
    members = [{"address": "127.0.0.11", "protocol_port": 80},
               {"address": "127.0.0.12", "protocol_port": 80, "weight": 5}]
    hm = {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2}
    pool = _pool(api, lb, members=members, healthmonitor=hm)
    assert len(pool["members"]) == 2 and pool["healthmonitor_id"] is not None
    listed = api.get(f"/pools/{pool['id']}/members").json()["members"]
    assert sorted((mb["address"], mb["weight"], mb["operating_status"]) for mb in listed) == [
        ("127.0.0.11", 1, c.OFFLINE), ("127.0.0.12", 5, c.OFFLINE)]
    monitor = api.show("healthmonitors", "healthmonitor", pool["healthmonitor_id"])
    assert monitor["pools"] == [{"id": pool["id"]}] and monitor["url_path"] == "/"
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN",
                                     "members": [members[0], members[0]]}}, status=409)
    assert "127.0.0.11" in api.fault(r)
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "TCP",
                                     "lb_algorithm": "ROUND_ROBIN",
                                     "healthmonitor": {**hm, "type": "UDP-CONNECT"}}},
                 status=400)
    assert "UDP-CONNECT type is only supported" in api.fault(r)
    assert len(api.get("/pools").json()["pools"]) == 1


def test_build_pool_wants_protocol_and_algorithm(api: Api, lb: dict[str, Any]) -> None:
    state = api.service.app.state.lbaas
    ctx = _admin(api)
    with api.service.sessions() as session:
        db_lb = session.get(m.LoadBalancer, lb["id"])
        assert db_lb is not None
        with pytest.raises(exc.ValidationError) as e:
            pool_routes.build_pool(session, ctx, state, db_lb, PoolSingleCreate(name="web"))
        assert e.value.msg == ("Validation failure: Pool definition for 'web' missing "
                               "required attribute: protocol")
        with pytest.raises(exc.ValidationError) as e:
            pool_routes.build_pool(session, ctx, state, db_lb,
                                   PoolSingleCreate(name="web", protocol="HTTP"))
        assert e.value.msg.endswith("missing required attribute: lb_algorithm")
        built = pool_routes.build_pool(session, ctx, state, db_lb, PoolSingleCreate.model_validate(
            {"name": "web", "protocol": "HTTP", "lb_algorithm": "SOURCE_IP",
             "members": [{"address": "127.0.0.5", "protocol_port": 80}],
             "healthmonitor": {"type": "PING", "delay": 2, "timeout": 1, "max_retries": 3}}))
        assert built in db_lb.pools and built.project_id == db_lb.project_id
        session.flush()
        full = PoolFullResponse.dump(built)
        assert "loadbalancers" not in full and "healthmonitor_id" not in full
        assert full["members"][0]["address"] == "127.0.0.5"
        assert full["members"][0]["operating_status"] == c.OFFLINE
        assert full["healthmonitor"]["type"] == "PING" and "pools" not in full["healthmonitor"]
        session.rollback()


def _admin(api: Api) -> Any:
    from lbaas.api.policy import Identity

    return api.service.app.state.lbaas.policy.context(
        Identity(project_id="admin", roles=("admin",), standalone_admin=True))


# -- lists -------------------------------------------------------------------------

def test_list_pagination_sorting_filters_and_fields(api: Api, lb: dict[str, Any]) -> None:
    other = api.create_lb()
    a = _pool(api, lb, name="a", tags=["blue"], lb_algorithm="SOURCE_IP")
    b = _pool(api, lb, name="b", tags=["blue", "red"])
    cc = _pool(api, other, name="c", protocol="TCP")
    names = [p["name"] for p in api.get("/pools", params={"sort": "name:desc"}).json()["pools"]]
    assert names == ["c", "b", "a"]
    page = api.get("/pools", params={"limit": 2, "sort": "name"}).json()
    assert [p["name"] for p in page["pools"]] == ["a", "b"]
    assert [link["rel"] for link in page["pools_links"]] == ["next"]
    rest = api.get("/pools", params={"limit": 2, "sort": "name", "marker": b["id"]}).json()
    assert [p["id"] for p in rest["pools"]] == [cc["id"]]
    by_lb = api.get("/pools", params={"loadbalancer_id": lb["id"]}).json()["pools"]
    assert sorted(p["name"] for p in by_lb) == ["a", "b"]
    by_proto = api.get("/pools", params={"protocol": "TCP"}).json()["pools"]
    assert [p["id"] for p in by_proto] == [cc["id"]]
    by_alg = api.get("/pools", params={"lb_algorithm": "SOURCE_IP"}).json()["pools"]
    assert [p["id"] for p in by_alg] == [a["id"]]
    red = api.get("/pools", params={"tags": "red"}).json()["pools"]
    assert [p["id"] for p in red] == [b["id"]]
    not_red = api.get("/pools", params={"not-tags": "red", "sort": "name"}).json()["pools"]
    assert [p["name"] for p in not_red] == ["a", "c"]
    fields = api.get("/pools", params={"fields": "id,protocol", "name": "c"}).json()["pools"]
    assert fields == [{"id": cc["id"], "protocol": "TCP"}]
    r = api.get("/pools", params={"bogus": "1"}, status=400)
    assert api.fault(r) == "One or more arguments are either duplicate or invalid"
    api.get("/pools", params={"sort": "bogus"}, status=400)


# -- projects, policy, quota ------------------------------------------------------------

def test_other_projects_pools_are_403_and_unlisted(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    assert pool["project_id"] == "p1"
    api.get(f"/pools/{pool['id']}", project="p2", status=403)
    api.put(f"/pools/{pool['id']}", {"pool": {"name": "x"}}, project="p2", status=403)
    api.delete(f"/pools/{pool['id']}", project="p2", status=403)
    r = api.post("/pools", {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                     "lb_algorithm": "ROUND_ROBIN"}}, project="p2", status=403)
    assert api.fault(r) == "Policy does not allow this request to be performed."
    assert api.get("/pools", project="p2").json()["pools"] == []
    assert len(api.get("/pools", project="p1").json()["pools"]) == 1
    assert len(api.get("/pools", project="p3", roles="admin")
               .json()["pools"]) == 1


def test_roles_follow_octavia_policy(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    pool = api.create_pool(loadbalancer_id=lb["id"], _project="p1")
    body = {"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                     "lb_algorithm": "ROUND_ROBIN"}}
    for role in ("reader",):
        r = api.post("/pools", body, project="p1", roles=role, status=403)
        assert api.fault(r) == "Policy does not allow this request to be performed."
        api.put(f"/pools/{pool['id']}", {"pool": {"name": "x"}}, project="p1", roles=role,
                status=403)
        api.delete(f"/pools/{pool['id']}", project="p1", roles=role, status=403)
        api.get(f"/pools/{pool['id']}", project="p1", roles=role, status=200)
        api.get("/pools", project="p1", roles=role, status=200)
    api.get("/pools", project="p1", roles="nothing", status=403)
    api.post("/pools", body, project="p1", roles="member", status=201)


def test_quota_on_pools_members_and_monitors(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    api.put("/quotas/p1", {"quota": {"pool": 1, "member": 1, "healthmonitor": 0}}, status=202)
    base = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    two = [{"address": "127.0.0.2", "protocol_port": 80},
           {"address": "127.0.0.3", "protocol_port": 80}]
    r = api.post("/pools", {"pool": {**base, "members": two}}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Member"
    hm = {"type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1}
    r = api.post("/pools", {"pool": {**base, "healthmonitor": hm}}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Health Monitor"
    api.post("/pools", {"pool": {**base, "members": two[:1]}}, project="p1", status=201)
    api.wait_idle()
    r = api.post("/pools", {"pool": base}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Pool"
    api.create_pool(loadbalancer_id=api.create_lb()["id"])  # another project is not counted
