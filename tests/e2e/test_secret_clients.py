"""python-barbicanclient, unchanged, and the ``lbaas secret`` CLI against lbaas's own
store on a real ``lbaas serve``.

python-barbicanclient discovers the API version at the endpoint's root (``/`` with
``OpenStack-API-Version: key-manager 1.1``), then uses ``/v1/secrets`` and
``/v1/containers`` as it would Barbican's. The references it gets back work
in listener fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from barbicanclient import client as barbican
from barbicanclient import exceptions as barbican_exc
from click.testing import CliRunner
from keystoneauth1 import session as ks_session

from lbaas.cli.main import app
from lbaas.testing.pki import Authority
from tests.support.serve import Serve


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    s = Serve(tmp_path_factory.mktemp("barbicanclient") / "state")
    try:
        s.start(timeout=60)
        yield s
    finally:
        s.stop()


def _client(serve: Serve, project: str) -> barbican.Client:  # type: ignore[valid-type]
    return barbican.Client(session=ks_session.Session(), endpoint=serve.url, project_id=project)


def test_secrets_and_containers_through_barbicanclient(serve: Serve) -> None:
    bc = _client(serve, "p1")
    leaf = Authority.new().issue("www.example.com")
    bundle = leaf.pkcs12()
    secret = bc.secrets.create(name="web-pkcs12", payload=bundle)
    ref = secret.store()
    assert ref.startswith(f"{serve.url}/v1/secrets/")
    got = bc.secrets.get(ref)
    assert got.name == "web-pkcs12" and got.payload == bundle
    assert got.content_types == {"default": "application/octet-stream"}
    assert ref in [s.secret_ref for s in bc.secrets.list(name="web-pkcs12")]

    cert = bc.secrets.create(name="cert", payload=leaf.cert_pem.decode())
    key = bc.secrets.create(name="key", payload=leaf.key_pem().decode())
    container = bc.containers.create_certificate(name="web", certificate=cert,
                                                 private_key=key)
    container_ref = container.store()
    fetched = bc.containers.get(container_ref)
    assert fetched.certificate.payload == leaf.cert_pem.decode().strip()  # Barbican strips
    assert fetched.private_key.payload == leaf.key_pem().decode().strip()

    # another project sees neither
    other = _client(serve, "p2")
    with pytest.raises(barbican_exc.HTTPClientError) as err:
        other.secrets.get(ref).payload  # noqa: B018 - the lazy property fetches
    assert err.value.status_code == 404

    # the references work in a listener, which then consumes them
    api = serve.client(**{"X-Project-Id": "p1", "X-Roles": "member"})
    r = api.post("/loadbalancers", json={"loadbalancer": {"name": "lb"}})
    assert r.status_code == 201, r.text
    lb = r.json()["loadbalancer"]
    _wait_active(api, lb["id"])
    for ref_value, port in ((ref, 443), (container_ref, 8443)):
        r = api.post("/listeners", json={"listener": {
            "loadbalancer_id": lb["id"], "protocol": "TERMINATED_HTTPS", "protocol_port": port,
            "default_tls_container_ref": ref_value}})
        assert r.status_code == 201, r.text
        _wait_active(api, lb["id"])
    assert bc.secrets.get(ref).consumers
    with pytest.raises(Exception, match=r"has consumers"):
        bc.secrets.delete(ref)
    with pytest.raises(barbican_exc.HTTPClientError):
        bc.containers.delete(container_ref)
    api.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"})
    _wait_gone(api, lb["id"])
    bc.containers.delete(container_ref)
    for s in (secret, cert, key):
        bc.secrets.delete(s.secret_ref)
    assert bc.secrets.list() == []


def _wait_active(api: object, lb_id: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        body = api.get(f"/loadbalancers/{lb_id}").json()  # type: ignore[attr-defined]
        if body["loadbalancer"]["provisioning_status"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise AssertionError("load balancer not ACTIVE")


def _wait_gone(api: object, lb_id: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if api.get(f"/loadbalancers/{lb_id}").status_code == 404:  # type: ignore[attr-defined]
            return
        time.sleep(0.05)
    raise AssertionError("load balancer not deleted")


def test_the_lbaas_cli_stores_certificates_and_uses_them(serve: Serve, tmp_path: Path) -> None:
    runner = CliRunner()

    def cli(*args: str, ok: bool = True) -> str:
        result = runner.invoke(app, ["--os-endpoint", serve.url, "--project", "p3", *args],
                               catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.stdout if ok else result.output

    ca = Authority.new()
    leaf = ca.issue("www.example.com")
    (tmp_path / "www.crt").write_bytes(leaf.cert_pem)
    (tmp_path / "www.key").write_bytes(leaf.key_pem(b"pw"))
    (tmp_path / "other.key").write_bytes(ca.issue("x.example.com").key_pem())
    ref = cli("secret", "store-certificate", "--name", "www", "--certificate",
              str(tmp_path / "www.crt"), "--private-key", str(tmp_path / "www.key"),
              "--passphrase", "pw", "-f", "value", "-c", "secret_ref").strip()
    assert ref.startswith(f"{serve.url}/v1/secrets/")
    assert "not match" in cli("secret", "store-certificate", "--certificate",
                                   str(tmp_path / "www.crt"), "--private-key",
                                   str(tmp_path / "other.key"), ok=False)
    ca_ref = cli("secret", "store", "--name", "ca", "--payload", ca.cert_pem.decode(),
                 "-f", "value", "-c", "secret_ref").strip()
    assert cli("secret", "get", ca_ref, "--payload") == ca.cert_pem.decode().strip()
    parts = cli("secret", "store", "--name", "cert", "--file", str(tmp_path / "www.crt"), "-f",
                "value", "-c", "secret_ref").strip()
    container = cli("secret", "container", "create", "--name", "c", "--secret",
                    f"certificate={parts}", "-f", "value", "-c", "container_ref").strip()
    assert "certificate" in cli("secret", "container", "get", container)
    assert {"www", "ca", "cert"} <= set(cli("secret", "list", "-f", "value", "-c",
                                            "name").split())
    lb = cli("loadbalancer", "create", "--name", "clitls", "--wait", "-f", "value", "-c",
             "id").strip()
    out = cli("listener", "create", lb, "--name", "https", "--protocol", "TERMINATED_HTTPS",
              "--protocol-port", "443", "--default-tls-container-ref", ref,
              "--sni-container-refs", ref, "--client-ca-tls-container-ref", ca_ref,
              "--client-authentication", "OPTIONAL", "--tls-version", "TLSv1.3",
              "--alpn-protocol", "h2", "--hsts-max-age", "600", "--wait", "-f", "json")
    assert '"client_authentication": "OPTIONAL"' in out and '"TLSv1.3"' in out
    assert "has consumers" in cli("secret", "delete", ref, ok=False)
    cli("loadbalancer", "delete", "clitls", "--cascade", "--wait")
    cli("secret", "container", "delete", container)
    cli("secret", "delete", ref, ca_ref, parts)
    assert cli("secret", "list", "-f", "value", "-c", "name").strip() == ""
