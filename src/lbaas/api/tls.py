"""TLS settings and certificate references shared by listeners (towards clients) and
pools (towards members).

Both take ``tls_ciphers`` (an OpenSSL cipher string), ``tls_versions`` and
``alpn_protocols``, default them to the operator's ``[api_settings]`` defaults
(``default_listener_ciphers``, ``default_pool_tls_versions``, ...:
:class:`lbaas.config.TlsDefaults`) where TLS is used, and check them with the
rules and words of Octavia's ``common/validate.py``
(``check_cipher_prohibit_list``, ``check_tls_version_list``,
``check_tls_version_min``, ``check_alpn_protocols``).

Certificate references are checked with the certificate manager before
anything is stored (Octavia's ``_validate_tls_refs`` and
``_validate_client_ca_and_crl_refs``): each must exist and be the caller's
(else 400 naming the field), and its content must be usable (a certificate
that parses, is valid now and matches its key; a CA bundle; a CRL signed by
that CA), else 400 with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lbaas.api.policy import RequestContext
from lbaas.certificates import parse
from lbaas.certificates.base import Caller, CertificateError, CertificateNotFound, CertManager
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.common import validate
from lbaas.config import TlsDefaults

NAMES = ("tls_ciphers", "tls_versions", "alpn_protocols")


def listener_defaults(t: TlsDefaults) -> dict[str, Any]:
    """The values a null listener TLS setting takes (``default_listener_*``)."""
    return {"tls_ciphers": t.listener_ciphers, "tls_versions": list(t.listener_tls_versions),
            "alpn_protocols": list(t.listener_alpn_protocols)}


def pool_defaults(t: TlsDefaults) -> dict[str, Any]:
    """The values a null pool TLS setting takes (``default_pool_*``)."""
    return {"tls_ciphers": t.pool_ciphers, "tls_versions": list(t.pool_tls_versions),
            "alpn_protocols": list(t.pool_alpn_protocols)}


def with_defaults(values: Mapping[str, Any], defaults: Mapping[str, Any],
                  names: Iterable[str] = NAMES) -> dict[str, Any]:
    """``values`` with each null (or missing) setting among ``names`` set to its default."""
    out = dict(values)
    for name in names:
        if out.get(name) is None:
            default = defaults[name]
            out[name] = list(default) if isinstance(default, (list, tuple)) else default
    return out


def check_ciphers(ciphers: str | None, t: TlsDefaults | None = None) -> None:
    """Raise ValidationError (400) if an OpenSSL cipher string is empty, has unsafe
    characters or names a prohibited cipher (None: unset)."""
    if ciphers is None:
        return
    try:
        validate.cipher_string(ciphers)
    except ValueError as e:
        raise exc.ValidationError(detail=str(e)) from None
    banned = [x for x in ciphers.split(":") if t is not None and x in t.cipher_prohibit_list]
    if banned:
        raise exc.ValidationError(detail="The following ciphers have been prohibited by an "
                                         "administrator: " + ", ".join(banned))


def check_tls_versions(versions: list[str] | None, t: TlsDefaults | None = None) -> None:
    """Raise ValidationError (400) for an empty list, an unknown version, or one older
    than ``[api_settings] minimum_tls_version`` (None: unset)."""
    if versions is None:
        return
    if not versions:
        raise exc.ValidationError(detail=(
            "Empty TLS version list. Either specify at least one TLS version or remove this "
            "parameter to use the default."))
    unknown = [v for v in versions if v not in c.TLS_VERSIONS]
    if unknown:
        raise exc.ValidationError(detail="Invalid TLS versions: " + ", ".join(unknown))
    if t is not None and t.minimum_tls_version:
        floor = c.TLS_VERSIONS.index(t.minimum_tls_version)
        low = [v for v in versions if c.TLS_VERSIONS.index(v) < floor]
        if low:
            raise exc.ValidationError(detail="Requested TLS versions are less than the "
                                             f"minimum: {', '.join(low)} < "
                                             f"{t.minimum_tls_version}")


def check_alpn_protocols(protocols: list[str] | None) -> None:
    """Raise ValidationError (400) for an empty list (None: unset; the schema
    checks each protocol)."""
    if protocols is not None and not protocols:
        raise exc.ValidationError(detail=(
            "Empty ALPN protocol list. Either specify at least one ALPN protocol or remove "
            "this parameter to use the default."))


# -- certificate references ----------------------------------------------------------

def caller_of(ctx: RequestContext) -> Caller:
    """The caller as the certificate manager sees it (its project, its Keystone token)."""
    return Caller(project_id=ctx.project_id, auth_token=ctx.identity.auth_token)


def _refused(field: str, ref: str, reason: str) -> exc.InvalidInput:
    return exc.InvalidInput(field=field, value=ref, detail=reason)


def check_certificate(manager: CertManager, caller: Caller, field: str, ref: str) -> None:
    """A certificate reference (PKCS#12 secret or certificate container) must name a
    usable certificate of the caller, valid now. Raises InvalidInput (400) naming
    ``field``."""
    try:
        manager.grant(caller, ref)
        cert = manager.get_cert(caller, ref)
        parse.check_dates(cert)
    except CertificateNotFound:
        raise _refused(field, ref, "Could not retrieve certificate: not found.") from None
    except CertificateError as e:
        raise _refused(field, ref, e.reason) from None
    except ValueError as e:
        raise _refused(field, ref, str(e)) from None


def check_ca_and_crl(manager: CertManager, caller: Caller, ca_field: str, ca_ref: str | None,
                     crl_field: str, crl_ref: str | None) -> None:
    """A CA secret must hold PEM certificates and a CRL secret a CRL signed by that CA.

    Raises InvalidInput (400) naming the field.
    """
    if not ca_ref:
        return
    ca_pem = _secret(manager, caller, ca_field, ca_ref)
    try:
        ca = parse.ca_bundle(ca_pem)
    except ValueError as e:
        raise _refused(ca_field, ca_ref, str(e)) from None
    if crl_ref:
        crl = _secret(manager, caller, crl_field, crl_ref)
        try:
            parse.crl_for(crl, ca)
        except ValueError as e:
            raise _refused(crl_field, crl_ref, str(e)) from None


def _secret(manager: CertManager, caller: Caller, field: str, ref: str) -> bytes:
    try:
        manager.grant(caller, ref)
        return manager.get_secret(caller, ref)
    except CertificateNotFound:
        raise _refused(field, ref, "Could not retrieve secret: not found.") from None
    except CertificateError as e:
        raise _refused(field, ref, e.reason) from None
