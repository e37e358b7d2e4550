"""Listeners: /v2/lbaas/listeners (after Octavia's functional test_listener.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.api.policy import Identity
from lbaas.api.routes.l7policy import build_l7policy
from lbaas.api.routes.l7rule import build_l7rule
from lbaas.api.routes.listener import build_listener
from lbaas.api.schemas.l7policy import L7PolicySingleCreate
from lbaas.api.schemas.l7rule import L7RuleSingleCreate
from lbaas.api.schemas.listener import ListenerResponse, ListenerSingleCreate
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.testing.pki import Authority
from tests.api.base import GHOST, Api, held

LISTENER_FIELDS = {
    "tenant_id",
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "project_id", "protocol", "protocol_port", "connection_limit", "default_tls_container_ref",
    "sni_container_refs", "default_pool_id", "l7policies", "loadbalancers", "insert_headers",
    "created_at", "updated_at", "timeout_client_data", "timeout_member_connect",
    "timeout_member_data", "timeout_tcp_inspect", "tags", "client_ca_tls_container_ref",
    "client_authentication", "client_crl_container_ref", "allowed_cidrs", "tls_ciphers",
    "tls_versions", "alpn_protocols", "hsts_max_age", "hsts_include_subdomains", "hsts_preload",
}
CERT = "http://certs.example/cert1"  # a reference that names nothing


@pytest.fixture
def cert(api: Api) -> str:
    """A PKCS#12 secret of the caller's store (a usable default certificate)."""
    return api.store_secret(Authority.new().issue("www.example.com").pkcs12())


@pytest.fixture
def ca_crl(api: Api) -> tuple[str, str]:
    """A client CA secret and a CRL of it."""
    ca = Authority.new("client CA")
    return api.store_secret(ca.cert_pem.decode()), api.store_secret(ca.crl().decode())


def post_listener(api: Api, lb_id: str, status: int, **fields: Any) -> Any:
    body = {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80, **fields}
    return api.post("/listeners", {"listener": body}, status=status)


def fault_of(api: Api, lb_id: str, status: int = 400, **fields: Any) -> str:
    """Post a listener expected to fail; return the faultstring."""
    return api.fault(post_listener(api, lb_id, status, **fields))


# -- create ---------------------------------------------------------------------

def test_create_has_octavia_defaults_and_shape(api: Api, lb: dict[str, Any]) -> None:
    with held(api):
        li = api.create_listener(lb["id"], wait=False)
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    assert set(li) == LISTENER_FIELDS
    assert li["provisioning_status"] == c.PENDING_CREATE
    assert li["operating_status"] == c.OFFLINE
    assert li["admin_state_up"] is True
    assert li["name"] == "" and li["description"] == ""
    assert li["project_id"] == lb["project_id"]
    assert (li["protocol"], li["protocol_port"]) == ("HTTP", 80)
    assert li["connection_limit"] == -1
    assert (li["timeout_client_data"], li["timeout_member_connect"],
            li["timeout_member_data"], li["timeout_tcp_inspect"]) == (50000, 5000, 50000, 0)
    assert li["insert_headers"] == {} and li["sni_container_refs"] == []
    assert li["allowed_cidrs"] is None and li["default_pool_id"] is None
    assert li["loadbalancers"] == [{"id": lb["id"]}] and li["l7policies"] == []
    assert li["default_tls_container_ref"] is None
    assert li["tls_ciphers"] is None and li["tls_versions"] is None
    assert li["alpn_protocols"] is None
    assert li["client_authentication"] == "NONE"
    assert li["hsts_max_age"] is None
    assert li["hsts_include_subdomains"] is False and li["hsts_preload"] is False
    assert li["tags"] == [] and li["updated_at"] is None and li["created_at"]
    api.wait_idle()
    shown = api.get(f"/listeners/{li['id']}", status=200).json()["listener"]
    assert shown["provisioning_status"] == c.ACTIVE
    assert api.lb_status(lb["id"]) == c.ACTIVE
    got = api.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["listeners"]
    assert got == [{"id": li["id"]}]
    applied = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert [(x.id, x.protocol_port) for x in applied.listeners] == [(li["id"], 80)]


def test_create_stores_every_field(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(
        lb["id"], name="web", description="d", admin_state_up=False, protocol="TCP",
        protocol_port=8443, connection_limit=10, timeout_client_data=1,
        timeout_member_connect=2, timeout_member_data=c.MIN_TIMEOUT,
        timeout_tcp_inspect=c.MAX_TIMEOUT, tags=["a", "b"],
        allowed_cidrs=["10.0.1.0/24", "172.16.55.0/25"])
    shown = api.get(f"/listeners/{li['id']}").json()["listener"]
    assert shown["name"] == "web" and shown["description"] == "d"
    assert shown["admin_state_up"] is False and shown["protocol"] == "TCP"
    assert shown["protocol_port"] == 8443 and shown["connection_limit"] == 10
    assert (shown["timeout_client_data"], shown["timeout_member_connect"],
            shown["timeout_member_data"], shown["timeout_tcp_inspect"]) == (
        1, 2, 0, c.MAX_TIMEOUT)
    assert sorted(shown["tags"]) == ["a", "b"]
    assert shown["allowed_cidrs"] == ["10.0.1.0/24", "172.16.55.0/25"]


def test_nulls_in_a_create_mean_defaults(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(
        lb["id"], name=None, default_pool_id=None, connection_limit=None,
        timeout_client_data=None, sni_container_refs=None, insert_headers=None,
        default_tls_container_ref=None, client_authentication=None, admin_state_up=None,
        hsts_include_subdomains=None, allowed_cidrs=[], project_id="ignored", tags=None)
    assert li["connection_limit"] == -1 and li["timeout_client_data"] == 50000
    assert li["sni_container_refs"] == [] and li["insert_headers"] == {}
    assert li["client_authentication"] == "NONE" and li["admin_state_up"] is True
    assert li["hsts_include_subdomains"] is False and li["allowed_cidrs"] is None
    assert li["project_id"] == lb["project_id"]


@pytest.mark.parametrize(("fields", "field", "detail"), [
    ({"protocol": "FOO"}, "protocol", "Value should be one of: HTTP, HTTPS, TCP"),
    ({"protocol": "PROXY"}, "protocol", "Value should be one of"),
    ({"protocol": None}, "protocol", ""),
    ({"protocol_port": 0}, "protocol_port", ""),
    ({"protocol_port": 65536}, "protocol_port", ""),
    ({"protocol_port": "http"}, "protocol_port", ""),
    ({"connection_limit": -2}, "connection_limit", "Value should be greater or equal to -1"),
    ({"connection_limit": True}, "connection_limit", ""),
    ({"timeout_client_data": c.MAX_TIMEOUT + 1}, "timeout_client_data",
     f"Value should be lower or equal to {c.MAX_TIMEOUT}"),
    ({"timeout_member_connect": c.MAX_TIMEOUT + 1}, "timeout_member_connect",
     f"Value should be lower or equal to {c.MAX_TIMEOUT}"),
    ({"timeout_member_data": c.MAX_TIMEOUT + 1}, "timeout_member_data",
     f"Value should be lower or equal to {c.MAX_TIMEOUT}"),
    ({"timeout_tcp_inspect": -1}, "timeout_tcp_inspect", "Value should be greater or equal to 0"),
    ({"timeout_client_data": 1.5}, "timeout_client_data", ""),
    ({"name": "x" * 256}, "name", ""),
    ({"description": 7}, "description", ""),
    ({"admin_state_up": "yes"}, "admin_state_up", ""),
    ({"loadbalancer_id": "nope"}, "loadbalancer_id", "Value should be UUID format"),
    ({"default_pool_id": "nope"}, "default_pool_id", "Value should be UUID format"),
    ({"insert_headers": ["X-Forwarded-For"]}, "insert_headers", ""),
    ({"insert_headers": {"X-Forwarded-For": True}}, "X-Forwarded-For", ""),
    ({"insert_headers": {"X-Forwarded-For": "x" * 256}}, "X-Forwarded-For", ""),
    ({"allowed_cidrs": ["10.0.1.0/33"]}, "allowed_cidrs",
     "Value should be IPv4 or IPv6 CIDR format"),
    ({"allowed_cidrs": "10.0.0.0/8"}, "allowed_cidrs", ""),
    ({"default_tls_container_ref": "x" * 256}, "default_tls_container_ref", ""),
    ({"sni_container_refs": "ref"}, "sni_container_refs", ""),
    ({"client_authentication": "SOMETIMES"}, "client_authentication",
     "Value should be one of: NONE, OPTIONAL, MANDATORY"),
    ({"tls_ciphers": ["cipher-insecure"]}, "tls_ciphers", ""),
    ({"tls_versions": "TLSv1.2"}, "tls_versions", ""),
    ({"alpn_protocols": ["spdy"]}, "alpn_protocols", "Value should be a valid ALPN protocol ID"),
    ({"hsts_max_age": -1}, "hsts_max_age", "Value should be greater or equal to 0"),
    ({"tags": "x"}, "tags", ""),
])
def test_create_refuses_bad_fields_naming_them(api: Api, lb: dict[str, Any],
                                               fields: dict[str, Any], field: str,
                                               detail: str) -> None:
    fault = fault_of(api, lb["id"], **fields)
    assert f"Invalid input for field/attribute {field}" in fault
    assert detail in fault
    assert api.get("/listeners").json()["listeners"] == []
    assert api.lb_status(lb["id"]) == c.ACTIVE


def test_create_needs_protocol_port_and_load_balancer(api: Api, lb: dict[str, Any]) -> None:
    for missing in ("protocol", "protocol_port", "loadbalancer_id"):
        body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}
        del body[missing]
        r = api.post("/listeners", {"listener": body}, status=400)
        assert api.fault(r) == (f"Invalid input for field/attribute {missing}. "
                                "Value: 'None'. Mandatory field missing.")


def test_create_refuses_unknown_attributes(api: Api, lb: dict[str, Any]) -> None:
    assert fault_of(api, lb["id"], bogus=1) == "Unknown attribute for argument listener: bogus"
    r = api.post("/listeners", {"listeners": {}}, status=400)
    assert "listener" in api.fault(r)


def test_create_on_unknown_load_balancer_is_404(api: Api) -> None:
    assert fault_of(api, GHOST, 404) == f"Load Balancer {GHOST} not found."


def test_prometheus_listener(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"], protocol="PROMETHEUS", protocol_port=8123)
    assert li["protocol"] == "PROMETHEUS" and li["tls_versions"] is None


# -- ports ----------------------------------------------------------------------

def test_duplicate_protocol_and_port_is_409(api: Api, lb: dict[str, Any]) -> None:
    api.create_listener(lb["id"])
    assert fault_of(api, lb["id"], 409) == (
        "Another Listener on this Load Balancer is already using protocol HTTP and "
        "protocol_port 80")
    assert len(api.get("/listeners").json()["listeners"]) == 1
    assert api.lb_status(lb["id"]) == c.ACTIVE


@pytest.mark.parametrize(("first", "second", "status"), [
    ("TCP", "HTTPS", 409), ("HTTP", "TCP", 409), ("TCP", "PROMETHEUS", 409),
    ("TCP", "UDP", 201), ("UDP", "SCTP", 201), ("UDP", "UDP", 409), ("SCTP", "HTTP", 201),
])
def test_transports_share_a_port_number_only_across_l4(api: Api, lb: dict[str, Any],
                                                       first: str, second: str,
                                                       status: int) -> None:
    api.create_listener(lb["id"], protocol=first, protocol_port=443)
    r = post_listener(api, lb["id"], status, protocol=second, protocol_port=443)
    if status == 409:
        assert f"already using protocol {first} and protocol_port 443" in api.fault(r)


def test_same_port_on_another_load_balancer_is_fine(api: Api, lb: dict[str, Any]) -> None:
    other = api.create_lb()
    api.create_listener(lb["id"])
    api.create_listener(other["id"])
    assert len(api.get("/listeners").json()["listeners"]) == 2


# -- default pool -------------------------------------------------------------------

def test_default_pool_of_the_same_load_balancer(api: Api, lb: dict[str, Any]) -> None:
    pool = api.create_pool(loadbalancer_id=lb["id"])
    li = api.create_listener(lb["id"], default_pool_id=pool["id"])
    assert li["default_pool_id"] == pool["id"]
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert spec.listeners[0].default_pool_id == pool["id"]


def test_default_pool_may_be_shared_as_octavia_allows(api: Api, lb: dict[str, Any]) -> None:
    pool = api.create_pool(loadbalancer_id=lb["id"])
    one = api.create_listener(lb["id"], default_pool_id=pool["id"])
    two = api.create_listener(lb["id"], protocol_port=81, default_pool_id=pool["id"])
    assert one["default_pool_id"] == two["default_pool_id"] == pool["id"]


def test_default_pool_must_exist_on_the_load_balancer(api: Api, lb: dict[str, Any]) -> None:
    assert fault_of(api, lb["id"], 404, default_pool_id=GHOST) == f"Pool {GHOST} not found."
    other = api.create_lb()
    foreign = api.create_pool(loadbalancer_id=other["id"])
    assert fault_of(api, lb["id"], 404, default_pool_id=foreign["id"]) == (
        f"Pool {foreign['id']} not found.")


@pytest.mark.parametrize(("listener", "pool", "ok"), [
    ("HTTP", "HTTP", True), ("HTTP", "PROXY", True), ("HTTP", "TCP", False),
    ("HTTP", "UDP", False), ("TCP", "HTTPS", True), ("HTTPS", "HTTP", False),
    ("TERMINATED_HTTPS", "HTTP", True), ("UDP", "UDP", True), ("UDP", "TCP", False),
    ("SCTP", "SCTP", True),
])
def test_default_pool_protocol_must_suit_the_listener(api: Api, lb: dict[str, Any],
                                                      listener: str, pool: str,
                                                      ok: bool, cert: str) -> None:
    p = api.create_pool(loadbalancer_id=lb["id"], protocol=pool)
    extra = {"default_tls_container_ref": cert} if listener == "TERMINATED_HTTPS" else {}
    r = post_listener(api, lb["id"], 201 if ok else 400, protocol=listener,
                      default_pool_id=p["id"], **extra)
    if not ok:
        assert api.fault(r) == (f"Validation failure: The pool protocol '{pool}' is invalid "
                                f"while the listener protocol is '{listener}'.")


def test_prometheus_listener_has_no_default_pool(api: Api, lb: dict[str, Any]) -> None:
    pool = api.create_pool(loadbalancer_id=lb["id"])
    assert fault_of(api, lb["id"], protocol="PROMETHEUS", default_pool_id=pool["id"]) == (
        "Protocol PROMETHEUS listeners cannot have child objects.")
    li = api.create_listener(lb["id"], protocol="PROMETHEUS", protocol_port=9100)
    r = api.put(f"/listeners/{li['id']}", {"listener": {"default_pool_id": pool["id"]}},
                status=400)
    assert api.fault(r) == "Protocol PROMETHEUS listeners cannot have child objects."


# -- header insertion ------------------------------------------------------------------

def test_insert_headers_on_http_and_terminated_https(api: Api, lb: dict[str, Any],
                                                     cert: str) -> None:
    headers = {"X-Forwarded-For": "true", "X-Forwarded-Port": "true",
               "X-Forwarded-Proto": "true"}
    li = api.create_listener(lb["id"], insert_headers=headers)
    assert li["insert_headers"] == headers
    ssl = {"X-SSL-Client-Verify": "true", "X-SSL-Client-Has-Cert": "true",
           "X-SSL-Client-DN": "true", "X-SSL-Client-CN": "true", "X-SSL-Issuer": "true",
           "X-SSL-Client-SHA1": "true", "X-SSL-Client-Not-Before": "true",
           "X-SSL-Client-Not-After": "true"}
    li = api.create_listener(lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443,
                             default_tls_container_ref=cert, insert_headers=ssl)
    assert li["insert_headers"] == ssl


@pytest.mark.parametrize("protocol", ["HTTPS", "TCP", "PROMETHEUS"])
def test_insert_headers_refused_without_http(api: Api, lb: dict[str, Any],
                                             protocol: str) -> None:
    fault = fault_of(api, lb["id"], protocol=protocol,
                     insert_headers={"X-Forwarded-For": "true"})
    assert fault == f"insert-headers is not a valid option for a {protocol} protocol listener."


def test_insert_headers_must_be_known(api: Api, lb: dict[str, Any]) -> None:
    assert fault_of(api, lb["id"], insert_headers={"X-Forwarded-Four": "true"}) == (
        "['X-Forwarded-Four'] is not a valid option for insert_headers")
    assert fault_of(api, lb["id"], insert_headers={"X-SSL-Client-DN": "true"}) == (
        "['X-SSL-Client-DN'] is not a valid option for HTTP protocol listener.")


@pytest.mark.parametrize("protocol", ["UDP", "SCTP"])
def test_udp_and_sctp_refuse_tls_and_headers(api: Api, lb: dict[str, Any],
                                             protocol: str) -> None:
    assert fault_of(api, lb["id"], protocol=protocol, default_tls_container_ref=CERT) == (
        f"Validation failure: {protocol} protocol listener does not support TLS.")
    assert fault_of(api, lb["id"], protocol=protocol, sni_container_refs=[CERT]) == (
        f"Validation failure: {protocol} protocol listener does not support TLS.")
    assert protocol in fault_of(api, lb["id"], protocol=protocol,
                                insert_headers={"X-Forwarded-Port": "true"})
    li = api.create_listener(lb["id"], protocol=protocol, protocol_port=53)
    r = api.put(f"/listeners/{li['id']}",
                {"listener": {"insert_headers": {"X-Forwarded-Port": "true"}}}, status=400)
    assert api.fault(r) == (f"Validation failure: {protocol} protocol listener does not "
                            "support TLS or header insertion.")


# -- TLS ------------------------------------------------------------------------------

def test_terminated_https_gets_tls_defaults(api: Api, lb: dict[str, Any], cert: str) -> None:
    sni = api.store_secret(Authority.new().issue("api.example.com").pkcs12())
    li = api.create_listener(lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443,
                             default_tls_container_ref=cert, sni_container_refs=[sni, cert])
    assert li["default_tls_container_ref"] == cert
    assert li["sni_container_refs"] == [sni, cert]
    assert li["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert li["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    assert li["tls_ciphers"].startswith("TLS_AES_128_GCM_SHA256:")
    li = api.create_listener(lb["id"], protocol="TERMINATED_HTTPS", protocol_port=8443,
                             sni_container_refs=[cert], tls_versions=["TLSv1.3"],
                             tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256",
                             alpn_protocols=["h2"])
    assert li["tls_versions"] == ["TLSv1.3"] and li["alpn_protocols"] == ["h2"]
    assert li["tls_ciphers"] == "ECDHE-RSA-AES128-GCM-SHA256"


@pytest.mark.parametrize(("fields", "fault"), [
    ({"protocol": "TERMINATED_HTTPS"},
     "An SNI or default certificate container reference must be provided for "
     "TERMINATED_HTTPS protocol listeners."),
    ({"protocol": "TERMINATED_HTTPS", "client_ca_tls_container_ref": CERT},
     "An SNI or default certificate container reference must be provided with a client CA "
     "container reference."),
    ({"protocol": "PROMETHEUS", "client_ca_tls_container_ref": CERT},
     "An SNI or default certificate container reference must be provided with a client CA "
     "container reference."),
    ({"protocol": "TCP", "default_tls_container_ref": CERT},
     "Certificate container references are not allowed on TCP protocol listeners."),
    ({"protocol": "HTTP", "sni_container_refs": [CERT]},
     "Certificate container references are not allowed on HTTP protocol listeners."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT,
      "client_crl_container_ref": CERT},
     "A client authentication CA reference is required to specify a client authentication "
     "revocation list."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT,
      "client_authentication": "MANDATORY"},
     "Client authentication setting MANDATORY requires a client CA container reference."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT,
      "tls_versions": ["TLSv1.3", "insecure"]}, "Invalid TLS versions: insecure"),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT, "tls_versions": []},
     "Empty TLS version list. Either specify at least one TLS version or remove this "
     "parameter to use the default."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT, "alpn_protocols": []},
     "Empty ALPN protocol list. Either specify at least one ALPN protocol or remove this "
     "parameter to use the default."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT,
      "tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256 HIGH"},
     "Invalid characters in cipher string. Only alphanumeric, -, +, !, :, @, =, _, and . "
     "are allowed."),
    ({"protocol": "HTTP", "hsts_max_age": 3600},
     "The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": CERT,
      "hsts_preload": True},
     "HSTS configuration options hsts_include_subdomains and hsts_preload only make sense "
     "if hsts_max_age is set as well."),
])
def test_tls_rules(api: Api, lb: dict[str, Any], fields: dict[str, Any], fault: str) -> None:
    assert fault_of(api, lb["id"], protocol_port=443, **fields) == f"Validation failure: {fault}"


def test_client_authentication_and_hsts_on_terminated_https(
        api: Api, lb: dict[str, Any], cert: str, ca_crl: tuple[str, str]) -> None:
    ca, crl = ca_crl
    li = api.create_listener(
        lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443, default_tls_container_ref=cert,
        client_ca_tls_container_ref=ca, client_crl_container_ref=crl,
        client_authentication="OPTIONAL", hsts_max_age=31536000,
        hsts_include_subdomains=True, hsts_preload=True)
    assert li["client_authentication"] == "OPTIONAL"
    assert (li["client_ca_tls_container_ref"], li["client_crl_container_ref"]) == (ca, crl)
    assert (li["hsts_max_age"], li["hsts_include_subdomains"], li["hsts_preload"]) == (
        31536000, True, True)
    prom = api.create_listener(lb["id"], protocol="PROMETHEUS", protocol_port=9100,
                               default_tls_container_ref=cert)
    assert prom["tls_versions"] == ["TLSv1.2", "TLSv1.3"]


# -- allowed CIDRs -----------------------------------------------------------------------

def test_allowed_cidrs_match_the_vip_version(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"], allowed_cidrs=["10.0.1.0/24", "10.0.2.0/24",
                                                      "10.0.2.0/24", "10.0.3.7/24"])
    assert li["allowed_cidrs"] == ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
    fault = fault_of(api, lb["id"], protocol_port=81, allowed_cidrs=["2001:db8:a0b:12f0::/64"])
    assert fault == ("Validation failure: CIDR 2001:db8:a0b:12f0::/64 IP version incompatible "
                     f"with all VIPs ['{lb['vip_address']}'] IP version.")


def test_allowed_cidrs_refused_with_vip_security_groups(api: Api) -> None:
    lb = api.create_lb(vip_sg_ids=[GHOST])
    assert fault_of(api, lb["id"], allowed_cidrs=["10.0.0.0/8"]) == (
        "Validation failure: Allowed CIDRs are not allowed when using custom VIP Security "
        "Groups.")


# -- show, list --------------------------------------------------------------------------

def test_show_unknown_and_v2_0_prefix(api: Api, lb: dict[str, Any]) -> None:
    r = api.get(f"/listeners/{GHOST}", status=404)
    assert api.fault(r) == f"Listener {GHOST} not found."
    api.get("/listeners/SEAN-CONNERY", status=404)
    li = api.create_listener(lb["id"])
    new = api.get(f"/listeners/{li['id']}").json()
    assert api.get(f"/v2.0/lbaas/listeners/{li['id']}", status=200).json() == new
    shown = api.get(f"/listeners/{li['id']}", params={"fields": "id,protocol"}).json()
    assert shown == {"listener": {"id": li["id"], "protocol": "HTTP"}}


def test_list_pages_sorts_filters_and_selects_fields(api: Api, lb: dict[str, Any]) -> None:
    other = api.create_lb()
    ports = [81, 82, 83, 84]
    ids = {p: api.create_listener(lb["id"], protocol_port=p, tags=[f"t{p}"])["id"]
           for p in ports}
    api.create_listener(other["id"], protocol="TCP", protocol_port=90)
    desc = api.get("/listeners", params={"sort": "protocol_port:desc"}).json()["listeners"]
    assert [x["protocol_port"] for x in desc] == [90, 84, 83, 82, 81]

    first = api.get("/listeners", params={"loadbalancer_id": lb["id"], "limit": 2,
                                          "sort": "protocol_port:asc"}).json()
    assert [x["protocol_port"] for x in first["listeners"]] == [81, 82]
    assert [link["rel"] for link in first["listeners_links"]] == ["next"]
    second = api.get("/listeners", params={"loadbalancer_id": lb["id"], "limit": 2,
                                           "sort": "protocol_port:asc",
                                           "marker": ids[82]}).json()
    assert [x["protocol_port"] for x in second["listeners"]] == [83, 84]
    assert {link["rel"] for link in second["listeners_links"]} == {"previous", "next"}

    tcp = api.get("/listeners", params={"protocol": "TCP"}).json()["listeners"]
    assert [x["protocol_port"] for x in tcp] == [90]
    by_lb = api.get("/listeners", params={"load_balancer_id": other["id"]}).json()["listeners"]
    assert [x["protocol_port"] for x in by_lb] == [90]
    tagged = api.get("/listeners", params={"tags": "t83"}).json()["listeners"]
    assert [x["id"] for x in tagged] == [ids[83]]
    some = api.get("/listeners", params={"fields": "id,protocol_port",
                                         "protocol_port": 81}).json()["listeners"]
    assert some == [{"id": ids[81], "protocol_port": 81}]
    api.get("/listeners", params={"bogus": "1"}, status=400)
    api.get("/listeners", params={"sort": "insert_headers"}, status=400)


# -- update ------------------------------------------------------------------------------

def test_update_changes_only_given_fields(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"], name="a", description="keep", tags=["x"],
                             connection_limit=5)
    with held(api):
        body = api.put(f"/listeners/{li['id']}",
                       {"listener": {"name": "b", "admin_state_up": False,
                                     "timeout_client_data": 7, "tags": ["y"]}},
                       status=200).json()["listener"]
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    assert body["provisioning_status"] == c.PENDING_UPDATE
    assert body["name"] == "b" and body["description"] == "keep"
    assert body["admin_state_up"] is False and body["timeout_client_data"] == 7
    assert body["connection_limit"] == 5 and body["tags"] == ["y"]
    api.wait_idle()
    shown = api.get(f"/listeners/{li['id']}").json()["listener"]
    assert shown["provisioning_status"] == c.ACTIVE and shown["updated_at"]


def test_update_nulls_reset_defaults(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(
        lb["id"], name="a", connection_limit=5, timeout_client_data=1,
        timeout_member_connect=2, timeout_member_data=3, timeout_tcp_inspect=4,
        insert_headers={"X-Forwarded-For": "true"}, allowed_cidrs=["10.0.0.0/8"])
    body = api.put(f"/listeners/{li['id']}", {"listener": {
        "name": None, "connection_limit": None, "timeout_client_data": None,
        "timeout_member_connect": None, "timeout_member_data": None,
        "timeout_tcp_inspect": None, "insert_headers": None, "allowed_cidrs": None,
        "admin_state_up": None, "tags": None}}, status=200).json()["listener"]
    assert body["name"] == "" and body["connection_limit"] == -1
    assert (body["timeout_client_data"], body["timeout_member_connect"],
            body["timeout_member_data"], body["timeout_tcp_inspect"]) == (50000, 5000, 50000, 0)
    assert body["insert_headers"] == {} and body["allowed_cidrs"] is None
    assert body["admin_state_up"] is True and body["tags"] == []


def test_update_refuses_bad_and_read_only_fields(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"])
    for bad in ({"protocol": "TCP"}, {"protocol_port": 81}, {"loadbalancer_id": lb["id"]}):
        r = api.put(f"/listeners/{li['id']}", {"listener": bad}, status=400)
        assert api.fault(r).startswith("Unknown attribute for argument listener")
    r = api.put(f"/listeners/{li['id']}", {"listener": {"connection_limit": -5}}, status=400)
    assert "Invalid input for field/attribute connection_limit" in api.fault(r)
    r = api.put(f"/listeners/{li['id']}",
                {"listener": {"insert_headers": {"X-Bad-Header": "true"}}}, status=400)
    assert api.fault(r) == "['X-Bad-Header'] is not a valid option for insert_headers"
    r = api.put(f"/listeners/{li['id']}", {"listener": {"default_tls_container_ref": CERT}},
                status=400)
    assert "Certificate container references are not allowed on HTTP" in api.fault(r)
    r = api.put(f"/listeners/{li['id']}", {"listener": {"hsts_preload": True}}, status=400)
    assert api.fault(r) == ("Validation failure: Cannot enable hsts_include_subdomains or "
                            "hsts_preload if hsts_max_age was not set as well.")
    r = api.put(f"/listeners/{li['id']}", {"listener": {"allowed_cidrs": ["::/0"]}},
                status=400)
    assert "IP version incompatible" in api.fault(r)
    assert api.lb_status(lb["id"]) == c.ACTIVE
    assert api.get(f"/listeners/{li['id']}").json()["listener"]["provisioning_status"] == \
        c.ACTIVE


def test_update_tls_listener(api: Api, lb: dict[str, Any], cert: str,
                             ca_crl: tuple[str, str]) -> None:
    ca, _ = ca_crl
    li = api.create_listener(lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443,
                             default_tls_container_ref=cert, tls_versions=["TLSv1.3"])
    path = f"/listeners/{li['id']}"
    r = api.put(path, {"listener": {"default_tls_container_ref": None}}, status=400)
    assert "must be provided for TERMINATED_HTTPS protocol listeners" in api.fault(r)
    r = api.put(path, {"listener": {"client_authentication": "MANDATORY"}}, status=400)
    assert "requires a client CA container reference" in api.fault(r)
    body = api.put(path, {"listener": {"client_authentication": "MANDATORY",
                                       "client_ca_tls_container_ref": ca,
                                       "tls_versions": None, "hsts_max_age": 10,
                                       "hsts_include_subdomains": True}},
                   status=200).json()["listener"]
    assert body["client_authentication"] == "MANDATORY"
    assert body["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert (body["hsts_max_age"], body["hsts_include_subdomains"]) == (10, True)
    api.wait_idle()
    r = api.put(path, {"listener": {"client_ca_tls_container_ref": None}}, status=400)
    assert "requires a client CA container reference" in api.fault(r)


def test_update_default_pool(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"])
    pool = api.create_pool(loadbalancer_id=lb["id"])
    udp = api.create_pool(loadbalancer_id=lb["id"], protocol="UDP")
    path = f"/listeners/{li['id']}"
    r = api.put(path, {"listener": {"default_pool_id": GHOST}}, status=404)
    assert api.fault(r) == f"Pool {GHOST} not found."
    r = api.put(path, {"listener": {"default_pool_id": udp["id"]}}, status=400)
    assert "The pool protocol 'UDP' is invalid" in api.fault(r)
    body = api.put(path, {"listener": {"default_pool_id": pool["id"]}},
                   status=200).json()["listener"]
    assert body["default_pool_id"] == pool["id"]
    api.wait_idle()
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert spec.listeners[0].default_pool_id == pool["id"]
    body = api.put(path, {"listener": {"default_pool_id": None}},
                   status=200).json()["listener"]
    assert body["default_pool_id"] is None
    api.wait_idle()
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert spec.listeners[0].default_pool_id is None


# -- delete, stats -------------------------------------------------------------------------

def test_delete_goes_pending_delete_then_away(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"])
    with held(api):
        api.delete(f"/listeners/{li['id']}", status=204)
        shown = api.get(f"/listeners/{li['id']}").json()["listener"]
        assert shown["provisioning_status"] == c.PENDING_DELETE
        assert api.lb_status(lb["id"]) == c.PENDING_UPDATE
    api.get(f"/listeners/{li['id']}", status=404)
    api.delete(f"/listeners/{li['id']}", status=404)
    assert api.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]["listeners"] == []
    assert api.service.drivers["noop"].applied[lb["id"]].listeners == ()  # type: ignore


def test_stats_are_zero_then_read_from_the_database(api: Api, lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"])
    zeros = {"active_connections": 0, "bytes_in": 0, "bytes_out": 0, "request_errors": 0,
             "total_connections": 0}
    assert api.get(f"/listeners/{li['id']}/stats", status=200).json() == {"stats": zeros}
    with api.service.sessions() as session, session.begin():
        session.add(m.ListenerStatistics(listener_id=li["id"], bytes_in=10, bytes_out=20,
                                         active_connections=1, total_connections=5,
                                         request_errors=2))
    assert api.get(f"/listeners/{li['id']}/stats").json() == {"stats": {
        "active_connections": 1, "bytes_in": 10, "bytes_out": 20, "request_errors": 2,
        "total_connections": 5}}
    api.get(f"/listeners/{GHOST}/stats", status=404)


# -- locking, projects, policy, quota -------------------------------------------------------

@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, lb: dict[str, Any], pending: str) -> None:
    li = api.create_listener(lb["id"])
    immutable = f"Load Balancer {lb['id']} is immutable and cannot be updated."
    with held(api):
        api.set_lb_status(lb["id"], pending)
        assert fault_of(api, lb["id"], 409, protocol_port=81) == immutable
        r = api.put(f"/listeners/{li['id']}", {"listener": {"name": "x"}}, status=409)
        assert api.fault(r) == immutable
        api.delete(f"/listeners/{li['id']}", status=409)
        shown = api.get(f"/listeners/{li['id']}").json()["listener"]
        assert shown["name"] == "" and shown["provisioning_status"] == c.ACTIVE
        assert len(api.get("/listeners").json()["listeners"]) == 1


def test_other_projects_listeners_are_403(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    assert li["project_id"] == "p1"
    api.get(f"/listeners/{li['id']}", project="p2", status=403)
    api.put(f"/listeners/{li['id']}", {"listener": {"name": "x"}}, project="p2", status=403)
    api.delete(f"/listeners/{li['id']}", project="p2", status=403)
    api.get(f"/listeners/{li['id']}/stats", project="p2", status=403)
    assert api.get("/listeners", project="p2").json()["listeners"] == []
    assert len(api.get("/listeners", project="p1").json()["listeners"]) == 1
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 82}
    api.post("/listeners", {"listener": body}, project="p2", status=403)
    seen = api.get("/listeners", project="p3",
                   roles="admin").json()["listeners"]
    assert [x["id"] for x in seen] == [li["id"]]


def test_roles_follow_octavia_policy(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    body = {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 81}
    for role in ("reader", "load-balancer_observer", "nothing"):
        r = api.post("/listeners", {"listener": body}, project="p1", roles=role, status=403)
        assert api.fault(r) == "Policy does not allow this request to be performed."
        api.put(f"/listeners/{li['id']}", {"listener": {"name": "x"}}, project="p1",
                roles=role, status=403)
        api.delete(f"/listeners/{li['id']}", project="p1", roles=role, status=403)
    api.get("/listeners", project="p1", roles="nothing", status=403)
    api.get(f"/listeners/{li['id']}", project="p1", roles="reader", status=200)
    api.get(f"/listeners/{li['id']}/stats", project="p1", roles="reader", status=200)
    api.get("/listeners", project="p1", roles="reader", status=200)
    api.post("/listeners", {"listener": body}, project="p1", roles="member", status=201)


def test_quota_on_listeners(api: Api) -> None:
    assert api.put("/quotas/p1", {"quota": {"listener": 1}}).status_code in (200, 202)
    lb = api.create_lb(_project="p1")
    api.create_listener(lb["id"], _project="p1")
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 81}
    r = api.post("/listeners", {"listener": body}, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: Listener"
    assert api.lb_status(lb["id"]) == c.ACTIVE


# -- cascade ----------------------------------------------------------------------------------

def test_load_balancer_delete_cascades_to_listeners_policies_rules(api: Api,
                                                                   lb: dict[str, Any]) -> None:
    li = api.create_listener(lb["id"])
    pool = api.create_pool(loadbalancer_id=lb["id"])
    policy = api.create_l7policy(li["id"], action="REDIRECT_TO_POOL", redirect_pool_id=pool["id"])
    rule = api.create_l7rule(policy["id"])
    r = api.delete(f"/loadbalancers/{lb['id']}", status=400)
    assert "it has children" in api.fault(r)
    assert api.get(f"/listeners/{li['id']}").json()["listener"]["provisioning_status"] == \
        c.ACTIVE
    with held(api):
        api.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"}, status=204)
        for path, key in ((f"/listeners/{li['id']}", "listener"),
                          (f"/l7policies/{policy['id']}", "l7policy"),
                          (f"/l7policies/{policy['id']}/rules/{rule['id']}", "rule")):
            assert api.get(path).json()[key]["provisioning_status"] == c.PENDING_DELETE
    api.get(f"/loadbalancers/{lb['id']}", status=404)
    api.get(f"/listeners/{li['id']}", status=404)
    api.get(f"/l7policies/{policy['id']}", status=404)
    api.get(f"/l7policies/{policy['id']}/rules/{rule['id']}", status=404)
    assert api.get("/listeners").json()["listeners"] == []
    assert api.get("/l7policies").json()["l7policies"] == []
    with api.service.sessions() as session:
        assert session.query(m.L7Rule).count() == 0
        assert session.query(m.Tag).count() == 0


# -- builders for the fully-populated create ---------------------------------------------

def test_builders_assemble_a_new_load_balancer_graph(api: Api) -> None:
    """build_listener / build_l7policy / build_l7rule on objects not yet in the
    database, as the fully-populated load balancer create uses them."""
    state = api.service.app.state.lbaas
    ctx = state.policy.context(Identity(project_id="p1", roles=("member",)))
    with api.service.sessions() as db:
        lb = m.LoadBalancer(id=m.new_id(), project_id="p1", name="full", provider="noop",
                            vip_address="127.1.9.9", operating_status=c.OFFLINE)
        db.add(lb)
        pool = m.Pool(id=m.new_id(), project_id="p1", protocol="HTTP",
                      lb_algorithm="ROUND_ROBIN", operating_status=c.OFFLINE)
        lb.pools.append(pool)
        web = build_listener(db, ctx, state, lb, ListenerSingleCreate.model_validate(
            {"protocol": "HTTP", "protocol_port": 80, "allowed_cidrs": ["10.0.0.0/8"]}), pool)
        to_pool = build_l7policy(db, state, web, L7PolicySingleCreate.model_validate(
            {"action": "REDIRECT_TO_POOL", "name": "second"}), pool)
        first = build_l7policy(db, state, web, L7PolicySingleCreate.model_validate(
            {"action": "REJECT", "position": 1, "name": "first"}), None)
        build_l7rule(db, state, to_pool, L7RuleSingleCreate.model_validate(
            {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}))
        with pytest.raises(exc.DuplicateListenerEntry):
            build_listener(db, ctx, state, lb, ListenerSingleCreate.model_validate(
                {"protocol": "TCP", "protocol_port": 80}), None)
        with pytest.raises(exc.ValidationError):
            build_listener(db, ctx, state, lb, ListenerSingleCreate.model_validate(
                {"protocol": "UDP", "protocol_port": 53}), pool)
        with pytest.raises(exc.ListenerNoChildren):
            build_listener(db, ctx, state, lb, ListenerSingleCreate.model_validate(
                {"protocol": "PROMETHEUS", "protocol_port": 9100}), pool)
        db.flush()
        assert [li.id for li in lb.listeners] == [web.id]
        assert web.default_pool is pool and web.project_id == "p1"
        assert (first.position, to_pool.position) == (1, 2)
        assert to_pool.redirect_pool is pool and len(to_pool.rules) == 1
        body = ListenerResponse.dump(web)
        assert body["l7policies"] == [{"id": first.id}, {"id": to_pool.id}]
        assert body["loadbalancers"] == [{"id": lb.id}] and body["default_pool_id"] == pool.id
        db.rollback()
    assert api.get("/listeners").json()["listeners"] == []


# -- certificate references --------------------------------------------------------------

def _tls_fault(api: Api, lb: dict[str, Any], **fields: Any) -> str:
    return fault_of(api, lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443, **fields)


def test_certificate_references_are_checked_before_anything_is_stored(
        api: Api, lb: dict[str, Any], cert: str) -> None:
    ca = Authority.new()
    leaf, other = ca.issue("www.example.com"), ca.issue("other.example.com")
    ghost = cert.rsplit("/", 1)[0] + "/" + GHOST
    assert _tls_fault(api, lb, default_tls_container_ref=ghost) == (
        f"Invalid input for field/attribute default_tls_container_ref. Value: '{ghost}'. "
        "Could not retrieve certificate: not found.")
    foreign = api.store_secret(leaf.pkcs12(), project="p2")
    assert "default_tls_container_ref" in _tls_fault(api, lb, default_tls_container_ref=foreign)
    assert "attribute sni_container_refs" in _tls_fault(
        api, lb, default_tls_container_ref=cert, sni_container_refs=[cert, ghost])
    garbage = api.store_secret(b"not a bundle")
    assert "The PKCS12 bundle is unreadable" in _tls_fault(api, lb,
                                                          default_tls_container_ref=garbage)
    locked = api.store_secret(leaf.pkcs12(passphrase=b"s3cret"))
    assert "The PKCS12 bundle is unreadable" in _tls_fault(api, lb,
                                                          default_tls_container_ref=locked)
    expired = ca.issue("old.example.com", not_before=m.utcnow().replace(year=2020),
                       not_after=m.utcnow().replace(year=2021))
    assert "The certificate expired on 2021" in _tls_fault(
        api, lb, default_tls_container_ref=api.store_secret(expired.pkcs12()))

    def container(**parts: bytes) -> str:
        refs = [{"name": n, "secret_ref": api.store_secret(v.decode())} for n, v in parts.items()]
        r = api.post("/v1/containers", {"type": "certificate", "secret_refs": refs}, status=201)
        return str(r.json()["container_ref"])

    mismatched = container(certificate=leaf.cert_pem, private_key=other.key_pem())
    assert _tls_fault(api, lb, default_tls_container_ref=mismatched).endswith(
        "The private key does not match the certificate.")
    wrong = container(certificate=leaf.cert_pem, private_key=leaf.key_pem(b"right"),
                      private_key_passphrase=b"wrong")
    assert _tls_fault(api, lb, default_tls_container_ref=wrong).endswith(
        "The passphrase of the private key is wrong.")
    assert api.get("/listeners").json()["listeners"] == []
    good = container(certificate=leaf.cert_pem, private_key=leaf.key_pem(b"right"),
                     private_key_passphrase=b"right")
    li = api.create_listener(lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443,
                             default_tls_container_ref=good)
    assert li["default_tls_container_ref"] == good
    # in use: neither the container nor its secrets can be deleted
    r = api.delete(good.removeprefix("http://testserver"), status=400)
    assert r.json()["description"].endswith("it has consumers.")
    consumers = api.get(good.removeprefix("http://testserver")).json()["consumers"]
    assert consumers == [{"name": "lbaas",
                          "URL": f"http://testserver/v2/lbaas/listeners/{li['id']}"}]


def test_client_ca_and_crl_are_checked(api: Api, lb: dict[str, Any], cert: str,
                                       ca_crl: tuple[str, str]) -> None:
    ca, _ = ca_crl
    not_a_ca = api.store_secret("hello")
    assert "The CA certificate is invalid" in _tls_fault(
        api, lb, default_tls_container_ref=cert, client_ca_tls_container_ref=not_a_ca)
    other_crl = api.store_secret(Authority.new("other CA").crl().decode())
    fault = _tls_fault(api, lb, default_tls_container_ref=cert, client_ca_tls_container_ref=ca,
                       client_crl_container_ref=other_crl)
    assert fault.startswith("Invalid input for field/attribute client_crl_container_ref")
    assert fault.endswith("The CRL specified is not valid for client certificate authority "
                          "reference supplied.")
