"""Identity and authorisation: who is calling, and may they?

Identity comes from the headers an auth middleware (keystonemiddleware) sets:
``X-Project-Id`` and ``X-Roles`` (comma-separated). A request with neither is
the admin of the configured default project: the standalone single-user
default (Octavia's noauth mode also makes every caller an admin).

Authorisation is oslo.policy with Octavia's rule names
(``os_load-balancer_api:<resource>:<action>``) and its advanced-RBAC roles
(``load-balancer_member``, ``load-balancer_observer``,
``load-balancer_global_observer``, ``load-balancer_quota_admin``,
``load-balancer_admin``) plus the Keystone default roles (``admin``,
``member``, ``reader``). An operator overrides any rule in a policy file
(``[oslo_policy] policy_file``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oslo_config import cfg
from oslo_policy import policy

from lbaas.common import exceptions as exc

API = "os_load-balancer_api"

RULE_ADMIN = "rule:load-balancer:admin"
RULE_READ = "rule:load-balancer:read"
RULE_READ_GLOBAL = "rule:load-balancer:read-global"
RULE_WRITE = "rule:load-balancer:write"
RULE_READ_QUOTA = "rule:load-balancer:read-quota"
RULE_READ_QUOTA_GLOBAL = "rule:load-balancer:read-quota-global"
RULE_WRITE_QUOTA = "rule:load-balancer:write-quota"

BASE_RULES = [
    policy.RuleDefault("context_is_admin", "role:admin or role:load-balancer_admin"),
    policy.RuleDefault("load-balancer:owner", "project_id:%(project_id)s"),
    policy.RuleDefault("load-balancer:admin",
                       "is_admin:True or role:admin or role:load-balancer_admin"),
    policy.RuleDefault("load-balancer:global_observer", "role:load-balancer_global_observer"),
    policy.RuleDefault("load-balancer:member_and_owner",
                       "(role:load-balancer_member or role:member) and rule:load-balancer:owner"),
    policy.RuleDefault("load-balancer:observer_and_owner",
                       "(role:load-balancer_observer or role:reader) and rule:load-balancer:owner"),
    policy.RuleDefault("load-balancer:quota-admin", "role:load-balancer_quota_admin"),
    policy.RuleDefault("load-balancer:read",
                       "rule:load-balancer:observer_and_owner or "
                       "rule:load-balancer:global_observer or "
                       "rule:load-balancer:member_and_owner or rule:load-balancer:admin"),
    policy.RuleDefault("load-balancer:read-global",
                       "rule:load-balancer:global_observer or rule:load-balancer:admin"),
    policy.RuleDefault("load-balancer:write",
                       "rule:load-balancer:member_and_owner or rule:load-balancer:admin"),
    policy.RuleDefault("load-balancer:read-quota",
                       "rule:load-balancer:observer_and_owner or "
                       "rule:load-balancer:global_observer or "
                       "rule:load-balancer:member_and_owner or "
                       "rule:load-balancer:quota-admin or rule:load-balancer:admin"),
    policy.RuleDefault("load-balancer:read-quota-global",
                       "rule:load-balancer:global_observer or "
                       "rule:load-balancer:quota-admin or rule:load-balancer:admin"),
    policy.RuleDefault("load-balancer:write-quota",
                       "rule:load-balancer:quota-admin or rule:load-balancer:admin"),
]

# (resource, action) -> check string, as in Octavia's octavia/policies/*.py.
_GRAPH = {"get_all": RULE_READ, "get_all-global": RULE_READ_GLOBAL, "post": RULE_WRITE,
          "get_one": RULE_READ, "put": RULE_WRITE, "delete": RULE_WRITE}
_ADMIN_RECORDS = {"get_all": RULE_ADMIN, "post": RULE_ADMIN, "get_one": RULE_ADMIN,
                  "put": RULE_ADMIN, "delete": RULE_ADMIN}
_READABLE_RECORDS = {**_ADMIN_RECORDS, "get_all": RULE_READ, "get_one": RULE_READ}
API_RULES: dict[str, dict[str, str]] = {
    "loadbalancer": {**_GRAPH, "get_stats": RULE_READ, "get_status": RULE_READ,
                     "put_failover": RULE_ADMIN},
    "listener": {**_GRAPH, "get_stats": RULE_READ},
    "pool": dict(_GRAPH),
    "member": dict(_GRAPH),
    "healthmonitor": dict(_GRAPH),
    "l7policy": dict(_GRAPH),
    "l7rule": dict(_GRAPH),
    "quota": {"get_all": RULE_READ_QUOTA, "get_all-global": RULE_READ_QUOTA_GLOBAL,
              "get_one": RULE_READ_QUOTA, "put": RULE_WRITE_QUOTA, "delete": RULE_WRITE_QUOTA,
              "get_defaults": RULE_READ_QUOTA},
    "amphora": {"get_all": RULE_ADMIN, "get_one": RULE_ADMIN, "delete": RULE_ADMIN,
                "put_config": RULE_ADMIN, "put_failover": RULE_ADMIN, "get_stats": RULE_ADMIN},
    "provider": {"get_all": RULE_READ},
    "provider-flavor": {"get_all": RULE_ADMIN},
    "provider-availability-zone": {"get_all": RULE_ADMIN},
    "flavor": dict(_READABLE_RECORDS),
    "flavor-profile": dict(_ADMIN_RECORDS),
    "availability-zone": dict(_READABLE_RECORDS),
    "availability-zone-profile": dict(_ADMIN_RECORDS),
    # The Neutron-shaped network API: admins create, everyone reads.
    "network": dict(_READABLE_RECORDS),
    "subnet": dict(_READABLE_RECORDS),
}


def all_rules() -> list[policy.RuleDefault]:
    """Every rule lbaas registers (base rules and one per API action)."""
    rules = list(BASE_RULES)
    for resource, actions in API_RULES.items():
        for action, check in actions.items():
            rules.append(policy.RuleDefault(f"{API}:{resource}:{action}", check))
    return rules


class Policy:
    """An oslo.policy enforcer loaded with lbaas's defaults and an optional file."""

    def __init__(self, policy_file: str | None = None) -> None:
        conf = cfg.ConfigOpts()
        conf([], project="lbaas", default_config_files=[])
        self._enforcer = policy.Enforcer(conf, policy_file=policy_file, use_conf=True)
        self._enforcer.register_defaults(all_rules())
        self._enforcer.load_rules()

    def allowed(self, ctx: RequestContext, rule: str, project_id: str | None) -> bool:
        """True if ``ctx`` may do ``rule`` on an object of ``project_id``."""
        target = {"project_id": project_id}
        creds = {"roles": list(ctx.roles), "project_id": ctx.project_id,
                 "is_admin": ctx.is_admin}
        return bool(self._enforcer.enforce(rule, target, creds))


@dataclass(frozen=True)
class RequestContext:
    """The caller: project, roles, and whether it is the no-headers admin.

    ``policy`` answers authorisation questions for this caller.
    """

    project_id: str
    roles: tuple[str, ...]
    is_admin: bool
    policy: Policy = field(repr=False, compare=False)

    def allowed(self, resource: str, action: str, project_id: str | None = None) -> bool:
        """True if ``os_load-balancer_api:<resource>:<action>`` passes on ``project_id``."""
        target = project_id if project_id is not None else self.project_id
        return self.policy.allowed(self, f"{API}:{resource}:{action}", target)

    def authorize(self, resource: str, action: str, project_id: str | None = None) -> None:
        """Raise PolicyForbidden (403) unless the rule passes on ``project_id``."""
        if not self.allowed(resource, action, project_id):
            raise exc.PolicyForbidden()

    @property
    def sees_all_projects(self) -> bool:
        """True if the caller may read every project's objects (admin, global observer)."""
        return self.policy.allowed(self, "load-balancer:read-global", self.project_id)

    @property
    def is_lb_admin(self) -> bool:
        """True if the caller passes ``load-balancer:admin``."""
        return self.policy.allowed(self, "load-balancer:admin", self.project_id)

    def can_see(self, project_id: str | None) -> bool:
        """True if an object of ``project_id`` exists for this caller (else it is a 404)."""
        return project_id == self.project_id or self.sees_all_projects
