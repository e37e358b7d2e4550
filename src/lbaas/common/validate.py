"""Grammar checks for the free-form strings tenants send.

Each function returns None and raises ``ValueError`` with a short reason if
the value is not acceptable; a value must match whole (a trailing line break
is not let through). The rules follow Octavia's ``octavia.common.validate``
and ``constants`` (URL, URL path, HTTP header name/value, cookie name/value,
domain name, expected codes, regex, distinguished name field), tightened
where a value reaches an HAProxy configuration: control characters and white
space are refused in URLs and paths. There is one grammar per kind of value:
the API uses them to refuse bad input (400), the renderer to check what it
writes, and it escapes what remains special to HAProxy's parser (``#``,
quotes, backslash, spaces).

Regular expressions are compiled by the engine HAProxy uses, PCRE2 (the
system's ``libpcre2-8``, which Debian's HAProxy 2.6 links), with the options
HAProxy gives it: what compiles here compiles in HAProxy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import re
from urllib.parse import urlsplit

LOG = logging.getLogger(__name__)

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
# Every control character, TAB included: HAProxy's configuration takes none.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# RFC 3986: unreserved / pct-encoded / sub-delims / ":" / "@" / "/" / "?"
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/?#\[\]]*")
_PATH_CHARS = re.compile(r"/[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*")
# RFC 7230 token: header names; RFC 6265 makes cookie names tokens too
# (Octavia refuses the same characters in a session persistence cookie name).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 7230 field-value: visible ASCII without spaces, or a quoted string
# that may hold spaces (Octavia's HTTP_(QUOTED_)HEADER_VALUE_REGEX, without
# the tab it allows: no control character reaches HAProxy's configuration).
_VISIBLE = re.compile(r"[!-~]+")
_QUOTED = re.compile(r'"[ -~]*"')
# RFC 6265 cookie-octet: visible ASCII but '"', ',', ';' and '\'.
_COOKIE_OCTETS = re.compile(r"[!#-+\--:<-\[\]-~]+")
# Octavia's DOMAIN_NAME_REGEX: labels of 1-63 chars, total at most 253.
_DOMAIN_NAME = re.compile(
    r"(?=.{1,253}\.?\Z)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|\Z))+")
# Octavia's expected_codes: "200", "200,202", "200-204".
_EXPECTED_CODES = re.compile(r"\d{3}(\s*,\s*\d{3})*|\d{3}-\d{3}")
# Octavia's VALID_CIPHER_RE: an OpenSSL cipher string.
_CIPHER_STRING = re.compile(r"[A-Za-z0-9\-+!:@=_.]+")
# octavia-lib's DISTINGUISHED_NAME_FIELD_REGEX: "CN", "OU", "st-1".
_DN_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def url(value: str) -> None:
    """An absolute http(s) URL with a host (L7 redirect_url / redirect_prefix)."""
    if _CONTROL_OR_SPACE.search(value) or not _URI_CHARS.fullmatch(value):
        raise ValueError("Value must be a valid URL string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("Value must be a valid URL string")


def url_path(value: str) -> None:
    """A URL path starting with "/" (health monitor url_path), query allowed."""
    if _CONTROL_OR_SPACE.search(value) or not _PATH_CHARS.fullmatch(value):
        raise ValueError("Value must be a valid URL Path string")


def header_name(value: str) -> None:
    """An HTTP header name (RFC 7230 token)."""
    if not _TOKEN.fullmatch(value):
        raise ValueError("Value must be a valid HTTP header name")


def header_value(value: str) -> None:
    """An HTTP header value: visible characters, or a quoted string with spaces.

    Quotes, backslashes and ``#`` are allowed (RFC 7230); the renderer
    escapes them for HAProxy.
    """
    if not (_VISIBLE.fullmatch(value) or _QUOTED.fullmatch(value)):
        raise ValueError("Value must be a valid HTTP header value")


def cookie_name(value: str) -> None:
    """A cookie name (APP_COOKIE persistence, an L7 COOKIE rule's key): an RFC 6265 token."""
    if not _TOKEN.fullmatch(value):
        raise ValueError("Value must be a valid cookie name")


def cookie_value(value: str) -> None:
    """A cookie value (an L7 COOKIE rule's value): RFC 6265 cookie-octets."""
    if not _COOKIE_OCTETS.fullmatch(value):
        raise ValueError("Value must be a valid cookie value")


def domain_name(value: str) -> None:
    """A DNS name (health monitor domain_name)."""
    if not _DOMAIN_NAME.fullmatch(value):
        raise ValueError("Value must be a valid domain name")


def expected_codes(value: str) -> None:
    """HTTP status codes: "200", "200,202" or "200-204"."""
    if not _EXPECTED_CODES.fullmatch(value):
        raise ValueError("Value must be a code, a comma-separated list of codes "
                         "or a range of codes (200, 200,202, 200-204)")


def cipher_string(value: str) -> None:
    """An OpenSSL cipher string (TLS ciphers of listeners and pools)."""
    if not _CIPHER_STRING.fullmatch(value):
        raise ValueError("Invalid characters in cipher string. Only alphanumeric, -, +, !, :, "
                         "@, =, _, and . are allowed.")


def dn_field(value: str) -> None:
    """A distinguished name field of a client certificate (an L7 SSL_DN_FIELD rule's key)."""
    if not _DN_FIELD.fullmatch(value):
        raise ValueError("Value must be a distinguished name field")


def no_nul(value: str) -> None:
    """No NUL character (PostgreSQL cannot store one): every request string."""
    if "\x00" in value:
        raise ValueError("Value must not contain NUL characters")


def no_control_characters(value: str) -> None:
    """Printable text on one line, no TAB (L7 rule keys and values)."""
    if _CONTROL.search(value):
        raise ValueError("Value must not contain control characters or line breaks")


def regex(value: str) -> None:
    """A regular expression HAProxy accepts in an ACL (``-m reg``).

    Compiled by the system's PCRE2 as HAProxy 2.6 compiles it
    (``regex_comp()``: no auto-capture, then JIT), so that Python-only
    syntax (``\\u0041``, ``\\N{...}``, quantifiers over 65535) is refused here
    rather than by HAProxy. Without libpcre2-8 on this host, Python's ``re``
    decides (and a warning is logged once).
    """
    error = _pcre2_error(value)
    if error is not None:
        raise ValueError(f"Unable to parse regular expression: {error}")


# pcre2.h: compile options and the JIT flag HAProxy passes.
_PCRE2_NO_AUTO_CAPTURE = 0x00002000
_PCRE2_JIT_COMPLETE = 0x00000001
_PCRE2_ERROR_JIT_BADOPTION = -45


@functools.cache
def _pcre2() -> ctypes.CDLL | None:
    """The system's libpcre2-8, with the signatures used here; None if absent."""
    name = ctypes.util.find_library("pcre2-8")
    if name is None:
        LOG.warning("libpcre2-8 not found: regular expressions are checked with Python's re, "
                    "which accepts some that HAProxy refuses")
        return None
    lib = ctypes.CDLL(name)
    lib.pcre2_compile_8.restype = ctypes.c_void_p
    lib.pcre2_compile_8.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                    ctypes.POINTER(ctypes.c_int),
                                    ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p]
    lib.pcre2_jit_compile_8.restype = ctypes.c_int
    lib.pcre2_jit_compile_8.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.pcre2_code_free_8.restype = None
    lib.pcre2_code_free_8.argtypes = [ctypes.c_void_p]
    lib.pcre2_get_error_message_8.restype = ctypes.c_int
    lib.pcre2_get_error_message_8.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    return lib


def _pcre2_error(value: str) -> str | None:
    """Why PCRE2 (or, without it, Python's re) refuses ``value``; None if it compiles."""
    lib = _pcre2()
    if lib is None:
        try:
            re.compile(value)
        except re.error as e:
            return str(e)
        return None
    pattern = value.encode("utf-8", "surrogatepass")
    errcode, offset = ctypes.c_int(), ctypes.c_size_t()
    code = lib.pcre2_compile_8(pattern, len(pattern), _PCRE2_NO_AUTO_CAPTURE,
                               ctypes.byref(errcode), ctypes.byref(offset), None)
    if not code:
        text = ctypes.create_string_buffer(256)
        lib.pcre2_get_error_message_8(errcode.value, text, len(text))
        return f"{text.value.decode()} at position {offset.value}"
    try:
        jit = lib.pcre2_jit_compile_8(code, _PCRE2_JIT_COMPLETE)
    finally:
        lib.pcre2_code_free_8(code)
    if jit < 0 and jit != _PCRE2_ERROR_JIT_BADOPTION:
        return "JIT compilation failed"
    return None
