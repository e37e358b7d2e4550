"""``lbaas agent ...``: the data-plane agent of a host, and its certificates.

``lbaas agent serve`` runs the agent of this host (:mod:`lbaas.agent.server`):
HAProxy for the load balancers the control plane places here, its API on
``[amphora_agent] bind_host:bind_port`` over HTTPS with mutual TLS. It
reads no database. ``lbaas agent certificate issue HOST`` issues a host's
certificate from the standalone CA (:mod:`lbaas.agent.pki`), creating the
CA on first use.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from lbaas.cli.client import CliError

agent = click.Group("agent", help="Data-plane agents: run one, issue certificates.")


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
    from lbaas.cli.main import _Server
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
    local = make_agent(settings)
    local.start()
    heartbeats = pulled_heartbeats(local, a.host, a.availability_zone,
                                   {"placement": settings.haproxy.placement})
    app = create_agent_app(local, heartbeats, heartbeat_timeout=a.heartbeat_timeout)
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
