"""Octavia's vocabulary: statuses, protocols, algorithms and limits.

Values and limits follow the Octavia v2 api-ref
(https://docs.openstack.org/api-ref/load-balancer/v2/) and octavia-lib's
constants, so that clients written for Octavia see the same strings.
"""

from typing import Final

# provisioning_status: what the control plane has applied.
ACTIVE: Final = "ACTIVE"
DELETED: Final = "DELETED"
ERROR: Final = "ERROR"
PENDING_CREATE: Final = "PENDING_CREATE"
PENDING_UPDATE: Final = "PENDING_UPDATE"
PENDING_DELETE: Final = "PENDING_DELETE"
PROVISIONING_STATUSES: Final = (
    ACTIVE, DELETED, ERROR, PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE,
)
PENDING_STATUSES: Final = (PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE)

# operating_status: what the data plane observes.
ONLINE: Final = "ONLINE"
OFFLINE: Final = "OFFLINE"
DEGRADED: Final = "DEGRADED"
NO_MONITOR: Final = "NO_MONITOR"
DRAINING: Final = "DRAINING"
OPERATING_STATUSES: Final = (ONLINE, OFFLINE, DEGRADED, ERROR, NO_MONITOR, DRAINING)

# Protocols (octavia-lib LISTENER_SUPPORTED_PROTOCOLS / POOL_SUPPORTED_PROTOCOLS).
HTTP: Final = "HTTP"
HTTPS: Final = "HTTPS"
TCP: Final = "TCP"
UDP: Final = "UDP"
SCTP: Final = "SCTP"
TERMINATED_HTTPS: Final = "TERMINATED_HTTPS"
PROXY: Final = "PROXY"
PROXYV2: Final = "PROXYV2"
PROMETHEUS: Final = "PROMETHEUS"
LISTENER_PROTOCOLS: Final = (HTTP, HTTPS, TCP, TERMINATED_HTTPS, UDP, SCTP, PROMETHEUS)
POOL_PROTOCOLS: Final = (HTTP, HTTPS, PROXY, PROXYV2, TCP, UDP, SCTP)

# Which pool protocols a listener of each protocol may use (Octavia's
# VALID_LISTENER_POOL_PROTOCOL_MAP).
VALID_LISTENER_POOL_PROTOCOL_MAP: Final[dict[str, tuple[str, ...]]] = {
    TCP: (HTTP, HTTPS, PROXY, PROXYV2, TCP),
    HTTP: (HTTP, PROXY, PROXYV2),
    HTTPS: (HTTPS, PROXY, PROXYV2, TCP),
    TERMINATED_HTTPS: (HTTP, PROXY, PROXYV2),
    UDP: (UDP,),
    SCTP: (SCTP,),
    PROMETHEUS: (),
}

# Load balancing algorithms.
ROUND_ROBIN: Final = "ROUND_ROBIN"
LEAST_CONNECTIONS: Final = "LEAST_CONNECTIONS"
SOURCE_IP: Final = "SOURCE_IP"
SOURCE_IP_PORT: Final = "SOURCE_IP_PORT"
LB_ALGORITHMS: Final = (ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT)

# Session persistence types.
SP_SOURCE_IP: Final = "SOURCE_IP"
SP_HTTP_COOKIE: Final = "HTTP_COOKIE"
SP_APP_COOKIE: Final = "APP_COOKIE"
SESSION_PERSISTENCE_TYPES: Final = (SP_SOURCE_IP, SP_HTTP_COOKIE, SP_APP_COOKIE)

# Health monitor types and HTTP methods.
HM_HTTP: Final = "HTTP"
HM_HTTPS: Final = "HTTPS"
HM_PING: Final = "PING"
HM_TCP: Final = "TCP"
HM_TLS_HELLO: Final = "TLS-HELLO"
HM_UDP_CONNECT: Final = "UDP-CONNECT"
HM_SCTP: Final = "SCTP"
HEALTH_MONITOR_TYPES: Final = (HM_HTTP, HM_HTTPS, HM_PING, HM_TCP, HM_TLS_HELLO,
                               HM_UDP_CONNECT, HM_SCTP)
HEALTH_MONITOR_HTTP_METHODS: Final = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS",
                                      "PATCH", "POST", "PUT", "TRACE")
HTTP_VERSIONS: Final = (1.0, 1.1)

# L7 policies and rules.
L7POLICY_ACTIONS: Final = ("REJECT", "REDIRECT_TO_URL", "REDIRECT_TO_POOL", "REDIRECT_PREFIX")
L7POLICY_REDIRECT_HTTP_CODES: Final = (301, 302, 303, 307, 308)
L7RULE_TYPES: Final = ("HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE",
                       "SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD")
L7RULE_COMPARE_TYPES: Final = ("REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO")
MAX_L7RULES_PER_L7POLICY: Final = 50
MIN_POLICY_POSITION: Final = 1
MAX_POLICY_POSITION: Final = 2147483647

# Listener options.
CLIENT_AUTH_MODES: Final = ("NONE", "OPTIONAL", "MANDATORY")
INSERT_HEADERS_HTTP: Final = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto")

# TLS, for listeners (towards clients) and pools (towards members).
ALPN_PROTOCOLS: Final = ("http/1.0", "http/1.1", "h2")
# Octavia's TLS_ALL_VERSIONS, oldest first.
TLS_VERSIONS: Final = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# Octavia's [api_settings] defaults, the same for listeners and pools
# (default_listener_ciphers / default_pool_ciphers = CIPHERS_OWASP_SUITE_B,
# default_*_tls_versions, default_*_alpn_protocols).
DEFAULT_TLS_CIPHERS: Final = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
DEFAULT_TLS_VERSIONS: Final = ("TLSv1.2", "TLSv1.3")
DEFAULT_ALPN_PROTOCOLS: Final = ("h2", "http/1.1", "http/1.0")

# Numeric limits (api-ref).
MIN_PORT: Final = 1
MAX_PORT: Final = 65535
MIN_CONNECTION_LIMIT: Final = -1
DEFAULT_CONNECTION_LIMIT: Final = -1
MIN_WEIGHT: Final = 0
MAX_WEIGHT: Final = 256
DEFAULT_WEIGHT: Final = 1
MIN_HM_RETRIES: Final = 1
MAX_HM_RETRIES: Final = 10
DEFAULT_MAX_RETRIES_DOWN: Final = 3
# Listener timeouts are milliseconds; 24 days is Octavia's (and HAProxy's) ceiling.
MIN_TIMEOUT: Final = 0
MAX_TIMEOUT: Final = 24 * 24 * 60 * 60 * 1000
DEFAULT_TIMEOUT_CLIENT_DATA: Final = 50000
DEFAULT_TIMEOUT_MEMBER_CONNECT: Final = 5000
DEFAULT_TIMEOUT_MEMBER_DATA: Final = 50000
DEFAULT_TIMEOUT_TCP_INSPECT: Final = 0
# Octavia's HAPROXY_MAX_MAXCONN: the largest connection_limit HAProxy is given.
MAX_CONNECTION_LIMIT: Final = 1000000
# The largest value of an integer column (32-bit signed, as Octavia's schema).
MAX_INT32: Final = 2147483647
# Request size limits that keep one object from stalling the API (each object,
# each list): tags as many as Octavia's own tests use (octavia-tempest-plugin
# creates a listener with 100; Octavia sets no limit); allowed_cidrs as many as
# HAProxy tests quickly (each network is a node of one lookup tree).
MAX_TAGS: Final = 100
MAX_ALLOWED_CIDRS: Final = 1000
QUOTA_UNLIMITED: Final = -1
MIN_QUOTA: Final = QUOTA_UNLIMITED
MAX_QUOTA: Final = 2000000000

# Topologies and amphora roles.
TOPOLOGY_SINGLE: Final = "SINGLE"
TOPOLOGY_ACTIVE_STANDBY: Final = "ACTIVE_STANDBY"
TOPOLOGIES: Final = (TOPOLOGY_SINGLE, TOPOLOGY_ACTIVE_STANDBY)

# Agents, as Neutron's agent API names them (neutron-lbaas called its agent
# "Loadbalancerv2 agent", binary "neutron-lbaasv2-agent").
AGENT_TYPE_LOADBALANCER: Final = "Loadbalancer agent"
AGENT_BINARY: Final = "lbaas-agent"  # a data-plane host's `lbaas agent serve`
AGENT_BINARY_IN_PROCESS: Final = "lbaas-serve"  # the agent inside a standalone `lbaas serve`
# [controller_worker] amphora_driver: how the haproxy provider reaches its amphorae.
AMPHORA_DRIVER_IN_PROCESS: Final = "in_process"
AMPHORA_DRIVER_NOOP: Final = "amphora_noop_driver"  # Octavia's name
AMPHORA_DRIVER_REST: Final = "amphora_haproxy_rest_driver"  # Octavia's name: remote agents

# Providers.
PROVIDER_HAPROXY: Final = "haproxy"
PROVIDER_AMPHORA: Final = "amphora"  # Octavia's name; an alias of haproxy here
PROVIDER_NOOP: Final = "noop"
PROVIDER_ALIASES: Final[dict[str, str]] = {PROVIDER_AMPHORA: PROVIDER_HAPROXY}

# Amphorae (the HAProxy instances of the haproxy provider): Octavia's roles and statuses.
AMPHORA_ROLE_STANDALONE: Final = "STANDALONE"
AMPHORA_ROLE_MASTER: Final = "MASTER"
AMPHORA_ROLE_BACKUP: Final = "BACKUP"
AMPHORA_PENDING_CREATE: Final = "PENDING_CREATE"
AMPHORA_ALLOCATED: Final = "ALLOCATED"
AMPHORA_PENDING_DELETE: Final = "PENDING_DELETE"
AMPHORA_ERROR: Final = "ERROR"
# VRRP priorities of the amphora built for each role (Octavia's).
AMPHORA_ROLE_PRIORITY: Final[dict[str, int]] = {AMPHORA_ROLE_MASTER: 100,
                                                AMPHORA_ROLE_BACKUP: 90}
# The amphorae (one per role) each topology runs.
TOPOLOGY_ROLES: Final[dict[str, tuple[str, ...]]] = {
    TOPOLOGY_SINGLE: (AMPHORA_ROLE_STANDALONE,),
    TOPOLOGY_ACTIVE_STANDBY: (AMPHORA_ROLE_MASTER, AMPHORA_ROLE_BACKUP)}
# The network namespace of a load balancer in namespace placement: qlbaas-<lb_id>;
# of an amphora of an ACTIVE_STANDBY one: amphora-<amphora_id> (Octavia's VM name).
NAMESPACE_PREFIX: Final = "qlbaas-"
AMPHORA_NAMESPACE_PREFIX: Final = "amphora-"

# Sorting and pagination (octavia api/common/pagination.py defaults).
SORT_ASC: Final = "asc"
SORT_DESC: Final = "desc"
DEFAULT_SORT_DIR: Final = SORT_ASC
DEFAULT_SORT_KEYS: Final = ("created_at", "id")

VNIC_TYPE_NORMAL: Final = "normal"

# [api_settings] auth_strategy values (Octavia's names, and lbaas's own API keys).
NOAUTH = "noauth"
KEYSTONE = "keystone"
APIKEY = "apikey"
