"""The certificate manager boundary: references in, checked PEM material out.

Kinds of reference (Octavia's): a *certificate* reference
(``default_tls_container_ref``, ``sni_container_refs``, a pool's
``tls_container_ref``) names a secret holding a PKCS#12 bundle or a
certificate container (certificate, private_key, intermediates,
private_key_passphrase); a *secret* reference (client and pool CA, CRL)
names a secret holding PEM text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lbaas.common.exceptions import LbaasError


class CertificateError(LbaasError):
    """A reference cannot be used: ``reason`` says why (shown to the tenant)."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"{ref}: {reason}")


class CertificateNotFound(CertificateError):
    """The reference names nothing the caller may read."""


@dataclass(frozen=True)
class Caller:
    """Who asks: ``project_id`` (None: the service itself, which reads any
    project's objects) and the caller's Keystone token when there is one."""

    project_id: str | None
    auth_token: str | None = None


SERVICE = Caller(project_id=None)


@dataclass(frozen=True)
class TLSCertificate:
    """A checked certificate with its chain and key, all PEM (bytes).

    ``private_key`` is unencrypted PKCS#8 PEM. ``host_names`` are the names
    SNI can match (CN and DNS subjectAltNames, lower case); ``not_before`` and
    ``not_after`` the certificate's validity (UTC).
    """

    certificate: bytes
    private_key: bytes
    intermediates: tuple[bytes, ...] = ()
    host_names: tuple[str, ...] = ()
    not_before: datetime | None = None
    not_after: datetime | None = None

    def bundle(self) -> bytes:
        """The PEM file HAProxy loads (``crt``): certificate, intermediates, key."""
        parts = [self.certificate, *self.intermediates, self.private_key]
        return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)


class CertManager(Protocol):
    """A source of certificates (Octavia's ``cert_manager``).

    Every method raises :class:`CertificateNotFound` for a reference that
    does not exist or that ``caller`` may not read, and
    :class:`CertificateError` for content that cannot be used.
    """

    def get_cert(self, caller: Caller, ref: str) -> TLSCertificate:
        """The certificate, chain and key of a PKCS#12 secret or certificate container."""

    def get_secret(self, caller: Caller, ref: str) -> bytes:
        """The payload of a secret (a CA bundle or a CRL in PEM)."""

    def grant(self, caller: Caller, ref: str) -> None:
        """Let the service read ``ref`` later on the caller's behalf (Barbican ACLs);
        a no-op where the service reads everything."""

    def bound(self, session: Any) -> CertManager:
        """This manager reading through ``session`` (an API request's transaction: on
        SQLite a second writer would wait for it) where it reads the database; a
        manager that does not returns itself."""
