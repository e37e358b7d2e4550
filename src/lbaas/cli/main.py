"""The ``lbaas`` command.

``lbaas serve`` runs the service; every other command is a client of its
HTTP API in the shape of ``openstack loadbalancer ...``:
``lbaas loadbalancer create --vip-subnet-id lb-vip-subnet --name lb1 --wait``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import resource
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import uvicorn

from lbaas import __version__
from lbaas.cli import agent as agent_cli
from lbaas.cli import commands as cmd
from lbaas.cli import output
from lbaas.cli import secret as tls_cli
from lbaas.cli.auth import AuthError, resolve
from lbaas.cli.client import DEFAULT_ENDPOINT, Client, CliError


class _Root(click.Group):
    """Turns CliError into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(1)


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lbaas",
                      message="%(prog)s %(version)s")
@click.option("--os-endpoint", envvar="LBAAS_URL", default=None,
              help=f"lbaas API endpoint (env LBAAS_URL; default: the catalog's load-balancer "
                   f"endpoint with Keystone, else {DEFAULT_ENDPOINT}).")
@click.option("--os-cloud", default=None, help="Cloud in clouds.yaml (env OS_CLOUD).")
@click.option("--os-auth-url", default=None, help="Keystone URL (env OS_AUTH_URL).")
@click.option("--os-username", default=None, help="User name (env OS_USERNAME).")
@click.option("--os-password", default=None, help="Password (env OS_PASSWORD).")
@click.option("--os-project-name", default=None, help="Project name (env OS_PROJECT_NAME).")
@click.option("--os-project-id", default=None, help="Project id (env OS_PROJECT_ID).")
@click.option("--os-user-domain-name", default=None,
              help="User's domain (env OS_USER_DOMAIN_NAME).")
@click.option("--os-project-domain-name", default=None,
              help="Project's domain (env OS_PROJECT_DOMAIN_NAME).")
@click.option("--os-region-name", default=None, help="Region (env OS_REGION_NAME).")
@click.option("--os-interface", default=None,
              help="Catalog interface: public, internal, admin (env OS_INTERFACE).")
@click.option("--os-token", default=None,
              help="A Keystone token or an lbaas API key, sent as X-Auth-Token (env OS_TOKEN).")
@click.option("--project", envvar="LBAAS_PROJECT", default=None,
              help="noauth only: act as this project (X-Project-Id); default: the "
                   "standalone admin.")
@click.option("--roles", envvar="LBAAS_ROLES", default=None,
              help="noauth only: roles sent with --project (default member).")
@click.pass_context
def app(ctx: click.Context, os_endpoint: str | None, os_cloud: str | None,
        os_token: str | None, project: str | None, roles: str | None,
        os_region_name: str | None, os_interface: str | None, **os_auth: str | None) -> None:
    """lbaas: load balancing as a service (the Octavia v2 API over HAProxy).

    Credentials as for the openstack CLI: OS_* variables, clouds.yaml
    (--os-cloud), or --os-token with --os-endpoint; none for a standalone
    lbaas on loopback.
    """
    if ctx.resilient_parsing or ctx.invoked_subcommand in ("serve", "key", None):
        return
    auth = {k.removeprefix("os_"): v for k, v in os_auth.items()}
    try:
        # `lbaas secret` talks to Barbican where the catalog has one, else to lbaas's store.
        services = ("key-manager", "load-balancer") if ctx.invoked_subcommand == "secret" \
            else ("load-balancer",)
        target = resolve(os_endpoint, os_cloud, os_token, auth, project=project, roles=roles,
                         region=os_region_name, interface=os_interface,
                         service_types=services)
    except AuthError as e:
        raise CliError(str(e)) from None
    client = Client(target.endpoint, headers=target.headers)
    ctx.obj = client
    ctx.call_on_close(client.close)


@app.command()
@click.option("--config-file", multiple=True, type=click.Path(path_type=Path),
              help="oslo.config INI file (repeatable).")
@click.option("--host", default=None, help="API address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="API port (default 9876).")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="Database and HAProxy files (default /var/lib/lbaas as root).")
@click.option("--database-url", default=None,
              help="SQLAlchemy URL (default: SQLite in the state directory).")
@click.option("--provider", default=None,
              help="Default provider: haproxy (the default) or noop.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Least severe messages logged (on stderr).")
@click.option("--allow-insecure-noauth", is_flag=True, default=None,
              help="Serve with auth_strategy = noauth on a non-loopback --host "
                   "([api_settings] allow_insecure_noauth).")
def serve(config_file: tuple[Path, ...], host: str | None, port: int | None,
          state_dir: Path | None, database_url: str | None, provider: str | None,
          log_level: str, allow_insecure_noauth: bool | None) -> None:
    """Run the API, the provisioning worker and the health manager in one process."""
    from lbaas.config import ExposureError, check_exposure, load_settings
    from lbaas.ownership import AlreadyRunning
    from lbaas.service import Service

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per agent heartbeat
    settings = load_settings([str(p) for p in config_file], host=host, port=port,
                             state_dir=state_dir, database_url=database_url,
                             default_provider=provider,
                             allow_insecure_noauth=allow_insecure_noauth)
    try:
        check_exposure(settings)
    except ExposureError as e:
        raise CliError(str(e)) from None
    raise_open_files_limit()
    try:
        service = Service(settings)
    except AlreadyRunning as e:
        raise CliError(f"lbaas serve not starting: {e}") from None
    service.start()
    freeze_start_up()
    server = _Server(uvicorn.Config(service.app, host=settings.host, port=settings.port,
                                    log_level=log_level, lifespan="off"))
    try:
        server.run()
    finally:
        service.stop()


def freeze_start_up() -> None:
    """Garbage collection for a long-running server (``lbaas serve``, ``lbaas agent
    serve``), once it has started.

    What the start made lives as long as the process: kept out of every later
    collection (gc.freeze), a full collection walks only what requests made
    since. In process, 1,000 load balancers listed 30 times: the full
    collections 450 -> 110 ms, the list's p95 150 -> 54 ms (issue 12). And a
    young generation of 10,000 objects, not 700: what a request makes is mostly
    garbage by its end, collected once, not walked and promoted again and again
    while it is built (a list of 1,000 load balancers, ~10,000 containers: 14
    collections -> 1). Server CPU of that list, same period, noop: 35.9 -> 33.0 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files (``RLIMIT_NOFILE``) to its hard
    limit; return the new soft limit.

    The in-process agent keeps a stats socket connection open per HAProxy it polls
    (:meth:`lbaas.dataplane.amphora.Amphorae.stats`), so a thousand load balancers
    need over a thousand descriptors besides the API's and the database's; systemd
    and login shells give services a soft limit of 1,024 under a far higher hard
    one. HAProxy children inherit the raised soft limit (HAProxy raises its own up
    to the hard one anyway).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising SIGTERM/SIGINT after shutdown.

    uvicorn re-raises the signal that stopped it, which would kill the process
    before the worker finishes its changes in flight; lbaas stops the worker
    first and then exits 0. HAProxy processes are never touched.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


# -- resource groups -------------------------------------------------------------

def _group(name: str, help: str) -> click.Group:
    group = click.Group(name, help=help)
    app.add_command(group)
    return group


loadbalancer = _group("loadbalancer", "Load balancers.")
cmd.add_resource_commands(loadbalancer, cmd.Spec(
    cmd.LOADBALANCER, cmd.LB_FIELDS,
    ("id", "name", "project_id", "vip_address", "provisioning_status", "operating_status",
     "provider"),
    list_filters=[cmd.NAME,
                  cmd.Field("--provisioning-status", "provisioning_status",
                            "Only those in this provisioning status (ACTIVE, ERROR, ...)."),
                  cmd.Field("--operating-status", "operating_status",
                            "Only those in this operating status (ONLINE, DEGRADED, ...)."),
                  cmd.Field("--vip-address", "vip_address", "Only the one with this VIP."),
                  cmd.Field("--provider", "provider", "Only those of this provider."),
                  cmd.TAG]))


cmd.add_stats_command(loadbalancer, cmd.LOADBALANCER)


@loadbalancer.command("status")
@click.argument("name_or_id", metavar="LOADBALANCER")
@click.pass_context
def loadbalancer_status(ctx: click.Context, name_or_id: str) -> None:
    """Show the status tree (load balancer, listeners, pools, members) as JSON."""
    client = cmd.client_of(ctx)
    lb_id = client.find(cmd.LOADBALANCER, name_or_id)
    tree = client.get(f"{cmd.LOADBALANCER.path}/{lb_id}/status")["statuses"]
    click.echo(json.dumps(tree, indent=2))


@loadbalancer.command("failover")
@click.argument("name_or_id", metavar="LOADBALANCER")
@cmd.wait_options
@click.pass_context
def loadbalancer_failover(ctx: click.Context, name_or_id: str, wait: bool,
                          wait_timeout: float) -> None:
    """Rebuild a load balancer's amphorae from the database (admin); ACTIVE_STANDBY: one at
    a time, the BACKUP first, while the other serves."""
    client = cmd.client_of(ctx)
    lb_id = client.find(cmd.LOADBALANCER, name_or_id)
    client.put(f"{cmd.LOADBALANCER.path}/{lb_id}/failover")
    if wait:
        cmd.wait_object(client, cmd.LOADBALANCER, lb_id, None, wait_timeout)


amphora = _group("amphora", "Amphorae: the HAProxy instances of load balancers (admin).")
AMPHORAE = "/v2/octavia/amphorae"
AMPHORA_COLUMNS = ("id", "loadbalancer_id", "status", "role", "vrrp_ip", "ha_ip", "compute_id")


@amphora.command("list")
@click.option("--loadbalancer", help="Only the amphorae of this load balancer (name or id).")
@click.option("--role", type=click.Choice(["MASTER", "BACKUP", "STANDALONE"]),
              help="Only those in this role (MASTER and BACKUP as keepalived last reported).")
@click.option("--status", help="Only those in this status (ALLOCATED, ERROR, ...).")
@cmd.output_options
@click.pass_context
def amphora_list(ctx: click.Context, loadbalancer: str | None, role: str | None,
                 status: str | None, fmt: str, columns: tuple[str, ...]) -> None:
    """List amphorae (openstack loadbalancer amphora list)."""
    client = cmd.client_of(ctx)
    params = {"role": role, "status": status, "loadbalancer_id": client.find(
        cmd.LOADBALANCER, loadbalancer) if loadbalancer else None}
    rows = client.get(AMPHORAE, params={k: v for k, v in params.items() if v})["amphorae"]
    output.show_many(rows, fmt, columns, AMPHORA_COLUMNS)


@amphora.command("show")
@click.argument("amphora_id", metavar="AMPHORA")
@cmd.output_options
@click.pass_context
def amphora_show(ctx: click.Context, amphora_id: str, fmt: str,
                 columns: tuple[str, ...]) -> None:
    """Show one amphora (role, VRRP address and priority, where it runs)."""
    output.show_one(cmd.client_of(ctx).get(f"{AMPHORAE}/{amphora_id}")["amphora"], fmt,
                    columns)


@amphora.command("failover")
@click.argument("amphora_id", metavar="AMPHORA")
@cmd.wait_options
@click.pass_context
def amphora_failover(ctx: click.Context, amphora_id: str, wait: bool,
                     wait_timeout: float) -> None:
    """Replace an amphora with a new one (ACTIVE_STANDBY: while the other serves)."""
    client = cmd.client_of(ctx)
    lb_id = client.get(f"{AMPHORAE}/{amphora_id}")["amphora"]["loadbalancer_id"]
    client.put(f"{AMPHORAE}/{amphora_id}/failover")
    if wait:
        cmd.wait_object(client, cmd.LOADBALANCER, lb_id, None, wait_timeout)


@amphora.command("configure")
@click.argument("amphora_id", metavar="AMPHORA")
@click.pass_context
def amphora_configure(ctx: click.Context, amphora_id: str) -> None:
    """Render and apply an amphora's configuration again from the database."""
    cmd.client_of(ctx).put(f"{AMPHORAE}/{amphora_id}/config")


@amphora.command("stats")
@click.argument("amphora_id", metavar="AMPHORA")
@cmd.output_options
@click.pass_context
def amphora_stats(ctx: click.Context, amphora_id: str, fmt: str,
                  columns: tuple[str, ...]) -> None:
    """Show an amphora's counters, one row per listener."""
    rows = cmd.client_of(ctx).get(f"{AMPHORAE}/{amphora_id}/stats")["amphora_stats"]
    output.show_many(rows, fmt, columns, ("listener_id", "active_connections", "bytes_in",
                                          "bytes_out", "request_errors", "total_connections"))


listener = _group("listener", "Listeners.")
cmd.add_resource_commands(listener, cmd.Spec(
    cmd.LISTENER, cmd.LISTENER_FIELDS + tls_cli.LISTENER_TLS_FIELDS,
    ("id", "default_pool_id", "name", "project_id", "protocol", "protocol_port",
     "admin_state_up"),
    create_parent=cmd.LOADBALANCER,
    list_filters=[cmd.NAME, cmd.Field("--loadbalancer", "loadbalancer_id",
                                      "Only those of this load balancer (name or id).",
                                      resolve=cmd.LOADBALANCER),
                  cmd.Field("--protocol", "protocol", "Only those of this protocol."), cmd.TAG]))

cmd.add_stats_command(listener, cmd.LISTENER)


pool = _group("pool", "Pools.")
cmd.add_resource_commands(pool, cmd.Spec(
    cmd.POOL, cmd.POOL_FIELDS + tls_cli.POOL_TLS_FIELDS,
    ("id", "name", "project_id", "provisioning_status", "protocol", "lb_algorithm",
     "admin_state_up"),
    list_filters=[cmd.NAME, cmd.Field("--loadbalancer", "loadbalancer_id",
                                      "Only those of this load balancer (name or id).",
                                      resolve=cmd.LOADBALANCER), cmd.TAG]))

member = _group("member", "Members of a pool.")
cmd.add_resource_commands(member, cmd.Spec(
    cmd.MEMBER, cmd.MEMBER_FIELDS,
    ("id", "name", "project_id", "provisioning_status", "address", "protocol_port",
     "operating_status", "weight"),
    create_parent=cmd.POOL, list_filters=[cmd.NAME, cmd.TAG], unset=("name",)))

healthmonitor = _group("healthmonitor", "Health monitors.")
cmd.add_resource_commands(healthmonitor, cmd.Spec(
    cmd.HEALTHMONITOR, cmd.HM_FIELDS,
    ("id", "name", "project_id", "type", "admin_state_up"),
    create_parent=cmd.POOL, list_filters=[cmd.NAME, cmd.TAG], unset=("name",)))

l7policy = _group("l7policy", "L7 policies of a listener.")
cmd.add_resource_commands(l7policy, cmd.Spec(
    cmd.L7POLICY, cmd.L7POLICY_FIELDS,
    ("id", "name", "project_id", "provisioning_status", "action", "position",
     "admin_state_up"),
    create_parent=cmd.LISTENER,
    list_filters=[cmd.NAME, cmd.Field("--listener", "listener_id",
                                      "Only those of this listener (name or id).",
                                      resolve=cmd.LISTENER),
                  cmd.TAG]))

l7rule = _group("l7rule", "L7 rules of a policy.")
cmd.add_resource_commands(l7rule, cmd.Spec(
    cmd.L7RULE, cmd.L7RULE_FIELDS,
    ("id", "project_id", "provisioning_status", "compare_type", "type", "key", "value",
     "invert", "admin_state_up"),
    create_parent=cmd.L7POLICY, list_filters=[cmd.TAG], unset=()))


app.add_command(tls_cli.secret)
app.add_command(agent_cli.agent)

# -- providers, flavors, availability zones -------------------------------------------

provider = _group("provider", "Providers (drivers) and their capabilities.")


@provider.command("list")
@cmd.output_options
@click.pass_context
def provider_list(ctx: click.Context, fmt: str, columns: tuple[str, ...]) -> None:
    """List the enabled providers (the default one is marked so)."""
    rows = cmd.client_of(ctx).get(f"{cmd.P}/providers")["providers"]
    output.show_many(rows, fmt, columns, ("name", "description"))


capability = click.Group("capability", help="What a provider's profiles may set.")
provider.add_command(capability)


@capability.command("list")
@click.argument("provider_name", metavar="PROVIDER")
@click.option("--flavor", "kinds", flag_value="flavor", multiple=True,
              help="Only the flavor capabilities (flavor profile keys).")
@click.option("--availability-zone", "kinds", flag_value="availability_zone", multiple=True,
              help="Only the availability zone capabilities (zone profile keys).")
@cmd.output_options
@click.pass_context
def provider_capability_list(ctx: click.Context, provider_name: str, kinds: tuple[str, ...],
                             fmt: str, columns: tuple[str, ...]) -> None:
    """List the keys a provider's flavor and availability zone profiles may set (admin)."""
    client = cmd.client_of(ctx)
    rows = []
    for kind in kinds or ("flavor", "availability_zone"):
        key = f"{kind}_capabilities"
        rows += [{"type": kind, **row} for row in
                 client.get(f"{cmd.P}/providers/{provider_name}/{key}")[key]]
    output.show_many(rows, fmt, columns, ("type", "name", "description"))


flavor = _group("flavor", "Flavors to create load balancers with.")
cmd.add_resource_commands(flavor, cmd.Spec(
    cmd.FLAVOR, cmd.FLAVOR_FIELDS, ("id", "name", "flavor_profile_id", "enabled", "description"),
    list_filters=[cmd.NAME, cmd.Field("--flavorprofile", "flavor_profile_id",
                                      "Only those of this flavor profile (name or id).",
                                      resolve=cmd.FLAVORPROFILE), cmd.ENABLED],
    tags=False, provisioned=False, unset=("description",)))


def _profile_group(res: cmd.Resource, help: str, fields: list[cmd.Field], data: str) -> None:
    """The commands of a kind of profile: a name, a provider and its settings ``data``."""
    cmd.add_resource_commands(_group(res.name, help), cmd.Spec(
        res, fields, ("id", "name", "provider_name", data),
        list_filters=[cmd.NAME, cmd.Field("--provider", "provider_name",
                                          "Only those of this provider.")],
        tags=False, provisioned=False, unset=()))


_profile_group(cmd.FLAVORPROFILE, "Flavor profiles: provider settings (admin).",
               cmd.FLAVORPROFILE_FIELDS, "flavor_data")

availabilityzone = _group("availabilityzone",
                          "Availability zones for load balancers.")
cmd.add_resource_commands(availabilityzone, cmd.Spec(
    cmd.AVAILABILITYZONE, cmd.AVAILABILITYZONE_FIELDS,
    ("name", "availability_zone_profile_id", "enabled", "description"),
    list_filters=[cmd.NAME, cmd.Field("--availabilityzoneprofile",
                                      "availability_zone_profile_id",
                                      "Only those of this zone profile (name or id).",
                                      resolve=cmd.AVAILABILITYZONEPROFILE), cmd.ENABLED],
    tags=False, provisioned=False, unset=("description",)))

_profile_group(cmd.AVAILABILITYZONEPROFILE, "Zone profiles: provider settings (admin).",
               cmd.AVAILABILITYZONEPROFILE_FIELDS, "availability_zone_data")


# -- quotas ------------------------------------------------------------------------

QUOTA_KEYS = ("loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy",
              "l7rule")
quota = _group("quota", "Per-project quotas (-1: unlimited).")


@quota.command("list")
@cmd.output_options
@click.pass_context
def quota_list(ctx: click.Context, fmt: str, columns: tuple[str, ...]) -> None:
    """List projects with explicit quotas."""
    client = cmd.client_of(ctx)
    output.show_many(client.get(f"{cmd.P}/quotas")["quotas"], fmt, columns,
                     ("project_id", *QUOTA_KEYS))


@quota.command("show")
@click.argument("project_id", required=False)
@click.option("--default", "defaults", is_flag=True, help="Show the default quotas.")
@cmd.output_options
@click.pass_context
def quota_show(ctx: click.Context, project_id: str | None, defaults: bool, fmt: str,
               columns: tuple[str, ...]) -> None:
    """Show a project's quotas (or the defaults)."""
    client = cmd.client_of(ctx)
    if defaults or not project_id:
        body = client.get(f"{cmd.P}/quotas/defaults")["quota"]
    else:
        body = client.get(f"{cmd.P}/quotas/{project_id}")["quota"]
    output.show_one(body, fmt, columns)


@quota.command("set")
@click.argument("project_id")
@click.option("--loadbalancer", type=int, help="Load balancers (-1: unlimited).")
@click.option("--listener", type=int, help="Listeners (-1: unlimited).")
@click.option("--pool", type=int, help="Pools (-1: unlimited).")
@click.option("--member", type=int, help="Members (-1: unlimited).")
@click.option("--healthmonitor", type=int, help="Health monitors (-1: unlimited).")
@click.option("--l7policy", type=int, help="L7 policies (-1: unlimited).")
@click.option("--l7rule", type=int, help="L7 rules (-1: unlimited).")
@click.pass_context
def quota_set(ctx: click.Context, project_id: str, **limits: int | None) -> None:
    """Set a project's quotas."""
    body = {k: v for k, v in limits.items() if v is not None}
    if not body:
        raise click.UsageError("nothing to set: give at least one quota")
    cmd.client_of(ctx).put(f"{cmd.P}/quotas/{project_id}", {"quota": body})


@quota.command("reset")
@click.argument("project_id")
@click.pass_context
def quota_reset(ctx: click.Context, project_id: str) -> None:
    """Reset a project's quotas to the defaults."""
    cmd.client_of(ctx).delete(f"{cmd.P}/quotas/{project_id}")


# -- API keys (auth_strategy = apikey), on the server's database -----------------------

key = click.Group("key", help="lbaas API keys (auth_strategy = apikey): made and revoked "
                               "on the server's database, like keystone-manage.")
app.add_command(key)


def _database_options(fn: Any) -> Any:
    fn = click.option("--database-url", default=None,
                      help="SQLAlchemy URL (default: SQLite in the state directory).")(fn)
    fn = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                      help="The state directory of lbaas serve.")(fn)
    return click.option("--config-file", multiple=True, type=click.Path(path_type=Path),
                        help="lbaas serve's oslo.config INI file (repeatable).")(fn)


@contextlib.contextmanager
def _database(config_file: tuple[Path, ...], state_dir: Path | None,
              database_url: str | None) -> Iterator[Any]:
    from lbaas.config import load_settings
    from lbaas.db import migrate
    from lbaas.db.session import make_engine, make_sessionmaker

    settings = load_settings([str(p) for p in config_file], state_dir=state_dir,
                             database_url=database_url)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    try:
        migrate.upgrade(engine)
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


@key.command("create")
@click.option("--project", required=True, help="The project the key acts in.")
@click.option("--role", "roles", multiple=True, default=("member",), show_default=True,
              help="A role of the key (repeatable): member, reader, admin...")
@click.option("--description", default=None, help="What or whom the key is for.")
@_database_options
def key_create(project: str, roles: tuple[str, ...], description: str | None,
               config_file: tuple[Path, ...], state_dir: Path | None,
               database_url: str | None) -> None:
    """Make a key; prints it once (only its SHA-256 digest is stored)."""
    from lbaas.db import apikeys

    with _database(config_file, state_dir, database_url) as session:
        row, secret = apikeys.issue(session, project, list(roles), description)
        session.commit()
        click.echo(f"id: {row.id}", err=True)
    click.echo(secret)


@key.command("list")
@cmd.output_options
@_database_options
def key_list(fmt: str, columns: tuple[str, ...], config_file: tuple[Path, ...],
             state_dir: Path | None, database_url: str | None) -> None:
    """List the keys (never their secrets)."""
    from sqlalchemy import select

    from lbaas.db import models as m

    with _database(config_file, state_dir, database_url) as session:
        rows = [{"id": r.id, "project_id": r.project_id, "roles": r.roles,
                 "description": r.description or "", "created_at": r.created_at.isoformat()}
                for r in session.scalars(select(m.ApiKey).order_by(m.ApiKey.created_at))]
    output.show_many(rows, fmt, columns, ("id", "project_id", "roles", "description",
                                          "created_at"))


@key.command("delete")
@click.argument("key_id")
@_database_options
def key_delete(key_id: str, config_file: tuple[Path, ...], state_dir: Path | None,
               database_url: str | None) -> None:
    """Revoke a key (by the id printed when it was made)."""
    from lbaas.db import models as m

    with _database(config_file, state_dir, database_url) as session:
        row = session.get(m.ApiKey, key_id)
        if row is None:
            raise CliError(f"No API key with an ID of '{key_id}' exists.")
        session.delete(row)
        session.commit()


# -- networks and subnets ------------------------------------------------------------

network = _group("network", "Networks (the Neutron-shaped API VIPs come from).")
cmd.add_resource_commands(network, cmd.Spec(
    cmd.NETWORK, [cmd.NAME, cmd.DESCRIPTION,
                  cmd._switch("--share", "--no-share", "shared", "Shared with every project."),
                  cmd.ENABLE],
    ("id", "name", "subnets", "shared"), list_filters=[cmd.NAME]))

subnet = _group("subnet", "Subnets: CIDR, gateway and the pools VIPs come from.")
cmd.add_resource_commands(subnet, cmd.Spec(
    cmd.SUBNET, [cmd.NAME, cmd.DESCRIPTION,
                 cmd.Field("--network", "network_id", "Network (name or id).",
                           resolve=cmd.NETWORK, create_only=True),
                 cmd.Field("--subnet-range", "cidr", "CIDR, e.g. 10.9.0.0/24.",
                           create_only=True),
                 cmd.Field("--ip-version", "ip_version", "4 or 6.", type=int, create_only=True),
                 cmd.Field("--gateway", "gateway_ip", "Gateway address."),
                 cmd.Field("--allocation-pool", "allocation_pools",
                           "start=ADDR,end=ADDR (repeatable).", kind="kvs")],
    ("id", "name", "network_id", "cidr", "gateway_ip"), list_filters=[cmd.NAME]))


def main() -> None:
    """Entry point for ``python -m lbaas``."""
    app()
