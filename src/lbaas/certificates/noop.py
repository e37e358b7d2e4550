"""``noop_cert_manager``: every reference names one certificate made at start (Octavia's
noop cert manager), for API tests that pass made-up references (octavia-tempest-plugin
with ``test_with_noop``). Not for production: nothing is checked.
"""

from __future__ import annotations

from typing import Any

from lbaas.certificates import parse
from lbaas.certificates.base import Caller, TLSCertificate
from lbaas.testing.pki import Authority


class NoopCertManager:
    """Any certificate reference: one generated certificate; any secret reference: its CA
    and a CRL of that CA in one PEM (usable as a CA bundle and as a CRL)."""

    def __init__(self) -> None:
        ca = Authority.new("lbaas noop CA")
        self._cert = parse.certificate_from_pkcs12(ca.issue("noop.example.com").pkcs12())
        self._secret = ca.cert_pem + ca.crl()

    def get_cert(self, caller: Caller, ref: str) -> TLSCertificate:
        """The one certificate."""
        return self._cert

    def get_secret(self, caller: Caller, ref: str) -> bytes:
        """The CA and its CRL (PEM)."""
        return self._secret

    def grant(self, caller: Caller, ref: str) -> None:
        """Nothing to grant."""

    def bound(self, session: Any) -> NoopCertManager:
        """Itself (no database)."""
        return self
