"""Limits that keep one request from stalling the API, and values HAProxy would refuse.

Issue 9, items 4, 10 and 11: request bodies are at most ``[oslo_middleware]
max_request_body_size`` (413, as oslo.middleware's sizelimit in Octavia);
lists and strings that reach haproxy.cfg are bounded; a 400 never repeats a
huge value; values that HAProxy refuses (PCRE2 syntax, IPv6 zones, a TAB,
more than its maxconn) are 400 at the API instead of an ERROR or a 501
later; strings no database can store are 400, not 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas.common import constants as c
from lbaas.service import Service
from tests.api.base import PREFIX, Api
from tests.conftest import make_settings


def _raw_post(api: Api, path: str, content: bytes | Iterator[bytes],
              headers: dict[str, str] | None = None) -> Any:
    url = path if path.startswith("/v2.0") else PREFIX + path
    return api.client.post(url, content=content,
                           headers={"Content-Type": "application/json", **(headers or {})})


# -- request body size (item 4) ------------------------------------------------

def test_a_body_over_the_limit_is_413_and_creates_nothing(api: Api) -> None:
    body = json.dumps({"loadbalancer": {"name": "lb", "tags": ["a" * 255] * 50,
                                        "description": "x" * 120000}}).encode()
    r = _raw_post(api, "/loadbalancers", body)
    assert r.status_code == 413
    assert api.fault(r) == ("Request is too large. Larger than max_request_body_size "
                            "(114688).")
    assert len(r.content) < 300
    assert api.get("/loadbalancers").json()["loadbalancers"] == []


def test_a_chunked_body_is_counted_as_it_arrives(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"loadbalancer": {"name": "'
        for _ in range(200):
            yield b"a" * 1024
        yield b'"}}'

    r = _raw_post(api, "/loadbalancers", chunks())
    assert r.status_code == 413, r.text
    assert api.get("/loadbalancers").json()["loadbalancers"] == []


def test_the_limit_is_the_configured_one(tmp_path: Path) -> None:
    svc = Service(make_settings(tmp_path, max_request_body_size=300), drivers={})
    try:
        with TestClient(svc.app) as client:
            small = {"network": {"name": "n" * 100}}
            assert client.post("/v2.0/networks", json=small).status_code == 201
            big = {"network": {"name": "n" * 200, "description": "d" * 200}}
            r = client.post("/v2.0/networks", json=big)
            assert r.status_code == 413
            assert "max_request_body_size (300)" in r.json()["faultstring"]
    finally:
        svc.stop()


# -- lists and strings (item 4) ---------------------------------------------------

def test_tags_are_limited_per_object(api: Api) -> None:
    too_many = [f"t{i}" for i in range(c.MAX_TAGS + 1)]
    r = api.post("/loadbalancers", {"loadbalancer": {"tags": too_many}}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute tags.")
    assert f"at most {c.MAX_TAGS} items" in api.fault(r)
    lb = api.create_lb(tags=[f"t{i}" for i in range(c.MAX_TAGS)])
    assert len(lb["tags"]) == c.MAX_TAGS
    api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"tags": too_many}}, status=400)


def test_a_listener_takes_the_100_tags_octavias_tempest_tests_send(
        api: Api, lb: dict[str, object]) -> None:
    tags = [str(x) for x in range(100)]  # octavia-tempest-plugin's listener create
    listener = api.create_listener(lb["id"], tags=tags)
    assert sorted(listener["tags"], key=int) == tags


@pytest.mark.parametrize(("field", "good", "bad"), [
    ("url_path", "/" + "a" * 2047, "/" + "a" * 2048),
    ("expected_codes", ",".join(["200"] * 16), ",".join(["200"] * 17)),
])
def test_health_monitor_strings_are_bounded(api: Api, pool: dict[str, Any], field: str,
                                            good: str, bad: str) -> None:
    body = {"pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2}
    r = api.post("/healthmonitors", {"healthmonitor": {**body, field: bad}}, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    api.post("/healthmonitors", {"healthmonitor": {**body, field: good}}, status=201)


def test_a_400_does_not_repeat_a_huge_value(api: Api, pool: dict[str, Any]) -> None:
    body = {"pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2,
            "url_path": "/" + "a" * 100000}
    r = api.post("/healthmonitors", {"healthmonitor": body}, status=400)
    fault = api.fault(r)
    assert fault.startswith("Invalid input for field/attribute url_path. Value: '/aaa")
    assert "(100001 characters)" in fault
    assert len(r.content) < 1500


def test_unknown_attributes_are_not_all_repeated(api: Api) -> None:
    r = api.post("/loadbalancers", {"loadbalancer": {f"x{i}": 1 for i in range(3000)}},
                 status=400)
    assert api.fault(r).startswith("Unknown attribute for argument loadbalancer: x0, x1")
    assert len(r.content) < 1500


# -- numbers HAProxy or the database cannot take (item 11) -------------------------

@pytest.mark.parametrize(("field", "good", "bad"), [
    ("connection_limit", c.MAX_CONNECTION_LIMIT, c.MAX_CONNECTION_LIMIT + 1),
    ("hsts_max_age", c.MAX_INT32, c.MAX_INT32 + 1),
])
def test_listener_numbers_are_bounded(api: Api, lb: dict[str, Any], field: str, good: int,
                                      bad: int) -> None:
    body = {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}
    r = api.post("/listeners", {"listener": {**body, field: bad}}, status=400)
    assert api.fault(r) == (f"Invalid input for field/attribute {field}. Value: '{bad}'. "
                            f"Value should be lower or equal to {good}.")
    if field == "connection_limit":
        api.post("/listeners", {"listener": {**body, field: good}}, status=201)


# -- allowed_cidrs (item 10) --------------------------------------------------------

def test_allowed_cidrs_are_limited(api: Api, lb: dict[str, Any]) -> None:
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(c.MAX_ALLOWED_CIDRS + 1)]
    body = {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 80}
    r = api.post("/listeners", {"listener": {**body, "allowed_cidrs": cidrs}}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute allowed_cidrs.")
    assert "at most 1000 items" in api.fault(r)
    made = api.post("/listeners", {"listener": {**body, "allowed_cidrs": cidrs[:-1]}},
                    status=201).json()["listener"]
    assert len(made["allowed_cidrs"]) == c.MAX_ALLOWED_CIDRS


# -- IPv6 zones (items 10 and 11) ------------------------------------------------------

def test_ipv6_zones_are_refused_everywhere(api: Api, lb: dict[str, Any],
                                           pool: dict[str, Any]) -> None:
    def refused(path: str, body: dict[str, Any], field: str) -> None:
        r = api.post(path, body, status=400)
        assert api.fault(r).startswith(f"Invalid input for field/attribute {field}."), r.text

    member = {"address": "fe80::1%eth0", "protocol_port": 80}
    refused(f"/pools/{pool['id']}/members", {"member": member}, "address")
    member = {"address": "::1", "protocol_port": 80, "monitor_address": "fe80::1%eth0"}
    refused(f"/pools/{pool['id']}/members", {"member": member}, "monitor_address")
    refused("/loadbalancers", {"loadbalancer": {"vip_address": "::1%lo"}}, "vip_address")
    refused("/listeners", {"listener": {"loadbalancer_id": lb["id"], "protocol": "TCP",
                                        "protocol_port": 81,
                                        "allowed_cidrs": ["fe80::%eth0/64"]}},
            "allowed_cidrs")
    network = api.post("/v2.0/networks", {"network": {"name": "n6"}},
                       status=201).json()["network"]
    for subnet, field in (({"cidr": "fe80::/64", "gateway_ip": "fe80::1%eth0"}, "gateway_ip"),
                          ({"cidr": "fe80::%eth0/64"}, "cidr")):
        refused("/v2.0/subnets", {"subnet": {"network_id": network["id"], **subnet}}, field)
    assert [m["address"] for m in api.get(f"/pools/{pool['id']}/members").json()["members"]] \
        == []


# -- L7 values HAProxy refuses (items 10 and 11) -------------------------------------------

@pytest.mark.parametrize(("value", "reason"), [
    (r"\u0041", r"PCRE2 does not support \F, \L, \l, \N{name}, \U, or \u at position 2"),
    (r"\U0001F600", r"PCRE2 does not support"),
    (r"\N{EM DASH}", r"PCRE2 does not support"),
    ("x{1,70000}", "number too big in {} quantifier"),
    (r"\x{100}", "character code point value in \\x{} or \\o{} is too large"),
    (r"(a)\1", "reference to non-existent subpattern"),  # HAProxy compiles without captures
])
def test_regex_values_are_checked_by_pcre2(api: Api, listener: dict[str, Any], value: str,
                                           reason: str) -> None:
    policy = api.create_l7policy(listener["id"])
    r = api.post(f"/l7policies/{policy['id']}/rules",
                 {"rule": {"type": "PATH", "compare_type": "REGEX", "value": value}}, status=400)
    assert api.fault(r).startswith("Error parsing L7Rule: Unable to parse regular expression: ")
    assert reason in api.fault(r)


def test_pcre2_regex_values_are_accepted(api: Api, listener: dict[str, Any]) -> None:
    policy = api.create_l7policy(listener["id"])
    for value in (r"^/api/(?:v1|v2)/[^/]+\.json$", r"(?i)^/static/", r"(?<n>a)\k<n>"):
        api.post(f"/l7policies/{policy['id']}/rules",
                 {"rule": {"type": "PATH", "compare_type": "REGEX", "value": value}}, status=201)
        api.wait_idle()


@pytest.mark.parametrize("rule", [
    {"type": "PATH", "compare_type": "REGEX", "value": "^/a\tb"},
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A", "value": '"a\tb"'},
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A\t", "value": "b"},
])
def test_a_tab_in_an_l7_value_is_400(api: Api, listener: dict[str, Any],
                                     rule: dict[str, Any]) -> None:
    policy = api.create_l7policy(listener["id"])
    r = api.post(f"/l7policies/{policy['id']}/rules", {"rule": rule}, status=400)
    assert "control characters" in api.fault(r) or "Invalid characters" in api.fault(r)


# -- text no database stores (item 11) ----------------------------------------------------

@pytest.mark.parametrize(("path", "raw", "field"), [
    ("/loadbalancers", '{"loadbalancer": {"name": "a\\ud800b"}}', "name"),
    ("/loadbalancers", '{"loadbalancer": {"tags": ["ok", "\\udfff"]}}', "tags"),
    ("/v2.0/networks", '{"network": {"description": "\\ud83d"}}', "description"),
])
def test_a_lone_surrogate_is_400_naming_the_field(api: Api, path: str, raw: str,
                                                  field: str) -> None:
    r = _raw_post(api, path, raw.encode())
    assert r.status_code == 400, r.text
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}.")
    assert api.fault(r).endswith("unable to parse raw data as a unicode string.")
    ok = _raw_post(api, "/loadbalancers", b'{"loadbalancer": {"name": "\\ud83d\\ude00"}}')
    assert ok.status_code == 201 and ok.json()["loadbalancer"]["name"] == "\U0001F600"
