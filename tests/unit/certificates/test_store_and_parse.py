"""The store's cipher and key file, references, and certificate parsing."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lbaas.certificates import parse, store
from lbaas.testing.pki import Authority


def test_key_file_is_made_private_and_payloads_are_bound_to_their_secret(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secrets.key"
    box = store.SecretBox(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = box.seal("id-1", b"private key")
    assert b"private key" not in sealed and sealed != box.seal("id-1", b"private key")
    assert box.open("id-1", sealed) == b"private key"
    with pytest.raises(store.StoreKeyError):
        box.open("id-2", sealed)  # moved onto another row
    os.chmod(path, 0o644)
    again = store.SecretBox(path)  # same key, mode put back to 600
    assert again.open("id-1", sealed) == b"private key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(store.StoreKeyError):
        store.SecretBox(tmp_path / "other.key").open("id-1", sealed)
    (tmp_path / "short.key").write_text("c2hvcnQ=\n")
    with pytest.raises(store.StoreKeyError, match="32 bytes"):
        store.SecretBox(tmp_path / "short.key")


@pytest.mark.parametrize(("ref", "parsed"), [
    ("http://h:9311/v1/secrets/6F8A3C1E-0000-4000-8000-000000000000",
     store.Ref("secrets", "6f8a3c1e-0000-4000-8000-000000000000")),
    ("https://h/key-manager/v1/containers/6f8a3c1e-0000-4000-8000-000000000000/",
     store.Ref("containers", "6f8a3c1e-0000-4000-8000-000000000000")),
    ("6f8a3c1e-0000-4000-8000-000000000000",
     store.Ref(None, "6f8a3c1e-0000-4000-8000-000000000000")),
    ("http://h/v1/orders/6f8a3c1e-0000-4000-8000-000000000000", None),
    ("http://h/v1/secrets/../../etc", None),
])
def test_references(ref: str, parsed: store.Ref | None) -> None:
    assert store.parse_ref(ref) == parsed


def test_certificate_parsing() -> None:
    ca = Authority.new()
    inter = Authority.new("intermediate", parent=ca)
    leaf = inter.issue("www.example.com", "www.example.com", "example.com")
    got = parse.certificate_from_pkcs12(leaf.pkcs12())
    assert got.host_names == ("www.example.com", "example.com")
    assert got.intermediates == (inter.cert_pem,)
    bundle = got.bundle()
    assert bundle.startswith(leaf.cert_pem) and b"PRIVATE KEY" in bundle
    assert parse.certificate_from_payload(leaf.pem_bundle()).certificate == leaf.cert_pem
    assert parse.certificate_from_parts(leaf.cert_pem, leaf.key_pem(b"pw"), leaf.chain_pem,
                                        b"pw").private_key == got.private_key
    with pytest.raises(ValueError, match="passphrase of the private key is wrong"):
        parse.certificate_from_parts(leaf.cert_pem, leaf.key_pem(b"pw"), None, b"nope")
    with pytest.raises(ValueError, match="its passphrase is needed"):
        parse.certificate_from_parts(leaf.cert_pem, leaf.key_pem(b"pw"))
    with pytest.raises(ValueError, match="does not match"):
        parse.certificate_from_parts(leaf.cert_pem, inter.key_pem())
    with pytest.raises(ValueError, match="PKCS12 bundle is unreadable"):
        parse.certificate_from_pkcs12(leaf.pkcs12(b"pw"))
    assert parse.certificate_from_pkcs12(leaf.pkcs12(b"pw"), b"pw").host_names
    with pytest.raises(ValueError, match="could not be read"):
        parse.certificate_from_parts(b"-----BEGIN CERTIFICATE-----\nxx\n", None)
    now = datetime.now(UTC)
    old = ca.issue("old.example.com", not_before=now - timedelta(days=9),
                   not_after=now - timedelta(days=1))
    with pytest.raises(ValueError, match="expired on"):
        parse.check_dates(parse.certificate_from_pkcs12(old.pkcs12()))
    early = ca.issue("new.example.com", not_before=now + timedelta(days=1))
    with pytest.raises(ValueError, match="not valid before"):
        parse.check_dates(parse.certificate_from_pkcs12(early.pkcs12()))


def test_ca_bundles_and_crls() -> None:
    ca, other = Authority.new(), Authority.new("other")
    assert parse.ca_bundle(ca.cert_pem + other.cert_pem).count(b"BEGIN CERTIFICATE") == 2
    with pytest.raises(ValueError, match="CA certificate is invalid"):
        parse.ca_bundle(b"hello")
    assert parse.crl_for(ca.crl(), ca.cert_pem).startswith(b"-----BEGIN X509 CRL")
    with pytest.raises(ValueError, match="not valid for client certificate authority"):
        parse.crl_for(other.crl(), ca.cert_pem)
    with pytest.raises(ValueError, match="revocation list is invalid"):
        parse.crl_for(b"nope", ca.cert_pem)
