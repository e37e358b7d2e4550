"""The agents' certificate authority for a standalone deployment (``cryptography``).

The control plane and its agents authenticate each other with mutual TLS
(issue 12 item 1). An operator may bring certificates from their own CA;
without one, ``lbaas agent certificate issue`` creates a CA in a directory
(``ca.pem``, ``ca.key``, mode 600, on first use) and issues, from it, one
certificate per host: ``<name>.pem`` holding the certificate and its key.
The same kind of certificate serves the controller (a TLS client of the
agents) and each agent (a TLS server to the controller): the subject's
common name is the host's name (``[DEFAULT] host``), which the controller
checks against the host an agent says it is; subjectAltNames are the
host's name and the addresses it is reached at.

Keys are ECDSA P-256; the CA lives 10 years, a host certificate
``days`` (default 2 years).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
DAY = datetime.timedelta(days=1)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_ca(directory: Path, name: str = "lbaas agents CA") -> Path:
    """The CA in ``directory`` (made if absent: ``ca.pem`` and ``ca.key``); returns
    the path of ``ca.pem``, the file both sides trust."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def issue(directory: Path, host: str, addresses: tuple[str, ...] = (),
          out: Path | None = None, days: int = 730) -> Path:
    """Issue ``host``'s certificate from the CA in ``directory`` (made if absent).

    ``addresses``: IP addresses the host is reached at (subjectAltNames
    besides its name). Writes certificate + key as one PEM file, mode 600,
    at ``out`` (default ``<directory>/<host>.pem``) and returns its path.
    Raises ValueError for an address that does not parse.
    """
    ensure_ca(directory)
    ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    names: list[x509.GeneralName] = [x509.DNSName(host)]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY).not_valid_after(now + days * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    path = out or directory / f"{host}.pem"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key))
    return path


def common_name(cert: dict[str, object]) -> str | None:
    """The subject's common name in ``ssl.SSLSocket.getpeercert()``'s form, or None."""
    subject = cert.get("subject") or ()
    for rdn in subject:  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
