"""Reading and checking TLS material with ``cryptography``.

What Octavia checks (``common/tls_utils/cert_parser.py``, its PKCS#12
cert): a certificate must parse, have a subject CN or a DNS subjectAltName
and match its private key; a PKCS#12 bundle must open (with its passphrase,
if any) and hold a certificate and a key; a CA bundle must hold
certificates; a CRL must parse and be signed by one of the CA's
certificates. :func:`check_dates` (not valid yet, expired) is for the API
only: a certificate accepted while valid keeps being served after it
expires. Every failure is a :class:`ValueError` whose text is the reason
shown to the tenant. Entry points for certificates:
:func:`certificate_from_pkcs12`, :func:`certificate_from_parts`,
:func:`certificate_from_payload`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from lbaas.certificates.base import TLSCertificate

PEM_CERT = b"-----BEGIN CERTIFICATE-----"
PEM_PKCS7 = b"-----BEGIN PKCS7-----"


def _now() -> datetime:
    return datetime.now(UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def host_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The CN and DNS subjectAltNames of ``cert`` (lower case, in that order).

    Raises ValueError if it has neither (Octavia's MissingCertSubject).
    """
    names: list[str] = []
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        names.append(str(attr.value).lower())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names += [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    if not names:
        raise ValueError("No CN or DNSName(s) found in certificate. The certificate is invalid.")
    return tuple(dict.fromkeys(names))


def check_dates(cert: TLSCertificate, now: datetime | None = None) -> None:
    """Raise ValueError if ``cert`` has expired or is not valid yet."""
    now = now or _now()
    if cert.not_after is not None and cert.not_after < now:
        raise ValueError(f"The certificate expired on {cert.not_after.isoformat()}.")
    if cert.not_before is not None and cert.not_before > now:
        raise ValueError(f"The certificate is not valid before {cert.not_before.isoformat()}.")


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate, PEM or DER. Raises ValueError."""
    try:
        if PEM_CERT in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as e:
        raise ValueError(f"The certificate could not be read (it must be an X.509 "
                         f"certificate in PEM or DER): {e}") from None


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM chain or a PKCS#7 bundle (PEM or DER). Raises ValueError."""
    try:
        if PEM_CERT in data:
            return list(x509.load_pem_x509_certificates(data))
        if PEM_PKCS7 in data:
            return list(pkcs7.load_pem_pkcs7_certificates(data))
        return list(pkcs7.load_der_pkcs7_certificates(data))
    except (ValueError, UnsupportedAlgorithm) as e:
        raise ValueError(f"The certificates could not be read (they must be PEM "
                         f"certificates or a PKCS#7 bundle): {e}") from None


def load_private_key(data: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    """A private key, PEM or DER, decrypted with ``passphrase``. Raises ValueError
    for a missing or wrong passphrase and for data that is no key."""
    loader = serialization.load_pem_private_key if b"-----BEGIN" in data \
        else serialization.load_der_private_key
    try:
        return loader(data, passphrase or None)
    except TypeError:
        if passphrase:
            raise ValueError("A passphrase was given but the private key is not "
                             "encrypted.") from None
        raise ValueError("The private key is encrypted: its passphrase is needed.") from None
    except (ValueError, UnsupportedAlgorithm) as e:
        text = str(e).lower()
        if passphrase and ("password" in text or "decrypt" in text):
            raise ValueError("The passphrase of the private key is wrong.") from None
        raise ValueError(f"The private key could not be read: {e}") from None


def _public_der(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _checked(cert: x509.Certificate, key: PrivateKeyTypes | None,
             chain: Iterable[x509.Certificate]) -> TLSCertificate:
    if key is None:
        raise ValueError("No private key found for the certificate.")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise ValueError("The private key does not match the certificate.")
    return TLSCertificate(certificate=_pem(cert), private_key=_key_pem(key),
                          intermediates=tuple(_pem(c) for c in chain),
                          host_names=host_names(cert), not_before=cert.not_valid_before_utc,
                          not_after=cert.not_valid_after_utc)


def certificate_from_pkcs12(data: bytes, passphrase: bytes | None = None) -> TLSCertificate:
    """A PKCS#12 bundle's certificate, key and chain, checked. Raises ValueError."""
    try:
        p12 = pkcs12.load_pkcs12(data, passphrase or None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise ValueError("The PKCS12 bundle is unreadable. Please check the PKCS12 bundle "
                         "validity. In addition, make sure it does not require a pass "
                         f"phrase. Error: {e}") from None
    if p12.cert is None:
        raise ValueError("The PKCS12 bundle holds no certificate.")
    return _checked(p12.cert.certificate, p12.key,
                    [c.certificate for c in p12.additional_certs])


def certificate_from_parts(certificate: bytes, private_key: bytes | None,
                           intermediates: bytes | None = None,
                           passphrase: bytes | None = None) -> TLSCertificate:
    """A certificate container's parts (PEM or DER; intermediates also PKCS#7), checked.

    Raises ValueError.
    """
    cert = load_certificate(certificate)
    key = load_private_key(private_key, passphrase) if private_key else None
    chain = load_certificates(intermediates) if intermediates else []
    return _checked(cert, key, chain)


def certificate_from_payload(data: bytes) -> TLSCertificate:
    """A secret's payload used as a certificate: a PKCS#12 bundle (Octavia's form), or
    PEM text holding the certificate, its chain and an unencrypted key. Raises ValueError."""
    if PEM_CERT not in data:
        return certificate_from_pkcs12(data)
    certs = load_certificates(data)
    starts = [i for i in (data.find(m) for m in _KEY_MARKERS) if i >= 0]
    if not starts:
        raise ValueError("No private key found for the certificate.")
    key = load_private_key(data[min(starts):], None)
    return _checked(certs[0], key, certs[1:])


_KEY_MARKERS = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                b"-----BEGIN EC PRIVATE KEY-----", b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def ca_bundle(data: bytes) -> bytes:
    """A CA bundle (PEM certificates or PKCS#7) as PEM. Raises ValueError (Octavia's
    words) if it holds no certificate."""
    try:
        certs = load_certificates(data)
    except ValueError as e:
        raise ValueError("The CA certificate is invalid. It must be a valid x509 PEM format "
                         f"certificate. Error: {e}") from None
    if not certs:
        raise ValueError("The CA certificate is invalid: it holds no certificate.")
    return b"".join(_pem(c) for c in certs)


def crl_for(data: bytes, ca_pem: bytes) -> bytes:
    """A CRL (PEM or DER) as PEM, after checking that a certificate of ``ca_pem`` signed it.

    Raises ValueError in Octavia's words.
    """
    try:
        crl = x509.load_pem_x509_crl(data) if b"-----BEGIN" in data \
            else x509.load_der_x509_crl(data)
    except ValueError as e:
        raise ValueError("The certificate revocation list is invalid. It must be a valid "
                         f"x509 PEM format certificate revocation list. Error: {e}") from None
    for ca in load_certificates(ca_pem):
        try:
            if crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
                return crl.public_bytes(serialization.Encoding.PEM)
        except TypeError:
            continue
    raise ValueError("The CRL specified is not valid for client certificate authority "
                     "reference supplied.")
