"""``lbaas secret ...``: certificates in Barbican or lbaas's own store, like ``openstack
secret ...``.

The store speaks Barbican's API on lbaas's port (``/v1/secrets``,
``/v1/containers``); these commands are its client, and Barbican's (with
Keystone credentials, the catalog's ``key-manager`` endpoint is used when
there is one, :mod:`lbaas.cli.auth`), with the options of
python-barbicanclient's ``openstack secret store`` / ``secret container
create``, plus ``secret store-certificate``, which bundles a certificate,
its key and chain (PEM files) into a PKCS#12 secret (Octavia's form) in one
step. References print as they are to be passed to ``listener create
--default-tls-container-ref``. Also the TLS options of listeners and pools
(:data:`LISTENER_TLS_FIELDS`, :data:`POOL_TLS_FIELDS`), kept here beside the
store they point into.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from lbaas.cli import commands as cmd
from lbaas.cli import output
from lbaas.cli.client import Client, CliError

SECRETS = "/v1/secrets"
CONTAINERS = "/v1/containers"
SECRET_COLUMNS = ("secret_ref", "name", "secret_type", "content_types", "created", "status")
CONTAINER_COLUMNS = ("container_ref", "name", "type", "secret_refs", "created", "status")

LISTENER_TLS_FIELDS = [
    cmd.Field("--sni-container-refs", "sni_container_refs",
              "SNI certificate reference (repeatable).", kind="multi"),
    cmd.Field("--client-ca-tls-container-ref", "client_ca_tls_container_ref",
              "Secret with the CA of client certificates (PEM)."),
    cmd.Field("--client-authentication", "client_authentication",
              "NONE, OPTIONAL or MANDATORY."),
    cmd.Field("--client-crl-container-ref", "client_crl_container_ref",
              "Secret with the CRL of the client CA (PEM)."),
    cmd.Field("--tls-ciphers", "tls_ciphers", "OpenSSL cipher string."),
    cmd.Field("--tls-version", "tls_versions", "Allowed TLS version (repeatable).",
              kind="multi"),
    cmd.Field("--alpn-protocol", "alpn_protocols", "ALPN protocol (repeatable).",
              kind="multi"),
    cmd.Field("--hsts-max-age", "hsts_max_age", "Strict-Transport-Security max-age (s).",
              type=int),
    cmd._switch("--hsts-include-subdomains", "--no-hsts-include-subdomains",
                "hsts_include_subdomains", "HSTS includeSubDomains."),
    cmd._switch("--hsts-preload", "--no-hsts-preload", "hsts_preload", "HSTS preload."),
]
POOL_TLS_FIELDS = [
    cmd._switch("--enable-tls", "--disable-tls", "tls_enabled", "TLS towards the members."),
    cmd.Field("--tls-container-ref", "tls_container_ref",
              "Certificate shown to members (reference)."),
    cmd.Field("--ca-tls-container-ref", "ca_tls_container_ref",
              "Secret with the CA members' certificates must chain to (PEM)."),
    cmd.Field("--crl-container-ref", "crl_container_ref",
              "Secret with the CRL of that CA (PEM)."),
    cmd.Field("--tls-ciphers", "tls_ciphers", "OpenSSL cipher string."),
    cmd.Field("--tls-version", "tls_versions", "Allowed TLS version (repeatable).",
              kind="multi"),
    cmd.Field("--alpn-protocol", "alpn_protocols", "ALPN protocol (repeatable).",
              kind="multi"),
]


@click.group("secret", help="Secrets and certificate containers (Barbican's API: the "
                            "catalog's Barbican, or lbaas's store).")
def secret() -> None:
    """The ``secret`` group."""


def _path(ref: str, collection: str) -> str:
    """``/v1/<collection>/<id>`` of a reference or an id."""
    return f"{collection}/{ref.rstrip('/').rsplit('/', 1)[-1]}"


def store_payload(client: Client, name: str | None, payload: bytes | str,
                  secret_type: str | None = None, expiration: str | None = None) -> str:
    """Store ``payload`` (bytes: octet-stream, base64; str: text/plain); its reference."""
    body: dict[str, Any] = {"name": name, "secret_type": secret_type, "expiration": expiration}
    if isinstance(payload, bytes):
        body.update(payload=base64.b64encode(payload).decode(),
                    payload_content_type="application/octet-stream",
                    payload_content_encoding="base64")
    else:
        body.update(payload=payload, payload_content_type="text/plain")
    return str(client.post(SECRETS, {k: v for k, v in body.items() if v is not None})
               ["secret_ref"])


@secret.command("store")
@click.option("--name", default=None, help="Name.")
@click.option("--payload", default=None, help="The secret (text).")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read the secret from a file (binary: octet-stream).")
@click.option("--secret-type", default=None,
              help="symmetric, public, private, passphrase, certificate, opaque.")
@click.option("--expiration", default=None, help="ISO 8601 expiry.")
@cmd.output_options
@click.pass_context
def secret_store(ctx: click.Context, name: str | None, payload: str | None, path: Path | None,
                 secret_type: str | None, expiration: str | None, fmt: str,
                 columns: tuple[str, ...]) -> None:
    """Store a secret: text with --payload, or a file (a PKCS#12 bundle) with --file."""
    if (payload is None) == (path is None):
        raise click.UsageError("give one of --payload and --file")
    client = cmd.client_of(ctx)
    data: bytes | str = payload if payload is not None else path.read_bytes()  # type: ignore
    ref = store_payload(client, name, data, secret_type, expiration)
    output.show_one(client.get(_path(ref, SECRETS)), fmt, columns)


@secret.command("store-certificate")
@click.option("--name", default=None, help="Name.")
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The certificate (PEM).")
@click.option("--private-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Its private key (PEM).")
@click.option("--intermediates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="The chain above it (PEM).")
@click.option("--passphrase", default=None, help="Passphrase of the private key.")
@cmd.output_options
@click.pass_context
def secret_store_certificate(ctx: click.Context, name: str | None, certificate: Path,
                             private_key: Path, intermediates: Path | None,
                             passphrase: str | None, fmt: str,
                             columns: tuple[str, ...]) -> None:
    """Bundle a certificate, its key and chain into a PKCS#12 secret (checked here first)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from lbaas.certificates import parse

    try:
        cert = parse.load_certificate(certificate.read_bytes())
        key = parse.load_private_key(private_key.read_bytes(),
                                     passphrase.encode() if passphrase else None)
        chain = parse.load_certificates(intermediates.read_bytes()) if intermediates else []
        bundle = pkcs12.serialize_key_and_certificates(
            (name or "lbaas").encode(), key, cert, chain or None,  # type: ignore[arg-type]
            serialization.NoEncryption())
        parse.certificate_from_pkcs12(bundle)
    except (ValueError, TypeError) as e:
        raise CliError(str(e)) from None
    client = cmd.client_of(ctx)
    ref = store_payload(client, name, bundle)
    output.show_one(client.get(_path(ref, SECRETS)), fmt, columns)


@secret.command("list")
@click.option("--name", default=None, help="Only those with this name.")
@cmd.output_options
@click.pass_context
def secret_list(ctx: click.Context, name: str | None, fmt: str,
                columns: tuple[str, ...]) -> None:
    """List the project's secrets."""
    rows = _all(cmd.client_of(ctx), SECRETS, "secrets", name)
    output.show_many(rows, fmt, columns, SECRET_COLUMNS)


@secret.command("get")
@click.argument("ref", metavar="SECRET_REF")
@click.option("--payload", is_flag=True, help="Print the payload (text) instead.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the payload to this file.")
@cmd.output_options
@click.pass_context
def secret_get(ctx: click.Context, ref: str, payload: bool, path: Path | None, fmt: str,
               columns: tuple[str, ...]) -> None:
    """Show a secret's metadata, or its payload (--payload, --file)."""
    client = cmd.client_of(ctx)
    meta = client.get(_path(ref, SECRETS))
    if not payload and path is None:
        output.show_one(meta, fmt, columns)
        return
    kind = (meta.get("content_types") or {}).get("default", "application/octet-stream")
    data = client.get_bytes(_path(ref, SECRETS) + "/payload", accept=kind)
    if path is not None:
        path.write_bytes(data)
    else:
        click.echo(data.decode(errors="replace"), nl=False)


@secret.command("delete")
@click.argument("refs", nargs=-1, required=True, metavar="SECRET_REF...")
@click.pass_context
def secret_delete(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Delete secrets (refused while a listener, pool or container uses one)."""
    client = cmd.client_of(ctx)
    for ref in refs:
        client.delete(_path(ref, SECRETS))


container = click.Group("container", help="Containers of secrets (certificate containers).")
secret.add_command(container)


@container.command("create")
@click.option("--name", default=None, help="Name.")
@click.option("--type", "kind", default="certificate", show_default=True,
              type=click.Choice(["certificate", "generic", "rsa"]), help="Container type.")
@click.option("--secret", "secrets", multiple=True, required=True,
              help="NAME=SECRET_REF (repeatable): certificate, private_key, "
                   "private_key_passphrase, intermediates.")
@cmd.output_options
@click.pass_context
def container_create(ctx: click.Context, name: str | None, kind: str,
                     secrets: tuple[str, ...], fmt: str, columns: tuple[str, ...]) -> None:
    """Make a container of secrets (as ``openstack secret container create``)."""
    refs = []
    for item in secrets:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise click.UsageError(f"--secret takes NAME=SECRET_REF, not {item!r}")
        refs.append({"name": key, "secret_ref": value})
    client = cmd.client_of(ctx)
    body = {"type": kind, "secret_refs": refs, **({"name": name} if name else {})}
    ref = client.post(CONTAINERS, body)["container_ref"]
    output.show_one(client.get(_path(ref, CONTAINERS)), fmt, columns)


@container.command("list")
@click.option("--name", default=None, help="Only those with this name.")
@cmd.output_options
@click.pass_context
def container_list(ctx: click.Context, name: str | None, fmt: str,
                   columns: tuple[str, ...]) -> None:
    """List the project's containers."""
    rows = _all(cmd.client_of(ctx), CONTAINERS, "containers", name)
    output.show_many(rows, fmt, columns, CONTAINER_COLUMNS)


@container.command("get")
@click.argument("ref", metavar="CONTAINER_REF")
@cmd.output_options
@click.pass_context
def container_get(ctx: click.Context, ref: str, fmt: str, columns: tuple[str, ...]) -> None:
    """Show a container."""
    output.show_one(cmd.client_of(ctx).get(_path(ref, CONTAINERS)), fmt, columns)


@container.command("delete")
@click.argument("refs", nargs=-1, required=True, metavar="CONTAINER_REF...")
@click.pass_context
def container_delete(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Delete containers (their secrets stay)."""
    client = cmd.client_of(ctx)
    for ref in refs:
        client.delete(_path(ref, CONTAINERS))


def _all(client: Client, collection: str, key: str, name: str | None) -> list[dict[str, Any]]:
    """Every item of a Barbican-paged list (offset/limit)."""
    rows: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"offset": len(rows), "limit": 100}
        if name:
            params["name"] = name
        page = client.get(collection, params=params)
        rows += page[key]
        if not page[key] or len(rows) >= page["total"]:
            return rows
