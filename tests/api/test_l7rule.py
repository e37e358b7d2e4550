"""L7 rules: /v2/lbaas/l7policies/{id}/rules (after Octavia's functional test_l7rule.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.common import constants as c
from tests.api.base import GHOST, Api, held

RULE_FIELDS = {
    "tenant_id",
    "id", "type", "compare_type", "key", "value", "invert", "provisioning_status",
    "operating_status", "created_at", "updated_at", "project_id", "admin_state_up", "tags",
}


@pytest.fixture
def policy(api: Api, listener: dict[str, Any]) -> dict[str, Any]:
    return api.create_l7policy(listener["id"])


def rules_path(policy: dict[str, Any]) -> str:
    return f"/l7policies/{policy['id']}/rules"


def fault_of(api: Api, policy: dict[str, Any], status: int = 400, **fields: Any) -> str:
    r = api.post(rules_path(policy), {"rule": fields}, status=status)
    return api.fault(r)


def update(api: Api, policy: dict[str, Any], rule_id: str, status: int = 200,
           **fields: Any) -> Any:
    r = api.put(f"{rules_path(policy)}/{rule_id}", {"rule": fields}, status=status)
    return r.json()["rule"] if status == 200 else api.fault(r)


def statuses(api: Api, lb_id: str, listener_id: str, policy_id: str,
             rule_id: str) -> tuple[str, ...]:
    return (api.lb_status(lb_id),
            api.get(f"/listeners/{listener_id}").json()["listener"]["provisioning_status"],
            api.get(f"/l7policies/{policy_id}").json()["l7policy"]["provisioning_status"],
            api.get(f"/l7policies/{policy_id}/rules/{rule_id}").json()["rule"][
                "provisioning_status"])


# -- create ---------------------------------------------------------------------

def test_create_shape_and_statuses(api: Api, lb: dict[str, Any], listener: dict[str, Any],
                                   policy: dict[str, Any]) -> None:
    with held(api):
        rule = api.create_l7rule(policy["id"], wait=False, type="HOST_NAME",
                                 compare_type="EQUAL_TO", value="www.example.com",
                                 tags=["t"], project_id="ignored")
        assert statuses(api, lb["id"], listener["id"], policy["id"], rule["id"]) == (
            c.PENDING_UPDATE, c.PENDING_UPDATE, c.PENDING_UPDATE, c.PENDING_CREATE)
    assert set(rule) == RULE_FIELDS
    assert (rule["type"], rule["compare_type"], rule["value"]) == (
        "HOST_NAME", "EQUAL_TO", "www.example.com")
    assert rule["key"] is None and rule["invert"] is False and rule["admin_state_up"] is True
    assert rule["operating_status"] == c.OFFLINE and rule["tags"] == ["t"]
    assert rule["project_id"] == lb["project_id"] and rule["updated_at"] is None
    assert statuses(api, lb["id"], listener["id"], policy["id"], rule["id"]) == (c.ACTIVE,) * 4
    refs = api.get(f"/l7policies/{policy['id']}").json()["l7policy"]["rules"]
    assert refs == [{"id": rule["id"]}]
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    got = spec.listeners[0].l7policies[0].rules
    assert [(r.id, r.type, r.value) for r in got] == [(rule["id"], "HOST_NAME",
                                                       "www.example.com")]


@pytest.mark.parametrize("fields", [
    {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", "invert": True},
    {"type": "PATH", "compare_type": "REGEX", "value": r"^/images/.*\.png$"},
    {"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": ".example.com"},
    {"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "jpg"},
    {"type": "FILE_TYPE", "compare_type": "REGEX", "value": "png|jpe?g"},
    {"type": "HEADER", "compare_type": "CONTAINS", "key": "Some-header", "value": "x-value"},
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Msg", "value": '"hello world"'},
    {"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "some-cookie", "value": "some-value"},
    {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "tRuE"},
    {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
    {"type": "SSL_DN_FIELD", "compare_type": "STARTS_WITH", "key": "st-1",
     "value": "ST-FIELD1-PREFIX"},
    {"type": "SSL_DN_FIELD", "compare_type": "REGEX", "key": "CN", "value": "^www"},
])
def test_create_valid_rules(api: Api, policy: dict[str, Any], fields: dict[str, Any]) -> None:
    rule = api.create_l7rule(policy["id"], **fields)
    assert {k: rule[k] for k in fields} == fields
    assert rule["provisioning_status"] == c.PENDING_CREATE


@pytest.mark.parametrize(("fields", "fault"), [
    ({"type": "HOST_NAME", "compare_type": "STARTS_WITH", "value": ""},
     "Invalid L7 Rule: L7 rule type requires a value"),
    ({"type": "PATH", "compare_type": "REGEX", "value": "bad string\\"},
     "Unable to parse regular expression: "),
    ({"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a b"},
     "Invalid characters in comparison value"),
    ({"type": "FILE_TYPE", "compare_type": "STARTS_WITH", "value": "png"},
     "Invalid L7 Rule: invalid comparison type for rule type"),
    ({"type": "HEADER", "compare_type": "CONTAINS", "value": "some-string"},
     "Invalid L7 Rule: L7 rule type requires a key"),
    ({"type": "HEADER", "compare_type": "CONTAINS", "key": "bad header", "value": "x"},
     "Invalid characters in key"),
    ({"type": "HEADER", "compare_type": "CONTAINS", "key": "X-H", "value": 'a"b c'},
     "Invalid characters in header value"),
    ({"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "bad cookie name", "value": "x"},
     "Invalid characters in key"),
    ({"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "c", "value": "a;b"},
     "Invalid characters in cookie value"),
    ({"type": "COOKIE", "compare_type": "REGEX", "key": "c", "value": "("},
     "Unable to parse regular expression: "),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "true",
      "key": "no-need-key"},
     'Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT does not use the "key" field.'),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "not-true-string"},
     "Invalid L7 Rule: L7rule value not-true-string is not a boolean True string."),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "STARTS_WITH", "value": "tRUe"},
     "Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT only supports the EQUAL_TO compare "
     "type."),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "true",
      "key": "no-need-key"},
     'Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT does not use the "key" field.'),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "true"},
     "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0"),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "STARTS_WITH", "value": "0"},
     "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT only supports the EQUAL_TO compare "
     "type."),
    ({"type": "SSL_DN_FIELD", "compare_type": "REGEX", "value": "bad regex\\"},
     "Unable to parse regular expression: "),
    ({"type": "SSL_DN_FIELD", "compare_type": "REGEX", "value": "^.test*$"},
     "Invalid L7 Rule: L7rule type SSL_DN_FIELD needs to specify a key and a value."),
    ({"type": "SSL_DN_FIELD", "compare_type": "REGEX", "value": "^.test*$",
      "key": "NOT_SUPPORTED_DN_FIELD"},
     "Invalid L7 Rule: Invalid L7rule distinguished name field."),
])
def test_create_refuses_invalid_rules(api: Api, policy: dict[str, Any],
                                      fields: dict[str, Any], fault: str) -> None:
    got = fault_of(api, policy, **fields)
    assert got.startswith("Error parsing L7Rule: ") and fault in got
    assert api.get(rules_path(policy)).json()["rules"] == []


@pytest.mark.parametrize(("fields", "field"), [
    ({"type": "bad type"}, "type"),
    ({"compare_type": "LIKE"}, "compare_type"),
    ({"value": None}, "value"),
    ({"value": 5}, "value"),
    ({"value": "x" * 256}, "value"),
    ({"value": "/a\nb"}, "value"),
    ({"value": "/a\rb"}, "value"),
    ({"key": "a\nb"}, "key"),
    ({"key": "k" * 256}, "key"),
    ({"invert": "yes"}, "invert"),
    ({"admin_state_up": 0}, "admin_state_up"),
    ({"tags": "t"}, "tags"),
])
def test_create_refuses_bad_fields_naming_them(api: Api, policy: dict[str, Any],
                                               fields: dict[str, Any], field: str) -> None:
    body = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", **fields}
    assert f"Invalid input for field/attribute {field}" in fault_of(api, policy, **body)


def test_create_needs_type_compare_type_value(api: Api, policy: dict[str, Any]) -> None:
    assert fault_of(api, policy, type="PATH", compare_type="EQUAL_TO", value="/",
                    name="test1") == "Unknown attribute for argument rule: name"
    assert "field/attribute type" in fault_of(api, policy, name="test1")
    assert fault_of(api, policy, type="PATH", compare_type="STARTS_WITH") == (
        "Invalid input for field/attribute value. Value: 'None'. Mandatory field missing.")
    assert "field/attribute type" in fault_of(api, policy, compare_type="EQUAL_TO", value="x")
    r = api.post(f"/l7policies/{GHOST}/rules", {"rule": {"type": "PATH",
                                                         "compare_type": "EQUAL_TO",
                                                         "value": "/"}}, status=404)
    assert api.fault(r) == f"L7 Policy {GHOST} not found."


def test_at_most_fifty_rules_per_policy(api: Api, policy: dict[str, Any]) -> None:
    api.create_l7policy(policy["listener_id"], rules=[
        {"type": "PATH", "compare_type": "STARTS_WITH", "value": f"/p{i}"}
        for i in range(c.MAX_L7RULES_PER_L7POLICY - 1)])
    full = api.create_l7policy(policy["listener_id"], rules=[
        {"type": "PATH", "compare_type": "STARTS_WITH", "value": f"/p{i}"}
        for i in range(c.MAX_L7RULES_PER_L7POLICY - 1)])
    api.create_l7rule(full["id"])
    assert fault_of(api, full, 409, type="PATH", compare_type="STARTS_WITH",
                    value="/api") == f"Too many rules on L7 policy {full['id']}"
    assert len(api.get(rules_path(full)).json()["rules"]) == c.MAX_L7RULES_PER_L7POLICY
    api.create_l7rule(policy["id"])  # another policy has its own 50


# -- show, list --------------------------------------------------------------------

def test_show_and_list(api: Api, listener: dict[str, Any], policy: dict[str, Any]) -> None:
    other = api.create_l7policy(listener["id"])
    a = api.create_l7rule(policy["id"], value="/a", tags=["x"])
    b = api.create_l7rule(policy["id"], type="HOST_NAME", compare_type="EQUAL_TO",
                          value="b.example")
    d = api.create_l7rule(policy["id"], value="/d", invert=True)
    elsewhere = api.create_l7rule(other["id"], value="/z")
    shown = api.get(f"{rules_path(policy)}/{a['id']}").json()["rule"]
    assert shown["value"] == "/a" and shown["provisioning_status"] == c.ACTIVE
    picked = api.get(f"{rules_path(policy)}/{a['id']}", params={"fields": "id,value"}).json()
    assert picked == {"rule": {"id": a["id"], "value": "/a"}}
    r = api.get(f"{rules_path(policy)}/{elsewhere['id']}", status=404)
    assert api.fault(r) == f"L7 Rule {elsewhere['id']} not found."
    api.get(f"{rules_path(policy)}/{GHOST}", status=404)
    api.get(f"/l7policies/{GHOST}/rules", status=404)

    listed = api.get(rules_path(policy), params={"sort": "value:desc"}).json()
    assert [x["value"] for x in listed["rules"]] == ["b.example", "/d", "/a"]
    assert listed["rules_links"] == []
    page = api.get(rules_path(policy), params={"sort": "value", "limit": 2}).json()
    assert [x["value"] for x in page["rules"]] == ["/a", "/d"]
    assert [link["rel"] for link in page["rules_links"]] == ["next"]
    rest = api.get(rules_path(policy), params={"sort": "value", "limit": 2,
                                               "marker": d["id"]}).json()
    assert [x["id"] for x in rest["rules"]] == [b["id"]]
    inverted = api.get(rules_path(policy), params={"invert": "true"}).json()["rules"]
    assert [x["id"] for x in inverted] == [d["id"]]
    hosts = api.get(rules_path(policy), params={"type": "HOST_NAME",
                                                "fields": "id"}).json()["rules"]
    assert hosts == [{"id": b["id"]}]
    assert [x["id"] for x in api.get(rules_path(policy), params={"tags": "x"}).json()[
        "rules"]] == [a["id"]]
    api.get(rules_path(policy), params={"l7policy": "x"}, status=400)


# -- update ----------------------------------------------------------------------

def test_update_changes_given_fields_and_marks_parents(api: Api, lb: dict[str, Any],
                                                       listener: dict[str, Any],
                                                       policy: dict[str, Any]) -> None:
    rule = api.create_l7rule(policy["id"], tags=["old"], invert=True)
    with held(api):
        body = update(api, policy, rule["id"], value="/images", tags=["new"])
        assert statuses(api, lb["id"], listener["id"], policy["id"], rule["id"]) == (
            c.PENDING_UPDATE,) * 4
    assert (body["value"], body["type"], body["invert"], body["tags"]) == (
        "/images", "PATH", True, ["new"])
    assert body["provisioning_status"] == c.PENDING_UPDATE
    body = update(api, policy, rule["id"], invert=None, admin_state_up=False)
    assert body["invert"] is False and body["admin_state_up"] is False
    api.wait_idle()
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert spec.listeners[0].l7policies[0].rules[0].value == "/images"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "tRuE"},
     ("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "tRuE")),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
     ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "0")),
    ({"type": "SSL_DN_FIELD", "key": "st-1", "value": "ST-FIELD1-PREFIX"},
     ("SSL_DN_FIELD", "STARTS_WITH", "st-1", "ST-FIELD1-PREFIX")),
    ({"type": "HEADER", "key": "X-Env"}, ("HEADER", "STARTS_WITH", "X-Env", "/api")),
])
def test_update_to_other_types(api: Api, policy: dict[str, Any], fields: dict[str, Any],
                               expected: tuple[Any, ...]) -> None:
    rule = api.create_l7rule(policy["id"])
    body = update(api, policy, rule["id"], **fields)
    assert (body["type"], body["compare_type"], body["key"], body["value"]) == expected


def test_update_checks_the_rule_as_changed(api: Api, policy: dict[str, Any]) -> None:
    rule = api.create_l7rule(policy["id"])
    assert "Unable to parse regular expression" in update(
        api, policy, rule["id"], 400, compare_type="REGEX", value="bad string\\")
    assert update(api, policy, rule["id"], 400, type="HEADER") == (
        "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key")
    assert update(api, policy, rule["id"], 400, type="FILE_TYPE") == (
        "Error parsing L7Rule: Invalid L7 Rule: invalid comparison type for rule type")
    assert update(api, policy, rule["id"], 400, compare_type=None) == (
        "Error parsing L7Rule: Invalid L7 Rule: invalid comparison type for rule type")
    assert update(api, policy, rule["id"], 400, value=None) == (
        "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a value")
    assert update(api, policy, rule["id"], 400, type=None) == (
        "Error parsing L7Rule: Invalid L7 Rule: invalid rule type")
    assert "field/attribute type" in update(api, policy, rule["id"], 400, type="bad type")
    assert "Unknown attribute" in update(api, policy, rule["id"], 400, l7policy_id=GHOST)
    header = api.create_l7rule(policy["id"], type="HEADER", compare_type="EQUAL_TO",
                               key="X-A", value="b")
    assert update(api, policy, header["id"], 400, type="SSL_CONN_HAS_CERT",
                  value="true") == ('Error parsing L7Rule: Invalid L7 Rule: L7rule type '
                                    'SSL_CONN_HAS_CERT does not use the "key" field.')
    body = update(api, policy, header["id"], type="SSL_CONN_HAS_CERT", value="true", key=None)
    assert (body["type"], body["key"]) == ("SSL_CONN_HAS_CERT", None)
    shown = api.get(f"{rules_path(policy)}/{rule['id']}").json()["rule"]
    assert (shown["type"], shown["compare_type"], shown["value"]) == (
        "PATH", "STARTS_WITH", "/api")


# -- delete --------------------------------------------------------------------------

def test_delete_goes_pending_delete_then_away(api: Api, lb: dict[str, Any],
                                              listener: dict[str, Any],
                                              policy: dict[str, Any]) -> None:
    rule = api.create_l7rule(policy["id"])
    keep = api.create_l7rule(policy["id"], value="/keep")
    with held(api):
        api.delete(f"{rules_path(policy)}/{rule['id']}", status=204)
        assert statuses(api, lb["id"], listener["id"], policy["id"], rule["id"]) == (
            c.PENDING_UPDATE, c.PENDING_UPDATE, c.PENDING_UPDATE, c.PENDING_DELETE)
    api.get(f"{rules_path(policy)}/{rule['id']}", status=404)
    api.delete(f"{rules_path(policy)}/{rule['id']}", status=404)
    assert api.get(f"/l7policies/{policy['id']}").json()["l7policy"]["rules"] == [
        {"id": keep["id"]}]
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert [r.id for r in spec.listeners[0].l7policies[0].rules] == [keep["id"]]


# -- locking, projects, policy, quota -------------------------------------------------------

@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, lb: dict[str, Any],
                                            policy: dict[str, Any], pending: str) -> None:
    rule = api.create_l7rule(policy["id"])
    immutable = f"Load Balancer {lb['id']} is immutable and cannot be updated."
    with held(api):
        api.set_lb_status(lb["id"], pending)
        assert fault_of(api, policy, 409, type="PATH", compare_type="EQUAL_TO",
                        value="/") == immutable
        assert update(api, policy, rule["id"], 409, value="/x") == immutable
        api.delete(f"{rules_path(policy)}/{rule['id']}", status=409)
        shown = api.get(f"{rules_path(policy)}/{rule['id']}").json()["rule"]
        assert (shown["value"], shown["provisioning_status"]) == ("/api", c.ACTIVE)
        assert len(api.get(rules_path(policy)).json()["rules"]) == 1


def test_other_projects_rules_are_403(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    p = api.create_l7policy(li["id"], _project="p1")
    rule = api.create_l7rule(p["id"], _project="p1")
    assert rule["project_id"] == "p1"
    path = f"/l7policies/{p['id']}/rules"
    api.get(path, project="p2", status=403)
    api.get(f"{path}/{rule['id']}", project="p2", status=403)
    api.put(f"{path}/{rule['id']}", {"rule": {"value": "/x"}}, project="p2", status=403)
    api.delete(f"{path}/{rule['id']}", project="p2", status=403)
    api.post(path, {"rule": {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}},
             project="p2", status=403)
    assert len(api.get(path, project="p1").json()["rules"]) == 1
    assert len(api.get(path, project="p3", roles="admin")
               .json()["rules"]) == 1


def test_roles_follow_octavia_policy(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    p = api.create_l7policy(li["id"], _project="p1")
    rule = api.create_l7rule(p["id"], _project="p1")
    path = f"/l7policies/{p['id']}/rules"
    body = {"rule": {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}}
    for role in ("reader", "load-balancer_observer", "nothing"):
        r = api.post(path, body, project="p1", roles=role, status=403)
        assert api.fault(r) == "Policy does not allow this request to be performed."
        api.put(f"{path}/{rule['id']}", {"rule": {"value": "/x"}}, project="p1", roles=role,
                status=403)
        api.delete(f"{path}/{rule['id']}", project="p1", roles=role, status=403)
    api.get(path, project="p1", roles="nothing", status=403)
    api.get(f"{path}/{rule['id']}", project="p1", roles="nothing", status=403)
    api.get(path, project="p1", roles="reader", status=200)
    api.get(f"{path}/{rule['id']}", project="p1", roles="reader", status=200)
    api.post(path, body, project="p1", roles="member", status=201)


def test_quota_on_rules(api: Api) -> None:
    assert api.put("/quotas/p1", {"quota": {"l7rule": 2}}).status_code in (200, 202)
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    p = api.create_l7policy(li["id"], _project="p1")
    api.create_l7rule(p["id"], _project="p1")
    api.create_l7rule(p["id"], _project="p1")
    body = {"rule": {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}}
    r = api.post(f"/l7policies/{p['id']}/rules", body, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: L7 Rule"
    nested = {"l7policy": {"listener_id": li["id"], "action": "REJECT",
                           "rules": [body["rule"]]}}
    api.post("/l7policies", nested, project="p1", status=403)
    assert len(api.get("/l7policies", project="p1").json()["l7policies"]) == 1
    assert api.lb_status(lb["id"]) == c.ACTIVE
