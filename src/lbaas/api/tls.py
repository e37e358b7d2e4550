"""TLS settings shared by listeners (towards clients) and pools (towards members).

Both take ``tls_ciphers`` (an OpenSSL cipher string), ``tls_versions`` and
``alpn_protocols``, default them to Octavia's ``[api_settings]`` defaults
(:data:`lbaas.common.constants.DEFAULT_TLS_CIPHERS`, ...) where TLS is used,
and check them with the rules and words of Octavia's
``common/validate.py`` (``check_cipher_prohibit_list``,
``check_tls_version_list``, ``check_alpn_protocols``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.common import validate

# The defaults a null (or missing) setting takes where TLS is used.
DEFAULTS: Mapping[str, Any] = {
    "tls_ciphers": c.DEFAULT_TLS_CIPHERS,
    "tls_versions": c.DEFAULT_TLS_VERSIONS,
    "alpn_protocols": c.DEFAULT_ALPN_PROTOCOLS,
}


def with_defaults(values: Mapping[str, Any], names: Iterable[str] = tuple(DEFAULTS),
                  ) -> dict[str, Any]:
    """``values`` with each null (or missing) setting among ``names`` set to its default."""
    out = dict(values)
    for name in names:
        if out.get(name) is None:
            default = DEFAULTS[name]
            out[name] = list(default) if isinstance(default, tuple) else default
    return out


def check_ciphers(ciphers: str | None) -> None:
    """Raise ValidationError (400) if an OpenSSL cipher string is empty or has
    unsafe characters (None: unset)."""
    if ciphers is not None:
        try:
            validate.cipher_string(ciphers)
        except ValueError as e:
            raise exc.ValidationError(detail=str(e)) from None


def check_tls_versions(versions: list[str] | None) -> None:
    """Raise ValidationError (400) for an empty list or an unknown version (None: unset)."""
    if versions is None:
        return
    if not versions:
        raise exc.ValidationError(detail=(
            "Empty TLS version list. Either specify at least one TLS version or remove this "
            "parameter to use the default."))
    unknown = [v for v in versions if v not in c.TLS_VERSIONS]
    if unknown:
        raise exc.ValidationError(detail="Invalid TLS versions: " + ", ".join(unknown))


def check_alpn_protocols(protocols: list[str] | None) -> None:
    """Raise ValidationError (400) for an empty list (None: unset; the schema
    checks each protocol)."""
    if protocols is not None and not protocols:
        raise exc.ValidationError(detail=(
            "Empty ALPN protocol list. Either specify at least one ALPN protocol or remove "
            "this parameter to use the default."))
