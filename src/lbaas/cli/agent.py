"""``lbaas agent ...``: the data-plane agent of a host, and its certificates.

``lbaas agent serve`` runs the agent of this host (:mod:`lbaas.agent.server`):
HAProxy for the load balancers the control plane places here, its API on
``[amphora_agent] bind_host:bind_port`` over HTTPS with mutual TLS. It
reads no database. ``lbaas agent certificate issue HOST`` issues a host's
certificate from the standalone CA (:mod:`lbaas.agent.pki`), creating the
CA on first use. ``list``, ``show``, ``set --enable/--disable`` and
``delete`` are clients of the agents API (``/v2.0/agents``, admin), as
``openstack network agent ...``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from lbaas.cli import commands as cmd
from lbaas.cli import output
from lbaas.cli.client import Client, CliError

agent = click.Group("agent", help="Data-plane agents: run one, issue certificates, list "
                                  "them (admin).")


@agent.command("serve")
@click.option("--config-file", multiple=True, type=click.Path(path_type=Path),
              help="oslo.config INI file (repeatable): [DEFAULT] host and state_dir, "
                   "[amphora_agent], [agent], [haproxy_amphora].")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="HAProxy files of this host's load balancers.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="Least severe messages logged (on stderr).")
def agent_serve(config_file: tuple[Path, ...], state_dir: Path | None, log_level: str) -> None:
    """Run this host's agent: HAProxy for the load balancers placed here, served to the
    control plane over HTTPS with mutual TLS."""
    import uvicorn

    from lbaas.agent.server import create_agent_app, pulled_heartbeats, server_ssl
    from lbaas.cli.main import _Server, freeze_start_up, raise_open_files_limit
    from lbaas.config import load_settings
    from lbaas.service import make_agent

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings([str(p) for p in config_file], state_dir=state_dir)
    a = settings.agents
    if not a.agent_server_cert or not a.agent_server_ca:
        raise CliError("lbaas agent serve needs [amphora_agent] agent_server_cert and "
                       "agent_server_ca (lbaas agent certificate issue makes them)")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    raise_open_files_limit()
    local = make_agent(settings)
    local.start()
    heartbeats = pulled_heartbeats(local, a.host, a.availability_zone,
                                   {"placement": settings.haproxy.placement})
    app = create_agent_app(local, heartbeats, heartbeat_timeout=a.heartbeat_timeout)
    freeze_start_up()
    server = _Server(uvicorn.Config(app, host=a.bind_host, port=a.bind_port,
                                    log_level=log_level, lifespan="off", access_log=False,
                                    **server_ssl(a.agent_server_cert, a.agent_server_ca)))
    try:
        server.run()
    finally:
        local.stop()


certificate = click.Group("certificate", help="Certificates of the standalone agents CA.")
agent.add_command(certificate)


@certificate.command("issue")
@click.argument("host")
@click.option("--address", "addresses", multiple=True,
              help="An IP address the host is reached at (repeatable).")
@click.option("--ca-dir", type=click.Path(path_type=Path), required=True,
              help="The CA's directory (ca.pem, ca.key; made if absent).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write the certificate and key (default <ca-dir>/<host>.pem).")
@click.option("--days", type=click.IntRange(1, 3650), default=730, show_default=True,
              help="Days the certificate is valid.")
def certificate_issue(host: str, addresses: tuple[str, ...], ca_dir: Path, out: Path | None,
                      days: int) -> None:
    """Issue HOST's certificate (common name HOST, the name in [DEFAULT] host) for an
    agent or for the control plane, from the CA in --ca-dir."""
    from lbaas.agent import pki

    try:
        path = pki.issue(ca_dir, host, addresses, out=out, days=days)
    except ValueError as e:
        raise CliError(str(e)) from None
    click.echo(f"certificate and key: {path}")
    click.echo(f"CA certificate: {ca_dir / pki.CA_CERT}")


# -- the agents API (admin): /v2.0/agents ------------------------------------------------

AGENTS = "/v2.0/agents"
LIST_COLUMNS = ("id", "agent_type", "host", "availability_zone", "alive", "admin_state_up",
                "binary")


def _agent_id(client: Client, host_or_id: str) -> str:
    """The id of the agent of host (or id) ``host_or_id``; CliError if none."""
    for a in client.get(AGENTS)["agents"]:
        if host_or_id in (a["id"], a["host"]):
            return str(a["id"])
    raise CliError(f"no agent {host_or_id!r}")


@agent.command("list")
@click.option("--host", default=None, help="Only the agent of this host.")
@click.option("--availability-zone", default=None, help="Only those of this zone.")
@cmd.output_options
@click.pass_context
def agent_list(ctx: click.Context, host: str | None, availability_zone: str | None, fmt: str,
               columns: tuple[str, ...]) -> None:
    """List the data-plane agents (admin): host, zone, alive, enabled."""
    params = {k: v for k, v in (("host", host), ("availability_zone", availability_zone)) if v}
    rows = cmd.client_of(ctx).get(AGENTS, params=params)["agents"]
    output.show_many(rows, fmt, columns, LIST_COLUMNS)


@agent.command("show")
@click.argument("host_or_id", metavar="AGENT")
@cmd.output_options
@click.pass_context
def agent_show(ctx: click.Context, host_or_id: str, fmt: str, columns: tuple[str, ...]) -> None:
    """Show one agent (by host or id), with the load balancers it hosts."""
    client = cmd.client_of(ctx)
    agent_id = _agent_id(client, host_or_id)
    shown = client.get(f"{AGENTS}/{agent_id}")["agent"]
    shown["loadbalancers"] = [lb["id"] for lb in client.get(
        f"{AGENTS}/{agent_id}/agent-loadbalancers")["loadbalancers"]]
    output.show_one(shown, fmt, columns)


@agent.command("set")
@click.argument("host_or_id", metavar="AGENT")
@click.option("--enable/--disable", "enabled", default=None,
              help="Let the agent take new load balancers, or not (what it hosts stays).")
@click.option("--description", default=None, help="A description of the agent.")
@click.pass_context
def agent_set(ctx: click.Context, host_or_id: str, enabled: bool | None,
              description: str | None) -> None:
    """Enable or disable an agent (by host or id), or describe it."""
    client = cmd.client_of(ctx)
    body: dict[str, object] = {}
    if enabled is not None:
        body["admin_state_up"] = enabled
    if description is not None:
        body["description"] = description
    client.put(f"{AGENTS}/{_agent_id(client, host_or_id)}", {"agent": body})


@agent.command("delete")
@click.argument("host_or_id", metavar="AGENT")
@click.pass_context
def agent_delete(ctx: click.Context, host_or_id: str) -> None:
    """Forget an agent that hosts no load balancer."""
    client = cmd.client_of(ctx)
    client.delete(f"{AGENTS}/{_agent_id(client, host_or_id)}")
