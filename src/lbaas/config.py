"""Configuration: oslo.config options, read once into a frozen :class:`Settings`.

Operators write an INI file (``lbaas serve --config-file /etc/lbaas/lbaas.conf``)
with Octavia's group and option names where Octavia has one
(``[api_settings] bind_port``, ``[database] connection``,
``[quotas] default_load_balancer_quota``...). Command-line options override the
file. Everything below the CLI receives a :class:`Settings` value; nothing
reads the global ``cfg.CONF`` after start-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oslo_config import cfg, types

from lbaas.common import constants as c

DEFAULT_STATE_DIR = "/var/lib/lbaas" if os.geteuid() == 0 else "~/.local/state/lbaas"


class ProviderDescriptions(types.Dict):
    """A provider -> description map, written Octavia's way (``name:description,...``,
    oslo's Dict) or as a JSON object, the form in which a description may hold a comma.
    """

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except ValueError as e:
                raise ValueError(f"not a JSON object of provider descriptions: {e}") from None
            if not isinstance(parsed, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
                raise ValueError("not a JSON object of provider names to descriptions")
            return parsed
        return super().__call__(value)

    def _formatter(self, value: Any) -> str:
        return json.dumps(value)


_default_opts = [
    cfg.StrOpt("state_dir", default=DEFAULT_STATE_DIR,
               help="Directory for the embedded database and each load balancer's "
                    "HAProxy files (<state_dir>/lb/<lb_id>/)."),
    cfg.StrOpt("default_project_id", default="admin",
               help="Project of a request that carries no X-Project-Id header "
                    "(the standalone single-user default)."),
]
_api_opts = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1", help="Address the API listens on."),
    cfg.PortOpt("bind_port", default=9876, help="Port the API listens on (Octavia's)."),
    cfg.StrOpt("auth_strategy", default=c.NOAUTH, choices=[c.NOAUTH, c.KEYSTONE, c.APIKEY],
               help="How callers are authenticated: keystone (keystonemiddleware's "
                    "auth_token, configured in [keystone_authtoken]), apikey (keys made by "
                    "`lbaas key create`, sent as X-Auth-Token) or noauth (the X-Project-Id "
                    "and X-Roles headers are trusted; a request without them is the admin). "
                    "noauth is refused on a non-loopback bind_host unless "
                    "allow_insecure_noauth is true."),
    cfg.BoolOpt("allow_insecure_noauth", default=False,
                help="Serve with auth_strategy = noauth on a non-loopback bind_host, where "
                     "anyone who reaches the port can act as any project, or as the admin."),
    cfg.StrOpt("api_base_uri", default="",
               help="Base URI used in pagination links; empty means the request's own URL."),
    cfg.FloatOpt("healthcheck_refresh_interval", default=5.0, min=0.0,
                 help="Seconds /healthcheck reuses its last database check (Octavia's)."),
    cfg.IntOpt("pagination_max_limit", default=1000, min=1,
               help="Largest page a list request returns."),
    cfg.StrOpt("default_provider_driver", default=c.PROVIDER_HAPROXY,
               help="Provider used when a load balancer is created without one."),
    cfg.Opt("enabled_provider_drivers", type=ProviderDescriptions(), default=None,
            help="Providers a tenant may choose, as name:description pairs (Octavia's "
                 "form) or as a JSON object, whose descriptions may hold commas: "
                 '{"haproxy": "HAProxy, on this host"}. Unset: haproxy, amphora (its '
                 "alias) and noop, the default_provider_driver's description ending in "
                 "'(default)'."),
]
# The providers of lbaas, as enabled when enabled_provider_drivers is not set.
PROVIDER_DESCRIPTIONS = {
    c.PROVIDER_HAPROXY: "HAProxy processes on this host.",
    c.PROVIDER_AMPHORA: "Alias of haproxy for scripts written for Octavia.",
    c.PROVIDER_NOOP: "Records objects without realising them.",
}


def builtin_providers(default_provider: str) -> dict[str, str]:
    """:data:`PROVIDER_DESCRIPTIONS`, the description of ``default_provider`` (the provider
    a load balancer created without one gets) ending in " (default)"."""
    return {name: f"{text} (default)" if name == default_provider else text
            for name, text in PROVIDER_DESCRIPTIONS.items()}

_database_opts = [
    cfg.StrOpt("connection", default="", secret=True,
               help="SQLAlchemy URL; empty means SQLite at <state_dir>/lbaas.sqlite. "
                    "PostgreSQL: postgresql+psycopg://user:password@host/dbname"),
]
_quota_opts = [
    cfg.IntOpt("default_load_balancer_quota", default=c.QUOTA_UNLIMITED),
    cfg.IntOpt("default_listener_quota", default=c.QUOTA_UNLIMITED),
    cfg.IntOpt("default_member_quota", default=c.QUOTA_UNLIMITED),
    cfg.IntOpt("default_pool_quota", default=c.QUOTA_UNLIMITED),
    cfg.IntOpt("default_health_monitor_quota", default=c.QUOTA_UNLIMITED),
    cfg.IntOpt("default_l7policy_quota", default=c.QUOTA_UNLIMITED),
    cfg.IntOpt("default_l7rule_quota", default=c.QUOTA_UNLIMITED),
]
_worker_opts = [
    cfg.IntOpt("workers", default=4, min=1,
               help="Load balancers provisioned in parallel (one change in flight each)."),
    cfg.FloatOpt("poll_interval", default=1.0, min=0.05,
                 help="Seconds between scans for PENDING_* load balancers left by "
                      "another process or a crash."),
    cfg.StrOpt("network_driver", default="local", choices=["local", "noop", "neutron"],
               help="Where VIP subnets and ports come from: local (lbaas's own networks and "
                    "subnets, /v2.0/networks and /v2.0/subnets) or noop (any network and "
                    "subnet id is accepted and the VIP port is made up, as Octavia's "
                    "network_noop_driver; for API tests with the noop provider) or neutron "
                    "(networks and subnets read from the cloud's Neutron as the [service_auth] "
                    "user, see [neutron]; VIP addresses allocated by lbaas inside the "
                    "Neutron subnet, no Neutron port is created)."),
    cfg.StrOpt("loadbalancer_topology", default=c.TOPOLOGY_SINGLE, choices=list(c.TOPOLOGIES),
               help="Topology of a load balancer whose flavor does not say (Octavia's option). "
                    "SINGLE - One amphora per load balancer. ACTIVE_STANDBY - Two amphora per "
                    "load balancer (needs [haproxy_amphora] placement = namespace)."),
]
_network_opts = [
    cfg.StrOpt("default_subnet_cidr", default="127.1.0.0/16",
               help="CIDR of the subnet created on first start for VIPs. VIPs never take "
                    "the host's own addresses (127.0.0.1 ...); an existing default subnet "
                    "of 127.0.0.0/8 (the old default) is narrowed to this on start."),
    cfg.StrOpt("default_subnet_pool_start", default="127.1.0.1",
               help="First address handed out as a VIP on the default subnet."),
    cfg.StrOpt("default_subnet_pool_end", default="127.1.255.254",
               help="Last address handed out as a VIP on the default subnet."),
    cfg.ListOpt("reserved_ips", default=["169.254.169.254"], item_type=cfg.types.IPAddress(),
                help="Addresses members and their health checks may not use, at any port "
                     "(Octavia's option; by default the cloud metadata address). lbaas's "
                     "own API and database are always refused."),
]

# oslo.middleware's sizelimit option, which Octavia's API runs (same group, name, default).
_middleware_opts = [
    cfg.IntOpt("max_request_body_size", default=114688, min=1,
               help="The largest request body the API reads (bytes); larger is 413."),
]

_noop_opts = [
    cfg.FloatOpt("apply_delay", default=0.0, min=0.0,
                 help="Seconds each noop provider call takes (to watch PENDING_* states)."),
]

_haproxy_opts = [
    cfg.StrOpt("base_path", default="",
               help="Directory of each load balancer's HAProxy files (<base_path>/<lb_id>/: "
                    "haproxy.cfg, sockets, pid file, last applied spec); empty means "
                    "<state_dir>/lb."),
    cfg.StrOpt("haproxy_cmd", default="/usr/sbin/haproxy", help="The full path to haproxy."),
    cfg.StrOpt("placement", default="local", choices=["local", "namespace"],
               help="Where each load balancer's HAProxy runs: local (the host's network "
                    "namespace, VIPs on 127.0.0.0/8) or namespace (a qlbaas-<lb_id> network "
                    "namespace per load balancer; needs root)."),
    cfg.IntOpt("hard_stop_after", default=60, min=1,
               help="Seconds old HAProxy workers may keep serving their connections after a "
                    "reload before they are stopped (HAProxy's hard-stop-after)."),
    cfg.StrOpt("haproxy_stick_size", default="10k",
               help="Size of the HAProxy stick table. Accepts k, m, g suffixes."),
    cfg.IntOpt("default_connection_limit", default=50000, min=1,
               help="Default connection_limit for listeners, used when it is -1."),
    cfg.IntOpt("timeout_client_data", default=c.DEFAULT_TIMEOUT_CLIENT_DATA, min=1,
               help="Frontend client inactivity timeout (ms), for listeners that set 0."),
    cfg.IntOpt("timeout_member_connect", default=c.DEFAULT_TIMEOUT_MEMBER_CONNECT, min=1,
               help="Backend member connection timeout (ms), for listeners that set 0."),
    cfg.IntOpt("timeout_member_data", default=c.DEFAULT_TIMEOUT_MEMBER_DATA, min=1,
               help="Backend member inactivity timeout (ms), for listeners that set 0."),
    cfg.IntOpt("nbthread", default=0, min=0, max=64,
               help="Threads per HAProxy process; 0 lets HAProxy use one per CPU."),
    cfg.FloatOpt("reload_timeout", default=15.0, min=1.0,
                 help="Seconds to wait for a new HAProxy worker to take over after a "
                      "start or reload before the change is reported failed."),
    cfg.FloatOpt("supervise_interval", default=2.0, min=0.1,
                 help="Seconds between checks that every load balancer's HAProxy runs, "
                      "and the unit of the back-off between failed restarts. A dead "
                      "HAProxy is restarted at once (its exit is an event); this check "
                      "is the safety net."),
    cfg.StrOpt("local_listener_ports", default="1024-65535",
               help="Listener ports tenants may use in the local placement, where HAProxy "
                    "binds on the host's own network stack: comma-separated ports and ranges "
                    "(80,443,1024-65535). Keep out the ports of the host's services that "
                    "listen on all addresses. lbaas's own API port is always refused."),
    cfg.FloatOpt("member_drain_timeout", default=2.0, min=0.0,
                 help="Seconds a removed member's open connections may finish before it is "
                      "left in maintenance until the next reload."),
    cfg.FloatOpt("stats_quiet_interval", default=10.0, min=0.0,
                 help="Seconds a load balancer whose HAProxy had nothing new to report "
                      "(no traffic, no state change) goes without being asked again by the "
                      "health polls; a state change, a reload or an exit makes it asked at "
                      "once. Traffic after a quiet spell is counted within this time "
                      "(Octavia's amphorae report every 10 s). 0 asks HAProxy at every poll."),
]

# Octavia's [keepalived_vrrp] options, with its names and meaning; the timers are
# tuned so that the VIP moves in under 2 s (Octavia's defaults take 3-4 s).
_keepalived_opts = [
    cfg.FloatOpt("vrrp_advert_int", default=0.5, min=0.01, max=255,
                 help="Seconds between VRRP advertisements of an ACTIVE_STANDBY load "
                      "balancer's MASTER (set when the load balancer is created). The BACKUP "
                      "takes the VIP 3 intervals and a skew after the last one it heard: "
                      "1.8 s at 0.5. Below 1 s keepalived speaks VRRPv3, which has no "
                      "authentication; a whole number of seconds gives VRRPv2 with "
                      "auth_type PASS, as Octavia (whose default, 1, takes 3.6 s)."),
    cfg.IntOpt("vrrp_check_interval", default=1, min=1,
               help="Seconds between runs of the check that the amphora's HAProxy serves "
                    "(Octavia: 5)."),
    cfg.IntOpt("vrrp_fail_count", default=2, min=1,
               help="Failed checks in a row before an amphora gives up the VIP (FAULT)."),
    cfg.IntOpt("vrrp_success_count", default=2, min=1,
               help="Passed checks in a row before an amphora in FAULT may hold the VIP "
                    "again."),
    cfg.IntOpt("vrrp_garp_refresh_interval", default=5, min=0,
               help="Seconds between gratuitous ARP announcements from the MASTER (0: "
                    "only on taking the VIP)."),
    cfg.IntOpt("vrrp_garp_refresh_count", default=2, min=1,
               help="Gratuitous ARP announcements at each refresh."),
    cfg.StrOpt("keepalived_cmd", default="/usr/sbin/keepalived",
               help="The full path to keepalived."),
]

_health_opts = [
    cfg.FloatOpt("health_check_interval", default=2.0, min=0.0,
                 help="Seconds between two polls of every load balancer's HAProxy (show stat, "
                      "show info) for operating statuses and traffic counters; 0 turns the "
                      "health manager off."),
    cfg.IntOpt("health_update_threads", default=2, min=1,
               help="Load balancers polled in parallel. A poll of an answering HAProxy "
                    "is a fraction of a millisecond of Python work, so more threads only "
                    "add CPU (the GIL); they help when many HAProxies are slow to answer."),
    cfg.IntOpt("unanswered_polls", default=3, min=1,
               help="Consecutive polls in which a running HAProxy does not answer on its "
                    "sockets before its load balancer is reported ERROR."),
]

_tls_api_opts = [
    cfg.BoolOpt("allow_tls_terminated_listeners", default=True,
                help="Allow TERMINATED_HTTPS listeners (and PROMETHEUS listeners with TLS)."),
    cfg.StrOpt("default_listener_ciphers", default=c.DEFAULT_TLS_CIPHERS,
               help="Default OpenSSL cipher string (colon-separated) for new TLS-enabled "
                    "listeners."),
    cfg.StrOpt("default_pool_ciphers", default=c.DEFAULT_TLS_CIPHERS,
               help="Default OpenSSL cipher string (colon-separated) for new TLS-enabled "
                    "pools."),
    cfg.StrOpt("tls_cipher_prohibit_list", default="",
               help="Colon-separated OpenSSL ciphers that listeners and pools may not use."),
    cfg.ListOpt("default_listener_tls_versions", default=list(c.DEFAULT_TLS_VERSIONS),
                item_type=cfg.types.String(choices=c.TLS_VERSIONS),
                help="TLS versions of new TLS-enabled listeners."),
    cfg.ListOpt("default_pool_tls_versions", default=list(c.DEFAULT_TLS_VERSIONS),
                item_type=cfg.types.String(choices=c.TLS_VERSIONS),
                help="TLS versions of new TLS-enabled pools."),
    cfg.StrOpt("minimum_tls_version", default=None, choices=c.TLS_VERSIONS,
               help="Oldest TLS version a listener or pool may allow."),
    cfg.ListOpt("default_listener_alpn_protocols", default=list(c.DEFAULT_ALPN_PROTOCOLS),
                item_type=cfg.types.String(choices=c.ALPN_PROTOCOLS),
                help="ALPN protocols of new TLS-enabled listeners."),
    cfg.ListOpt("default_pool_alpn_protocols", default=list(c.DEFAULT_ALPN_PROTOCOLS),
                item_type=cfg.types.String(choices=c.ALPN_PROTOCOLS),
                help="ALPN protocols of new TLS-enabled pools."),
]

_certificate_opts = [
    cfg.StrOpt("cert_manager", default="local_cert_manager",
               choices=["local_cert_manager", "noop_cert_manager", "barbican_cert_manager"],
               help="Where certificate references point: local_cert_manager (lbaas's own "
                    "Barbican-shaped store, served at /v1 on the API port), "
                    "barbican_cert_manager (OpenStack Barbican, found in the Keystone "
                    "catalog; needs auth_strategy = keystone and [service_auth]), or "
                    "noop_cert_manager (any reference names one generated certificate; "
                    "for API tests such as octavia-tempest-plugin's test_with_noop)."),
    cfg.StrOpt("store_key_file", default="",
               help="Key file (mode 600, created on first start) that encrypts the local "
                    "store's payloads; empty means <state_dir>/secrets.key. Every lbaas "
                    "process sharing a database needs the same file."),
    cfg.StrOpt("region_name", default=None,
               help="barbican_cert_manager: the region of Barbican's catalog endpoint."),
    cfg.StrOpt("endpoint_type", default="public",
               help="barbican_cert_manager: the interface of Barbican's catalog endpoint "
                    "(public, internal, admin)."),
]

# Agents: the hosts that run HAProxy, their heartbeats and their failover (Neutron's
# [DEFAULT] host and [AGENT] availability_zone; Octavia's [health_manager] heartbeats).
_host_opts = [
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<hostname>",
               help="This host's name: the agent's identity (its certificate's common "
                    "name) and the host shown in the agent list."),
]
_agent_opts = [
    cfg.StrOpt("availability_zone", default=None,
               help="The availability zone of this host's agent. Load balancers of an "
                    "availability zone go to agents of the zone its profile names "
                    "(compute_zone), or of the zone's own name."),
]
_amphora_driver_opts = [
    cfg.StrOpt("amphora_driver", default=c.AMPHORA_DRIVER_IN_PROCESS,
               choices=[c.AMPHORA_DRIVER_IN_PROCESS, c.AMPHORA_DRIVER_NOOP,
                        c.AMPHORA_DRIVER_REST],
               help="How the haproxy provider reaches its amphorae: in_process (an agent "
                    "inside this lbaas serve runs HAProxy on this host; one control-plane "
                    "process per database), amphora_haproxy_rest_driver (Octavia's name: "
                    "the lbaas agents at agent_endpoints, over HTTPS with mutual TLS; "
                    "several lbaas serve may share one PostgreSQL database) or "
                    "amphora_noop_driver (Octavia's: nothing is run, for API and worker "
                    "tests)."),
    cfg.ListOpt("agent_endpoints", default=[],
                help="With amphora_haproxy_rest_driver: the URL of every lbaas agent, "
                     "https://<address>:<port> (its [amphora_agent] bind_host and "
                     "bind_port); its certificate must name that address."),
]
_agent_tls_client_opts = [
    cfg.StrOpt("client_cert", default=None,
               help="With amphora_haproxy_rest_driver: the control plane's certificate "
                    "and key (one PEM file) presented to agents (lbaas agent certificate "
                    "issue)."),
    cfg.StrOpt("server_ca", default=None,
               help="With amphora_haproxy_rest_driver: the CA certificate agents' "
                    "certificates must be issued by."),
]
_amphora_agent_opts = [
    cfg.StrOpt("bind_host", default="127.0.0.1",
               help="Address lbaas agent serve listens on (HTTPS)."),
    cfg.PortOpt("bind_port", default=9443, help="Port lbaas agent serve listens on."),
    cfg.StrOpt("agent_server_cert", default=None,
               help="The agent's certificate and key (one PEM file), its common name the "
                    "host's name ([DEFAULT] host)."),
    cfg.StrOpt("agent_server_ca", default=None,
               help="The CA certificate the control plane's client certificate must be "
                    "issued by."),
]
_neutron_opts = [
    cfg.StrOpt("endpoint_override",
               help="network_driver = neutron: Neutron's versioned URL "
                    "(e.g. http://neutron:9696/v2.0); empty: the 'network' endpoint of the "
                    "Keystone catalog."),
    cfg.StrOpt("region_name", help="network_driver = neutron: the catalog region of Neutron."),
    cfg.StrOpt("endpoint_type", default="public", choices=["public", "internal", "admin"],
               help="network_driver = neutron: the catalog interface of Neutron."),
]
_heartbeat_opts = [
    cfg.FloatOpt("heartbeat_interval", default=2.0, min=0.1,
                 help="Seconds between two heartbeats of an agent (its load balancers' "
                      "statuses and counters travel with them)."),
    cfg.FloatOpt("heartbeat_timeout", default=20.0, min=0.5,
                 help="Seconds without a heartbeat after which an agent is declared dead "
                      "and its load balancers are rebuilt on other agents."),
]

CONF_GROUPS: dict[str | None, list[Any]] = {
    None: _default_opts,
    "api_settings": _api_opts + _tls_api_opts,
    "certificates": _certificate_opts,
    "database": _database_opts,
    "quotas": _quota_opts,
    "controller_worker": _worker_opts,
    "networking": _network_opts,
    "provider_noop": _noop_opts,
    "haproxy_amphora": _haproxy_opts,
    "health_manager": _health_opts,
    "oslo_middleware": _middleware_opts,
    "keepalived_vrrp": _keepalived_opts,
}
CONF_GROUPS[None] = [*CONF_GROUPS[None], *_host_opts]
CONF_GROUPS["controller_worker"] = [*CONF_GROUPS["controller_worker"], *_amphora_driver_opts]
CONF_GROUPS["haproxy_amphora"] = [*CONF_GROUPS["haproxy_amphora"], *_agent_tls_client_opts]
CONF_GROUPS["amphora_agent"] = _amphora_agent_opts
CONF_GROUPS["neutron"] = _neutron_opts
CONF_GROUPS["agent"] = _agent_opts
CONF_GROUPS["health_manager"] = [*CONF_GROUPS["health_manager"], *_heartbeat_opts]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every lbaas option on ``conf`` (idempotent)."""
    for group, opts in CONF_GROUPS.items():
        if group is None:
            conf.register_opts(opts)
        else:
            conf.register_opts(opts, group=group)


def list_opts() -> list[tuple[str | None, list[Any]]]:
    """Options for oslo-config-generator (the sample config in etc/)."""
    return [(group, list(opts)) for group, opts in CONF_GROUPS.items()]


@dataclass(frozen=True)
class QuotaDefaults:
    """Default per-project quotas; -1 is unlimited (Octavia's [quotas] section)."""

    loadbalancer: int = c.QUOTA_UNLIMITED
    listener: int = c.QUOTA_UNLIMITED
    member: int = c.QUOTA_UNLIMITED
    pool: int = c.QUOTA_UNLIMITED
    healthmonitor: int = c.QUOTA_UNLIMITED
    l7policy: int = c.QUOTA_UNLIMITED
    l7rule: int = c.QUOTA_UNLIMITED


@dataclass(frozen=True)
class HaproxySettings:
    """The haproxy provider's ``[haproxy_amphora]`` options. Times in seconds unless noted."""

    base_path: Path | None = None  # None: <state_dir>/lb
    haproxy_cmd: str = "/usr/sbin/haproxy"
    placement: str = "local"  # local | namespace
    hard_stop_after: int = 60
    stick_size: str = "10k"
    default_connection_limit: int = 50000
    timeout_client_data: int = c.DEFAULT_TIMEOUT_CLIENT_DATA  # ms
    timeout_member_connect: int = c.DEFAULT_TIMEOUT_MEMBER_CONNECT  # ms
    timeout_member_data: int = c.DEFAULT_TIMEOUT_MEMBER_DATA  # ms
    nbthread: int = 0
    reload_timeout: float = 15.0
    supervise_interval: float = 2.0
    member_drain_timeout: float = 2.0
    local_listener_ports: str = "1024-65535"  # the local placement's, "80,1024-65535"
    stats_quiet_interval: float = 10.0


@dataclass(frozen=True)
class KeepalivedVrrpSettings:
    """``[keepalived_vrrp]`` (Octavia's group and names). Seconds."""

    vrrp_advert_int: float = 0.5
    vrrp_check_interval: int = 1
    vrrp_fail_count: int = 2
    vrrp_success_count: int = 2
    vrrp_garp_refresh_interval: int = 5
    vrrp_garp_refresh_count: int = 2
    keepalived_cmd: str = "/usr/sbin/keepalived"


@dataclass(frozen=True)
class HealthSettings:
    """The health manager's ``[health_manager]`` options (Octavia's group). Seconds."""

    interval: float = 2.0  # 0: no health manager
    threads: int = 2
    unanswered_polls: int = 3


@dataclass(frozen=True)
class TlsDefaults:
    """Octavia's ``[api_settings]`` TLS options: what TLS-enabled listeners and pools
    get when they leave a setting null, and what they may not ask for."""

    allow_tls_terminated_listeners: bool = True
    listener_ciphers: str = c.DEFAULT_TLS_CIPHERS
    pool_ciphers: str = c.DEFAULT_TLS_CIPHERS
    cipher_prohibit_list: tuple[str, ...] = ()
    listener_tls_versions: tuple[str, ...] = c.DEFAULT_TLS_VERSIONS
    pool_tls_versions: tuple[str, ...] = c.DEFAULT_TLS_VERSIONS
    minimum_tls_version: str | None = None
    listener_alpn_protocols: tuple[str, ...] = c.DEFAULT_ALPN_PROTOCOLS
    pool_alpn_protocols: tuple[str, ...] = c.DEFAULT_ALPN_PROTOCOLS


@dataclass(frozen=True)
class CertificateSettings:
    """``[certificates]``: the certificate manager and its settings."""

    cert_manager: str = "local_cert_manager"
    store_key_file: Path | None = None  # None: <state_dir>/secrets.key
    region_name: str | None = None  # barbican_cert_manager: catalog region
    endpoint_type: str = "public"  # barbican_cert_manager: catalog interface


@dataclass(frozen=True)
class NeutronSettings:
    """``[neutron]``: where ``network_driver = neutron`` finds Neutron."""

    endpoint_override: str | None = None  # None: the catalog's 'network' endpoint
    region_name: str | None = None
    endpoint_type: str = "public"


@dataclass(frozen=True)
class AgentSettings:
    """Agents and their heartbeats: ``[DEFAULT] host``, ``[agent]``, ``[health_manager]
    heartbeat_*``. Seconds."""

    host: str = field(default_factory=socket.gethostname)
    availability_zone: str | None = None
    amphora_driver: str = c.AMPHORA_DRIVER_IN_PROCESS  # [controller_worker] amphora_driver
    agent_endpoints: tuple[str, ...] = ()  # [controller_worker]
    client_cert: str | None = None  # [haproxy_amphora]
    server_ca: str | None = None
    bind_host: str = "127.0.0.1"  # [amphora_agent]: lbaas agent serve's own
    bind_port: int = 9443
    agent_server_cert: str | None = None
    agent_server_ca: str | None = None
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 20.0


@dataclass(frozen=True)
class Settings:
    """Everything a running lbaas needs to know, fixed at start-up.

    Times are seconds unless the name says otherwise.
    """

    state_dir: Path = Path(os.path.expanduser(DEFAULT_STATE_DIR))
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 9876
    api_base_uri: str = ""
    pagination_max_limit: int = 1000
    default_project_id: str = "admin"
    default_provider: str = c.PROVIDER_HAPROXY
    enabled_providers: dict[str, str] = field(
        default_factory=lambda: dict(PROVIDER_DESCRIPTIONS))
    policy_file: str | None = None
    auth_strategy: str = c.NOAUTH
    allow_insecure_noauth: bool = False
    config_files: tuple[str, ...] = ()  # also read by keystonemiddleware and oslo.policy
    quotas: QuotaDefaults = QuotaDefaults()
    worker_threads: int = 4
    worker_poll_interval: float = 1.0
    network_driver: str = "local"  # local | noop | neutron
    neutron: NeutronSettings = NeutronSettings()
    loadbalancer_topology: str = c.TOPOLOGY_SINGLE
    default_subnet_cidr: str = "127.1.0.0/16"
    default_subnet_pool: tuple[str, str] = ("127.1.0.1", "127.1.255.254")
    reserved_ips: tuple[str, ...] = ("169.254.169.254",)
    noop_apply_delay: float = 0.0
    haproxy: HaproxySettings = HaproxySettings()
    health: HealthSettings = HealthSettings()
    max_request_body_size: int = 114688  # bytes
    keepalived: KeepalivedVrrpSettings = KeepalivedVrrpSettings()
    tls: TlsDefaults = TlsDefaults()
    certificates: CertificateSettings = CertificateSettings()
    agents: AgentSettings = AgentSettings()
    healthcheck_refresh_interval: float = 5.0

    @property
    def haproxy_base_path(self) -> Path:
        """Where load balancer directories live: the configured base_path or <state_dir>/lb."""
        return self.haproxy.base_path or self.state_dir / "lb"

    @property
    def store_key_file(self) -> Path:
        """The local certificate store's key: the configured file or <state_dir>/secrets.key."""
        return self.certificates.store_key_file or self.state_dir / "secrets.key"

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the state directory."""
        return self.database_url or f"sqlite:///{self.state_dir / 'lbaas.sqlite'}"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and CLI overrides)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def load_settings(config_files: list[str] | None = None, **overrides: object) -> Settings:
    """Read INI files into :class:`Settings`; non-None ``overrides`` win.

    ``overrides`` use :class:`Settings` field names (``host``, ``port``,
    ``state_dir``, ``database_url``, ``default_provider``...).

    Raises ``oslo_config.cfg.Error`` subclasses for unreadable files or bad values.
    """
    conf = cfg.ConfigOpts()
    register_opts(conf)
    from oslo_policy import opts as policy_opts

    policy_opts.set_defaults(conf)
    conf([], project="lbaas", default_config_files=config_files or [])
    policy_file = conf.oslo_policy.policy_file
    settings = Settings(
        state_dir=Path(os.path.expanduser(conf.state_dir)),
        database_url=conf.database.connection,
        host=conf.api_settings.bind_host,
        port=conf.api_settings.bind_port,
        api_base_uri=conf.api_settings.api_base_uri,
        pagination_max_limit=conf.api_settings.pagination_max_limit,
        default_project_id=conf.default_project_id,
        auth_strategy=conf.api_settings.auth_strategy,
        allow_insecure_noauth=conf.api_settings.allow_insecure_noauth,
        config_files=tuple(config_files or ()),
        default_provider=conf.api_settings.default_provider_driver,
        enabled_providers=dict(conf.api_settings.enabled_provider_drivers or {}),
        policy_file=policy_file if policy_file and policy_file != "policy.yaml" else None,
        quotas=QuotaDefaults(
            loadbalancer=conf.quotas.default_load_balancer_quota,
            listener=conf.quotas.default_listener_quota,
            member=conf.quotas.default_member_quota,
            pool=conf.quotas.default_pool_quota,
            healthmonitor=conf.quotas.default_health_monitor_quota,
            l7policy=conf.quotas.default_l7policy_quota,
            l7rule=conf.quotas.default_l7rule_quota,
        ),
        worker_threads=conf.controller_worker.workers,
        worker_poll_interval=conf.controller_worker.poll_interval,
        network_driver=conf.controller_worker.network_driver,
        neutron=NeutronSettings(endpoint_override=conf.neutron.endpoint_override or None,
                                region_name=conf.neutron.region_name or None,
                                endpoint_type=conf.neutron.endpoint_type),
        loadbalancer_topology=conf.controller_worker.loadbalancer_topology,
        default_subnet_cidr=conf.networking.default_subnet_cidr,
        default_subnet_pool=(conf.networking.default_subnet_pool_start,
                             conf.networking.default_subnet_pool_end),
        reserved_ips=tuple(str(a) for a in conf.networking.reserved_ips),
        noop_apply_delay=conf.provider_noop.apply_delay,
        haproxy=HaproxySettings(
            base_path=Path(os.path.expanduser(conf.haproxy_amphora.base_path))
            if conf.haproxy_amphora.base_path else None,
            haproxy_cmd=conf.haproxy_amphora.haproxy_cmd,
            placement=conf.haproxy_amphora.placement,
            hard_stop_after=conf.haproxy_amphora.hard_stop_after,
            stick_size=conf.haproxy_amphora.haproxy_stick_size,
            default_connection_limit=conf.haproxy_amphora.default_connection_limit,
            timeout_client_data=conf.haproxy_amphora.timeout_client_data,
            timeout_member_connect=conf.haproxy_amphora.timeout_member_connect,
            timeout_member_data=conf.haproxy_amphora.timeout_member_data,
            nbthread=conf.haproxy_amphora.nbthread,
            reload_timeout=conf.haproxy_amphora.reload_timeout,
            supervise_interval=conf.haproxy_amphora.supervise_interval,
            member_drain_timeout=conf.haproxy_amphora.member_drain_timeout,
            local_listener_ports=conf.haproxy_amphora.local_listener_ports,
            stats_quiet_interval=conf.haproxy_amphora.stats_quiet_interval,
        ),
        health=HealthSettings(
            interval=conf.health_manager.health_check_interval,
            threads=conf.health_manager.health_update_threads,
            unanswered_polls=conf.health_manager.unanswered_polls,
        ),
        max_request_body_size=conf.oslo_middleware.max_request_body_size,
        keepalived=KeepalivedVrrpSettings(
            vrrp_advert_int=conf.keepalived_vrrp.vrrp_advert_int,
            vrrp_check_interval=conf.keepalived_vrrp.vrrp_check_interval,
            vrrp_fail_count=conf.keepalived_vrrp.vrrp_fail_count,
            vrrp_success_count=conf.keepalived_vrrp.vrrp_success_count,
            vrrp_garp_refresh_interval=conf.keepalived_vrrp.vrrp_garp_refresh_interval,
            vrrp_garp_refresh_count=conf.keepalived_vrrp.vrrp_garp_refresh_count,
            keepalived_cmd=conf.keepalived_vrrp.keepalived_cmd,
        ),
        tls=_tls_defaults(conf.api_settings),
        certificates=CertificateSettings(
            cert_manager=conf.certificates.cert_manager,
            store_key_file=Path(os.path.expanduser(conf.certificates.store_key_file))
            if conf.certificates.store_key_file else None,
            region_name=conf.certificates.region_name,
            endpoint_type=conf.certificates.endpoint_type,
        ),
        agents=AgentSettings(
            host=conf.host,
            availability_zone=conf.agent.availability_zone,
            amphora_driver=conf.controller_worker.amphora_driver,
            agent_endpoints=tuple(conf.controller_worker.agent_endpoints or ()),
            client_cert=conf.haproxy_amphora.client_cert,
            server_ca=conf.haproxy_amphora.server_ca,
            bind_host=conf.amphora_agent.bind_host,
            bind_port=conf.amphora_agent.bind_port,
            agent_server_cert=conf.amphora_agent.agent_server_cert,
            agent_server_ca=conf.amphora_agent.agent_server_ca,
            heartbeat_interval=conf.health_manager.heartbeat_interval,
            heartbeat_timeout=conf.health_manager.heartbeat_timeout,
        ),
        healthcheck_refresh_interval=conf.api_settings.healthcheck_refresh_interval,
    )
    if (settings.certificates.cert_manager == "barbican_cert_manager"
            and settings.auth_strategy != c.KEYSTONE):
        raise ValueError("[certificates] cert_manager = barbican_cert_manager reads Barbican "
                         "with the caller's Keystone token: it needs [api_settings] "
                         "auth_strategy = keystone.")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "state_dir" in changes:
        changes["state_dir"] = Path(os.path.expanduser(str(changes["state_dir"])))
    if conf.api_settings.enabled_provider_drivers is None:
        # Labelled after the overrides: `lbaas serve --provider noop` makes noop the default.
        changes["enabled_providers"] = builtin_providers(
            str(changes.get("default_provider", settings.default_provider)))
    return settings.replace(**changes) if changes else settings


class ExposureError(Exception):
    """lbaas would serve without authentication on an address others can reach."""


def check_exposure(settings: Settings) -> None:
    """Refuse ``noauth`` on a bind address that is not loopback (ExposureError).

    With noauth anyone who reaches the port is whoever their headers say, or
    the admin; that is safe only on 127.0.0.0/8 or ::1. A host name counts as
    loopback if every address it resolves to is. The operator may accept the
    risk with ``[api_settings] allow_insecure_noauth = true``.
    """
    if settings.auth_strategy != c.NOAUTH or settings.allow_insecure_noauth:
        return
    if not _is_loopback(settings.host):
        raise ExposureError(
            f"refusing to serve without authentication on {settings.host}: "
            f"[api_settings] auth_strategy is noauth, which lets anyone who reaches port "
            f"{settings.port} act as any project or as the admin. Bind to a loopback "
            f"address (--host 127.0.0.1), set [api_settings] auth_strategy = keystone or "
            f"apikey, or accept the risk with [api_settings] allow_insecure_noauth = true "
            f"(lbaas serve --allow-insecure-noauth).")


def _is_loopback(host: str) -> bool:
    import ipaddress
    import socket

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback
                               for info in infos)


def _tls_defaults(api: Any) -> TlsDefaults:
    """``[api_settings]`` TLS options, checked against each other as Octavia does at
    start-up (defaults under the minimum version or on the prohibit list are refused).

    Raises ValueError naming the conflicting option.
    """
    out = TlsDefaults(
        allow_tls_terminated_listeners=api.allow_tls_terminated_listeners,
        listener_ciphers=api.default_listener_ciphers,
        pool_ciphers=api.default_pool_ciphers,
        cipher_prohibit_list=tuple(x for x in api.tls_cipher_prohibit_list.split(":") if x),
        listener_tls_versions=tuple(api.default_listener_tls_versions),
        pool_tls_versions=tuple(api.default_pool_tls_versions),
        minimum_tls_version=api.minimum_tls_version,
        listener_alpn_protocols=tuple(api.default_listener_alpn_protocols),
        pool_alpn_protocols=tuple(api.default_pool_alpn_protocols),
    )
    for what, ciphers in (("listener", out.listener_ciphers), ("pool", out.pool_ciphers)):
        banned = [x for x in ciphers.split(":") if x in out.cipher_prohibit_list]
        if banned:
            raise ValueError(f"Default {what} ciphers conflict with prohibit list. "
                             f"Conflicting ciphers: {', '.join(banned)}")
    if out.minimum_tls_version:
        floor = c.TLS_VERSIONS.index(out.minimum_tls_version)
        for what, versions in (("listener", out.listener_tls_versions),
                               ("pool", out.pool_tls_versions)):
            low = [v for v in versions if c.TLS_VERSIONS.index(v) < floor]
            if low:
                raise ValueError(f"Default {what} TLS versions are less than the minimum: "
                                 f"{', '.join(low)} < {out.minimum_tls_version}")
    return out
