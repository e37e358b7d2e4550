"""Frozen specs: one load balancer's desired state, as drivers and agents see it.

The worker builds a :class:`LoadBalancerSpec` from the database (objects
being deleted are left out) and hands it to the provider driver; the haproxy
driver hands it to an agent, which renders it. Specs are plain frozen
dataclasses of str/int/bool/tuple, so they cross a process boundary as JSON
(:func:`to_json` / :func:`from_json`) unchanged.

Units follow Octavia's API: listener timeouts in milliseconds, health
monitor ``delay`` and ``timeout`` in seconds.

TLS material. Listeners and pools keep their certificate references; the
worker resolves them into :class:`TlsFileSpec` values (PEM text, private keys
included) in ``LoadBalancerSpec.tls_files``, each named by
:func:`tls_file_name` from its kind and reference, so that the configuration
can be rendered from the references alone and the agent writes the files.
:meth:`LoadBalancerSpec.redacted` drops the contents (what an agent keeps on
disk in ``spec.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter


@dataclass(frozen=True)
class SessionPersistenceSpec:
    type: str  # SOURCE_IP | HTTP_COOKIE | APP_COOKIE
    cookie_name: str | None = None
    persistence_timeout: int | None = None  # seconds
    persistence_granularity: str | None = None  # an IP netmask


@dataclass(frozen=True)
class HealthMonitorSpec:
    id: str
    type: str  # HTTP | HTTPS | PING | TCP | TLS-HELLO | UDP-CONNECT | SCTP
    delay: int  # seconds between checks
    timeout: int  # seconds
    max_retries: int  # successes to go UP (HAProxy "rise")
    max_retries_down: int  # failures to go DOWN (HAProxy "fall")
    admin_state_up: bool = True
    http_method: str | None = None
    url_path: str | None = None
    expected_codes: str | None = None  # "200", "200,202", "200-204"
    http_version: float | None = None
    domain_name: str | None = None


@dataclass(frozen=True)
class MemberSpec:
    id: str
    address: str
    protocol_port: int
    weight: int = 1  # 0..256; 0 drains
    backup: bool = False
    admin_state_up: bool = True
    monitor_address: str | None = None
    monitor_port: int | None = None
    subnet_id: str | None = None


@dataclass(frozen=True)
class PoolSpec:
    id: str
    protocol: str  # HTTP | HTTPS | TCP | PROXY | PROXYV2 | UDP | SCTP
    lb_algorithm: str  # ROUND_ROBIN | LEAST_CONNECTIONS | SOURCE_IP | SOURCE_IP_PORT
    admin_state_up: bool = True
    session_persistence: SessionPersistenceSpec | None = None
    health_monitor: HealthMonitorSpec | None = None
    members: tuple[MemberSpec, ...] = ()
    tls_enabled: bool = False
    tls_container_ref: str | None = None
    ca_tls_container_ref: str | None = None
    crl_container_ref: str | None = None
    tls_ciphers: str | None = None
    tls_versions: tuple[str, ...] | None = None
    alpn_protocols: tuple[str, ...] | None = None


@dataclass(frozen=True)
class L7RuleSpec:
    id: str
    type: str  # HOST_NAME | PATH | FILE_TYPE | HEADER | COOKIE | SSL_*
    compare_type: str  # REGEX | STARTS_WITH | ENDS_WITH | CONTAINS | EQUAL_TO
    value: str
    key: str | None = None
    invert: bool = False
    admin_state_up: bool = True


@dataclass(frozen=True)
class L7PolicySpec:
    id: str
    action: str  # REJECT | REDIRECT_TO_URL | REDIRECT_TO_POOL | REDIRECT_PREFIX
    position: int
    admin_state_up: bool = True
    redirect_pool_id: str | None = None
    redirect_url: str | None = None
    redirect_prefix: str | None = None
    redirect_http_code: int | None = None
    rules: tuple[L7RuleSpec, ...] = ()


@dataclass(frozen=True)
class ListenerSpec:
    id: str
    protocol: str  # HTTP | HTTPS | TCP | TERMINATED_HTTPS | UDP | SCTP | PROMETHEUS
    protocol_port: int
    admin_state_up: bool = True
    connection_limit: int = -1  # -1 is unlimited
    default_pool_id: str | None = None
    timeout_client_data: int = 50000  # milliseconds
    timeout_member_connect: int = 5000  # milliseconds
    timeout_member_data: int = 50000  # milliseconds
    timeout_tcp_inspect: int = 0  # milliseconds
    insert_headers: tuple[tuple[str, str], ...] = ()  # (header, value), sorted
    allowed_cidrs: tuple[str, ...] = ()  # empty: everyone
    l7policies: tuple[L7PolicySpec, ...] = ()  # by position
    default_tls_container_ref: str | None = None
    sni_container_refs: tuple[str, ...] = ()
    client_authentication: str = "NONE"
    client_ca_tls_container_ref: str | None = None
    client_crl_container_ref: str | None = None
    tls_ciphers: str | None = None
    tls_versions: tuple[str, ...] | None = None
    alpn_protocols: tuple[str, ...] | None = None
    hsts_max_age: int | None = None
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False


@dataclass(frozen=True)
class VipSpec:
    address: str
    subnet_id: str | None = None
    network_id: str | None = None
    port_id: str | None = None
    subnet_cidr: str | None = None  # e.g. "10.9.0.0/24": the VIP's prefix length
    gateway_ip: str | None = None
    qos_policy_id: str | None = None
    sg_ids: tuple[str, ...] = ()


# Kinds of TLS file: a certificate with its chain and key (listener certificates,
# a pool's client certificate), a CA bundle, a certificate revocation list.
TLS_CERT = "cert"
TLS_CA = "ca"
TLS_CRL = "crl"


def tls_file_name(kind: str, ref: str) -> str:
    """The file name of the ``kind`` material of reference ``ref`` (stable, path-safe)."""
    return f"{kind}-{hashlib.sha256(ref.encode()).hexdigest()[:32]}.pem"


@dataclass(frozen=True)
class TlsFileSpec:
    """One TLS file a load balancer's HAProxy loads: ``name`` from :func:`tls_file_name`,
    ``content`` PEM text (empty in a redacted spec), ``sha256`` of the content (hex)."""

    name: str
    content: str
    sha256: str

    @classmethod
    def of(cls, kind: str, ref: str, content: str) -> TlsFileSpec:
        """The file of ``ref``'s ``kind`` material with ``content``."""
        return cls(name=tls_file_name(kind, ref), content=content,
                   sha256=hashlib.sha256(content.encode()).hexdigest())


@dataclass(frozen=True)
class AmphoraSpec:
    """One amphora of the load balancer (Octavia's amphora fields) and its agent.

    ``role``: STANDALONE (SINGLE), or the role an ACTIVE_STANDBY amphora was
    built for (MASTER or BACKUP), which only sets its VRRP priority; which
    one holds the VIP is what keepalived decides and reports. ``vrrp_ip`` is
    its own address on the VIP's subnet (ACTIVE_STANDBY only). ``agent_id``
    is the agent that runs it (:mod:`lbaas.worker.scheduler`; None: not
    placed, e.g. a spec built without a control plane), ``host`` that
    agent's host: an agent runs the amphorae of a spec placed on its host
    (or on none), so the two amphorae of an ACTIVE_STANDBY load balancer
    may run on two hosts, each agent given the whole spec.
    """

    id: str
    role: str  # STANDALONE | MASTER | BACKUP
    vrrp_ip: str = ""  # ACTIVE_STANDBY only
    vrrp_priority: int = 0  # 1..254; Octavia: 100 for MASTER, 90 for BACKUP
    agent_id: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class VrrpSpec:
    """The VRRP group of an ACTIVE_STANDBY load balancer (Octavia's ``vrrp_group``).

    ``advert_int`` is in seconds (``[keepalived_vrrp] vrrp_advert_int`` when
    the load balancer was made); both amphorae must use the same.
    """

    vrrp_id: int = 1  # keepalived's virtual_router_id, 1..255
    auth_type: str = "PASS"
    auth_pass: str = ""  # at most 8 characters (VRRPv2 carries 8)
    advert_int: float = 1.0


@dataclass(frozen=True)
class LoadBalancerSpec:
    id: str
    project_id: str | None
    vip: VipSpec
    additional_vips: tuple[VipSpec, ...] = ()
    admin_state_up: bool = True
    provider: str = "haproxy"
    topology: str = "SINGLE"
    listeners: tuple[ListenerSpec, ...] = ()
    pools: tuple[PoolSpec, ...] = ()
    # Its amphorae (one per role of its topology; none: not placed) and, for
    # ACTIVE_STANDBY, their VRRP group.
    amphorae: tuple[AmphoraSpec, ...] = ()
    vrrp: VrrpSpec | None = None
    tls_files: tuple[TlsFileSpec, ...] = ()  # by name

    def pool(self, pool_id: str) -> PoolSpec | None:
        """The pool with ``pool_id``, or None."""
        return next((p for p in self.pools if p.id == pool_id), None)

    def amphora(self, amphora_id: str) -> AmphoraSpec | None:
        """The amphora with ``amphora_id``, or None."""
        return next((a for a in self.amphorae if a.id == amphora_id), None)

    def redacted(self) -> LoadBalancerSpec:
        """This spec without the contents of its TLS files (no private key in it)."""
        return dataclasses.replace(self, tls_files=tuple(
            dataclasses.replace(f, content="") for f in self.tls_files))


_adapter: TypeAdapter[LoadBalancerSpec] = TypeAdapter(LoadBalancerSpec)


def to_json(spec: LoadBalancerSpec) -> str:
    """Serialise a spec for the wire (an agent on another host) and ``spec.json``: ASCII
    JSON, keys in the dataclasses' field order, so equal specs give equal text.

    pydantic's serialiser writes the JSON itself (issue 12: for a pool of 1,000
    members 1.7 ms of CPU, where making plain values and ``json.dumps`` with
    sorted keys took 6.5 ms; it runs on every change, after the runtime API
    change, while the next change waits for the GIL)."""
    return _adapter.dump_json(spec, ensure_ascii=True, warnings=False).decode("ascii")


def from_json(data: str | bytes | dict[str, Any]) -> LoadBalancerSpec:
    """Inverse of :func:`to_json`; raises pydantic.ValidationError on bad input."""
    if isinstance(data, dict):
        return _adapter.validate_python(data)
    return _adapter.validate_json(data)
