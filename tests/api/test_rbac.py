"""The RBAC matrix: every resource x action x role x own/other project, through Keystone.

Each caller is a real Keystone user holding one role on project ``lb-one``
(the Keystone default roles, Octavia's five ``load-balancer_*`` roles, or a
role no rule names) with a real token, validated by keystonemiddleware in
front of one lbaas per policy: Octavia's default policy (the Keystone
default roles) and its advanced RBAC (``etc/policy/advanced-rbac-policy.yaml``).
Each case asserts the exact status: the action's success code, or 403 —
also for another project's existing object, as Octavia (it loads the object,
then the policy check on the object's project refuses).

The expected outcomes below are written out from Octavia's rules
(octavia/policies/*.py and its sample policy files), not computed by lbaas's
policy engine. A forbidden call runs against a shared load balancer graph
(nothing changes); an allowed write gets a fresh graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas.service import Service
from lbaas.testing.keystone import PERSONAS, Keystone
from tests.api.test_auth_keystone import keystone_service

REPO = Path(__file__).resolve().parents[2]
P = "/v2/lbaas"
AMP = "/v2/octavia/amphorae"
OWN, OTHER = "lb-one", "lb-two"

ADMIN, MEMBER, READER = "admin", "member", "reader"
LB_ADMIN, LB_GLOBAL, LB_MEMBER, LB_OBSERVER, LB_QUOTA = (
    "load-balancer_admin", "load-balancer_global_observer", "load-balancer_member",
    "load-balancer_observer", "load-balancer_quota_admin")

# policy -> access rule -> (who passes on their own project's objects, on another's).
# Keystone's implied roles count: an admin token also carries member and reader,
# a member token reader.
WHO: dict[str, dict[str, tuple[set[str], set[str]]]] = {
    "default": {
        "read": ({ADMIN, MEMBER, READER}, {ADMIN}),
        "write": ({ADMIN, MEMBER}, {ADMIN}),
        "admin": ({ADMIN}, {ADMIN}),
        "read-quota": ({ADMIN, MEMBER, READER}, {ADMIN}),
        "write-quota": ({ADMIN}, {ADMIN}),
    },
    "advanced": {
        "read": ({ADMIN, LB_ADMIN, LB_GLOBAL, LB_MEMBER, LB_OBSERVER},
                 {ADMIN, LB_ADMIN, LB_GLOBAL}),
        "write": ({ADMIN, LB_ADMIN, LB_MEMBER}, {ADMIN, LB_ADMIN}),
        "admin": ({ADMIN, LB_ADMIN}, {ADMIN, LB_ADMIN}),
        "read-quota": ({ADMIN, LB_ADMIN, LB_GLOBAL, LB_MEMBER, LB_OBSERVER, LB_QUOTA},
                       {ADMIN, LB_ADMIN, LB_GLOBAL, LB_QUOTA}),
        "write-quota": ({ADMIN, LB_ADMIN, LB_QUOTA}, {ADMIN, LB_ADMIN, LB_QUOTA}),
    },
}
POLICY_FILES = {"default": None, "advanced": REPO / "etc/policy/advanced-rbac-policy.yaml"}

G = dict[str, str]  # a graph or record set: name -> id


@dataclass(frozen=True)
class Case:
    """One API action: its rule, request and success status.

    ``path``/``body`` take the target objects (a graph of the project under
    test, or the admin records). ``scoped``: the object has a project (own
    and other are both tested); else it is an admin record (flavors, zones
    and their profiles). ``writes``: allowed calls need fresh objects.
    """

    name: str
    rule: str
    method: str
    path: Callable[[G], str]
    ok: int
    body: Callable[[G], Any] | None = None
    scoped: bool = True
    writes: bool = False
    quota_set: bool = False  # the project needs a quota first (a reset of none is a 404)


def _c(name: str, rule: str, method: str, path: Callable[[G], str], ok: int,
       body: Callable[[G], Any] | None = None, **kw: Any) -> Case:
    return Case(name, rule, method, path, ok, body,
                writes=kw.pop("writes", method in ("POST", "PUT", "DELETE")), **kw)


def _listing(collection: str) -> Callable[[G], str]:
    """A list of the project under test: Octavia checks get_all on the named project."""
    return lambda g: f"{P}/{collection}?project_id={g['project']}"


CASES = [
    # load balancers
    _c("loadbalancer:get_all", "read", "GET", _listing("loadbalancers"), 200),
    _c("loadbalancer:post", "write", "POST", lambda g: f"{P}/loadbalancers", 201,
       lambda g: {"loadbalancer": {"project_id": g["project"]}}),
    _c("loadbalancer:get_one", "read", "GET", lambda g: f"{P}/loadbalancers/{g['lb']}", 200),
    _c("loadbalancer:put", "write", "PUT", lambda g: f"{P}/loadbalancers/{g['lb']}", 200,
       lambda g: {"loadbalancer": {"name": "x"}}),
    _c("loadbalancer:delete", "write", "DELETE",
       lambda g: f"{P}/loadbalancers/{g['lb']}?cascade=true", 204),
    _c("loadbalancer:get_stats", "read", "GET",
       lambda g: f"{P}/loadbalancers/{g['lb']}/stats", 200),
    _c("loadbalancer:get_status", "read", "GET",
       lambda g: f"{P}/loadbalancers/{g['lb']}/status", 200),
    _c("loadbalancer:put_failover", "admin", "PUT",
       lambda g: f"{P}/loadbalancers/{g['lb']}/failover", 202),
    # listeners
    _c("listener:get_all", "read", "GET", _listing("listeners"), 200),
    _c("listener:post", "write", "POST", lambda g: f"{P}/listeners", 201,
       lambda g: {"listener": {"loadbalancer_id": g["lb"], "protocol": "TCP",
                               "protocol_port": 81}}),
    _c("listener:get_one", "read", "GET", lambda g: f"{P}/listeners/{g['listener']}", 200),
    _c("listener:put", "write", "PUT", lambda g: f"{P}/listeners/{g['listener']}", 200,
       lambda g: {"listener": {"name": "x"}}),
    _c("listener:delete", "write", "DELETE", lambda g: f"{P}/listeners/{g['listener']}", 204),
    _c("listener:get_stats", "read", "GET", lambda g: f"{P}/listeners/{g['listener']}/stats", 200),
    # pools
    _c("pool:get_all", "read", "GET", _listing("pools"), 200),
    _c("pool:post", "write", "POST", lambda g: f"{P}/pools", 201,
       lambda g: {"pool": {"loadbalancer_id": g["lb"], "protocol": "HTTP",
                           "lb_algorithm": "ROUND_ROBIN"}}),
    _c("pool:get_one", "read", "GET", lambda g: f"{P}/pools/{g['spare']}", 200),
    _c("pool:put", "write", "PUT", lambda g: f"{P}/pools/{g['spare']}", 200,
       lambda g: {"pool": {"name": "x"}}),
    _c("pool:delete", "write", "DELETE", lambda g: f"{P}/pools/{g['spare']}", 204),
    # members
    _c("member:get_all", "read", "GET", lambda g: f"{P}/pools/{g['pool']}/members", 200),
    _c("member:post", "write", "POST", lambda g: f"{P}/pools/{g['pool']}/members", 201,
       lambda g: {"member": {"address": "127.0.0.11", "protocol_port": 80}}),
    _c("member:get_one", "read", "GET",
       lambda g: f"{P}/pools/{g['pool']}/members/{g['member']}", 200),
    _c("member:put", "write", "PUT", lambda g: f"{P}/pools/{g['pool']}/members/{g['member']}",
       200, lambda g: {"member": {"name": "x"}}),
    _c("member:put (batch)", "write", "PUT", lambda g: f"{P}/pools/{g['pool']}/members", 202,
       lambda g: {"members": [{"address": "127.0.0.12", "protocol_port": 80}]}),
    _c("member:delete", "write", "DELETE",
       lambda g: f"{P}/pools/{g['pool']}/members/{g['member']}", 204),
    # health monitors
    _c("healthmonitor:get_all", "read", "GET",
       _listing("healthmonitors"), 200),
    _c("healthmonitor:post", "write", "POST", lambda g: f"{P}/healthmonitors", 201,
       lambda g: {"healthmonitor": {"pool_id": g["spare"], "type": "TCP", "delay": 5,
                                    "timeout": 3, "max_retries": 2}}),
    _c("healthmonitor:get_one", "read", "GET", lambda g: f"{P}/healthmonitors/{g['hm']}", 200),
    _c("healthmonitor:put", "write", "PUT", lambda g: f"{P}/healthmonitors/{g['hm']}", 200,
       lambda g: {"healthmonitor": {"name": "x"}}),
    _c("healthmonitor:delete", "write", "DELETE", lambda g: f"{P}/healthmonitors/{g['hm']}", 204),
    # L7 policies and rules
    _c("l7policy:get_all", "read", "GET", _listing("l7policies"), 200),
    _c("l7policy:post", "write", "POST", lambda g: f"{P}/l7policies", 201,
       lambda g: {"l7policy": {"listener_id": g["listener"], "action": "REJECT"}}),
    _c("l7policy:get_one", "read", "GET", lambda g: f"{P}/l7policies/{g['l7policy']}", 200),
    _c("l7policy:put", "write", "PUT", lambda g: f"{P}/l7policies/{g['l7policy']}", 200,
       lambda g: {"l7policy": {"name": "x"}}),
    _c("l7policy:delete", "write", "DELETE", lambda g: f"{P}/l7policies/{g['l7policy']}", 204),
    _c("l7rule:get_all", "read", "GET", lambda g: f"{P}/l7policies/{g['l7policy']}/rules", 200),
    _c("l7rule:post", "write", "POST", lambda g: f"{P}/l7policies/{g['l7policy']}/rules", 201,
       lambda g: {"rule": {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/y"}}),
    _c("l7rule:get_one", "read", "GET",
       lambda g: f"{P}/l7policies/{g['l7policy']}/rules/{g['l7rule']}", 200),
    _c("l7rule:put", "write", "PUT",
       lambda g: f"{P}/l7policies/{g['l7policy']}/rules/{g['l7rule']}", 200,
       lambda g: {"rule": {"value": "/z"}}),
    _c("l7rule:delete", "write", "DELETE",
       lambda g: f"{P}/l7policies/{g['l7policy']}/rules/{g['l7rule']}", 204),
    # quotas (of the project under test)
    _c("quota:get_all", "read-quota", "GET", _listing("quotas"), 200),
    _c("quota:get_one", "read-quota", "GET", lambda g: f"{P}/quotas/{g['project']}", 200),
    _c("quota:get_defaults", "read-quota", "GET",
       lambda g: f"{P}/quotas/{g['project']}/default", 200),
    _c("quota:put", "write-quota", "PUT", lambda g: f"{P}/quotas/{g['project']}", 202,
       lambda g: {"quota": {"loadbalancer": 100}}, writes=False),
    _c("quota:delete", "write-quota", "DELETE", lambda g: f"{P}/quotas/{g['project']}", 202,
       writes=False, quota_set=True),
    # providers and the admin records (no project: own only)
    _c("provider:get_all", "read", "GET", lambda g: f"{P}/providers", 200, scoped=False),
    _c("provider-flavor:get_all", "admin", "GET",
       lambda g: f"{P}/providers/noop/flavor_capabilities", 200, scoped=False),
    _c("provider-availability-zone:get_all", "admin", "GET",
       lambda g: f"{P}/providers/noop/availability_zone_capabilities", 200, scoped=False),
    _c("flavor:get_all", "read", "GET", lambda g: f"{P}/flavors", 200, scoped=False),
    _c("flavor:post", "admin", "POST", lambda g: f"{P}/flavors", 201,
       lambda g: {"flavor": {"name": g["fresh"], "flavor_profile_id": g["flavorprofile"]}},
       scoped=False),
    _c("flavor:get_one", "read", "GET", lambda g: f"{P}/flavors/{g['flavor']}", 200,
       scoped=False),
    _c("flavor:put", "admin", "PUT", lambda g: f"{P}/flavors/{g['flavor']}", 200,
       lambda g: {"flavor": {"description": "x"}}, scoped=False),
    _c("flavor:delete", "admin", "DELETE", lambda g: f"{P}/flavors/{g['flavor']}", 204,
       scoped=False),
    _c("flavor-profile:get_all", "admin", "GET", lambda g: f"{P}/flavorprofiles", 200,
       scoped=False),
    _c("flavor-profile:post", "admin", "POST", lambda g: f"{P}/flavorprofiles", 201,
       lambda g: {"flavorprofile": {"name": "fp", "provider_name": "noop",
                                    "flavor_data": "{}"}}, scoped=False),
    _c("flavor-profile:get_one", "admin", "GET",
       lambda g: f"{P}/flavorprofiles/{g['flavorprofile']}", 200, scoped=False),
    _c("flavor-profile:put", "admin", "PUT", lambda g: f"{P}/flavorprofiles/{g['flavorprofile']}",
       200, lambda g: {"flavorprofile": {"name": "x"}}, scoped=False),
    _c("flavor-profile:delete", "admin", "DELETE",
       lambda g: f"{P}/flavorprofiles/{g['flavorprofile']}", 204, scoped=False),
    _c("availability-zone:get_all", "read", "GET", lambda g: f"{P}/availabilityzones", 200,
       scoped=False),
    _c("availability-zone:post", "admin", "POST", lambda g: f"{P}/availabilityzones", 201,
       lambda g: {"availability_zone": {"name": g["fresh"],
                                        "availability_zone_profile_id": g["azprofile"]}},
       scoped=False),
    _c("availability-zone:get_one", "read", "GET", lambda g: f"{P}/availabilityzones/{g['az']}",
       200, scoped=False),
    _c("availability-zone:put", "admin", "PUT", lambda g: f"{P}/availabilityzones/{g['az']}", 200,
       lambda g: {"availability_zone": {"description": "x"}}, scoped=False),
    _c("availability-zone:delete", "admin", "DELETE",
       lambda g: f"{P}/availabilityzones/{g['az']}", 204, scoped=False),
    _c("amphora:get_all", "admin", "GET", lambda g: f"{AMP}?loadbalancer_id={g['amp_lb']}", 200,
       scoped=False),
    _c("amphora:get_one", "admin", "GET", lambda g: f"{AMP}/{g['amphora']}", 200, scoped=False),
    _c("amphora:get_stats", "admin", "GET", lambda g: f"{AMP}/{g['amphora']}/stats", 200,
       scoped=False),
    _c("amphora:put_config", "admin", "PUT", lambda g: f"{AMP}/{g['amphora']}/config", 202,
       scoped=False),
    _c("amphora:put_failover", "admin", "PUT", lambda g: f"{AMP}/{g['amphora']}/failover", 202,
       scoped=False),
    _c("availability-zone-profile:get_all", "admin", "GET",
       lambda g: f"{P}/availabilityzoneprofiles", 200, scoped=False),
    _c("availability-zone-profile:post", "admin", "POST", lambda g: f"{P}/availabilityzoneprofiles",
       201, lambda g: {"availability_zone_profile": {
           "name": "azp", "provider_name": "noop", "availability_zone_data": "{}"}},
       scoped=False),
    _c("availability-zone-profile:get_one", "admin", "GET",
       lambda g: f"{P}/availabilityzoneprofiles/{g['azprofile']}", 200, scoped=False),
    _c("availability-zone-profile:put", "admin", "PUT",
       lambda g: f"{P}/availabilityzoneprofiles/{g['azprofile']}", 200,
       lambda g: {"availability_zone_profile": {"name": "x"}}, scoped=False),
    _c("availability-zone-profile:delete", "admin", "DELETE",
       lambda g: f"{P}/availabilityzoneprofiles/{g['azprofile']}", 204, scoped=False),
]


class Matrix:
    """One lbaas (keystone auth, one policy) and the objects the cases act on."""

    def __init__(self, client: TestClient, service: Service, keystone: Keystone) -> None:
        self.client = client
        self.service = service
        self.keystone = keystone
        self.admin = {"X-Auth-Token": keystone.token("admin")}
        self.shared = {where: self.graph(where) for where in (OWN, OTHER)}
        self.records = self.make_records()
        self.made = 0

    def call(self, method: str, path: str, headers: dict[str, str], body: Any = None,
             status: int | None = None) -> Any:
        r = self.client.request(method, path, json=body, headers=headers)
        if status is not None:
            assert r.status_code == status, (method, path, r.status_code, r.text)
        return r

    def settle(self) -> None:
        assert self.service.reconciler.wait_idle(20), "worker did not settle"

    def graph(self, project: str) -> G:
        """A load balancer of ``project`` with a listener, its pool (member, monitor),
        a spare pool, an L7 policy with a rule: made by the admin, ACTIVE."""
        project_id = self.keystone.info["projects"][project]
        body = {"loadbalancer": {"name": "rbac", "project_id": project_id, "listeners": [{
            "protocol": "HTTP", "protocol_port": 80,
            "default_pool": {"name": "main", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                             "members": [{"address": "127.0.0.10", "protocol_port": 80}],
                             "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3,
                                               "max_retries": 2}},
            "l7policies": [{"action": "REJECT", "rules": [
                {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}]}]}],
            "pools": [{"name": "spare", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}]}}
        lb = self.call("POST", f"{P}/loadbalancers", self.admin, body, 201).json()["loadbalancer"]
        self.settle()
        listener = lb["listeners"][0]
        pool = next(p for p in lb["pools"] if p["name"] == "main")
        spare = next(p for p in lb["pools"] if p["name"] == "spare")
        policy = listener["l7policies"][0]
        return {"project": project_id, "lb": lb["id"], "listener": listener["id"],
                "pool": pool["id"], "member": pool["members"][0]["id"],
                "hm": pool["healthmonitor"]["id"], "spare": spare["id"],
                "l7policy": policy["id"], "l7rule": policy["rules"][0]["id"]}

    def make_records(self) -> G:
        """A flavor profile with a flavor, a zone profile with a zone (admin)."""
        self.made = getattr(self, "made", 0) + 1
        name = f"rec{self.made}-{time.monotonic_ns()}"
        fp = self.call("POST", f"{P}/flavorprofiles", self.admin, {"flavorprofile": {
            "name": name, "provider_name": "noop", "flavor_data": "{}"}}, 201).json()
        fp_id = fp["flavorprofile"]["id"]
        flavor = self.call("POST", f"{P}/flavors", self.admin, {"flavor": {
            "name": name, "flavor_profile_id": fp_id}}, 201).json()["flavor"]["id"]
        azp = self.call("POST", f"{P}/availabilityzoneprofiles", self.admin,
                        {"availability_zone_profile": {
                            "name": name, "provider_name": "noop",
                            "availability_zone_data": "{}"}}, 201).json()
        azp_id = azp["availability_zone_profile"]["id"]
        self.call("POST", f"{P}/availabilityzones", self.admin, {"availability_zone": {
            "name": name, "availability_zone_profile_id": azp_id}}, 201)
        # An amphora: the haproxy provider's (served by the noop driver here).
        lb = self.call("POST", f"{P}/loadbalancers", self.admin, {"loadbalancer": {
            "name": name, "provider": "haproxy"}}, 201).json()["loadbalancer"]["id"]
        self.settle()
        [amphora] = self.call("GET", f"{AMP}?loadbalancer_id={lb}", self.admin,
                              status=200).json()["amphorae"]
        return {"flavorprofile": fp_id, "flavor": flavor, "azprofile": azp_id, "az": name,
                "fresh": f"{name}-new", "amp_lb": lb, "amphora": amphora["id"]}

    def free_records(self) -> G:
        """Records a delete may remove: profiles nobody uses."""
        rec = self.make_records()
        self.call("DELETE", f"{P}/flavors/{rec['flavor']}", self.admin, status=204)
        self.call("DELETE", f"{P}/availabilityzones/{rec['az']}", self.admin, status=204)
        return rec


def _service(tmp_path: Path, template: Path, keystone: Keystone, mode: str) -> Service:
    authtoken = keystone.authtoken_config()
    if POLICY_FILES[mode] is not None:
        authtoken += f"[oslo_policy]\npolicy_file = {POLICY_FILES[mode]}\n"
    return keystone_service(tmp_path, template, authtoken)


@pytest.fixture(scope="module", params=sorted(WHO))
def matrix(request: pytest.FixtureRequest, keystone: Keystone,
           tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Matrix]:
    mode = request.param
    svc = _service(tmp_path_factory.mktemp(f"rbac-{mode}"), sqlite_template, keystone, mode)
    svc.start()
    with TestClient(svc.app, raise_server_exceptions=False) as client:
        m = Matrix(client, svc, keystone)
        m.mode = mode  # type: ignore[attr-defined]
        yield m
    svc.stop()


def _params() -> list[Any]:
    out = []
    for case in CASES:
        for persona in PERSONAS:
            for where in (OWN, OTHER) if case.scoped else (OWN,):
                out.append(pytest.param(case, persona, where,
                                        id=f"{case.name}-{persona}-{where}"))
    return out


@pytest.mark.parametrize(("case", "persona", "where"), _params())
def test_rbac(matrix: Matrix, case: Case, persona: str, where: str) -> None:
    mode: str = matrix.mode  # type: ignore[attr-defined]
    own, other = WHO[mode][case.rule]
    allowed = persona in (own if where == OWN else other)
    if not case.scoped:
        target = matrix.records
        if allowed and case.writes:
            target = (matrix.free_records() if case.method == "DELETE" and "profile" in case.name
                      else matrix.make_records())
    elif allowed and case.writes:
        target = matrix.graph(where)
    else:
        target = matrix.shared[where]
    if case.quota_set:
        matrix.call("PUT", f"{P}/quotas/{target['project']}", matrix.admin,
                    {"quota": {"loadbalancer": 50}}, 202)
    headers = {"X-Auth-Token": matrix.keystone.token(f"lb-one-{persona}")}
    body = case.body(target) if case.body else None
    r = matrix.call(case.method, case.path(target), headers, body)
    expected = case.ok if allowed else 403
    assert r.status_code == expected, (mode, r.text)
    if allowed and case.writes:
        matrix.settle()
