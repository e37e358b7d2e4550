"""A throwaway PKI for tests, demos and benchmarks: CAs, server and client
certificates, CRLs, PKCS#12 bundles (all made with ``cryptography``).

Keys are P-256 (fast to make). Everything is PEM bytes unless a name says
otherwise::

    ca = Authority.new("Test CA")
    leaf = ca.issue("www.example.com", "example.com")     # a server certificate
    client = ca.issue("alice", client=True)
    crl = ca.crl(revoked=[client])
    bundle = leaf.pkcs12()                                  # for a Barbican secret
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Issued:
    """A certificate with its key and the chain above it (issuer first)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        """The key in PKCS#8 PEM, encrypted with ``passphrase`` if given."""
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, enc)

    def pem_bundle(self) -> bytes:
        """Certificate, chain and key in one PEM file (what HAProxy and curl load)."""
        return self.cert_pem + self.chain_pem + self.key_pem()

    def pkcs12(self, passphrase: bytes | None = None, name: bytes = b"lbaas") -> bytes:
        """A PKCS#12 bundle of certificate, key and chain (Octavia's secret form)."""
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase
            else serialization.NoEncryption())
        return pkcs12.serialize_key_and_certificates(name, self.key, self.cert,
                                                     self.chain or None, enc)

    @property
    def sha1_hex(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex()


@dataclass
class Authority(Issued):
    """A CA that issues certificates."""

    @classmethod
    def new(cls, name: str = "lbaas test CA", parent: Authority | None = None) -> Authority:
        """A root CA, or an intermediate one under ``parent``."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer = parent.cert.subject if parent else subject
        sign_key = parent.key if parent else key
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - DAY).not_valid_after(now + 3650 * DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(sign_key, hashes.SHA256()))
        chain = [parent.cert, *parent.chain] if parent else []
        return cls(cert=cert, key=key, chain=chain)

    def issue(self, common_name: str, *dns_names: str, client: bool = False,
              not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None,
              san_ips: tuple[str, ...] = ()) -> Issued:
        """A leaf certificate for ``common_name`` (and ``dns_names`` as subjectAltNames)."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in (dns_names or (
            () if client else (common_name,)))]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in san_ips]
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                               common_name)]))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or now - DAY)
                   .not_valid_after(not_after or now + 365 * DAY)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.CLIENT_AUTH if client
                        else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert=cert, key=key, chain=[self.cert, *self.chain][:1]
                      if self.chain else [])

    def crl(self, revoked: list[Issued] | None = None) -> bytes:
        """A PEM CRL of this CA revoking ``revoked``."""
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now - DAY).next_update(now + 30 * DAY))
        for item in revoked or []:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(item.cert.serial_number)
                .revocation_date(now - DAY).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
