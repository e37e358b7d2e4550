"""lbaas's own certificate store: /v1/secrets and /v1/containers in Barbican's shapes."""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from lbaas.config import CertificateSettings
from lbaas.db import models as m
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from lbaas.testing.pki import Authority
from tests.api.base import Api
from tests.conftest import fresh_database, make_settings


def post_secret(api: Api, body: dict[str, Any], status: int = 201, **kw: Any) -> Any:
    return api.post("/v1/secrets", body, status=status, **kw).json()


def barbican_error(response: Any) -> str:
    body = response.json()
    assert set(body) == {"code", "title", "description"}, body
    assert body["code"] == response.status_code
    return str(body["description"])


def test_pkcs12_secret_roundtrip_encrypted_at_rest(api: Api) -> None:
    leaf = Authority.new().issue("www.example.com")
    bundle = leaf.pkcs12()
    r = api.post("/v1/secrets", {"name": "web", "payload": base64.b64encode(bundle).decode(),
                                 "payload_content_type": "application/octet-stream",
                                 "payload_content_encoding": "base64"}, status=201)
    ref = r.json()["secret_ref"]
    assert ref.startswith("http://testserver/v1/secrets/") and r.headers["location"] == ref
    meta = api.get(ref.removeprefix("http://testserver"), status=200).json()
    assert meta["name"] == "web" and meta["secret_type"] == "opaque"
    assert meta["content_types"] == {"default": "application/octet-stream"}
    assert meta["status"] == "ACTIVE" and meta["consumers"] == [] and "payload" not in meta
    payload = api.client.get(ref + "/payload", headers={"Accept": "application/octet-stream"})
    assert payload.status_code == 200 and payload.content == bundle
    assert api.client.get(ref + "/payload", headers={"Accept": "text/plain"}).status_code == 406
    # at rest: neither the bundle nor its key appear in the database
    with api.service.sessions() as session:
        row = session.scalars(select(m.Secret)).one()
        assert row.payload is not None and bundle not in row.payload
        assert leaf.key_pem()[40:80] not in row.payload
    key_file = api.service.settings.store_key_file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_text_secret_and_put_payload(api: Api) -> None:
    ref = post_secret(api, {"name": "ca", "payload": "-----BEGIN x-----",
                            "payload_content_type": "text/plain"})["secret_ref"]
    got = api.client.get(ref + "/payload", headers={"Accept": "text/plain"})
    assert got.text == "-----BEGIN x-----" and got.headers["content-type"].startswith("text/plain")
    empty = post_secret(api, {"name": "later"})["secret_ref"]
    assert api.get(empty.removeprefix("http://testserver")).json()["content_types"] is None
    r = api.client.put(empty, content=b"\x00\x01raw", headers={"Content-Type":
                                                               "application/octet-stream"})
    assert r.status_code == 204
    assert api.client.get(empty + "/payload").content == b"\x00\x01raw"
    again = api.client.put(empty, content=b"x", headers={"Content-Type": "text/plain"})
    assert again.status_code == 409
    assert barbican_error(again) == "Secret already has data, cannot modify it."
    bad = api.client.put(ref, content=b"x", headers={"Content-Type": "application/json"})
    assert bad.status_code == 415


def test_secret_errors_have_barbicans_shape(api: Api) -> None:
    r = api.post("/v1/secrets", {"payload": "abc"}, status=400)
    assert barbican_error(r) == (
        "Provided object does not match schema 'Secret': If 'payload' is supplied, "
        "'payload_content_type' must also be supplied. Invalid property: "
        "'payload_content_type'")
    r = api.post("/v1/secrets", {"payload": "abc", "payload_content_type":
                                 "application/octet-stream"}, status=400)
    assert "payload_content_encoding is not one of" in barbican_error(r)
    r = api.post("/v1/secrets", {"payload": "!!", "payload_content_type":
                                 "application/octet-stream",
                                 "payload_content_encoding": "base64"}, status=400)
    assert "Invalid payload for payload_content_encoding" in barbican_error(r)
    r = api.post("/v1/secrets", {"bit_length": "x"}, status=400)
    assert "Invalid property: 'bit_length'" in barbican_error(r)
    r = api.post("/v1/secrets", {"expiration": "2001-01-01T00:00:00"}, status=400)
    assert "'expiration' is before current time" in barbican_error(r)
    r = api.get("/v1/secrets/6f8a3c1e-0000-4000-8000-000000000000", status=404)
    assert barbican_error(r) == "Secret not found."


def test_projects_see_only_their_secrets(api: Api) -> None:
    mine = post_secret(api, {"payload": "a", "payload_content_type": "text/plain"},
                       project="p1")["secret_ref"]
    path = mine.removeprefix("http://testserver")
    api.get(path, status=200, project="p1")
    api.get(path, status=404, project="p2")
    api.get(path + "/payload", status=404, project="p2")
    api.delete(path, status=404, project="p2")
    assert api.get("/v1/secrets", project="p2").json() == {"secrets": [], "total": 0}
    # read-only roles read metadata, not payloads, and do not write
    api.get(path, status=200, project="p1", roles="reader")
    api.get(path + "/payload", status=403, project="p1", roles="reader")
    api.post("/v1/secrets", {"name": "x"}, status=403, project="p1", roles="reader")


def test_list_pages_like_barbican(api: Api) -> None:
    for i in range(3):
        post_secret(api, {"name": f"s{i}", "payload": "a", "payload_content_type": "text/plain"})
    page = api.get("/v1/secrets", params={"limit": 2}).json()
    assert page["total"] == 3 and [s["name"] for s in page["secrets"]] == ["s0", "s1"]
    assert page["next"] == "http://testserver/v1/secrets?limit=2&offset=2"
    page = api.get("/v1/secrets", params={"limit": 2, "offset": 2}).json()
    assert [s["name"] for s in page["secrets"]] == ["s2"] and "previous" in page
    assert api.get("/v1/secrets", params={"name": "s1"}).json()["total"] == 1


def test_certificate_container(api: Api) -> None:
    leaf = Authority.new().issue("www.example.com")
    parts = {}
    for name, data in (("certificate", leaf.cert_pem), ("private_key", leaf.key_pem())):
        parts[name] = post_secret(api, {"name": name, "payload": data.decode(),
                                        "payload_content_type": "text/plain"})["secret_ref"]
    r = api.post("/v1/containers", {"name": "web", "type": "certificate", "secret_refs": [
        {"name": n, "secret_ref": ref} for n, ref in parts.items()]}, status=201)
    ref = r.json()["container_ref"]
    body = api.get(ref.removeprefix("http://testserver")).json()
    assert body["type"] == "certificate" and body["name"] == "web"
    assert {(x["name"], x["secret_ref"]) for x in body["secret_refs"]} == set(parts.items())
    assert api.get("/v1/containers").json()["total"] == 1
    # a secret held by a container cannot be deleted; the container can
    r = api.delete(parts["certificate"].removeprefix("http://testserver"), status=400)
    assert "it has consumers" in barbican_error(r)
    api.delete(ref.removeprefix("http://testserver"), status=204)
    api.delete(parts["certificate"].removeprefix("http://testserver"), status=204)


def test_container_rules(api: Api) -> None:
    ref = post_secret(api, {"payload": "a", "payload_content_type": "text/plain"})["secret_ref"]
    r = api.post("/v1/containers", {"type": "certificate", "secret_refs": [
        {"name": "private_key", "secret_ref": ref}]}, status=400)
    assert "'certificate' for Certificate type" in barbican_error(r)
    r = api.post("/v1/containers", {"type": "certificate", "secret_refs": [
        {"name": "bogus", "secret_ref": ref}]}, status=400)
    assert "reference names are allowed for Certificate type" in barbican_error(r)
    r = api.post("/v1/containers", {"type": "certificate", "secret_refs": [
        {"name": "certificate", "secret_ref": ref.replace("-", "0", 1)[:-1] + "0"}]},
        status=404)
    assert "Secret provided for 'certificate' doesn't exist" in barbican_error(r)
    r = api.post("/v1/containers", {"type": "box"}, status=400)
    assert "Invalid property: 'type'" in barbican_error(r)


def test_version_discovery(api: Api) -> None:
    r = api.client.get("/", headers={"OpenStack-API-Version": "key-manager 1.1"})
    assert r.status_code == 300
    v1 = r.json()["versions"][0]
    assert (v1["id"], v1["min_version"], v1["max_version"]) == ("v1", "1.0", "1.1")
    assert api.client.get("/").json()["versions"][0]["id"] == "v2.0"  # Octavia's
    assert api.client.get("/v1").json()["version"]["id"] == "v1"


def test_noop_cert_manager_accepts_any_reference(tmp_path: Path, noop: NoopDriver,
                                                 sqlite_template: Path) -> None:
    """As Octavia's noop_cert_manager (octavia-tempest-plugin's test_with_noop passes
    random UUIDs as references); the store is not served then."""
    fresh_database(tmp_path, "", sqlite_template)
    settings = make_settings(tmp_path).replace(
        certificates=CertificateSettings(cert_manager="noop_cert_manager"))
    svc = Service(settings, drivers={"noop": noop, "haproxy": noop})
    svc.start()
    try:
        with TestClient(svc.app, raise_server_exceptions=False) as client:
            api = Api(client, svc)
            lb = api.create_lb()
            refs = [str(uuid.uuid4()) for _ in range(4)]
            li = api.create_listener(lb["id"], protocol="TERMINATED_HTTPS", protocol_port=443,
                                     default_tls_container_ref=refs[0],
                                     sni_container_refs=refs[1:3],
                                     client_ca_tls_container_ref=refs[3],
                                     client_crl_container_ref=refs[3],
                                     client_authentication="MANDATORY")
            assert li["default_tls_container_ref"] == refs[0]
            api.get("/v1/secrets", status=404)
    finally:
        svc.stop()
