"""The resource commands, in the shape of ``openstack loadbalancer ...``.

Each resource gets ``create``, ``list``, ``show``, ``set``, ``unset`` and
``delete`` built from one table of fields (:class:`Field`): the option name
operators know from python-octaviaclient, the API field it fills, and whether
the value is a name to resolve to an id. Anything that references another
object takes a name or an id.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from lbaas.cli import output
from lbaas.cli.client import Client, CliError, Resource, wait_for

P = "/v2/lbaas"
LOADBALANCER = Resource("loadbalancer", "loadbalancer", "loadbalancers", f"{P}/loadbalancers",
                        title="load balancer")
LISTENER = Resource("listener", "listener", "listeners", f"{P}/listeners")
POOL = Resource("pool", "pool", "pools", f"{P}/pools")
MEMBER = Resource("member", "member", "members", f"{P}/pools/{{parent}}/members", POOL)
HEALTHMONITOR = Resource("healthmonitor", "healthmonitor", "healthmonitors",
                         f"{P}/healthmonitors", title="health monitor")
L7POLICY = Resource("l7policy", "l7policy", "l7policies", f"{P}/l7policies", title="L7 policy",
                    plural="L7 policies")
L7RULE = Resource("l7rule", "rule", "rules", f"{P}/l7policies/{{parent}}/rules", L7POLICY,
                  title="L7 rule")
FLAVOR = Resource("flavor", "flavor", "flavors", f"{P}/flavors")
FLAVORPROFILE = Resource("flavorprofile", "flavorprofile", "flavorprofiles",
                         f"{P}/flavorprofiles", title="flavor profile",
                         links="flavorprofile_links")
AVAILABILITYZONE = Resource("availabilityzone", "availability_zone", "availability_zones",
                            f"{P}/availabilityzones", title="availability zone", id_key="name")
AVAILABILITYZONEPROFILE = Resource(
    "availabilityzoneprofile", "availability_zone_profile", "availability_zone_profiles",
    f"{P}/availabilityzoneprofiles", title="availability zone profile",
    links="availability_zone_profile_links")
NETWORK = Resource("network", "network", "networks", "/v2.0/networks")
SUBNET = Resource("subnet", "subnet", "subnets", "/v2.0/subnets")


@dataclass(frozen=True)
class Field:
    """One command-line option and the API field it fills.

    ``kind``: ``value`` (a plain option), ``multi`` (repeatable, a list),
    ``kv`` (``k=v,k2=v2`` into a dict), ``kvs`` (repeatable ``k=v,...`` into a
    list of dicts), ``switch`` (``--enable/--disable`` style pair into a bool).
    ``resolve`` turns a name into an id of that resource.
    """

    flag: str
    key: str
    help: str = ""
    type: Any = str
    kind: str = "value"
    resolve: Resource | None = None
    off_flag: str = ""
    choices: tuple[str, ...] = ()
    create_only: bool = False

    @property
    def dest(self) -> str:
        return self.key.replace("-", "_")


def _switch(on: str, off: str, key: str, help: str) -> Field:
    return Field(on, key, help, kind="switch", off_flag=off)


ENABLE = _switch("--enable", "--disable", "admin_state_up", "Administrative state up or down.")
NAME = Field("--name", "name", "Name.")
DESCRIPTION = Field("--description", "description", "Description.")
TAG = Field("--tag", "tags", "Tag (repeatable).", kind="multi")

LB_FIELDS = [
    NAME, DESCRIPTION,
    Field("--vip-address", "vip_address", "VIP address (taken from the subnet's pool if absent).",
          create_only=True),
    Field("--vip-port-id", "vip_port_id", "VIP port.", create_only=True),
    Field("--vip-subnet-id", "vip_subnet_id", "Subnet of the VIP (name or id).",
          resolve=SUBNET, create_only=True),
    Field("--vip-network-id", "vip_network_id", "Network of the VIP (name or id).",
          resolve=NETWORK, create_only=True),
    Field("--vip-qos-policy-id", "vip_qos_policy_id", "QoS policy of the VIP port."),
    Field("--provider", "provider", "Provider (see provider list; default: the one marked so).",
          create_only=True),
    Field("--flavor", "flavor_id", "Flavor (name or id).", resolve=FLAVOR, create_only=True),
    Field("--availability-zone", "availability_zone", "Availability zone.", create_only=True),
    ENABLE, TAG,
]
LISTENER_FIELDS = [
    NAME, DESCRIPTION,
    Field("--protocol", "protocol", "HTTP, HTTPS, TCP, TERMINATED_HTTPS, UDP, SCTP, PROMETHEUS.",
          create_only=True),
    Field("--protocol-port", "protocol_port", "Port of the listener.", type=int,
          create_only=True),
    Field("--connection-limit", "connection_limit", "Maximum connections (-1: unlimited).",
          type=int),
    Field("--default-pool", "default_pool_id", "Default pool (name or id).", resolve=POOL),
    Field("--default-tls-container-ref", "default_tls_container_ref", "TLS certificate ref."),
    Field("--insert-headers", "insert_headers", "Headers to insert, e.g. X-Forwarded-For=true.",
          kind="kv"),
    Field("--timeout-client-data", "timeout_client_data", "Client inactivity timeout (ms).",
          type=int),
    Field("--timeout-member-connect", "timeout_member_connect", "Member connect timeout (ms).",
          type=int),
    Field("--timeout-member-data", "timeout_member_data", "Member inactivity timeout (ms).",
          type=int),
    Field("--timeout-tcp-inspect", "timeout_tcp_inspect", "TCP inspect wait (ms).", type=int),
    Field("--allowed-cidr", "allowed_cidrs", "CIDR allowed to connect (repeatable).",
          kind="multi"),
    ENABLE, TAG,
]
POOL_FIELDS = [
    NAME, DESCRIPTION,
    Field("--protocol", "protocol", "HTTP, HTTPS, PROXY, PROXYV2, TCP, UDP, SCTP.",
          create_only=True),
    Field("--lb-algorithm", "lb_algorithm",
          "ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT."),
    Field("--listener", "listener_id", "Listener whose default pool this is (name or id).",
          resolve=LISTENER, create_only=True),
    Field("--loadbalancer", "loadbalancer_id", "Load balancer (name or id).",
          resolve=LOADBALANCER, create_only=True),
    Field("--session-persistence", "session_persistence",
          "type=SOURCE_IP|HTTP_COOKIE|APP_COOKIE[,cookie_name=NAME].", kind="kv"),
    ENABLE, TAG,
]
MEMBER_FIELDS = [
    NAME,
    Field("--address", "address", "Member address.", create_only=True),
    Field("--protocol-port", "protocol_port", "Member port.", type=int, create_only=True),
    Field("--weight", "weight", "Weight 0..256 (0 drains).", type=int),
    Field("--subnet-id", "subnet_id", "Subnet of the member (name or id).", resolve=SUBNET,
          create_only=True),
    Field("--monitor-address", "monitor_address", "Address health checks go to."),
    Field("--monitor-port", "monitor_port", "Port health checks go to.", type=int),
    _switch("--enable-backup", "--disable-backup", "backup", "Backup member."),
    ENABLE, TAG,
]
HM_FIELDS = [
    NAME,
    Field("--type", "type", "HTTP, HTTPS, PING, TCP, TLS-HELLO, UDP-CONNECT, SCTP.",
          create_only=True),
    Field("--delay", "delay", "Seconds between checks.", type=int),
    Field("--timeout", "timeout", "Seconds a check may take.", type=int),
    Field("--max-retries", "max_retries", "Successes to go ONLINE (1..10).", type=int),
    Field("--max-retries-down", "max_retries_down", "Failures to go ERROR (1..10).", type=int),
    Field("--url-path", "url_path", "HTTP path checked."),
    Field("--expected-codes", "expected_codes", "Codes that pass: 200, 200,202 or 200-204."),
    Field("--http-method", "http_method", "HTTP method of the check."),
    Field("--http-version", "http_version", "1.0 or 1.1.", type=float),
    Field("--domain-name", "domain_name", "Host header of the check."),
    ENABLE, TAG,
]
L7POLICY_FIELDS = [
    NAME, DESCRIPTION,
    Field("--action", "action", "REJECT, REDIRECT_TO_URL, REDIRECT_TO_POOL, REDIRECT_PREFIX."),
    Field("--redirect-pool", "redirect_pool_id", "Pool (name or id).", resolve=POOL),
    Field("--redirect-url", "redirect_url", "URL to redirect to."),
    Field("--redirect-prefix", "redirect_prefix", "URL prefix to redirect to."),
    Field("--redirect-http-code", "redirect_http_code", "301, 302, 303, 307 or 308.", type=int),
    Field("--position", "position", "Position among the listener's policies.", type=int),
    ENABLE, TAG,
]
ENABLED = _switch("--enable", "--disable", "enabled",
                  "Enabled (new load balancers may use it) or disabled.")
FLAVOR_FIELDS = [
    NAME, DESCRIPTION,
    Field("--flavorprofile", "flavor_profile_id", "Flavor profile (name or id).",
          resolve=FLAVORPROFILE, create_only=True),
    ENABLED,
]
FLAVORPROFILE_FIELDS = [
    NAME,
    Field("--provider", "provider_name", "Provider (see provider list)."),
    Field("--flavor-data", "flavor_data", "Provider settings, a JSON object, e.g. "
          "'{\"loadbalancer_topology\": \"SINGLE\"}' (keys: provider capability list "
          "--flavor)."),
]
AVAILABILITYZONE_FIELDS = [
    Field("--name", "name", "Name (an availability zone's key).", create_only=True),
    DESCRIPTION,
    Field("--availabilityzoneprofile", "availability_zone_profile_id",
          "Availability zone profile (name or id).", resolve=AVAILABILITYZONEPROFILE,
          create_only=True),
    ENABLED,
]
AVAILABILITYZONEPROFILE_FIELDS = [
    NAME,
    Field("--provider", "provider_name", "Provider (see provider list)."),
    Field("--availability-zone-data", "availability_zone_data", "Provider settings, a JSON "
          "object (keys: provider capability list --availability-zone)."),
]
L7RULE_FIELDS = [
    Field("--type", "type", "HOST_NAME, PATH, FILE_TYPE, HEADER, COOKIE, SSL_*."),
    Field("--compare-type", "compare_type", "REGEX, STARTS_WITH, ENDS_WITH, CONTAINS, EQUAL_TO."),
    Field("--key", "key", "Header or cookie name."),
    Field("--value", "value", "Value to compare with."),
    _switch("--invert", "--no-invert", "invert", "Invert the match."),
    ENABLE, TAG,
]


# -- shared plumbing ---------------------------------------------------------------

def client_of(ctx: click.Context) -> Client:
    """The :class:`Client` the root command made."""
    client: Client = ctx.find_root().obj
    return client


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("-c", "--column", "columns", multiple=True,
                      help="Column to show (repeatable).")(fn)
    return click.option("-f", "--format", "fmt", type=click.Choice(output.FORMATS),
                        default="table", show_default=True, help="Output format.")(fn)


def wait_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--wait-timeout", type=float, default=300.0, show_default=True,
                      help="Seconds --wait waits.")(fn)
    return click.option("--wait", is_flag=True,
                        help="Wait until the object is ACTIVE (or ERROR, or gone).")(fn)


def field_options(fields: Sequence[Field], for_create: bool) -> Callable[..., Any]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields):
            if f.create_only and not for_create:
                continue
            if f.kind == "switch":
                fn = click.option(f"{f.flag}/{f.off_flag}", f.dest, default=None,
                                  help=f.help)(fn)
            elif f.kind in ("multi", "kvs"):
                fn = click.option(f.flag, f.dest, multiple=True, help=f.help)(fn)
            else:
                fn = click.option(f.flag, f.dest, type=f.type, default=None, help=f.help)(fn)
        return fn
    return decorate


def _kv(text: str, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        if "=" not in part:
            raise click.BadParameter(f"expected key=value, got '{part}'", param_hint=flag)
        k, v = part.split("=", 1)
        out[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else v.strip()
    return out


def body_from(client: Client, fields: Sequence[Field], values: dict[str, Any],
              for_create: bool) -> dict[str, Any]:
    """The JSON body for the options given (absent options are left out)."""
    body: dict[str, Any] = {}
    for f in fields:
        if f.create_only and not for_create:
            continue
        value = values.get(f.dest)
        if value is None or value == ():
            continue
        if f.kind == "multi":
            value = list(value)
        elif f.kind == "kv":
            value = _kv(value, f.flag)
        elif f.kind == "kvs":
            value = [_kv(v, f.flag) for v in value]
        elif f.resolve is not None:
            value = client.find(f.resolve, value)
        body[f.key] = value
    return body


def progress(enabled: bool) -> Callable[[str], None] | None:
    """A one-line status indicator on stderr while --wait polls."""
    if not enabled:
        return None
    console = Console(stderr=True)
    state = {"n": 0}
    spinner = "|/-\\"

    def show(status: str) -> None:
        state["n"] += 1
        if console.is_terminal:
            console.print(f"\r{spinner[state['n'] % 4]} {status}  ", end="")
        elif state["n"] == 1:
            console.print(f"waiting ({status})...")
    return show


def wait_object(client: Client, res: Resource, obj_id: str, parent_id: str | None,
                timeout: float, deleting: bool = False) -> dict[str, Any] | None:
    """Wait for ``obj_id`` to settle; for a delete, until it is gone."""
    def fetch() -> dict[str, Any] | None:
        try:
            return client.show(res, obj_id, parent_id)
        except CliError as e:
            if e.status == 404:
                return None
            raise
    obj = wait_for(fetch, timeout, progress(sys.stderr.isatty()))
    if sys.stderr.isatty():
        click.echo("", err=True)
    if deleting and obj is not None and obj.get("provisioning_status") not in (None, "DELETED"):
        raise CliError(f"{res.label} {obj_id} was not deleted: {obj.get('provisioning_status')}")
    return obj


# -- the generic commands ------------------------------------------------------------

@dataclass
class Spec:
    """How to build the commands of one resource.

    ``tags``: the resource has tags (``set --tag/--no-tag``, ``unset
    --tag/--all-tag``); ``provisioned``: it has a provisioning_status, so
    changes take ``--wait``; ``unset``: the fields ``unset`` clears (no
    ``unset`` command when there is nothing to clear).
    """

    res: Resource
    fields: list[Field]
    list_columns: tuple[str, ...]
    create_parent: Resource | None = None  # positional argument of create (and list)
    list_filters: list[Field] = field(default_factory=list)
    tags: bool = True
    provisioned: bool = True
    unset: tuple[str, ...] = ("name", "description")


def _when(condition: bool, decorator: Callable[[Callable[..., Any]], Callable[..., Any]],
          ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return decorator if condition else (lambda fn: fn)


def add_resource_commands(group: click.Group, spec: Spec) -> None:
    """Attach create/list/show/set/unset/delete for ``spec`` to ``group``."""
    res = spec.res
    nested = res.parent is not None  # members, rules: /parent/{id}/children
    waits = _when(spec.provisioned, wait_options)

    def parent_arg(fn: Callable[..., Any]) -> Callable[..., Any]:
        if nested:
            assert res.parent is not None
            return click.argument("parent", metavar=res.parent.name.upper())(fn)
        return fn

    @group.command("list")
    @parent_arg
    @field_options(spec.list_filters, for_create=True)
    @output_options
    @click.pass_context
    def list_cmd(ctx: click.Context, fmt: str, columns: tuple[str, ...],
                 parent: str | None = None, **filters: Any) -> None:
        client = client_of(ctx)
        parent_id = _parent_id(client, res, parent)
        params = body_from(client, spec.list_filters, filters, for_create=True)
        if "tags" in params:
            params["tags"] = ",".join(params["tags"])
        output.show_many(client.list(res, parent_id, params), fmt, columns, spec.list_columns)
    list_cmd.help = f"List {res.labels}."

    @group.command("show")
    @parent_arg
    @click.argument("name_or_id", metavar=res.name.upper())
    @output_options
    @click.pass_context
    def show_cmd(ctx: click.Context, name_or_id: str, fmt: str, columns: tuple[str, ...],
                 parent: str | None = None) -> None:
        client = client_of(ctx)
        parent_id = _parent_id(client, res, parent)
        obj_id = client.find(res, name_or_id, parent_id)
        output.show_one(client.show(res, obj_id, parent_id), fmt, columns)
    show_cmd.help = f"Show one {res.label}."

    @group.command("create")
    @field_options(spec.fields, for_create=True)
    @output_options
    @waits
    @click.pass_context
    def create_cmd(ctx: click.Context, fmt: str, columns: tuple[str, ...], wait: bool = False,
                   wait_timeout: float = 0.0, parent: str | None = None,
                   **values: Any) -> None:
        client = client_of(ctx)
        body = body_from(client, spec.fields, values, for_create=True)
        parent_id = None
        if spec.create_parent is not None and parent is not None:
            parent_id = client.find(spec.create_parent, parent)
            if not nested:
                body[_parent_key(spec.create_parent)] = parent_id
        obj = client.post(res.url(parent_id if nested else None), {res.key: body})[res.key]
        if wait:
            obj = wait_object(client, res, obj[res.id_key], parent_id if nested else None,
                              wait_timeout) or obj
        output.show_one(obj, fmt, columns)
    create_cmd.help = f"Create {res.a_label}."
    if spec.create_parent is not None:
        create_cmd.params.insert(0, click.Argument(["parent"],
                                                   metavar=spec.create_parent.name.upper()))

    @group.command("set")
    @parent_arg
    @click.argument("name_or_id", metavar=res.name.upper())
    @field_options(spec.fields, for_create=False)
    @_when(spec.tags, click.option("--no-tag", is_flag=True,
                                   help="Clear all tags before adding --tag ones."))
    @waits
    @click.pass_context
    def set_cmd(ctx: click.Context, name_or_id: str, wait: bool = False,
                wait_timeout: float = 0.0, no_tag: bool = False, parent: str | None = None,
                **values: Any) -> None:
        client = client_of(ctx)
        parent_id = _parent_id(client, res, parent)
        obj_id = client.find(res, name_or_id, parent_id)
        body = body_from(client, spec.fields, values, for_create=False)
        if "tags" in body or no_tag:
            current = [] if no_tag else client.show(res, obj_id, parent_id).get("tags", [])
            body["tags"] = sorted(set(current) | set(body.get("tags", [])))
        _change(client, res, obj_id, parent_id, body, "set", wait, wait_timeout)
    set_cmd.help = f"Change {res.a_label}."

    if spec.unset or spec.tags:
        _add_unset_command(group, spec, parent_arg, waits)

    @group.command("delete")
    @parent_arg
    @click.argument("names_or_ids", nargs=-1, required=True, metavar=f"{res.name.upper()}...")
    @waits
    @click.pass_context
    def delete_cmd(ctx: click.Context, names_or_ids: tuple[str, ...], wait: bool = False,
                   wait_timeout: float = 0.0, parent: str | None = None,
                   cascade: bool = False) -> None:
        client = client_of(ctx)
        parent_id = _parent_id(client, res, parent)
        for name_or_id in names_or_ids:
            obj_id = client.find(res, name_or_id, parent_id)
            params = {"cascade": "true"} if cascade else None
            client.delete(f"{res.url(parent_id)}/{obj_id}", params=params)
            if wait:
                wait_object(client, res, obj_id, parent_id, wait_timeout, deleting=True)
    delete_cmd.help = f"Delete {res.labels}."
    if res is LOADBALANCER:
        delete_cmd.params.append(click.Option(["--cascade"], is_flag=True,
                                              help="Delete everything under it too."))


def _change(client: Client, res: Resource, obj_id: str, parent_id: str | None,
            body: dict[str, Any], verb: str, wait: bool, wait_timeout: float) -> None:
    """PUT ``body`` (refused when empty: nothing to ``verb``), then wait if asked."""
    if not body:
        raise click.UsageError(f"nothing to {verb}: give at least one option")
    client.put(f"{res.url(parent_id)}/{obj_id}", {res.key: body})
    if wait:
        wait_object(client, res, obj_id, parent_id, wait_timeout)


def _add_unset_command(group: click.Group, spec: Spec,
                       parent_arg: Callable[[Callable[..., Any]], Callable[..., Any]],
                       waits: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """``unset``: clear the fields of ``spec.unset`` (``--name``...) and tags."""
    res = spec.res

    @group.command("unset")
    @parent_arg
    @click.argument("name_or_id", metavar=res.name.upper())
    @_when(spec.tags, click.option("--tag", "unset_tags", multiple=True,
                                   help="Remove a tag (repeatable)."))
    @_when(spec.tags, click.option("--all-tag", is_flag=True, help="Remove every tag."))
    @waits
    @click.pass_context
    def unset_cmd(ctx: click.Context, name_or_id: str, unset_tags: tuple[str, ...] = (),
                  all_tag: bool = False, wait: bool = False, wait_timeout: float = 0.0,
                  parent: str | None = None, **clear: bool) -> None:
        client = client_of(ctx)
        parent_id = _parent_id(client, res, parent)
        obj_id = client.find(res, name_or_id, parent_id)
        body: dict[str, Any] = {key.removeprefix("unset_"): None
                                for key, on in clear.items() if on}
        if unset_tags or all_tag:
            current = client.show(res, obj_id, parent_id).get("tags", [])
            body["tags"] = [] if all_tag else [t for t in current if t not in unset_tags]
        _change(client, res, obj_id, parent_id, body, "unset", wait, wait_timeout)
    unset_cmd.help = f"Clear fields of {res.a_label}."
    for key in reversed(spec.unset):
        unset_cmd.params.insert(1 + int(res.parent is not None), click.Option(
            [f"--{key}", f"unset_{key}"], is_flag=True, help=f"Clear the {key}."))


def _parent_id(client: Client, res: Resource, parent: str | None) -> str | None:
    """The id of the parent named on the command line of a nested resource."""
    if res.parent is None or parent is None:
        return None
    return client.find(res.parent, parent)


def add_stats_command(group: click.Group, res: Resource) -> None:
    """``<group> stats NAME_OR_ID``: the ``/stats`` counters of a load balancer or listener."""

    @group.command("stats")
    @click.argument("name_or_id", metavar=res.name.upper())
    @output_options
    @click.pass_context
    def stats_cmd(ctx: click.Context, name_or_id: str, fmt: str,
                  columns: tuple[str, ...]) -> None:
        client = client_of(ctx)
        obj_id = client.find(res, name_or_id)
        output.show_one(client.get(f"{res.path}/{obj_id}/stats")["stats"], fmt, columns)
    stats_cmd.help = f"Show a {res.label}'s traffic counters (bytes, connections)."


def _parent_key(parent: Resource) -> str:
    return {"loadbalancer": "loadbalancer_id", "listener": "listener_id",
            "pool": "pool_id"}.get(parent.name,
                                                                 f"{parent.name}_id")
