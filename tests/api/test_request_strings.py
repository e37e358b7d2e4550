"""Rules every request obeys, on every resource: tags are a set, no string holds NUL.

Each test runs on SQLite and on PostgreSQL (``db_url``): PostgreSQL cannot
store or compare a string holding NUL, and a repeated tag breaks the tag
table's key on both; either used to be a 500.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.base import Api

# Each taggable resource and the key of its list.
TAGGABLE = {"loadbalancer": "loadbalancers", "listener": "listeners", "pool": "pools",
            "member": "members", "healthmonitor": "healthmonitors", "l7policy": "l7policies",
            "l7rule": "rules"}
NUL_REFUSED = "Value must not contain NUL characters."


def create_request(api: Api, kind: str) -> tuple[str, str, dict[str, Any]]:
    """(collection path, envelope key, a valid create body) for a new ``kind``,
    its parents created."""
    if kind == "loadbalancer":
        return "/loadbalancers", "loadbalancer", {"name": "lb"}
    lb = api.create_lb()
    if kind == "listener":
        return "/listeners", "listener", {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                          "protocol_port": 80}
    if kind == "pool":
        return "/pools", "pool", {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                  "lb_algorithm": "ROUND_ROBIN"}
    if kind == "member":
        pool = api.create_pool(loadbalancer_id=lb["id"])
        return (f"/pools/{pool['id']}/members", "member",
                {"address": "127.0.0.10", "protocol_port": 8080})
    if kind == "healthmonitor":
        pool = api.create_pool(loadbalancer_id=lb["id"])
        return "/healthmonitors", "healthmonitor", {"pool_id": pool["id"], "type": "HTTP",
                                                    "delay": 5, "timeout": 3, "max_retries": 2}
    listener = api.create_listener(lb["id"])
    if kind == "l7policy":
        return "/l7policies", "l7policy", {"listener_id": listener["id"], "action": "REJECT"}
    policy = api.create_l7policy(listener["id"])
    return (f"/l7policies/{policy['id']}/rules", "rule",
            {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"})


@pytest.mark.parametrize("kind", TAGGABLE)
def test_repeated_tags_are_kept_once(api: Api, kind: str) -> None:
    path, key, body = create_request(api, kind)
    created = api.post(path, {key: {**body, "tags": ["b", "a", "b"]}}, status=201).json()[key]
    assert created["tags"] == ["b", "a"]
    api.wait_idle()
    one = f"{path}/{created['id']}"
    updated = api.put(one, {key: {"tags": ["c", "c"]}}, status=200).json()[key]
    assert updated["tags"] == ["c"]
    api.wait_idle()
    assert api.get(one).json()[key]["tags"] == ["c"]


@pytest.mark.parametrize("kind", TAGGABLE)
def test_nul_in_a_body_string_is_refused_naming_the_field(api: Api, kind: str) -> None:
    path, key, body = create_request(api, kind)
    before = api.get(path).json()[TAGGABLE[kind]]
    r = api.post(path, {key: {**body, "tags": ["ok", "a\x00b"]}}, status=400)
    assert api.fault(r).startswith("Invalid input for field/attribute tags. Value: ")
    assert api.fault(r).endswith(NUL_REFUSED)
    if kind != "l7rule":  # a rule has no name
        r = api.post(path, {key: {**body, "name": "a\x00b"}}, status=400)
        assert api.fault(r) == ("Invalid input for field/attribute name. Value: 'a\x00b'. "
                                + NUL_REFUSED)
    assert api.get(path).json()[TAGGABLE[kind]] == before


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/listeners", {"listener": {"loadbalancer_id": "LB", "protocol": "HTTP",
                                 "protocol_port": 80,
                                 "insert_headers": {"X-Forwarded-For": "tr\x00ue"}}},
     "insert_headers"),
    ("/pools", {"pool": {"loadbalancer_id": "LB", "protocol": "HTTP",
                         "lb_algorithm": "ROUND_ROBIN",
                         "session_persistence": {"type": "APP_COOKIE",
                                                 "cookie_name": "a\x00"}}}, "cookie_name"),
    ("/pools", {"pool": {"loadbalancer_id": "LB", "protocol": "HTTP",
                         "lb_algorithm": "ROUND_ROBIN",
                         "members": [{"address": "127.0.0.1", "protocol_port": 80,
                                      "name": "m\x00"}]}}, "name"),
    ("/flavorprofiles", {"flavorprofile": {"name": "fp", "provider_name": "noop",
                                           "flavor_data": '{"a\x00": 1}'}}, "flavor_data"),
    ("/v2.0/networks", {"network": {"description": "\x00"}}, "description"),
])
def test_nul_is_refused_in_nested_and_admin_bodies(api: Api, path: str, body: dict[str, Any],
                                                   field: str) -> None:
    lb = api.create_lb()
    for envelope in body.values():
        envelope.update({k: lb["id"] for k, v in envelope.items() if v == "LB"})
    r = api.post(path, body, status=400)
    assert api.fault(r).startswith(f"Invalid input for field/attribute {field}. Value: ")
    assert api.fault(r).endswith(NUL_REFUSED)


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/loadbalancers/a%00b", None, "loadbalancer_id"),
    ("/pools/a%00b/members", None, "pool_id"),
    ("/availabilityzones/a%00b", None, "name"),
    ("/quotas/a%00b", None, "project_id"),
    ("/loadbalancers", {"name": "a\x00b"}, "name"),
    ("/listeners", {"tags": "a\x00b"}, "tags"),
    ("/pools", {"marker": "a\x00b"}, "marker"),
    ("/v2.0/subnets", {"name": "a\x00b"}, "name"),
])
def test_nul_in_the_url_is_refused_naming_the_parameter(api: Api, path: str,
                                                        params: dict[str, str] | None,
                                                        field: str) -> None:
    # In the path, %00 is the NUL character once decoded.
    r = api.get(path, params=params, status=400)
    assert api.fault(r) == (f"Invalid input for field/attribute {field}. Value: 'a\x00b'. "
                            + NUL_REFUSED)
