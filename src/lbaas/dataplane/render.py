"""Spec -> haproxy.cfg: transform into frozen views, then render the template, whole.

One configuration per load balancer holds all its listeners, as Octavia's
"combined listeners" template does:

- a ``frontend <listener id>`` per enabled listener (none if the load
  balancer is disabled);
- a ``backend <pool id>:<listener id>`` per enabled pool a listener uses
  (its default pool and the pools of its REDIRECT_TO_POOL L7 policies). A pool
  shared by two listeners gets a backend for each, because the listener's
  member timeouts and inserted headers belong in the backend (Octavia names
  and splits backends the same way);
- a ``server <member id>`` per member of the pool.

:func:`build_view` does every decision in Python: which objects appear,
HAProxy's keyword for each Octavia value, defaults, and the option lists of
each ``server`` line (also what the runtime API's ``add server`` receives).
The template (``templates/haproxy.cfg.j2``) is the single source of the
text's layout and keywords; it only tests presence and joins lists.
:func:`render` is a pure function of ``(spec, paths, tuning)``.

Injection safety. A value reaches the text only if it is one of:

- from a closed set (modes, algorithms, HTTP methods, keywords);
- a number range-checked here;
- an IP address or network parsed by :mod:`ipaddress` and re-printed;
- an object id matching :data:`ID_RE` (names and descriptions never
  appear: objects are named by id);
- a free-form string (URL path, domain name, cookie name, header name, L7
  values, redirect URLs) that was checked here (no control characters, the
  field's grammar from :mod:`lbaas.common.validate`) and is written through
  :func:`cfg_word` (HAProxy manual, section 2.2 "Quoting and escaping"),
  after :func:`sample_arg` for arguments inside ``fetch(...)`` and
  :func:`log_format` for log-format strings.

TLS. A listener that terminates TLS (TERMINATED_HTTPS, or PROMETHEUS with
certificates) binds with ``ssl crt-list certs/<listener id>.crtlist``: the
default certificate's file first (HAProxy serves it to clients without SNI
or with an unknown name), then each SNI certificate's (HAProxy picks by the
certificate's CN and DNS names); client authentication is ``ca-file`` with
``verify none|optional|required`` (Octavia's NONE/OPTIONAL/MANDATORY) and an
optional ``crl-file``; ``ciphers``, ``no-<version>`` for each version not
allowed and ``alpn`` follow the listener's settings. A pool with
``tls_enabled`` gets ``ssl`` on its servers, with ``crt`` (a client
certificate), ``ca-file`` and ``verify required`` (else ``verify none``),
``crl-file``, ``sni ssl_fc_sni`` and its own ciphers, versions and ALPN.
Certificate files are named by :func:`lbaas.dataplane.spec.tls_file_name`
from the references, relative to the load balancer's directory;
:func:`tls_files` gives the files a configuration needs (the PEMs of the
spec and the crt-lists).

The environment uses ``StrictUndefined``, no autoescape, and a ``finalize``
hook that refuses any expression whose value would span two lines.
Unsupported features raise :class:`RenderError` (the driver's ``validate``
reports the same refusals to the API first).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from lbaas.common import constants as c
from lbaas.common import validate
from lbaas.dataplane.errors import RenderError
from lbaas.dataplane.spec import (
    TLS_CA,
    TLS_CERT,
    TLS_CRL,
    HealthMonitorSpec,
    L7PolicySpec,
    L7RuleSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
    tls_file_name,
)

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "haproxy.cfg.j2"

# Object ids become proxy, server and ACL names: HAProxy allows letters,
# digits, '-', '_', '.' and ':' there (configuration manual, section 4).
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Octavia's listener/pool protocol -> HAProxy mode (jinja_cfg.PROTOCOL_MAP).
LISTENER_MODES = {c.HTTP: "http", c.TCP: "tcp", c.HTTPS: "tcp", c.PROMETHEUS: "http",
                  c.TERMINATED_HTTPS: "http"}
POOL_MODES = {c.HTTP: "http", c.TCP: "tcp", c.HTTPS: "tcp"}
PROXY_PROTOCOL_OPTION = {c.PROXY: "send-proxy", c.PROXYV2: "send-proxy-v2"}
# Octavia's lb_algorithm -> HAProxy "balance" (jinja_cfg.BALANCE_MAP).
BALANCE = {c.ROUND_ROBIN: "roundrobin", c.LEAST_CONNECTIONS: "leastconn",
           c.SOURCE_IP: "source"}
# "balance source" is a static (map-based) algorithm unless hashed
# consistently; only dynamic algorithms accept "add server" (management
# manual, "add server"), and consistent hashing also moves fewer clients when
# a member comes or goes.
HASH_TYPE = {c.SOURCE_IP: "consistent"}
# L7 compare types -> ACL match method (configuration manual 7.1.3).
MATCH = {"REGEX": "reg", "STARTS_WITH": "beg", "ENDS_WITH": "end", "CONTAINS": "sub",
         "EQUAL_TO": "str"}
HM_TYPES_SUPPORTED = (c.HM_HTTP, c.HM_HTTPS, c.HM_PING, c.HM_TCP, c.HM_TLS_HELLO)
L7RULE_TYPES_SUPPORTED = ("HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE",
                          "SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD")
L7RULE_TLS_TYPES = ("SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD")
CERTS_DIR = "certs"  # TLS files, in the load balancer's directory
# Octavia's client_authentication -> HAProxy "verify" (jinja_cfg.CLIENT_AUTH_MAP).
CLIENT_AUTH = {"NONE": "none", "OPTIONAL": "optional", "MANDATORY": "required"}
# Each TLS version HAProxy can refuse, and the bind/server keyword refusing it.
NO_TLS_VERSION = {"SSLv3": "no-sslv3", "TLSv1": "no-tlsv10", "TLSv1.1": "no-tlsv11",
                  "TLSv1.2": "no-tlsv12", "TLSv1.3": "no-tlsv13"}
# X-SSL-* headers (octavia-lib SUPPORTED_SSL_HEADERS) -> log-format values (Octavia's).
SSL_HEADERS = {
    "X-SSL-Client-Verify": "%[ssl_c_verify]",
    "X-SSL-Client-Has-Cert": "%[ssl_c_used]",
    "X-SSL-Client-DN": "%{+Q}[ssl_c_s_dn]",
    "X-SSL-Client-CN": "%{+Q}[ssl_c_s_dn(cn)]",
    "X-SSL-Issuer": "%{+Q}[ssl_c_i_dn]",
    "X-SSL-Client-SHA1": "%{+Q}[ssl_c_sha1,hex]",
    "X-SSL-Client-Not-Before": "%{+Q}[ssl_c_notbefore]",
    "X-SSL-Client-Not-After": "%{+Q}[ssl_c_notafter]",
}
HTTP_COOKIE_NAME = "SRV"  # the cookie HTTP_COOKIE persistence inserts (as Octavia)
DEFAULT_REDIRECT_CODE = 302
MAX_MAXCONN = c.MAX_CONNECTION_LIMIT  # Octavia's HAPROXY_MAX_MAXCONN
# HAProxy reads at most 64 words on a configuration line (MAX_LINE_ARGS):
# allowed_cidrs are split over several "acl allowed-cidr src ..." lines (ORed).
CIDRS_PER_LINE = 50


@dataclass(frozen=True)
class ConfigPaths:
    """Files the configuration points HAProxy at.

    Relative paths are relative to the load balancer's directory, which is
    HAProxy's working directory (it keeps UNIX socket paths short: the kernel
    limits them to 107 bytes).
    """

    stats_socket: str = "stats.sock"
    server_state_file: str = "servers.state"  # health states carried across reloads
    ping_command: str = "/usr/libexec/lbaas/ping-check"  # PING health monitors


@dataclass(frozen=True)
class Tuning:
    """Operator settings that shape the configuration (``[haproxy_amphora]``).

    Times: ``hard_stop_after`` in seconds; listener timeout defaults in
    milliseconds (used when a listener's value is 0, as Octavia does).
    """

    hard_stop_after: int = 60
    default_connection_limit: int = 50000  # a listener's maxconn when connection_limit is -1
    max_connections: int = MAX_MAXCONN  # ceiling of the global maxconn (fd limit)
    stick_size: str = "10k"  # entries of a persistence stick table (k, m, g suffixes)
    nbthread: int = 0  # 0: HAProxy's default (one thread per CPU)
    timeout_client_data: int = c.DEFAULT_TIMEOUT_CLIENT_DATA
    timeout_member_connect: int = c.DEFAULT_TIMEOUT_MEMBER_CONNECT
    timeout_member_data: int = c.DEFAULT_TIMEOUT_MEMBER_DATA


# -- views -----------------------------------------------------------------


@dataclass(frozen=True)
class ServerView:
    """One ``server`` line: ``server <name> <address> <options...>``.

    ``options`` are finished words, identical for haproxy.cfg and the runtime
    API's ``add server``; the other fields let the agent diff two views.
    """

    name: str
    address: str
    options: tuple[str, ...]
    host: str
    port: int
    weight: int
    enabled: bool
    backup: bool
    check: bool
    check_addr: str | None
    check_port: int | None
    cookie: bool  # carries "cookie <id>", which "add server" refuses in 2.6


@dataclass(frozen=True)
class MonitorView:
    """A pool's health monitor as backend directives. Times in seconds."""

    type: str
    timeout: int
    httpchk: bool
    method: str = "GET"
    url_path: str = "/"
    version: str | None = None  # "1.0" | "1.1"
    host: str | None = None  # Host header (HTTP/1.1 only)
    expect: str = "^200$"  # a regex over status codes
    ssl_hello: bool = False
    external_command: str | None = None  # PING: the external check's program


@dataclass(frozen=True)
class BackendView:
    """``backend <pool id>:<listener id>``. Timeouts in milliseconds."""

    name: str
    pool_id: str
    listener_id: str
    mode: str
    balance: str
    hash_type: str | None
    persistence: str | None  # SOURCE_IP | HTTP_COOKIE | APP_COOKIE
    stick_size: str
    cookie_store: str | None  # APP_COOKIE: "res.cook(<name>)", finished word
    cookie_match: str | None  # APP_COOKIE: "req.cook(<name>)", finished word
    monitor: MonitorView | None
    forwardfor: bool
    forwarded_port: bool
    forwarded_proto: str | None
    ssl_headers: tuple[tuple[str, str], ...]  # (header, log-format value), finished words
    timeout_connect: int
    timeout_server: int
    servers: tuple[ServerView, ...]

    @property
    def dynamic(self) -> bool:
        """True if servers may be added through the runtime API (no cookie per server)."""
        return self.persistence != c.SP_HTTP_COOKIE


@dataclass(frozen=True)
class AclView:
    """``acl <name> <fetch> <flags...> -- <value>`` (value raw; the template quotes it;
    None: a boolean fetch, no value)."""

    name: str
    fetch: str
    flags: tuple[str, ...]
    value: str | None


@dataclass(frozen=True)
class PolicyView:
    """An L7 policy: matched first-wins through ``txn.l7policy``; see the template."""

    id: str
    action: str
    condition: tuple[str, ...]  # ACL names, "!" prefixed when inverted
    backend: str | None = None
    redirect_url: str | None = None  # raw; log-format escaped and quoted by the template
    redirect_prefix: str | None = None
    code: int = DEFAULT_REDIRECT_CODE


@dataclass(frozen=True)
class FrontendView:
    """``frontend <listener id>``. Timeouts in milliseconds."""

    name: str
    mode: str
    maxconn: int
    binds: tuple[str, ...]
    bind_options: tuple[str, ...]  # finished words after each bind address (ssl ...)
    crt_list: tuple[str, ...]  # lines of certs/<name>.crtlist (default first); () if no TLS
    hsts: str | None  # Strict-Transport-Security value, finished word
    timeout_client: int
    inspect_delay: int
    allowed_cidrs: tuple[tuple[str, ...], ...]  # networks, CIDRS_PER_LINE per acl line
    prometheus: bool
    acls: tuple[AclView, ...]
    policies: tuple[PolicyView, ...]
    default_backend: str | None


@dataclass(frozen=True)
class LoadBalancerView:
    """Everything the template needs for one load balancer."""

    id: str
    stats_socket: str
    server_state_file: str
    maxconn: int
    hard_stop_after: int
    nbthread: int
    external_check: bool
    frontends: tuple[FrontendView, ...]
    backends: tuple[BackendView, ...] = field(default=())

    def backend(self, name: str) -> BackendView | None:
        """The backend called ``name``, or None."""
        return next((b for b in self.backends if b.name == name), None)


# -- escaping (configuration manual, section 2.2) --------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9_./:@%+=,!?&*~^|\[\]{}()<>;-]+$")
_PLAIN_ARG = re.compile(r"^[A-Za-z0-9_./:@%+=!?&*~^|-]+$")


def _strong_quote(value: str) -> str:
    # Inside '...' nothing is interpreted; a single quote is closed, written
    # escaped, and reopened ('it'\''s'), the parser joins the pieces.
    return "'" + value.replace("'", "'\\''") + "'"


def _no_controls(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise RenderError(f"{what} contains a control character or line break: {value!r}")
    return value


def cfg_word(value: str) -> str:
    """``value`` as exactly one haproxy.cfg word that the parser reads back verbatim.

    Plain words are left alone; anything else is strongly quoted. Raises
    :class:`RenderError` for control characters (no line may be split) and
    for the empty string.
    """
    _no_controls(value, "value")
    if not value:
        raise RenderError("an empty value cannot be written to the configuration")
    return value if _PLAIN_WORD.match(value) else _strong_quote(value)


def sample_arg(value: str) -> str:
    """``value`` as one argument inside ``fetch(...)`` (second quoting level).

    The argument parser splits on ``,`` and ``)`` and handles quotes like the
    top level (manual 2.2); the result still goes through :func:`cfg_word`
    as part of the whole expression.
    """
    _no_controls(value, "argument")
    if not value:
        raise RenderError("an empty argument cannot be written to the configuration")
    return value if _PLAIN_ARG.match(value) else _strong_quote(value)


def sample_expr(fetch: str, arg: str) -> str:
    """``fetch(arg)`` as one finished configuration word."""
    return cfg_word(f"{fetch}({sample_arg(arg)})")


def log_format(value: str) -> str:
    """``value`` as a log-format string that yields itself (``%`` doubled, manual 8.2.4)."""
    return value.replace("%", "%%")


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        raise RenderError(f"refusing to render a value spanning lines: {value!r}")
    return value


def words(values: Iterable[Any]) -> str:
    """``values`` as words joined by single spaces: what Jinja's ``join(" ")`` makes,
    without its wrapper that looks for an async environment on every call (issue 12:
    half the rendering time of a pool of 1,000 servers, 1.9 -> 1.0 ms)."""
    return " ".join(map(str, values))


def environment(**filters: Callable[..., str]) -> jinja2.Environment:
    """The Jinja2 environment of every configuration template here (``templates/``):
    no autoescape, ``StrictUndefined``, no value spanning lines, and ``filters``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.filters.update(filters)
    return env


_ENV = environment(q=cfg_word, logfmt=log_format, words=words)


# -- checks ------------------------------------------------------------------


def _id(value: str, what: str) -> str:
    if not ID_RE.match(value or ""):
        raise RenderError(f"{what} id {value!r} is not a valid identifier")
    return value


def _int(value: int, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RenderError(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


_Address = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str, str]


@functools.lru_cache(maxsize=65536)
def _parse_ip(value: str) -> _Address | None:
    """(address, its text, its text for a bind or server line: ``[v6]``), None if not one."""
    # No IPv6 zone ("fe80::1%eth0"): HAProxy reads none, and "%" is no address character.
    try:
        if "%" not in value:
            ip = ipaddress.ip_address(value)
            text = str(ip)
            return ip, text, f"[{text}]" if ip.version == 6 else text
    except ValueError:
        pass
    return None


def _address(value: str, what: str) -> _Address:
    # Parsed once per distinct string (cached): a pool of a thousand members is
    # rendered again on every change of one of them (issue 12).
    parsed = _parse_ip(value) if isinstance(value, str) else None
    if parsed is None:
        raise RenderError(f"{what} {value!r} is not an IP address")
    return parsed


def host_port(address: str, port: int, what: str) -> str:
    """``a.b.c.d:port`` or ``[v6]:port`` for bind and server lines."""
    host = _address(address, what)[2]
    _int(port, f"{what} port", c.MIN_PORT, c.MAX_PORT)
    return f"{host}:{port}"


def _host(address: str, what: str) -> str:
    return _address(address, what)[2]


def _grammar(check: Any, value: str, what: str) -> str:
    _no_controls(value, what)
    try:
        check(value)
    except ValueError as e:
        raise RenderError(f"{what} {value!r}: {e}") from None
    return value


def expected_codes_regex(codes: str) -> str:
    """Octavia's expected_codes ("200", "200,202", "200-204") as an anchored regex.

    The result has digits, ``|``, ``^``, ``(``, ``)`` and ``$`` only; for
    ``http-check expect rstatus``.
    """
    _grammar(validate.expected_codes, codes, "expected_codes")
    if "-" in codes:
        low, high = (int(x) for x in codes.split("-"))
        if low > high:
            raise RenderError(f"expected_codes range {codes!r} is empty")
        values = list(range(low, high + 1))
    else:
        values = [int(x) for x in codes.split(",")]
    if any(not 100 <= v <= 599 for v in values):
        raise RenderError(f"expected_codes {codes!r} holds a code outside 100-599")
    return "^(" + "|".join(str(v) for v in dict.fromkeys(values)) + ")$"


# -- transform -------------------------------------------------------------


def _ms(value: int, default: int, what: str) -> int:
    _int(value, what, c.MIN_TIMEOUT, c.MAX_TIMEOUT)
    return value or default  # 0 means "the default", as in Octavia


def _monitor(hm: HealthMonitorSpec, paths: ConfigPaths) -> MonitorView:
    if hm.type not in HM_TYPES_SUPPORTED:
        raise RenderError(f"health monitor type {hm.type} is not supported by HAProxy here")
    timeout = _int(hm.timeout, "health monitor timeout", 1, 24 * 24 * 3600)
    if hm.type in (c.HM_HTTP, c.HM_HTTPS):
        method = hm.http_method or "GET"
        if method not in c.HEALTH_MONITOR_HTTP_METHODS:
            raise RenderError(f"http_method {method!r} is not an HTTP method")
        version = None
        if hm.http_version is not None:
            if hm.http_version not in c.HTTP_VERSIONS:
                raise RenderError(f"http_version {hm.http_version!r} is not 1.0 or 1.1")
            version = f"{hm.http_version:.1f}"
        host = None
        if hm.domain_name is not None and version == "1.1":
            host = _grammar(validate.domain_name, hm.domain_name, "domain_name")
        return MonitorView(
            type=hm.type, timeout=timeout, httpchk=True, method=method,
            url_path=_grammar(validate.url_path, hm.url_path or "/", "url_path"),
            version=version, host=host,
            expect=expected_codes_regex(hm.expected_codes or "200"))
    if hm.type == c.HM_TLS_HELLO:
        return MonitorView(type=hm.type, timeout=timeout, httpchk=False, ssl_hello=True)
    if hm.type == c.HM_PING:
        return MonitorView(type=hm.type, timeout=timeout, httpchk=False,
                           external_command=paths.ping_command)
    return MonitorView(type=hm.type, timeout=timeout, httpchk=False)


def _tls_versions(versions: tuple[str, ...] | None, what: str) -> list[str]:
    """``no-<version>`` for each version not in ``versions`` (None: HAProxy's defaults)."""
    if versions is None:
        return []
    unknown = [v for v in versions if v not in NO_TLS_VERSION]
    if unknown or not versions:
        raise RenderError(f"{what} tls_versions {list(versions)!r} are not TLS versions")
    return [word for v, word in NO_TLS_VERSION.items() if v not in versions]


def _ciphers_alpn(ciphers: str | None, alpn: tuple[str, ...] | None, what: str) -> list[str]:
    out: list[str] = []
    if ciphers is not None:
        out += ["ciphers", cfg_word(_grammar(validate.cipher_string, ciphers,
                                             f"{what} tls_ciphers"))]
    if alpn:
        if any(p not in c.ALPN_PROTOCOLS for p in alpn):
            raise RenderError(f"{what} alpn_protocols {list(alpn)!r} are not ALPN protocols")
        out += ["alpn", ",".join(alpn)]
    return out


def _pool_tls(pool: PoolSpec) -> list[str]:
    """The TLS options of a TLS-enabled pool's servers (Octavia's member macro)."""
    if not pool.tls_enabled:
        return []
    opts = ["ssl"]
    if pool.tls_container_ref:
        opts += ["crt", f"{CERTS_DIR}/{tls_file_name(TLS_CERT, pool.tls_container_ref)}"]
    if pool.ca_tls_container_ref:
        opts += ["ca-file", f"{CERTS_DIR}/{tls_file_name(TLS_CA, pool.ca_tls_container_ref)}",
                 "verify", "required"]
        if pool.crl_container_ref:
            opts += ["crl-file",
                     f"{CERTS_DIR}/{tls_file_name(TLS_CRL, pool.crl_container_ref)}"]
    else:
        opts += ["verify", "none"]
    opts += ["sni", "ssl_fc_sni"]
    opts += _ciphers_alpn(pool.tls_ciphers, pool.alpn_protocols, "pool")
    opts += _tls_versions(pool.tls_versions, "pool")
    return opts


def _server(pool: PoolSpec, member: MemberSpec, monitor: HealthMonitorSpec | None,
            listener_tls: bool = False) -> ServerView:
    name = _id(member.id, "member")
    address = host_port(member.address, member.protocol_port, "member address")
    weight = _int(member.weight, "member weight", c.MIN_WEIGHT, c.MAX_WEIGHT)
    opts: list[str] = ["weight", str(weight)]
    check_addr = check_port = None
    if monitor is not None:
        opts.append("check")
        # A TLS pool's checks go over the servers' own TLS settings (and verify them).
        if monitor.type == c.HM_HTTPS and not pool.tls_enabled:
            opts += ["check-ssl", "verify", "none"]
        if pool.tls_enabled and pool.alpn_protocols:
            opts += ["check-alpn", ",".join(pool.alpn_protocols)]
        opts += ["inter", f"{_int(monitor.delay, 'health monitor delay', 1, 24 * 24 * 3600)}s",
                 "fall", str(_int(monitor.max_retries_down, "max_retries_down", 1, 10)),
                 "rise", str(_int(monitor.max_retries, "max_retries", 1, 10))]
        if member.monitor_address:
            check_addr = _address(member.monitor_address, "monitor_address")[1]
            opts += ["addr", _host(member.monitor_address, "monitor_address")]
        if member.monitor_port:
            check_port = _int(member.monitor_port, "monitor_port", c.MIN_PORT, c.MAX_PORT)
            opts += ["port", str(check_port)]
    cookie = pool.session_persistence is not None and \
        pool.session_persistence.type == c.SP_HTTP_COOKIE
    if cookie:
        opts += ["cookie", name]
    if pool.protocol == c.PROXYV2 and listener_tls:
        opts.append("send-proxy-v2-ssl-cn")  # as Octavia: the client certificate's CN too
    elif pool.protocol in PROXY_PROTOCOL_OPTION:
        opts.append(PROXY_PROTOCOL_OPTION[pool.protocol])
    opts += _pool_tls(pool)
    if member.backup:
        opts.append("backup")
    if not member.admin_state_up:
        opts.append("disabled")
    return ServerView(name=name, address=address, options=tuple(opts),
                      host=_address(member.address, "member address")[1],
                      port=member.protocol_port, weight=weight,
                      enabled=member.admin_state_up, backup=member.backup,
                      check=monitor is not None, check_addr=check_addr,
                      check_port=check_port, cookie=cookie)


def _backend(listener: ListenerSpec, listener_mode: str, pool: PoolSpec, paths: ConfigPaths,
             tuning: Tuning) -> BackendView:
    pool_id = _id(pool.id, "pool")
    if pool.protocol in PROXY_PROTOCOL_OPTION:
        mode = listener_mode
    elif pool.protocol in POOL_MODES:
        mode = POOL_MODES[pool.protocol]
    else:
        raise RenderError(f"pool protocol {pool.protocol} is not supported by HAProxy here")
    if listener_mode == "http" and mode != "http":
        raise RenderError(f"an {listener.protocol} listener cannot use a {pool.protocol} pool")
    if pool.lb_algorithm not in BALANCE:
        raise RenderError(f"lb_algorithm {pool.lb_algorithm} is not supported by HAProxy here")
    sp = pool.session_persistence
    persistence = cookie_store = cookie_match = None
    if sp is not None:
        if sp.type not in c.SESSION_PERSISTENCE_TYPES:
            raise RenderError(f"session persistence type {sp.type!r} is unknown")
        if sp.type in (c.SP_HTTP_COOKIE, c.SP_APP_COOKIE) and mode != "http":
            raise RenderError(f"{sp.type} session persistence needs an HTTP pool")
        persistence = sp.type
        if sp.type == c.SP_APP_COOKIE:
            if not sp.cookie_name:
                raise RenderError("APP_COOKIE session persistence needs a cookie_name")
            name = _grammar(validate.cookie_name, sp.cookie_name, "cookie_name")
            cookie_store = sample_expr("res.cook", name)
            cookie_match = sample_expr("req.cook", name)
    hm = pool.health_monitor if pool.health_monitor and pool.health_monitor.admin_state_up \
        else None
    monitor = _monitor(hm, paths) if hm is not None else None
    headers = {k: v for k, v in listener.insert_headers}
    http = mode == "http"

    def wants(header: str) -> bool:
        return http and str(headers.get(header, "")).lower() == "true"

    tls_listener = terminates_tls(listener)
    ssl_headers = tuple((h, SSL_HEADERS[h]) for h in SSL_HEADERS if wants(h)) \
        if tls_listener else ()
    return BackendView(
        name=f"{pool_id}:{listener.id}", pool_id=pool_id, listener_id=listener.id, mode=mode,
        balance=BALANCE[pool.lb_algorithm], hash_type=HASH_TYPE.get(pool.lb_algorithm),
        persistence=persistence, stick_size=tuning.stick_size, cookie_store=cookie_store,
        cookie_match=cookie_match, monitor=monitor,
        forwardfor=wants("X-Forwarded-For"), forwarded_port=wants("X-Forwarded-Port"),
        forwarded_proto=("https" if tls_listener else "http")
        if wants("X-Forwarded-Proto") else None,
        ssl_headers=ssl_headers,
        timeout_connect=_ms(listener.timeout_member_connect, tuning.timeout_member_connect,
                            "timeout_member_connect"),
        timeout_server=_ms(listener.timeout_member_data, tuning.timeout_member_data,
                           "timeout_member_data"),
        servers=_servers(pool, hm, tls_listener),
    )


def _servers(pool: PoolSpec, monitor: HealthMonitorSpec | None,
             listener_tls: bool) -> tuple[ServerView, ...]:
    """The server lines of ``pool``'s members; each decided once per distinct member and
    pool settings (cached): a change of one member of a thousand renders them all again
    (issue 12). The settings are one key object (:func:`_server_settings`), hashed once
    here rather than once per member (1,000 members: 1.1 -> 0.4 ms of CPU)."""
    settings = _server_settings(dataclasses.replace(pool, members=()), monitor, listener_tls)
    return tuple(_cached_server(settings, m) for m in pool.members)


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity
class _ServerSettings:
    """What a pool's server lines depend on besides their member, as a cache key."""

    pool: PoolSpec  # without its members
    monitor: HealthMonitorSpec | None
    listener_tls: bool


@functools.lru_cache(maxsize=4096)
def _server_settings(pool: PoolSpec, monitor: HealthMonitorSpec | None,
                     listener_tls: bool) -> _ServerSettings:
    """The one key object of these settings (a new one only once this one is evicted:
    the servers cached under the old key are then decided again, never reused wrongly)."""
    return _ServerSettings(pool, monitor, listener_tls)


@functools.lru_cache(maxsize=16384)  # about 1 KiB an entry
def _cached_server(settings: _ServerSettings, member: MemberSpec) -> ServerView:
    return _server(settings.pool, member, settings.monitor, settings.listener_tls)


def _acl(rule: L7RuleSpec, tls: bool) -> AclView:
    name = _id(rule.id, "L7 rule")
    if rule.type not in L7RULE_TYPES_SUPPORTED:
        raise RenderError(f"L7 rule type {rule.type} is unknown")
    if rule.type in L7RULE_TLS_TYPES and not tls:
        raise RenderError(f"L7 rule type {rule.type} needs a listener that terminates TLS")
    if rule.compare_type not in MATCH:
        raise RenderError(f"L7 rule compare_type {rule.compare_type!r} is unknown")
    value = _no_controls(rule.value, "L7 rule value")
    if not value:
        raise RenderError("L7 rule value is empty")
    flags = ["-m", MATCH[rule.compare_type]]
    if rule.type == "SSL_CONN_HAS_CERT":
        # Octavia: "ssl_c_used" (the value is "true"; invert negates it).
        return AclView(name=name, fetch="ssl_c_used", flags=(), value=None)
    if rule.type == "SSL_VERIFY_RESULT":
        code = _int(int(value) if value.isdigit() else -1, "SSL_VERIFY_RESULT value", 0,
                    1_000_000)
        return AclView(name=name, fetch="ssl_c_verify", flags=("-m", "int"), value=str(code))
    if rule.type == "SSL_DN_FIELD":
        if not rule.key:
            raise RenderError("L7 rule type SSL_DN_FIELD needs a key")
        key = _no_controls(rule.key, "L7 rule key")
        return AclView(name=name, fetch=sample_expr("ssl_c_s_dn", key), flags=tuple(flags),
                       value=value)
    if rule.type == "HOST_NAME":
        fetch, flags = "req.hdr(host)", ["-i", *flags]
    elif rule.type == "PATH":
        fetch = "path"
    elif rule.type == "FILE_TYPE":
        # path_end already compares the end; "-m str" would override that.
        fetch = "path_end"
        if rule.compare_type == "EQUAL_TO":
            flags = []
    else:
        if not rule.key:
            raise RenderError(f"L7 rule type {rule.type} needs a key")
        key = _no_controls(rule.key, "L7 rule key")
        fetch = sample_expr("req.hdr" if rule.type == "HEADER" else "req.cook", key)
    return AclView(name=name, fetch=fetch, flags=tuple(flags), value=value)


def _policy(policy: L7PolicySpec, listener_id: str, pools: dict[str, PoolSpec],
            tls: bool) -> tuple[PolicyView, list[AclView]] | None:
    pid = _id(policy.id, "L7 policy")
    rules = [r for r in policy.rules if r.admin_state_up]
    if not policy.admin_state_up or not rules:
        return None  # Octavia renders a policy only with at least one enabled rule
    acls = [_acl(r, tls) for r in rules]
    condition = tuple(("!" if r.invert else "") + a.name for r, a in zip(rules, acls, strict=True))
    code = policy.redirect_http_code or DEFAULT_REDIRECT_CODE
    if code not in c.L7POLICY_REDIRECT_HTTP_CODES:
        raise RenderError(f"redirect_http_code {code!r} is not a redirect code")
    if policy.action == "REJECT":
        view = PolicyView(id=pid, action=policy.action, condition=condition)
    elif policy.action == "REDIRECT_TO_POOL":
        pool = pools.get(policy.redirect_pool_id or "")
        if pool is None or not pool.admin_state_up:
            return None
        view = PolicyView(id=pid, action=policy.action, condition=condition,
                          backend=f"{_id(pool.id, 'pool')}:{listener_id}")
    elif policy.action == "REDIRECT_TO_URL":
        url = _grammar(validate.url, policy.redirect_url or "", "redirect_url")
        view = PolicyView(id=pid, action=policy.action, condition=condition,
                          redirect_url=url, code=code)
    elif policy.action == "REDIRECT_PREFIX":
        prefix = _grammar(validate.url, policy.redirect_prefix or "", "redirect_prefix")
        view = PolicyView(id=pid, action=policy.action, condition=condition,
                          redirect_prefix=prefix, code=code)
    else:
        raise RenderError(f"L7 policy action {policy.action!r} is unknown")
    return view, acls


def _frontend(lb: LoadBalancerSpec, listener: ListenerSpec, pools: dict[str, PoolSpec],
              paths: ConfigPaths, tuning: Tuning) -> tuple[FrontendView, list[BackendView]]:
    lid = _id(listener.id, "listener")
    if listener.protocol not in LISTENER_MODES:
        raise RenderError(f"listener protocol {listener.protocol} is not supported here")
    tls = terminates_tls(listener)
    bind_options, crt_list, hsts = _listener_tls(listener) if tls else ((), (), None)
    mode = LISTENER_MODES[listener.protocol]
    limit = _int(listener.connection_limit, "connection_limit", -1, MAX_MAXCONN)
    maxconn = limit if limit >= 0 else tuning.default_connection_limit
    vips = [lb.vip.address, *(v.address for v in lb.additional_vips)]
    binds = tuple(host_port(a, listener.protocol_port, "VIP") for a in vips)
    cidrs = tuple(str(ipaddress.ip_network(x, strict=False)) if _cidr_ok(x)
                  else _bad_cidr(x) for x in listener.allowed_cidrs)
    cidr_lines = tuple(cidrs[i:i + CIDRS_PER_LINE] for i in range(0, len(cidrs), CIDRS_PER_LINE))

    backends: list[BackendView] = []

    def use(pool_id: str | None) -> str | None:
        pool = pools.get(pool_id or "")
        if pool is None or not pool.admin_state_up:
            return None
        be = _backend(listener, mode, pool, paths, tuning)
        if all(b.name != be.name for b in backends):
            backends.append(be)
        return be.name

    default_backend = use(listener.default_pool_id) if listener.protocol != c.PROMETHEUS \
        else None
    policies: list[PolicyView] = []
    acls: list[AclView] = []
    if listener.l7policies and mode != "http":
        raise RenderError(f"{listener.protocol} listeners do not support L7 policies")
    for policy in listener.l7policies:
        done = _policy(policy, lid, pools, tls)
        if done is None:
            continue
        view, rule_acls = done
        if view.backend is not None:
            use(policy.redirect_pool_id)
        policies.append(view)
        acls += rule_acls
    fe = FrontendView(
        name=lid, mode=mode, maxconn=maxconn, binds=binds, bind_options=bind_options,
        crt_list=crt_list, hsts=hsts,
        timeout_client=_ms(listener.timeout_client_data, tuning.timeout_client_data,
                           "timeout_client_data"),
        inspect_delay=_int(listener.timeout_tcp_inspect, "timeout_tcp_inspect",
                           c.MIN_TIMEOUT, c.MAX_TIMEOUT),
        allowed_cidrs=cidr_lines, prometheus=listener.protocol == c.PROMETHEUS,
        acls=tuple(acls), policies=tuple(policies), default_backend=default_backend)
    return fe, backends


def terminates_tls(listener: ListenerSpec) -> bool:
    """True if ``listener`` decrypts TLS: TERMINATED_HTTPS, or PROMETHEUS with a
    certificate (Octavia's ``_can_tls_offload``)."""
    return listener.protocol == c.TERMINATED_HTTPS or (
        listener.protocol == c.PROMETHEUS and bool(listener.default_tls_container_ref
                                                   or listener.sni_container_refs))


def _listener_tls(listener: ListenerSpec) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(bind options, crt-list lines, HSTS value) of a listener that terminates TLS."""
    refs = [r for r in (listener.default_tls_container_ref, *listener.sni_container_refs) if r]
    if not refs:
        raise RenderError(f"listener {listener.id} terminates TLS but has no certificate")
    crt_list = tuple(dict.fromkeys(f"{CERTS_DIR}/{tls_file_name(TLS_CERT, r)}" for r in refs))
    opts = ["ssl", "crt-list", f"{CERTS_DIR}/{listener.id}.crtlist"]
    auth = listener.client_authentication or "NONE"
    if auth not in CLIENT_AUTH:
        raise RenderError(f"client_authentication {auth!r} is unknown")
    if listener.client_ca_tls_container_ref:
        opts += ["ca-file",
                 f"{CERTS_DIR}/{tls_file_name(TLS_CA, listener.client_ca_tls_container_ref)}",
                 "verify", CLIENT_AUTH[auth]]
        if listener.client_crl_container_ref:
            opts += ["crl-file", f"{CERTS_DIR}/"
                                 f"{tls_file_name(TLS_CRL, listener.client_crl_container_ref)}"]
    elif auth != "NONE":
        raise RenderError(f"client_authentication {auth} needs a client CA")
    opts += _ciphers_alpn(listener.tls_ciphers, listener.alpn_protocols, "listener")
    opts += _tls_versions(listener.tls_versions, "listener")
    hsts = None
    if listener.hsts_max_age is not None:
        age = _int(listener.hsts_max_age, "hsts_max_age", 0, 2**31 - 1)
        hsts = f"max-age={age};" + (" includeSubDomains;" if listener.hsts_include_subdomains
                                    else "") + (" preload;" if listener.hsts_preload else "")
        hsts = cfg_word(hsts)
    return tuple(opts), crt_list, hsts


def tls_files(lb: LoadBalancerSpec, view: LoadBalancerView | None = None,
              ) -> dict[str, bytes]:
    """Every file under ``certs/`` that ``lb``'s configuration loads, by name: the
    crt-list of each listener that terminates TLS, and the PEM files of
    ``lb.tls_files`` (empty bytes for a file of a redacted spec, whose content
    must already be on disk). ``view``: ``lb``'s view if the caller built it
    (:func:`build_view`; built here otherwise). Raises :class:`RenderError` if a
    file the configuration names is not in the spec (unresolved references).
    """
    out: dict[str, bytes] = {f.name: f.content.encode() for f in lb.tls_files}
    view = view or build_view(lb)
    needed: set[str] = set()
    for fe in view.frontends:
        if fe.crt_list:
            out[f"{fe.name}.crtlist"] = ("\n".join(fe.crt_list) + "\n").encode()
            needed |= {line.split("/", 1)[1] for line in fe.crt_list}
        needed |= _files_in(fe.bind_options)
    # A server line names files only through its pool's TLS options, the same in each
    # server of a backend: read once per backend, not per server (issue 12: 0.6 ms of
    # every change of a pool of 1,000 members).
    pools = {pool.id: pool for pool in lb.pools}
    for be in view.backends:
        if be.servers:
            needed |= _files_in(tuple(_pool_tls(pools[be.pool_id])))
    missing = sorted(n for n in needed if n not in out)
    if missing:
        raise RenderError(f"TLS material missing for {', '.join(missing)} (certificate "
                          "references not resolved)")
    return {k: v for k, v in out.items() if k in needed or k.endswith(".crtlist")}


def _files_in(words: tuple[str, ...]) -> set[str]:
    return {w.split("/", 1)[1] for w in words if w.startswith(f"{CERTS_DIR}/")
            and not w.endswith(".crtlist")}


def _cidr_ok(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "%" not in value


def _bad_cidr(value: str) -> str:
    raise RenderError(f"allowed_cidrs entry {value!r} is not a network")


def build_view(lb: LoadBalancerSpec, paths: ConfigPaths | None = None,
               tuning: Tuning | None = None) -> LoadBalancerView:
    """Decide everything about ``lb``'s configuration; raises :class:`RenderError`."""
    paths = paths or ConfigPaths()
    tuning = tuning or Tuning()
    lb_id = _id(lb.id, "load balancer")
    if lb.topology not in c.TOPOLOGIES:
        raise RenderError(f"topology {lb.topology!r} is not one of {', '.join(c.TOPOLOGIES)}")
    _address(lb.vip.address, "VIP")
    for vip in lb.additional_vips:
        _address(vip.address, "additional VIP")
    pools = {p.id: p for p in lb.pools}
    frontends: list[FrontendView] = []
    backends: list[BackendView] = []
    if lb.admin_state_up:
        for listener in lb.listeners:
            if not listener.admin_state_up:
                continue
            fe, bes = _frontend(lb, listener, pools, paths, tuning)
            frontends.append(fe)
            backends += bes
    maxconn = sum(f.maxconn for f in frontends) if frontends \
        else tuning.default_connection_limit
    return LoadBalancerView(
        id=lb_id,
        stats_socket=cfg_word("unix@" + paths.stats_socket),
        server_state_file=cfg_word(paths.server_state_file),
        maxconn=max(1, min(maxconn, tuning.max_connections, MAX_MAXCONN)),
        hard_stop_after=_int(tuning.hard_stop_after, "hard_stop_after", 1, 24 * 3600),
        nbthread=_int(tuning.nbthread, "nbthread", 0, 64),
        external_check=any(b.monitor is not None and b.monitor.type == c.HM_PING
                           for b in backends),
        frontends=tuple(frontends),
        backends=tuple(backends),
    )


def render_view(view: LoadBalancerView) -> str:
    """The haproxy.cfg text of ``view`` (the template, rendered)."""
    try:
        return _ENV.get_template(TEMPLATE_NAME).render(lb=view)
    except jinja2.TemplateError as e:  # a template bug, not a tenant's doing
        raise RenderError(f"rendering failed: {e}") from e


RenderFunction = Callable[[LoadBalancerSpec, "ConfigPaths | None", "Tuning | None"], str]
"""The shape of :func:`render` (an agent may be given another, e.g. in tests)."""


def render(lb: LoadBalancerSpec, paths: ConfigPaths | None = None,
           tuning: Tuning | None = None) -> str:
    """haproxy.cfg for ``lb`` (pure). Raises :class:`RenderError` for what cannot be written."""
    return render_view(build_view(lb, paths, tuning))
