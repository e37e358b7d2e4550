"""L7 policies: /v2/lbaas/l7policies (after Octavia's functional test_l7policy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from lbaas.common import constants as c
from tests.api.base import GHOST, Api, held

POLICY_FIELDS = {
    "tenant_id",
    "id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
    "project_id", "action", "listener_id", "redirect_pool_id", "redirect_url",
    "redirect_prefix", "redirect_http_code", "position", "rules", "created_at", "updated_at",
    "tags",
}
URL = "http://www.example.com"


def post_policy(api: Api, listener_id: str, status: int, **fields: Any) -> Any:
    body = {"listener_id": listener_id, "action": "REJECT", **fields}
    return api.post("/l7policies", {"l7policy": body}, status=status)


def fault_of(api: Api, listener_id: str, status: int = 400, **fields: Any) -> str:
    return api.fault(post_policy(api, listener_id, status, **fields))


def update(api: Api, policy_id: str, status: int = 200, **fields: Any) -> Any:
    r = api.put(f"/l7policies/{policy_id}", {"l7policy": fields}, status=status)
    return r.json().get("l7policy") if status == 200 else api.fault(r)


def positions(api: Api, listener_id: str) -> list[tuple[str, int]]:
    """(name, position) of the listener's policies, in the listener's order."""
    refs = api.get(f"/listeners/{listener_id}").json()["listener"]["l7policies"]
    out = []
    for ref in refs:
        p = api.get(f"/l7policies/{ref['id']}").json()["l7policy"]
        out.append((p["name"], p["position"]))
    return out


def statuses(api: Api, lb_id: str, listener_id: str, policy_id: str) -> tuple[str, str, str]:
    return (api.lb_status(lb_id),
            api.get(f"/listeners/{listener_id}").json()["listener"]["provisioning_status"],
            api.get(f"/l7policies/{policy_id}").json()["l7policy"]["provisioning_status"])


# -- create ---------------------------------------------------------------------

def test_create_reject_policy_shape_and_statuses(api: Api, lb: dict[str, Any],
                                                 listener: dict[str, Any]) -> None:
    with held(api):
        p = api.create_l7policy(listener["id"], wait=False, tags=["t"])
        assert statuses(api, lb["id"], listener["id"], p["id"]) == (
            c.PENDING_UPDATE, c.PENDING_UPDATE, c.PENDING_CREATE)
    assert set(p) == POLICY_FIELDS
    assert p["action"] == "REJECT" and p["position"] == 1
    assert p["redirect_pool_id"] is None and p["redirect_url"] is None
    assert p["redirect_prefix"] is None and p["redirect_http_code"] is None
    assert p["admin_state_up"] is True and p["rules"] == [] and p["tags"] == ["t"]
    assert p["listener_id"] == listener["id"] and p["project_id"] == lb["project_id"]
    assert p["name"] == "" and p["updated_at"] is None
    assert (p["provisioning_status"], p["operating_status"]) == (c.PENDING_CREATE, c.OFFLINE)
    assert statuses(api, lb["id"], listener["id"], p["id"]) == (c.ACTIVE, c.ACTIVE, c.ACTIVE)
    refs = api.get(f"/listeners/{listener['id']}").json()["listener"]["l7policies"]
    assert refs == [{"id": p["id"]}]
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert [(x.id, x.action) for x in spec.listeners[0].l7policies] == [(p["id"], "REJECT")]


def test_create_redirects_with_octavia_http_codes(api: Api, listener: dict[str, Any],
                                                  pool: dict[str, Any]) -> None:
    to_url = api.create_l7policy(listener["id"], action="REDIRECT_TO_URL", redirect_url=URL)
    assert (to_url["action"], to_url["redirect_url"], to_url["redirect_http_code"]) == (
        "REDIRECT_TO_URL", URL, 302)
    to_url = api.create_l7policy(listener["id"], action="REDIRECT_TO_URL", redirect_url=URL,
                                 redirect_http_code=301)
    assert to_url["redirect_http_code"] == 301
    prefix = api.create_l7policy(listener["id"], action="REDIRECT_PREFIX",
                                 redirect_prefix="https://example.com", redirect_http_code=308)
    assert (prefix["action"], prefix["redirect_prefix"], prefix["redirect_http_code"]) == (
        "REDIRECT_PREFIX", "https://example.com", 308)
    assert prefix["redirect_url"] is None
    to_pool = api.create_l7policy(listener["id"], action="REDIRECT_TO_POOL",
                                  redirect_pool_id=pool["id"], redirect_http_code=308)
    assert (to_pool["action"], to_pool["redirect_pool_id"]) == ("REDIRECT_TO_POOL", pool["id"])
    assert to_pool["redirect_http_code"] is None and to_pool["redirect_url"] is None
    lb_id = listener["loadbalancers"][0]["id"]
    spec = api.service.drivers["noop"].applied[lb_id]  # type: ignore[attr-defined]
    assert spec.listeners[0].l7policies[-1].redirect_pool_id == pool["id"]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"action": "REJECT", "redirect_url": URL, "redirect_http_code": 301},
     ("REJECT", None, None, None)),
    ({"action": "REJECT", "redirect_prefix": URL}, ("REJECT", None, None, None)),
    ({"action": "REDIRECT_TO_URL", "redirect_url": URL, "redirect_prefix": "http://p.example"},
     ("REDIRECT_TO_URL", URL, None, 302)),
    ({"action": "REDIRECT_PREFIX", "redirect_prefix": "http://p.example",
      "redirect_url": URL}, ("REDIRECT_TO_URL", URL, None, 302)),
])
def test_create_sanitises_action_and_redirects(api: Api, listener: dict[str, Any],
                                               fields: dict[str, Any],
                                               expected: tuple[Any, ...]) -> None:
    p = post_policy(api, listener["id"], 201, **fields).json()["l7policy"]
    assert (p["action"], p["redirect_url"], p["redirect_prefix"],
            p["redirect_http_code"]) == expected


@pytest.mark.parametrize(("fields", "fault"), [
    ({"action": "REDIRECT_TO_URL"},
     "Invalid L7 Policy arguments: redirect_url must not be None"),
    ({"action": "REDIRECT_PREFIX"},
     "Invalid L7 Policy arguments: redirect_prefix must not be None"),
    ({"action": "REDIRECT_TO_POOL"},
     "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None"),
    ({"action": "REDIRECT_PREFIX", "redirect_pool_id": "POOL",
      "redirect_prefix": "http://p.example"},
     "Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or "
     "redirect_prefix at the same time"),
])
def test_create_refuses_inconsistent_redirects(api: Api, listener: dict[str, Any],
                                               pool: dict[str, Any], fields: dict[str, Any],
                                               fault: str) -> None:
    if fields.get("redirect_pool_id") == "POOL":
        fields = {**fields, "redirect_pool_id": pool["id"]}
    assert fault_of(api, listener["id"], **fields) == fault
    assert api.get("/l7policies").json()["l7policies"] == []


@pytest.mark.parametrize(("fields", "field", "detail"), [
    ({"action": "bad action"}, "action", "Value should be one of: REJECT, REDIRECT_TO_URL"),
    ({"action": None}, "action", ""),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "bad url"}, "redirect_url",
     "Value must be a valid URL string"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "ftp://example.com"}, "redirect_url",
     "Value must be a valid URL string"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "http://example.com/\nX: y"},
     "redirect_url", "Value must be a valid URL string"),
    ({"action": "REDIRECT_PREFIX", "redirect_prefix": "example.com"}, "redirect_prefix",
     "Value must be a valid URL string"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": URL, "redirect_http_code": 1},
     "redirect_http_code", "Value should be one of: 301, 302, 303, 307, 308"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": URL, "redirect_http_code": ""},
     "redirect_http_code", ""),
    ({"action": "REDIRECT_TO_URL", "redirect_url": URL, "redirect_http_code": "HTTPCODE"},
     "redirect_http_code", ""),
    ({"redirect_pool_id": "nope"}, "redirect_pool_id", "Value should be UUID format"),
    ({"position": 0}, "position", "Value should be greater or equal to 1"),
    ({"position": c.MAX_POLICY_POSITION + 1}, "position",
     f"Value should be lower or equal to {c.MAX_POLICY_POSITION}"),
    ({"position": "first"}, "position", ""),
    ({"name": "x" * 256}, "name", ""),
    ({"admin_state_up": 1}, "admin_state_up", ""),
    ({"tags": [1]}, "tags", ""),
    ({"rules": {"type": "PATH"}}, "rules", ""),
])
def test_create_refuses_bad_fields_naming_them(api: Api, listener: dict[str, Any],
                                               fields: dict[str, Any], field: str,
                                               detail: str) -> None:
    fault = fault_of(api, listener["id"], **fields)
    assert f"Invalid input for field/attribute {field}" in fault
    assert detail in fault
    assert api.get("/l7policies").json()["l7policies"] == []


def test_create_needs_listener_and_action(api: Api, listener: dict[str, Any]) -> None:
    r = api.post("/l7policies", {"l7policy": {"listener_id": listener["id"], "name": "t"}},
                 status=400)
    assert api.fault(r) == ("Invalid input for field/attribute action. Value: 'None'. "
                            "Mandatory field missing.")
    r = api.post("/l7policies", {"l7policy": {"action": "REJECT"}}, status=400)
    assert "listener_id" in api.fault(r)
    r = api.post("/l7policies", {"l7policy": {"action": "REJECT", "listener_id": "nope"}},
                 status=400)
    assert api.fault(r) == ("Invalid input for field/attribute listener_id. Value: 'nope'. "
                            "Value should be UUID format.")
    assert fault_of(api, listener["id"], bogus=True) == (
        "Unknown attribute for argument l7policy: bogus")
    assert fault_of(api, GHOST, 404) == f"Listener {GHOST} not found."


def test_redirect_pool_must_be_on_the_load_balancer(api: Api, lb: dict[str, Any],
                                                    listener: dict[str, Any]) -> None:
    assert fault_of(api, listener["id"], 404, action="REDIRECT_TO_POOL",
                    redirect_pool_id=GHOST) == f"Pool {GHOST} not found."
    other = api.create_lb()
    foreign = api.create_pool(loadbalancer_id=other["id"])
    assert fault_of(api, listener["id"], 404, action="REDIRECT_TO_POOL",
                    redirect_pool_id=foreign["id"]) == f"Pool {foreign['id']} not found."
    udp = api.create_pool(loadbalancer_id=lb["id"], protocol="UDP")
    assert fault_of(api, listener["id"], action="REDIRECT_TO_POOL",
                    redirect_pool_id=udp["id"]) == (
        "Validation failure: The pool protocol 'UDP' is invalid while the listener protocol "
        "is 'HTTP'.")


def test_prometheus_listeners_take_no_policies(api: Api, lb: dict[str, Any]) -> None:
    prom = api.create_listener(lb["id"], protocol="PROMETHEUS", protocol_port=8123)
    assert fault_of(api, prom["id"]) == "Protocol PROMETHEUS listeners cannot have child objects."


def test_create_with_nested_rules(api: Api, lb: dict[str, Any],
                                  listener: dict[str, Any]) -> None:
    rules = [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"},
             {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Env", "value": "prod",
              "invert": True, "tags": ["r"]}]
    with held(api):
        p = api.create_l7policy(listener["id"], wait=False, rules=rules)
        assert len(p["rules"]) == 2
        listed = api.get(f"/l7policies/{p['id']}/rules").json()["rules"]
        assert {r["id"] for r in listed} == {r["id"] for r in p["rules"]}
        assert {r["provisioning_status"] for r in listed} == {c.PENDING_CREATE}
    header = api.get(f"/l7policies/{p['id']}/rules",
                     params={"type": "HEADER"}).json()["rules"][0]
    assert (header["key"], header["value"], header["invert"], header["tags"]) == (
        "X-Env", "prod", True, ["r"])
    assert header["provisioning_status"] == c.ACTIVE
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert len(spec.listeners[0].l7policies[0].rules) == 2


def test_nested_rules_are_validated_and_limited(api: Api, listener: dict[str, Any]) -> None:
    bad = [{"type": "HEADER", "compare_type": "CONTAINS", "value": "x"}]
    assert fault_of(api, listener["id"], rules=bad) == (
        "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key")
    many = [{"type": "PATH", "compare_type": "STARTS_WITH", "value": f"/p{i}"}
            for i in range(c.MAX_L7RULES_PER_L7POLICY + 1)]
    assert fault_of(api, listener["id"], 409, rules=many).startswith(
        "Too many rules on L7 policy ")
    assert api.get("/l7policies").json()["l7policies"] == []
    p = api.create_l7policy(listener["id"], rules=many[:-1])
    assert len(p["rules"]) == c.MAX_L7RULES_PER_L7POLICY


# -- positions -----------------------------------------------------------------------

def test_positions_are_renumbered_on_create_update_delete(api: Api,
                                                          listener: dict[str, Any]) -> None:
    lid = listener["id"]
    a = api.create_l7policy(lid, name="a")
    b = api.create_l7policy(lid, name="b")
    assert (a["position"], b["position"]) == (1, 2)
    api.create_l7policy(lid, name="c", position=1)
    assert positions(api, lid) == [("c", 1), ("a", 2), ("b", 3)]
    api.create_l7policy(lid, name="d", position=2)
    assert positions(api, lid) == [("c", 1), ("d", 2), ("a", 3), ("b", 4)]
    e = api.create_l7policy(lid, name="e", position=99)
    assert e["position"] == 5

    assert update(api, b["id"], position=1)["position"] == 1
    api.wait_idle()
    assert positions(api, lid) == [("b", 1), ("c", 2), ("d", 3), ("a", 4), ("e", 5)]
    update(api, b["id"], position=1000)
    api.wait_idle()
    assert positions(api, lid) == [("c", 1), ("d", 2), ("a", 3), ("e", 4), ("b", 5)]

    api.delete(f"/l7policies/{a['id']}", status=204)
    api.wait_idle()
    assert positions(api, lid) == [("c", 1), ("d", 2), ("e", 3), ("b", 4)]
    spec = api.service.drivers["noop"].applied[  # type: ignore[attr-defined]
        listener["loadbalancers"][0]["id"]]
    assert [p.position for p in spec.listeners[0].l7policies] == [1, 2, 3, 4]


# -- update --------------------------------------------------------------------------

def test_update_action_and_redirects(api: Api, lb: dict[str, Any], listener: dict[str, Any],
                                     pool: dict[str, Any]) -> None:
    p = api.create_l7policy(listener["id"], tags=["old"])
    with held(api):
        body = update(api, p["id"], action="REDIRECT_TO_URL", redirect_url=URL, tags=["new"])
        assert statuses(api, lb["id"], listener["id"], p["id"]) == (c.PENDING_UPDATE,) * 3
    assert (body["action"], body["redirect_url"], body["redirect_http_code"]) == (
        "REDIRECT_TO_URL", URL, 302)
    assert body["tags"] == ["new"]
    body = update(api, p["id"], redirect_http_code=308)
    assert (body["action"], body["redirect_http_code"]) == ("REDIRECT_TO_URL", 308)
    api.wait_idle()
    body = update(api, p["id"], redirect_http_code=None)
    assert body["redirect_http_code"] is None and body["redirect_url"] == URL
    api.wait_idle()
    body = update(api, p["id"], redirect_pool_id=pool["id"])
    assert (body["action"], body["redirect_pool_id"], body["redirect_url"]) == (
        "REDIRECT_TO_POOL", pool["id"], None)
    api.wait_idle()
    spec = api.service.drivers["noop"].applied[lb["id"]]  # type: ignore[attr-defined]
    assert spec.listeners[0].l7policies[0].redirect_pool_id == pool["id"]
    body = update(api, p["id"], redirect_prefix="https://example.org")
    assert (body["action"], body["redirect_prefix"], body["redirect_pool_id"],
            body["redirect_http_code"]) == ("REDIRECT_PREFIX", "https://example.org", None, 302)
    api.wait_idle()
    body = update(api, p["id"], action="REJECT")
    assert (body["action"], body["redirect_prefix"], body["redirect_http_code"]) == (
        "REJECT", None, None)
    api.wait_idle()
    body = update(api, p["id"], name="n", admin_state_up=False)
    assert (body["name"], body["admin_state_up"], body["action"]) == ("n", False, "REJECT")


def test_update_refuses_bad_requests(api: Api, listener: dict[str, Any],
                                     pool: dict[str, Any]) -> None:
    p = api.create_l7policy(listener["id"], action="REDIRECT_TO_URL", redirect_url=URL)
    assert update(api, p["id"], 400) == "Invalid L7 Policy arguments: Invalid update options"
    assert update(api, p["id"], 400, listener_id=listener["id"]) == (
        "Unknown attribute for argument l7policy: listener_id")
    assert "field/attribute action" in update(api, p["id"], 400, action="bad action")
    assert "field/attribute redirect_url" in update(api, p["id"], 400, redirect_url="bad-url")
    assert "field/attribute redirect_http_code" in update(api, p["id"], 400,
                                                          redirect_http_code="")
    assert update(api, p["id"], 404, redirect_pool_id=GHOST) == f"Pool {GHOST} not found."
    assert update(api, p["id"], 400, action="REDIRECT_TO_POOL") == (
        "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None")
    assert update(api, p["id"], 400, redirect_url=None) == (
        "Invalid L7 Policy arguments: redirect_url must not be None")
    assert update(api, p["id"], 400, redirect_pool_id=pool["id"], redirect_url=URL) == (
        "Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or "
        "redirect_prefix at the same time")
    shown = api.get(f"/l7policies/{p['id']}").json()["l7policy"]
    assert (shown["action"], shown["redirect_url"], shown["provisioning_status"]) == (
        "REDIRECT_TO_URL", URL, c.ACTIVE)
    api.put(f"/l7policies/{GHOST}", {"l7policy": {"name": "x"}}, status=404)


# -- show, list, delete -------------------------------------------------------------------

def test_show_and_list(api: Api, lb: dict[str, Any], listener: dict[str, Any]) -> None:
    r = api.get(f"/l7policies/{GHOST}", status=404)
    assert api.fault(r) == f"L7 Policy {GHOST} not found."
    other = api.create_listener(lb["id"], protocol_port=81)
    ids = [api.create_l7policy(listener["id"], name=f"p{i}", tags=[f"t{i}"])["id"]
           for i in range(3)]
    url = api.create_l7policy(other["id"], action="REDIRECT_TO_URL", redirect_url=URL)
    shown = api.get(f"/l7policies/{ids[0]}", params={"fields": "id,position"}).json()
    assert shown == {"l7policy": {"id": ids[0], "position": 1}}
    assert api.get(f"/v2.0/lbaas/l7policies/{ids[0]}", status=200).json()["l7policy"][
        "name"] == "p0"
    by_listener = api.get("/l7policies", params={"listener_id": listener["id"],
                                                 "sort": "position:desc"}).json()
    assert [p["name"] for p in by_listener["l7policies"]] == ["p2", "p1", "p0"]
    page = api.get("/l7policies", params={"sort": "name", "limit": 2}).json()
    assert [p["name"] for p in page["l7policies"]] == ["", "p0"]
    assert page["l7policies_links"][0]["rel"] == "next"
    rest = api.get("/l7policies", params={"sort": "name", "limit": 2,
                                          "marker": page["l7policies"][-1]["id"]}).json()
    assert [p["name"] for p in rest["l7policies"]] == ["p1", "p2"]
    redirects = api.get("/l7policies", params={"action": "REDIRECT_TO_URL"}).json()
    assert [p["id"] for p in redirects["l7policies"]] == [url["id"]]
    tagged = api.get("/l7policies", params={"tags-any": "t1,t2"}).json()["l7policies"]
    assert sorted(p["id"] for p in tagged) == sorted(ids[1:])
    fields = api.get("/l7policies", params={"fields": "id", "position": 3}).json()
    assert fields["l7policies"] == [{"id": ids[2]}]


def test_delete_goes_pending_delete_then_away(api: Api, lb: dict[str, Any],
                                              listener: dict[str, Any]) -> None:
    p = api.create_l7policy(listener["id"], rules=[
        {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}])
    rule_id = p["rules"][0]["id"]
    with held(api):
        api.delete(f"/l7policies/{p['id']}", status=204)
        assert statuses(api, lb["id"], listener["id"], p["id"]) == (
            c.PENDING_UPDATE, c.PENDING_UPDATE, c.PENDING_DELETE)
        rule = api.get(f"/l7policies/{p['id']}/rules/{rule_id}").json()["rule"]
        assert rule["provisioning_status"] == c.PENDING_DELETE
    api.get(f"/l7policies/{p['id']}", status=404)
    api.delete(f"/l7policies/{p['id']}", status=404)
    assert api.get(f"/listeners/{listener['id']}").json()["listener"]["l7policies"] == []
    assert api.service.drivers["noop"].applied[lb["id"]].listeners[0].l7policies == ()  # type: ignore


# -- locking, projects, policy, quota -------------------------------------------------------

@pytest.mark.parametrize("pending", [c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE])
def test_pending_load_balancer_is_immutable(api: Api, lb: dict[str, Any],
                                            listener: dict[str, Any], pending: str) -> None:
    p = api.create_l7policy(listener["id"])
    immutable = f"Load Balancer {lb['id']} is immutable and cannot be updated."
    with held(api):
        api.set_lb_status(lb["id"], pending)
        assert fault_of(api, listener["id"], 409) == immutable
        assert update(api, p["id"], 409, name="x") == immutable
        api.delete(f"/l7policies/{p['id']}", status=409)
        shown = api.get(f"/l7policies/{p['id']}").json()["l7policy"]
        assert (shown["name"], shown["provisioning_status"]) == ("", c.ACTIVE)
        assert len(api.get("/l7policies").json()["l7policies"]) == 1


def test_other_projects_policies_are_403(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    p = api.create_l7policy(li["id"], _project="p1")
    assert p["project_id"] == "p1"
    api.get(f"/l7policies/{p['id']}", project="p2", status=403)
    api.put(f"/l7policies/{p['id']}", {"l7policy": {"name": "x"}}, project="p2", status=403)
    api.delete(f"/l7policies/{p['id']}", project="p2", status=403)
    body = {"listener_id": li["id"], "action": "REJECT"}
    api.post("/l7policies", {"l7policy": body}, project="p2", status=403)
    assert api.get("/l7policies", project="p2").json()["l7policies"] == []
    assert len(api.get("/l7policies", project="p1").json()["l7policies"]) == 1
    assert len(api.get("/l7policies").json()["l7policies"]) == 1


def test_roles_follow_octavia_policy(api: Api) -> None:
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    p = api.create_l7policy(li["id"], _project="p1")
    body = {"l7policy": {"listener_id": li["id"], "action": "REJECT"}}
    for role in ("reader", "load-balancer_observer", "nothing"):
        r = api.post("/l7policies", body, project="p1", roles=role, status=403)
        assert api.fault(r) == "Policy does not allow this request to be performed."
        api.put(f"/l7policies/{p['id']}", {"l7policy": {"name": "x"}}, project="p1",
                roles=role, status=403)
        api.delete(f"/l7policies/{p['id']}", project="p1", roles=role, status=403)
    api.get("/l7policies", project="p1", roles="nothing", status=403)
    api.get(f"/l7policies/{p['id']}", project="p1", roles="reader", status=200)
    api.get("/l7policies", project="p1", roles="reader", status=200)
    api.post("/l7policies", body, project="p1", roles="member", status=201)


def test_quota_on_policies(api: Api) -> None:
    assert api.put("/quotas/p1", {"quota": {"l7policy": 1}}).status_code in (200, 202)
    lb = api.create_lb(_project="p1")
    li = api.create_listener(lb["id"], _project="p1")
    api.create_l7policy(li["id"], _project="p1")
    body = {"l7policy": {"listener_id": li["id"], "action": "REJECT"}}
    r = api.post("/l7policies", body, project="p1", status=403)
    assert api.fault(r) == "Quota has been met for resources: L7 Policy"
    assert api.lb_status(lb["id"]) == c.ACTIVE
