"""Authorisation: may this caller do this action on an object of that project?

The caller is an :class:`Identity` established by the authentication layer
(:mod:`lbaas.api.auth`): Keystone's auth_token middleware, an lbaas API key,
or, with ``noauth``, the request's own headers. This module never reads a
request.

The rules are Octavia's (``octavia/policies/*.py``), with its names
(``os_load-balancer_api:<resource>:<action>``) and check strings:

- the Keystone default roles (``admin``, ``member``, ``reader`` on the
  object's project) are the defaults;
- Octavia's older "advanced RBAC" roles (``load-balancer_member``,
  ``load-balancer_observer``, ``load-balancer_global_observer``,
  ``load-balancer_quota_admin``, ``load-balancer_admin``) are their deprecated
  forms: oslo.policy ORs them in only with ``[oslo_policy]
  enforce_new_defaults = false`` (its default is true), or an operator
  restores them with a policy file (``etc/policy/advanced-rbac-policy.yaml``).

Every rule is for project-scoped tokens (``scope_types = ["project"]``): a
system- or domain-scoped token is refused (403), as in Octavia. An operator
overrides any rule in a policy file (``[oslo_policy] policy_file``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oslo_config import cfg
from oslo_policy import policy

from lbaas.common import exceptions as exc

API = "os_load-balancer_api"
PROJECT_SCOPE = ["project"]

RULE_ADMIN = "rule:load-balancer:admin"
RULE_READ = "rule:load-balancer:read"
RULE_READ_GLOBAL = "rule:load-balancer:read-global"
RULE_WRITE = "rule:load-balancer:write"
RULE_READ_QUOTA = "rule:load-balancer:read-quota"
RULE_READ_QUOTA_GLOBAL = "rule:load-balancer:read-quota-global"
RULE_WRITE_QUOTA = "rule:load-balancer:write-quota"
# Octavia lets a service user (Aodh) list the members of any pool.
RULE_MEMBER_READ = f"{RULE_READ} or rule:service"

_DEPRECATED_REASON = ("The load-balancer_* roles are replaced by the Keystone default roles "
                      "(admin, member, reader) and project-scoped tokens.")


def _deprecated(name: str, check: str) -> policy.DeprecatedRule:
    return policy.DeprecatedRule(name=name, check_str=check,
                                 deprecated_reason=_DEPRECATED_REASON, deprecated_since="W")


def _rule(name: str, check: str, deprecated: str | None = None) -> policy.RuleDefault:
    return policy.RuleDefault(
        name, check, scope_types=PROJECT_SCOPE,
        deprecated_rule=_deprecated(name, deprecated) if deprecated is not None else None)


# octavia/policies/base.py: what the API actions refer to.
ACCESS_RULES = [
    _rule("load-balancer:read",
          "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or "
          "rule:load-balancer:member_and_owner or rule:load-balancer:admin"),
    _rule("load-balancer:read-global",
          "rule:load-balancer:global_observer or rule:load-balancer:admin"),
    _rule("load-balancer:write", "rule:load-balancer:member_and_owner or rule:load-balancer:admin"),
    _rule("load-balancer:read-quota",
          "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or "
          "rule:load-balancer:member_and_owner or rule:load-balancer:quota-admin or "
          "rule:load-balancer:admin"),
    _rule("load-balancer:read-quota-global",
          "rule:load-balancer:global_observer or rule:load-balancer:quota-admin or "
          "rule:load-balancer:admin"),
    _rule("load-balancer:write-quota",
          "rule:load-balancer:quota-admin or rule:load-balancer:admin"),
]

# octavia/policies/keystone_default_roles.py, each with its advanced-RBAC predecessor
# (octavia/policies/advanced_rbac.py) as the deprecated rule.
ROLE_RULES = [
    _rule("project-member", "role:member and project_id:%(project_id)s"),
    _rule("project-reader", "role:reader and project_id:%(project_id)s"),
    _rule("context_is_admin", "role:admin", "role:admin or role:load-balancer_admin"),
    # is_admin:True: the standalone admin of noauth, or a caller passing context_is_admin.
    _rule("load-balancer:admin", "is_admin:True or role:admin",
          "is_admin:True or role:admin or role:load-balancer_admin"),
    _rule("service", "role:service"),
    _rule("load-balancer:global_observer", "role:admin", "role:load-balancer_global_observer"),
    _rule("load-balancer:member_and_owner", "rule:project-member",
          "role:load-balancer_member and rule:load-balancer:owner"),
    _rule("load-balancer:observer_and_owner", "rule:project-reader",
          "role:load-balancer_observer and rule:load-balancer:owner"),
    _rule("load-balancer:quota-admin", "role:admin", "role:load-balancer_quota_admin"),
    _rule("load-balancer:owner", "project_id:%(project_id)s"),
]

# (resource, action) -> check string, as in Octavia's octavia/policies/<resource>.py.
_GRAPH = {"get_all": RULE_READ, "get_all-global": RULE_READ_GLOBAL, "post": RULE_WRITE,
          "get_one": RULE_READ, "put": RULE_WRITE, "delete": RULE_WRITE}
_CHILD = {"get_all": RULE_READ, "post": RULE_WRITE, "get_one": RULE_READ, "put": RULE_WRITE,
          "delete": RULE_WRITE}
_ADMIN_RECORDS = {"get_all": RULE_ADMIN, "post": RULE_ADMIN, "get_one": RULE_ADMIN,
                  "put": RULE_ADMIN, "delete": RULE_ADMIN}
_READABLE_RECORDS = {**_ADMIN_RECORDS, "get_all": RULE_READ, "get_one": RULE_READ}
API_RULES: dict[str, dict[str, str]] = {
    "loadbalancer": {**_GRAPH, "post:vip_sg_ids": RULE_WRITE, "put:vip_sg_ids": RULE_WRITE,
                     "get_stats": RULE_READ, "get_status": RULE_READ,
                     "put_failover": RULE_ADMIN},
    "listener": {**_GRAPH, "get_stats": RULE_READ},
    "pool": dict(_GRAPH),
    "member": {**_CHILD, "get_all": RULE_MEMBER_READ},
    "healthmonitor": dict(_GRAPH),
    "l7policy": dict(_GRAPH),
    "l7rule": dict(_CHILD),
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
    # lbaas's own Neutron-shaped network API: admins create, readers read.
    "network": dict(_READABLE_RECORDS),
    "subnet": dict(_READABLE_RECORDS),
    # Neutron's agent API: admins only.
    "agent": {"get_all": RULE_ADMIN, "get_one": RULE_ADMIN, "put": RULE_ADMIN,
              "delete": RULE_ADMIN},
}


def all_rules() -> list[policy.RuleDefault]:
    """Every rule lbaas registers (access and role rules, one per API action)."""
    rules = [*ACCESS_RULES, *ROLE_RULES]
    for resource, actions in API_RULES.items():
        for action, check in actions.items():
            rules.append(policy.RuleDefault(f"{API}:{resource}:{action}", check,
                                            scope_types=PROJECT_SCOPE))
    return rules


@dataclass(frozen=True)
class Identity:
    """Who is calling, as the authentication layer established it.

    ``project_id`` is None for a token not scoped to a project (system or
    domain scope: ``system_scope`` / ``domain_id`` say which). ``standalone_admin``
    marks the request without identity of ``noauth`` (Octavia's ``is_admin``).
    ``auth_token`` is the caller's Keystone token (``auth_strategy = keystone``),
    with which Barbican is read on its behalf.
    """

    project_id: str | None
    roles: tuple[str, ...]
    user_id: str | None = None
    domain_id: str | None = None
    system_scope: str | None = None
    standalone_admin: bool = False
    auth_token: str | None = field(default=None, repr=False)


class Policy:
    """An oslo.policy enforcer with lbaas's defaults.

    ``config_files`` are lbaas's INI files: their ``[oslo_policy]`` section
    (``policy_file``, ``policy_dirs``, ``enforce_new_defaults``) applies as in
    any OpenStack service; ``policy_file`` overrides the one they name.
    """

    def __init__(self, config_files: Sequence[str] = (), policy_file: str | None = None,
                 enforce_new_defaults: bool | None = None) -> None:
        conf = cfg.ConfigOpts()
        conf([], project="lbaas", default_config_files=list(config_files))
        self._enforcer = policy.Enforcer(conf, policy_file=policy_file, use_conf=True)
        if enforce_new_defaults is not None:
            conf.set_override("enforce_new_defaults", enforce_new_defaults, "oslo_policy")
        self._enforcer.suppress_deprecation_warnings = True
        self._enforcer.register_defaults(all_rules())
        self._enforcer.load_rules()

    def context(self, identity: Identity) -> RequestContext:
        """The request context of ``identity``: its ``is_admin`` is the standalone admin
        or ``context_is_admin`` (Octavia's ``RequestContext.is_admin``)."""
        ctx = RequestContext(identity=identity, is_admin=identity.standalone_admin, policy=self)
        if not ctx.is_admin and self.allowed(ctx, "context_is_admin", identity.project_id):
            ctx = RequestContext(identity=identity, is_admin=True, policy=self)
        return ctx

    def allowed(self, ctx: RequestContext, rule: str, project_id: str | None) -> bool:
        """True if ``ctx`` may do ``rule`` on an object of ``project_id``.

        A token of the wrong scope (system, domain) is refused, not an error.
        """
        ident = ctx.identity
        creds: dict[str, Any] = {
            "user_id": ident.user_id, "project_id": ident.project_id,
            "roles": list(ident.roles), "domain_id": ident.domain_id,
            "system_scope": ident.system_scope, "is_admin": ctx.is_admin}
        try:
            return bool(self._enforcer.enforce(rule, {"project_id": project_id}, creds))
        except policy.InvalidScope:
            return False


@dataclass(frozen=True)
class RequestContext:
    """The caller (an :class:`Identity`) with the policy that judges it.

    Made by :meth:`Policy.context`; ``is_admin`` feeds the ``is_admin:True``
    check of Octavia's rules.
    """

    identity: Identity
    is_admin: bool
    policy: Policy = field(repr=False, compare=False)

    @property
    def project_id(self) -> str:
        """The caller's project; PolicyForbidden (403) for a token without one."""
        if self.identity.project_id is None:
            raise exc.PolicyForbidden()
        return self.identity.project_id

    @property
    def roles(self) -> tuple[str, ...]:
        return self.identity.roles

    def allowed(self, resource: str, action: str, project_id: str | None = None) -> bool:
        """True if ``os_load-balancer_api:<resource>:<action>`` passes on ``project_id``
        (default: the caller's own project)."""
        target = project_id if project_id is not None else self.identity.project_id
        return self.policy.allowed(self, f"{API}:{resource}:{action}", target)

    def authorize(self, resource: str, action: str, project_id: str | None = None) -> None:
        """Raise PolicyForbidden (403) unless the rule passes on ``project_id``."""
        if not self.allowed(resource, action, project_id):
            raise exc.PolicyForbidden()

    @property
    def sees_all_projects(self) -> bool:
        """True if the caller may read every project's objects (admin, global observer)."""
        return self.policy.allowed(self, "load-balancer:read-global", self.identity.project_id)

    @property
    def is_lb_admin(self) -> bool:
        """True if the caller passes ``load-balancer:admin``."""
        return self.policy.allowed(self, "load-balancer:admin", self.identity.project_id)

    def can_see(self, project_id: str | None) -> bool:
        """True if objects of ``project_id`` are listed to this caller."""
        return (project_id is not None and project_id == self.identity.project_id) \
            or self.sees_all_projects
