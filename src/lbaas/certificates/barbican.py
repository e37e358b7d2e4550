"""``barbican_cert_manager``: certificates from OpenStack Barbican, read as Octavia reads them.

A certificate reference names a Barbican secret holding a PKCS#12 bundle
(or PEM certificate and key), or a Barbican certificate container
(``certificate``, ``private_key``, ``intermediates``,
``private_key_passphrase``); a CA or CRL reference names a secret holding
PEM text. Reads go through python-barbicanclient on a keystoneauth session;
Barbican is found in the service user's Keystone catalog (``key-manager``,
``[certificates] region_name`` / ``endpoint_type``).

Who reads, and when (Octavia's ``barbican_acl_auth`` flow):

- **At the API** (a listener or pool is created or updated), with the
  **caller's Keystone token** (keystonemiddleware's ``X-Auth-Token``, sent to
  Barbican as it is, with no rescoping round trip to Keystone): the
  reference is read and checked, so a reference of another project, or one
  that does not exist, is refused with 400 naming the field before anything
  is stored; then, still as the caller, lbaas's service user is added to
  the read ACL of the secret (or of the container and each of its secrets)
  — :meth:`BarbicanCertManager.grant`.
- **In the worker** (each apply), as **lbaas's service user** (``[service_auth]``,
  keystoneauth's options as in Octavia), which the ACL lets read the
  material: the worker has no caller's token, and a token would have
  expired by the time a load balancer is rebuilt or failed over.
- **After a restart**, HAProxy serves the PEM files already on disk (their
  digests are in the redacted ``spec.json``, :mod:`lbaas.dataplane.spec`);
  Barbican is read again at the next apply.

Nothing read from Barbican is stored in lbaas's database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lbaas.certificates import parse
from lbaas.certificates.base import (
    Caller,
    CertificateError,
    CertificateNotFound,
    TLSCertificate,
)
from lbaas.common.service_auth import service_session

CONTAINER_PARTS = ("certificate", "private_key", "intermediates", "private_key_passphrase")


def _is_container(ref: str) -> bool:
    return "/containers/" in ref


def _bytes(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else str(payload).encode()


class BarbicanCertManager:
    """Reads references from Barbican (see the module docstring and :class:`CertManager`).

    ``config_files`` are lbaas's INI files: ``[service_auth]`` (keystoneauth
    auth and session options: ``auth_type``, ``auth_url``, ``username``,
    ``password``, ``project_name``, ...) is lbaas's service user; ``region_name``
    and ``interface`` pick Barbican's endpoint in the catalog.
    """

    def __init__(self, config_files: Sequence[str], region_name: str | None = None,
                 interface: str = "public") -> None:
        """Raises ValueError if ``[service_auth]`` names no usable credentials."""
        # The service user's session: made once, it renews its own token.
        self._service_session = service_session(config_files, "barbican_cert_manager")
        self._region = region_name
        self._interface = interface

    def bound(self, session: Any) -> BarbicanCertManager:
        """Itself (it reads no database)."""
        return self

    # -- sessions ------------------------------------------------------------------------
    def _client(self, caller: Caller, ref: str) -> Any:
        """A Barbican client acting as ``caller``: its token, or the service user."""
        from barbicanclient import client

        endpoint = self._endpoint(ref)
        if caller.project_id is None:
            session = self._service_session
        elif caller.auth_token:
            from keystoneauth1 import session as ks_session
            from keystoneauth1 import token_endpoint

            # The caller's token as it is (Barbican's auth_token validates it), at the
            # endpoint of the service user's catalog: no Keystone round trip here.
            service = self._service_session
            session = ks_session.Session(auth=token_endpoint.Token(endpoint, caller.auth_token),
                                         verify=service.verify, cert=service.cert,
                                         timeout=service.timeout)
        else:
            raise CertificateError(ref, "Barbican references are read with the caller's "
                                        "Keystone token: lbaas needs auth_strategy = "
                                        "keystone.")
        return client.Client(session=session, endpoint=endpoint)

    def _endpoint(self, ref: str) -> str:
        """Barbican's endpoint in the catalog (keystoneauth caches the service token and
        its catalog)."""
        endpoint = self._call(ref, "find Barbican", lambda: self._service_session.get_endpoint(
            service_type="key-manager", interface=self._interface, region_name=self._region))
        if not endpoint:
            raise CertificateError(ref, "No key-manager (Barbican) endpoint in the catalog.")
        return str(endpoint)

    def _call(self, ref: str, what: str, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, Barbican's refusals turned into CertificateNotFound /
        CertificateError with ``ref``."""
        from barbicanclient import exceptions as bexc

        try:
            return fn(*args)
        except bexc.HTTPClientError as e:
            if e.status_code in (401, 403, 404):
                raise CertificateNotFound(ref, "Not found.") from None
            raise CertificateError(ref, f"Barbican refused to {what}: {e}") from None
        except (bexc.HTTPServerError, bexc.HTTPAuthError) as e:
            raise CertificateError(ref, f"Barbican failed to {what}: {e}") from None
        except (ValueError, LookupError) as e:  # a malformed reference
            raise CertificateNotFound(ref, str(e)) from None
        except CertificateError:
            raise
        except Exception as e:  # keystoneauth: connection refused, no endpoint, ...
            raise CertificateError(ref, f"Cannot reach Barbican to {what}: {e}") from None

    # -- reading -------------------------------------------------------------------------
    def get_cert(self, caller: Caller, ref: str) -> TLSCertificate:
        """The certificate of a certificate container or of a PKCS#12 (or PEM) secret."""
        bc = self._client(caller, ref)
        if _is_container(ref):
            from barbicanclient.v1.containers import CertificateContainer

            def parts() -> dict[str, bytes]:
                container = bc.containers.get(ref)
                if not isinstance(container, CertificateContainer):
                    raise CertificateError(ref, "The container is not of type certificate.")
                found = {name: getattr(container, name) for name in CONTAINER_PARTS}
                return {name: _bytes(secret.payload) for name, secret in found.items()
                        if secret is not None}

            got = self._call(ref, "read the container", parts)
            if "certificate" not in got:
                raise CertificateError(ref, "The container has no certificate.")
            try:
                return parse.certificate_from_parts(
                    got["certificate"], got.get("private_key"), got.get("intermediates"),
                    got.get("private_key_passphrase"))
            except ValueError as e:
                raise CertificateError(ref, str(e)) from None
        payload = self._call(ref, "read the secret", lambda: _bytes(bc.secrets.get(ref).payload))
        try:
            return parse.certificate_from_payload(payload)
        except ValueError as e:
            raise CertificateError(ref, str(e)) from None

    def get_secret(self, caller: Caller, ref: str) -> bytes:
        """The payload of a secret (a CA bundle or a CRL)."""
        bc = self._client(caller, ref)
        return bytes(self._call(ref, "read the secret",
                                lambda: _bytes(bc.secrets.get(ref).payload)))

    def grant(self, caller: Caller, ref: str) -> None:
        """Add lbaas's service user to the read ACL of ``ref`` (and, for a container, of
        each of its secrets), acting as ``caller`` (Octavia's ``ensure_secret_access``)."""
        if caller.project_id is None:
            return
        bc = self._client(caller, ref)
        user_id = self._call(ref, "find lbaas's service user",
                             lambda: self._service_session.get_user_id())
        refs = [ref]
        if _is_container(ref):
            container = self._call(ref, "read the container", bc.containers.get, ref)
            refs += [s for s in (getattr(container, "secret_refs", None) or {}).values()]
        for one in refs:
            def add(one: str = one) -> None:
                acl = bc.acls.get(one)
                if user_id not in acl.read.users:
                    acl.read.users.append(user_id)
                    acl.submit()
            self._call(ref, "grant lbaas read access", add)
