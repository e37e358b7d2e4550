"""``local_cert_manager``: certificates from lbaas's own store (:mod:`lbaas.certificates.store`).

A caller reads only its project's secrets and containers (as in Barbican
without ACLs); the service (the worker, :data:`~lbaas.certificates.base.SERVICE`)
reads any, so nothing needs granting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from lbaas.certificates import parse, store
from lbaas.certificates.base import (
    Caller,
    CertificateError,
    CertificateNotFound,
    TLSCertificate,
)
from lbaas.db import models as m

CONTAINER_PARTS = ("certificate", "private_key", "intermediates", "private_key_passphrase")


class LocalCertManager:
    """Reads references of this service's ``/v1`` store (see :class:`CertManager`)."""

    def __init__(self, sessions: sessionmaker[Session], box: store.SecretBox,
                 session: Session | None = None) -> None:
        self.sessions = sessions
        self.box = box
        self._session = session

    def bound(self, session: Any) -> LocalCertManager:
        """This manager reading through ``session``."""
        return LocalCertManager(self.sessions, self.box, session)

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        if self._session is not None:
            yield self._session
        else:
            with self.sessions() as session:
                yield session

    def _mine(self, caller: Caller, project_id: str) -> bool:
        return caller.project_id is None or caller.project_id == project_id

    def _payload(self, ref: str, secret: m.Secret) -> bytes:
        if secret.payload is None:
            raise CertificateError(ref, f"Secret {secret.id} has no payload.")
        try:
            return self.box.open(secret.id, secret.payload)
        except store.StoreKeyError as e:
            raise CertificateError(ref, f"Secret {secret.id} cannot be decrypted: {e}") \
                from None

    def get_cert(self, caller: Caller, ref: str) -> TLSCertificate:
        """A certificate container's parts, or a PKCS#12 (or PEM) secret, checked."""
        with self._reading() as session:
            container = store.find_container(session, ref)
            if container is not None and self._mine(caller, container.project_id):
                if container.type != "certificate":
                    raise CertificateError(ref, f"Container {container.id} is of type "
                                                f"{container.type}, not certificate.")
                parts: dict[str, bytes] = {}
                for cs in container.secret_refs:
                    secret = session.get(m.Secret, cs.secret_id)
                    if secret is not None and cs.name in CONTAINER_PARTS:
                        parts[str(cs.name)] = self._payload(ref, secret)
                if "certificate" not in parts:
                    raise CertificateError(ref, f"Container {container.id} has no certificate.")
                try:
                    return parse.certificate_from_parts(
                        parts["certificate"], parts.get("private_key"),
                        parts.get("intermediates"), parts.get("private_key_passphrase"))
                except ValueError as e:
                    raise CertificateError(ref, str(e)) from None
            secret = store.find_secret(session, ref)
            if secret is None or not self._mine(caller, secret.project_id):
                raise CertificateNotFound(ref, "Not found.")
            payload = self._payload(ref, secret)
        try:
            return parse.certificate_from_payload(payload)
        except ValueError as e:
            raise CertificateError(ref, str(e)) from None

    def get_secret(self, caller: Caller, ref: str) -> bytes:
        """The decrypted payload of a secret."""
        with self._reading() as session:
            secret = store.find_secret(session, ref)
            if secret is None or not self._mine(caller, secret.project_id):
                raise CertificateNotFound(ref, "Not found.")
            return self._payload(ref, secret)

    def grant(self, caller: Caller, ref: str) -> None:
        """Nothing to grant: the service reads its own store."""
