"""TERMINATED_HTTPS with certificates from a real Barbican, read as Octavia reads them.

A real Keystone and a real Barbican (the run's, :func:`tests.conftest.barbican`),
lbaas with ``auth_strategy = keystone`` and ``cert_manager =
barbican_cert_manager``, the haproxy provider on loopback. A Keystone user
stores a PKCS#12 secret and a certificate container (certificate, encrypted
key with its passphrase, intermediate) in Barbican with python-barbicanclient;
lbaas checks the references with that user's token, grants its service user
read access, and the worker reads them as the service user; HTTPS through
the VIP shows each certificate. Client authentication then takes its CA and
CRL from Barbican secrets (PEM text) too, and a TLS pool its client
certificate, CA and CRL.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from barbicanclient import client as barbican_client
from click.testing import CliRunner
from fastapi.testclient import TestClient
from keystoneauth1 import identity
from keystoneauth1 import session as ks_session

from lbaas.cli.main import app
from lbaas.config import CertificateSettings, Settings
from lbaas.service import Service
from lbaas.testing.backend import Backend
from lbaas.testing.barbican import Barbican
from lbaas.testing.keystone import SERVICE_USER, Keystone
from lbaas.testing.pki import Authority
from tests.functional.dataplane.conftest import free_port


def _session(keystone: Keystone, user: str) -> ks_session.Session:
    env = keystone.openrc(user)
    return ks_session.Session(auth=identity.Password(
        auth_url=env["OS_AUTH_URL"], username=user, password=env["OS_PASSWORD"],
        project_name=env["OS_PROJECT_NAME"], user_domain_name="Default",
        project_domain_name="Default"))


@pytest.fixture
def service(base_path: Path, keystone: Keystone, barbican: Barbican) -> Iterator[Service]:
    conf = base_path.parent / "lbaas.conf"
    conf.write_text("[api_settings]\nauth_strategy = keystone\n"
                    + keystone.authtoken_config() + keystone.service_auth_config())
    settings = Settings(state_dir=base_path.parent / "state", default_provider="haproxy",
                        worker_poll_interval=0.05, auth_strategy="keystone",
                        config_files=(str(conf),),
                        certificates=CertificateSettings(cert_manager="barbican_cert_manager"))
    svc = Service(settings)
    svc.start()
    try:
        yield svc
    finally:
        assert svc.agent is not None
        base = settings.haproxy_base_path
        for lb_dir in base.iterdir() if base.exists() else ():
            svc.agent.delete(lb_dir.name)  # its HAProxy, by PID
        svc.stop()


class Api:
    """lbaas's API as one Keystone user (its token in X-Auth-Token)."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.headers = client, {"X-Auth-Token": token}

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(f"/v2/lbaas{path}", json=body, headers=self.headers)

    def get(self, path: str) -> Any:
        return self.client.get(f"/v2/lbaas{path}", headers=self.headers)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.put(f"/v2/lbaas{path}", json=body, headers=self.headers)

    def wait_active(self, lb_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lb = self.get(f"/loadbalancers/{lb_id}").json()["loadbalancer"]
            if lb["provisioning_status"] == "ACTIVE":
                return
            assert lb["provisioning_status"] != "ERROR", lb
            time.sleep(0.05)
        raise AssertionError(f"{lb_id} not ACTIVE")


def _handshake(address: str, port: int, ca: Path, sni: str | None) -> str:
    """The common name of the certificate the VIP shows (verified against ``ca``)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    with socket.create_connection((address, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as tls:
        return str(dict(x[0] for x in tls.getpeercert()["subject"])["commonName"])


def _get(address: str, port: int, ca: Path, sni: str, client: Path | None = None) -> str:
    ctx = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        ctx.load_cert_chain(client)
    with socket.create_connection((address, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    return data.decode()


def test_terminated_https_with_a_pkcs12_secret_and_a_container_from_barbican(
        service: Service, keystone: Keystone, barbican: Barbican, base_path: Path) -> None:
    root = Authority.new("barbican test root")
    intermediate = Authority.new("barbican test intermediate", parent=root)
    www = root.issue("www.example.com")
    api = intermediate.issue("api.example.com")
    ca_file = base_path.parent / "root.crt"
    ca_file.write_bytes(root.cert_pem)

    # The tenant stores its certificates in Barbican (python-barbicanclient, Keystone user).
    bc = barbican_client.Client(session=_session(keystone, "lb-one-member"))
    p12_ref = bc.secrets.create(name="www-p12", payload=www.pkcs12()).store()
    parts = {"certificate": api.cert_pem, "private_key": api.key_pem(b"s3cret"),
             "private_key_passphrase": b"s3cret", "intermediates": intermediate.cert_pem}
    secrets = {name: bc.secrets.create(name=f"api-{name}", payload=value.decode())
               for name, value in parts.items()}
    for secret in secrets.values():
        secret.store()
    container_ref = bc.containers.create_certificate(name="api", **secrets).store()
    assert p12_ref.startswith(f"{barbican.url}/v1/secrets/")
    assert container_ref.startswith(f"{barbican.url}/v1/containers/")
    service_user = keystone.info["users"][SERVICE_USER]["id"]
    assert service_user not in bc.acls.get(p12_ref).read.users

    backend = Backend("member-one").start()
    port = free_port()
    try:
        with TestClient(service.app) as client:
            one = Api(client, keystone.token("lb-one-member"))
            r = one.post("/loadbalancers", {"loadbalancer": {"name": "tls"}})
            assert r.status_code == 201, r.text
            lb = r.json()["loadbalancer"]
            one.wait_active(lb["id"])
            r = one.post("/listeners", {"listener": {
                "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS",
                "protocol_port": port, "default_tls_container_ref": p12_ref,
                "sni_container_refs": [container_ref]}})
            assert r.status_code == 201, r.text
            listener = r.json()["listener"]
            one.wait_active(lb["id"])
            r = one.post("/pools", {"pool": {
                "listener_id": listener["id"], "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN"}})
            assert r.status_code == 201, r.text
            pool_id = r.json()["pool"]["id"]
            one.wait_active(lb["id"])
            r = one.post(f"/pools/{pool_id}/members", {"member": {
                "address": "127.0.0.1", "protocol_port": backend.port}})
            assert r.status_code == 201, r.text
            one.wait_active(lb["id"])

            # The API granted lbaas's service user read access, as the tenant.
            assert service_user in bc.acls.get(p12_ref).read.users
            assert service_user in bc.acls.get(container_ref).read.users
            for secret in secrets.values():
                assert service_user in bc.acls.get(secret.secret_ref).read.users

            vip = lb["vip_address"]
            assert _handshake(vip, port, ca_file, None) == "www.example.com"
            assert _handshake(vip, port, ca_file, "www.example.com") == "www.example.com"
            # the container's intermediate is served: the chain verifies against the root
            assert _handshake(vip, port, ca_file, "api.example.com") == "api.example.com"
            answer = _get(vip, port, ca_file, "api.example.com")
            assert answer.startswith("HTTP/1.1 200") and "Welcome to member-one" in answer

            # Client certificates: the CA and the CRL are Barbican secrets (PEM text).
            client_ca = Authority.new("barbican client CA")
            alice, mallory = client_ca.issue("alice", client=True), client_ca.issue(
                "mallory", client=True)
            for name, item in (("alice", alice), ("mallory", mallory)):
                (base_path.parent / f"{name}.pem").write_bytes(item.pem_bundle())
            ca_ref = bc.secrets.create(name="client-ca",
                                       payload=client_ca.cert_pem.decode()).store()
            crl_ref = bc.secrets.create(name="client-crl",
                                        payload=client_ca.crl([mallory]).decode()).store()
            r = one.put(f"/listeners/{listener['id']}", {"listener": {
                "client_authentication": "MANDATORY", "client_ca_tls_container_ref": ca_ref,
                "client_crl_container_ref": crl_ref}})
            assert r.status_code == 200, r.text
            one.wait_active(lb["id"])
            assert service_user in bc.acls.get(ca_ref).read.users
            answer = _get(vip, port, ca_file, "www.example.com", base_path.parent / "alice.pem")
            assert answer.startswith("HTTP/1.1 200"), answer
            for refused in (None, base_path.parent / "mallory.pem"):  # none; revoked
                try:
                    answer = _get(vip, port, ca_file, "www.example.com", refused)
                except OSError:  # the handshake's alert (ssl.SSLError is an OSError)
                    answer = ""
                assert answer == "", answer

            # Another project's member may not use these references: 400 naming the field.
            two = Api(client, keystone.token("lb-two-member"))
            r = two.post("/loadbalancers", {"loadbalancer": {"name": "other",
                                                             "provider": "noop"}})
            assert r.status_code == 201, r.text
            other = r.json()["loadbalancer"]
            two.wait_active(other["id"])
            bc_two = barbican_client.Client(session=_session(keystone, "lb-two-member"))
            own_ref = bc_two.secrets.create(name="own", payload=www.pkcs12()).store()
            for field, value in (("default_tls_container_ref", p12_ref),
                                 ("sni_container_refs", [container_ref]),
                                 ("client_ca_tls_container_ref", ca_ref)):
                body: dict[str, Any] = {"loadbalancer_id": other["id"],
                                        "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
                                        "default_tls_container_ref": own_ref}
                body[field] = value
                r = two.post("/listeners", {"listener": body})
                assert r.status_code == 400, r.text
                assert field in r.json()["faultstring"], r.text
            for field, value in (("tls_container_ref", container_ref),
                                 ("ca_tls_container_ref", ca_ref)):
                r = two.post("/pools", {"pool": {
                    "loadbalancer_id": other["id"], "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN", "tls_enabled": True, field: value}})
                assert r.status_code == 400 and field in r.json()["faultstring"], r.text
            # Re-encryption towards members: the pool's client certificate and CA from
            # Barbican, read by the worker through the ACLs the API granted.
            r = one.post("/pools", {"pool": {
                "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "tls_enabled": True, "tls_container_ref": container_ref,
                "ca_tls_container_ref": ca_ref, "crl_container_ref": crl_ref}})
            assert r.status_code == 201, r.text
            one.wait_active(lb["id"])
            # A reference to nothing: 400 naming the field too.
            missing = p12_ref.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
            r = one.post("/listeners", {"listener": {
                "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS",
                "protocol_port": free_port(), "default_tls_container_ref": missing}})
            assert r.status_code == 400 and "default_tls_container_ref" in r.text, r.text
    finally:
        backend.stop()


def test_the_lbaas_secret_cli_stores_in_the_catalogs_barbican(
        keystone: Keystone, barbican: Barbican, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OS_CLOUD", "OS_TOKEN", "OS_CLIENT_CONFIG_FILE", "LBAAS_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner(env=keystone.openrc("lb-one-member"))

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    ca = Authority.new("cli CA")
    leaf = ca.issue("cli.example.com")
    (tmp_path / "cli.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "cli.key").write_bytes(leaf.key_pem())
    ref = cli("secret", "store-certificate", "--name", "cli-www", "--certificate",
              str(tmp_path / "cli.crt"), "--private-key", str(tmp_path / "cli.key"),
              "-f", "value", "-c", "secret_ref")
    assert ref.startswith(f"{barbican.url}/v1/secrets/")
    ca_ref = cli("secret", "store", "--name", "cli-ca", "--payload", ca.cert_pem.decode(),
                 "-f", "value", "-c", "secret_ref")
    assert cli("secret", "get", ca_ref, "--payload") == ca.cert_pem.decode().strip()
    # Barbican itself holds them, for this project's user.
    bc = barbican_client.Client(session=_session(keystone, "lb-one-member"))
    assert bc.secrets.get(ref).name == "cli-www"
    cli("secret", "delete", ref, ca_ref)
