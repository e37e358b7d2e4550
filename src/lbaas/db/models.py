"""SQLAlchemy models: the database is the source of truth.

Column names are the Octavia v2 API's field names (``admin_state_up``,
``address``, ``max_retries``, ``vip_address``...), so that the API maps a
field to a column without a rename table and filters and sort keys are
column names. Lists and small dicts that the API returns whole
(``insert_headers``, ``allowed_cidrs``, ``session_persistence``...) are JSON
columns; tags live in one :class:`Tag` table so that they can be filtered.

``provisioning_status`` is written only by :mod:`lbaas.worker.status`;
``operating_status`` only by the health manager (and set to its initial
value on create, and for health monitors when they settle ACTIVE).
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    configure_mappers,
    mapped_column,
    relationship,
    synonym,
)

from lbaas.common import constants as c


def new_id() -> str:
    """A fresh resource id: a UUID4 in canonical text form."""
    return str(uuid.uuid4())


_last_now = datetime.min
_now_lock = threading.Lock()


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo, to the microsecond and strictly increasing in this process.

    The API prints timestamps to the second (Octavia's form); the stored
    microseconds make ``created_at`` (the default sort key, then ``id``) order
    rows by creation even when many are made within one second, as Octavia's
    lists and status tree are.
    """
    global _last_now
    now = datetime.now(UTC).replace(tzinfo=None)
    with _now_lock:
        if now <= _last_now:
            now = _last_now + timedelta(microseconds=1)
        _last_now = now
    return now


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Tag(Base):
    """One tag of one resource; ``resource_id`` is the id of any taggable row."""

    __tablename__ = "tag"
    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


def _tag_relationship(owner: str) -> Any:
    return relationship(
        Tag,
        primaryjoin=f"foreign(Tag.resource_id) == {owner}.id",
        cascade="all, delete-orphan",
        lazy="selectin",
        overlaps="_tags",
    )


class _Resource:
    """Columns every Octavia resource row has."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class _Provisioned(_Resource):
    """A resource of a load balancer's graph: statuses, admin state, tags."""

    name: Mapped[str | None] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    provisioning_status: Mapped[str] = mapped_column(String(16), default=c.PENDING_CREATE)
    operating_status: Mapped[str] = mapped_column(String(16), default=c.OFFLINE)
    tags: AssociationProxy[list[str]] = association_proxy(
        "_tags", "tag", creator=lambda t: Tag(tag=t))


@event.listens_for(Base, "init", propagate=True)
def _new_row_has_no_tags(target: Base, args: Any, kwargs: Any) -> None:
    """A row made here (not loaded) has no tags yet: its collection starts loaded and
    empty, so that reading it after the commit (the API's response) asks the database
    nothing, which would open a transaction and, on SQLite, take the write lock that
    the worker's next change waits for (issue 12, member add -> traffic)."""
    if isinstance(target, _Provisioned):
        configure_mappers()  # this may run before the mapper's own first-use configure
        target._tags = []  # type: ignore[attr-defined]  # each model declares its _tags


class LoadBalancer(_Provisioned, Base):
    __tablename__ = "load_balancer"
    # The default order of lists (created_at, id), read from the index, not sorted.
    __table_args__ = (Index("ix_load_balancer_created_at_id", "created_at", "id"),)

    description: Mapped[str | None] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64), default=c.PROVIDER_HAPROXY)
    flavor_id: Mapped[str | None] = mapped_column(ForeignKey("flavor.id"))
    availability_zone: Mapped[str | None] = mapped_column(
        ForeignKey("availability_zone.name"))
    topology: Mapped[str] = mapped_column(String(16), default=c.TOPOLOGY_SINGLE)
    vip_address: Mapped[str | None] = mapped_column(String(64))
    vip_port_id: Mapped[str | None] = mapped_column(String(36))
    vip_subnet_id: Mapped[str | None] = mapped_column(String(36))
    vip_network_id: Mapped[str | None] = mapped_column(String(36))
    vip_qos_policy_id: Mapped[str | None] = mapped_column(String(36))
    vip_vnic_type: Mapped[str] = mapped_column(String(64), default=c.VNIC_TYPE_NORMAL)
    vip_sg_ids: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    additional_vips: Mapped[list[Any]] = mapped_column(JSON(none_as_null=True), default=list)
    # Why the last apply failed (HAProxy's message); cleared on success.
    provisioning_status_reason: Mapped[str | None] = mapped_column(Text)
    # Set by a failover request: the next apply rebuilds the data plane.
    failover_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # How many changes of its graph have begun (lbaas.worker.status bumps it with
    # the PENDING_* status): a worker given version n + 1 of the graph it applied
    # as n reads only the objects now PENDING_* (lbaas.worker.graph.MemberCache).
    graph_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    listeners: Mapped[list[Listener]] = relationship(
        back_populates="load_balancer", cascade="all, delete-orphan",
        order_by="Listener.created_at, Listener.id")
    pools: Mapped[list[Pool]] = relationship(
        back_populates="load_balancer", cascade="all, delete-orphan",
        order_by="Pool.created_at, Pool.id")
    _tags: Mapped[list[Tag]] = _tag_relationship("LoadBalancer")
    amphorae: Mapped[list[Amphora]] = relationship(
        back_populates="load_balancer", cascade="all, delete-orphan",
        order_by="Amphora.role, Amphora.id")
    vrrp_group: Mapped[VrrpGroup | None] = relationship(
        back_populates="load_balancer", cascade="all, delete-orphan")


class ApiKey(Base):
    """A credential of ``auth_strategy = apikey``: whoever sends the key as
    ``X-Auth-Token`` acts in ``project_id`` with ``roles`` (comma-separated).
    Only the key's SHA-256 digest is kept (:mod:`lbaas.db.apikeys`).
    """

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(1024))
    description: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Amphora(Base):
    """One HAProxy instance serving a load balancer (Octavia's amphora): one per load
    balancer of the haproxy provider (role STANDALONE); two (MASTER, BACKUP) for
    ACTIVE_STANDBY. ``compute_id`` says where it runs: the host, and
    ``:qlbaas-<lb_id>`` in namespace placement. ``ha_ip``/``ha_port_id`` are its VIP.
    ``status`` is written only by :mod:`lbaas.worker.status`.
    """

    __tablename__ = "amphora"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    load_balancer_id: Mapped[str] = mapped_column(
        ForeignKey("load_balancer.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(36), default=c.AMPHORA_ROLE_STANDALONE)
    status: Mapped[str] = mapped_column(String(36), default=c.AMPHORA_PENDING_CREATE)
    compute_id: Mapped[str | None] = mapped_column(String(255))
    lb_network_ip: Mapped[str | None] = mapped_column(String(64))
    vrrp_ip: Mapped[str | None] = mapped_column(String(64))
    ha_ip: Mapped[str | None] = mapped_column(String(64))
    vrrp_port_id: Mapped[str | None] = mapped_column(String(36))
    ha_port_id: Mapped[str | None] = mapped_column(String(36))
    vrrp_interface: Mapped[str | None] = mapped_column(String(16))
    vrrp_id: Mapped[int | None] = mapped_column(Integer)
    vrrp_priority: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, onupdate=utcnow)
    # The agent that runs it (lbaas.worker.scheduler); None while it has none (new, or
    # its agent was declared dead). cached_zone: that agent's availability zone.
    agent_id: Mapped[str | None] = mapped_column(
        ForeignKey("agent.id", ondelete="SET NULL"), index=True)
    cached_zone: Mapped[str | None] = mapped_column(String(255))

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="amphorae")
    agent: Mapped[Agent | None] = relationship(back_populates="amphorae")


class VrrpGroup(Base):
    """The VRRP group of an ACTIVE_STANDBY load balancer's two amphorae (Octavia's
    ``vrrp_group``): made with the load balancer, the same for the amphorae that
    replace failed ones. ``advert_int`` in seconds (``[keepalived_vrrp]
    vrrp_advert_int`` then); ``vrrp_auth_pass`` is used by VRRPv2 only (a whole
    number of seconds; keepalived has no authentication in VRRPv3).
    """

    __tablename__ = "vrrp_group"

    load_balancer_id: Mapped[str] = mapped_column(
        ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True)
    vrrp_group_name: Mapped[str] = mapped_column(String(36))
    vrrp_auth_type: Mapped[str] = mapped_column(String(16), default="PASS")
    vrrp_auth_pass: Mapped[str] = mapped_column(String(36))
    advert_int: Mapped[float] = mapped_column(Float)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="vrrp_group")


class Listener(_Provisioned, Base):
    __tablename__ = "listener"
    # A load balancer's listeners in their order (created_at, id), read from the index.
    __table_args__ = (UniqueConstraint("load_balancer_id", "protocol", "protocol_port"),
                      Index("ix_listener_load_balancer_id_created_at_id",
                            "load_balancer_id", "created_at", "id"))

    description: Mapped[str | None] = mapped_column(String(255))
    load_balancer_id: Mapped[str] = mapped_column(
        ForeignKey("load_balancer.id", ondelete="CASCADE"))
    protocol: Mapped[str] = mapped_column(String(32))
    protocol_port: Mapped[int] = mapped_column(Integer)
    connection_limit: Mapped[int] = mapped_column(Integer, default=c.DEFAULT_CONNECTION_LIMIT)
    default_pool_id: Mapped[str | None] = mapped_column(
        ForeignKey("pool.id", ondelete="SET NULL"), index=True)
    insert_headers: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True), default=dict)
    timeout_client_data: Mapped[int] = mapped_column(
        Integer, default=c.DEFAULT_TIMEOUT_CLIENT_DATA)
    timeout_member_connect: Mapped[int] = mapped_column(
        Integer, default=c.DEFAULT_TIMEOUT_MEMBER_CONNECT)
    timeout_member_data: Mapped[int] = mapped_column(
        Integer, default=c.DEFAULT_TIMEOUT_MEMBER_DATA)
    timeout_tcp_inspect: Mapped[int] = mapped_column(
        Integer, default=c.DEFAULT_TIMEOUT_TCP_INSPECT)
    allowed_cidrs: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    default_tls_container_ref: Mapped[str | None] = mapped_column(String(255))
    sni_container_refs: Mapped[list[Any]] = mapped_column(JSON(none_as_null=True), default=list)
    client_ca_tls_container_ref: Mapped[str | None] = mapped_column(String(255))
    client_authentication: Mapped[str] = mapped_column(String(10), default="NONE")
    client_crl_container_ref: Mapped[str | None] = mapped_column(String(255))
    tls_ciphers: Mapped[str | None] = mapped_column(String(2048))
    tls_versions: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    alpn_protocols: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    hsts_max_age: Mapped[int | None] = mapped_column(Integer)
    hsts_include_subdomains: Mapped[bool] = mapped_column(Boolean, default=False)
    hsts_preload: Mapped[bool] = mapped_column(Boolean, default=False)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="listeners")
    default_pool: Mapped[Pool | None] = relationship(
        back_populates="default_listeners", foreign_keys=[default_pool_id])
    l7policies: Mapped[list[L7Policy]] = relationship(
        back_populates="listener", cascade="all, delete-orphan",
        foreign_keys="L7Policy.listener_id",
        order_by="L7Policy.position")
    _tags: Mapped[list[Tag]] = _tag_relationship("Listener")


class Pool(_Provisioned, Base):
    __tablename__ = "pool"
    # A load balancer's pools in their order (created_at, id), read from the index.
    __table_args__ = (Index("ix_pool_load_balancer_id_created_at_id",
                            "load_balancer_id", "created_at", "id"),)

    description: Mapped[str | None] = mapped_column(String(255))
    load_balancer_id: Mapped[str] = mapped_column(
        ForeignKey("load_balancer.id", ondelete="CASCADE"))
    protocol: Mapped[str] = mapped_column(String(32))
    lb_algorithm: Mapped[str] = mapped_column(String(255))
    # {"type": ..., "cookie_name": ..., "persistence_timeout": ...,
    #  "persistence_granularity": ...} or None
    session_persistence: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    tls_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    tls_container_ref: Mapped[str | None] = mapped_column(String(255))
    ca_tls_container_ref: Mapped[str | None] = mapped_column(String(255))
    crl_container_ref: Mapped[str | None] = mapped_column(String(255))
    tls_ciphers: Mapped[str | None] = mapped_column(String(2048))
    tls_versions: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    alpn_protocols: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="pools")
    default_listeners: Mapped[list[Listener]] = relationship(
        back_populates="default_pool", foreign_keys="Listener.default_pool_id")
    l7policies: Mapped[list[L7Policy]] = relationship(
        back_populates="redirect_pool", foreign_keys="L7Policy.redirect_pool_id")
    members: Mapped[list[Member]] = relationship(
        back_populates="pool", cascade="all, delete-orphan",
        order_by="Member.created_at, Member.id")
    health_monitor: Mapped[HealthMonitor | None] = relationship(
        back_populates="pool", cascade="all, delete-orphan", uselist=False)
    _tags: Mapped[list[Tag]] = _tag_relationship("Pool")

    @property
    def listeners(self) -> list[Listener]:
        """Listeners using this pool: as default pool or through an L7 policy."""
        seen: dict[str, Listener] = {lis.id: lis for lis in self.default_listeners}
        for policy in self.l7policies:
            seen.setdefault(policy.listener.id, policy.listener)
        return list(seen.values())


class Member(_Provisioned, Base):
    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("pool_id", "address", "protocol_port"),)

    pool_id: Mapped[str] = mapped_column(ForeignKey("pool.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    protocol_port: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=c.DEFAULT_WEIGHT)
    backup: Mapped[bool] = mapped_column(Boolean, default=False)
    subnet_id: Mapped[str | None] = mapped_column(String(36))
    monitor_address: Mapped[str | None] = mapped_column(String(64))
    monitor_port: Mapped[int | None] = mapped_column(Integer)
    vnic_type: Mapped[str] = mapped_column(String(64), default=c.VNIC_TYPE_NORMAL)

    pool: Mapped[Pool] = relationship(back_populates="members")
    _tags: Mapped[list[Tag]] = _tag_relationship("Member")


class HealthMonitor(_Provisioned, Base):
    __tablename__ = "health_monitor"

    pool_id: Mapped[str] = mapped_column(
        ForeignKey("pool.id", ondelete="CASCADE"), unique=True)
    type: Mapped[str] = mapped_column(String(36))
    delay: Mapped[int] = mapped_column(Integer)  # seconds
    timeout: Mapped[int] = mapped_column(Integer)  # seconds
    max_retries: Mapped[int] = mapped_column(Integer)  # HAProxy "rise"
    max_retries_down: Mapped[int] = mapped_column(Integer, default=c.DEFAULT_MAX_RETRIES_DOWN)
    http_method: Mapped[str | None] = mapped_column(String(16))
    url_path: Mapped[str | None] = mapped_column(String(2048))
    expected_codes: Mapped[str | None] = mapped_column(String(64))
    http_version: Mapped[float | None] = mapped_column(Float)
    domain_name: Mapped[str | None] = mapped_column(String(255))

    pool: Mapped[Pool] = relationship(back_populates="health_monitor")
    _tags: Mapped[list[Tag]] = _tag_relationship("HealthMonitor")


class L7Policy(_Provisioned, Base):
    __tablename__ = "l7policy"

    description: Mapped[str | None] = mapped_column(String(255))
    listener_id: Mapped[str] = mapped_column(
        ForeignKey("listener.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(36))
    redirect_pool_id: Mapped[str | None] = mapped_column(ForeignKey("pool.id"), index=True)
    redirect_url: Mapped[str | None] = mapped_column(String(2048))
    redirect_prefix: Mapped[str | None] = mapped_column(String(2048))
    redirect_http_code: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)

    listener: Mapped[Listener] = relationship(
        back_populates="l7policies", foreign_keys=[listener_id])
    redirect_pool: Mapped[Pool | None] = relationship(
        back_populates="l7policies", foreign_keys=[redirect_pool_id])
    rules: Mapped[list[L7Rule]] = relationship(
        back_populates="l7policy", cascade="all, delete-orphan",
        order_by="L7Rule.created_at, L7Rule.id")
    _tags: Mapped[list[Tag]] = _tag_relationship("L7Policy")


class L7Rule(_Provisioned, Base):
    __tablename__ = "l7rule"

    l7policy_id: Mapped[str] = mapped_column(
        ForeignKey("l7policy.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(36))
    compare_type: Mapped[str] = mapped_column(String(36))
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    invert: Mapped[bool] = mapped_column(Boolean, default=False)

    l7policy: Mapped[L7Policy] = relationship(back_populates="rules")
    _tags: Mapped[list[Tag]] = _tag_relationship("L7Rule")


class Quota(Base):
    """A project's quota overrides; None means "use the configured default"."""

    __tablename__ = "quota"

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    loadbalancer: Mapped[int | None] = mapped_column(Integer)
    listener: Mapped[int | None] = mapped_column(Integer)
    member: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[int | None] = mapped_column(Integer)
    healthmonitor: Mapped[int | None] = mapped_column(Integer)
    l7policy: Mapped[int | None] = mapped_column(Integer)
    l7rule: Mapped[int | None] = mapped_column(Integer)

    # The list API pages by project: ``id`` is what markers and links name.
    id: Mapped[str] = synonym("project_id")


class FlavorProfile(Base):
    __tablename__ = "flavor_profile"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    provider_name: Mapped[str] = mapped_column(String(255))
    flavor_data: Mapped[str] = mapped_column(Text)  # a JSON object, stored as sent


class Flavor(Base):
    __tablename__ = "flavor"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    flavor_profile_id: Mapped[str] = mapped_column(ForeignKey("flavor_profile.id"))

    flavor_profile: Mapped[FlavorProfile] = relationship()


class AvailabilityZoneProfile(Base):
    __tablename__ = "availability_zone_profile"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    provider_name: Mapped[str] = mapped_column(String(255))
    availability_zone_data: Mapped[str] = mapped_column(Text)  # a JSON object


class AvailabilityZone(Base):
    __tablename__ = "availability_zone"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_profile_id: Mapped[str] = mapped_column(
        ForeignKey("availability_zone_profile.id"))

    availability_zone_profile: Mapped[AvailabilityZoneProfile] = relationship()

    # The name is the key: ``id`` is what list markers and links name.
    id: Mapped[str] = synonym("name")


class Network(_Resource, Base):
    """A Neutron-shaped network: the L2 domain a subnet lives on."""

    __tablename__ = "network"

    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)

    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", cascade="all, delete-orphan",
        order_by="Subnet.created_at, Subnet.id")


class Subnet(_Resource, Base):
    """A Neutron-shaped subnet: CIDR, gateway and the pools VIPs come from."""

    __tablename__ = "subnet"

    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    network_id: Mapped[str] = mapped_column(ForeignKey("network.id", ondelete="CASCADE"))
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64))
    # [{"start": "10.0.0.2", "end": "10.0.0.254"}, ...]
    allocation_pools: Mapped[list[Any]] = mapped_column(JSON(none_as_null=True), default=list)
    # Recorded and returned as Neutron does; lbaas serves no DHCP, DNS or routes.
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=False)
    dns_nameservers: Mapped[list[Any]] = mapped_column(JSON(none_as_null=True), default=list)
    # [{"destination": "10.1.0.0/16", "nexthop": "10.0.0.254"}, ...]
    host_routes: Mapped[list[Any]] = mapped_column(JSON(none_as_null=True), default=list)

    network: Mapped[Network] = relationship(back_populates="subnets")
    ports: Mapped[list[Port]] = relationship(back_populates="subnet")


class Port(_Resource, Base):
    """An address taken from a subnet (a VIP); ``device_id`` is the load balancer."""

    __tablename__ = "port"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address"),)

    name: Mapped[str | None] = mapped_column(String(255))
    network_id: Mapped[str] = mapped_column(ForeignKey("network.id"))
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnet.id"))
    ip_address: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(255), index=True)
    device_owner: Mapped[str | None] = mapped_column(String(255))

    subnet: Mapped[Subnet] = relationship(back_populates="ports")


class ListenerStatistics(Base):
    """Cumulative traffic counters of one listener (bytes, connections).

    Counters survive HAProxy reloads and restarts: the health manager adds the
    growth it observes since its last reading (:mod:`lbaas.health.stats`).
    ``readings`` holds that last raw reading per HAProxy worker,
    ``{"<pid>@<start time>": [bytes_in, bytes_out, total_connections,
    request_errors]}``, so that a restarted control plane neither loses nor
    double-counts traffic. ``active_connections`` is the current value.
    """

    __tablename__ = "listener_statistics"

    listener_id: Mapped[str] = mapped_column(
        ForeignKey("listener.id", ondelete="CASCADE"), primary_key=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    active_connections: Mapped[int] = mapped_column(Integer, default=0)
    total_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    request_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    readings: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True), default=dict)


class MemberStatistics(Base):
    """Cumulative traffic counters of one member, summed over the backends it is in.

    Kept like :class:`ListenerStatistics`; ``readings`` per worker are
    ``[bytes_in, bytes_out, total_connections]`` (``bytes_in``: bytes the
    member received from clients through HAProxy; ``bytes_out``: bytes it sent).
    """

    __tablename__ = "member_statistics"

    member_id: Mapped[str] = mapped_column(
        ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    active_connections: Mapped[int] = mapped_column(Integer, default=0)
    total_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    readings: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True), default=dict)


# -- the certificate store (Barbican-shaped secrets and containers) -------------------

def _now_us() -> datetime:
    """Now, in UTC, without tzinfo, to the microsecond (store lists are in creation order)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Secret(Base):
    """A secret of lbaas's own certificate store, in Barbican's shape (``/v1/secrets``).

    ``payload`` is the payload encrypted by :mod:`lbaas.certificates.store`
    (never plain text); null until a payload is given. ``content_type`` is
    Barbican's normalised payload content type (``text/plain``,
    ``application/octet-stream``, ``application/pkcs8``).
    """

    __tablename__ = "secret"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    creator_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    secret_type: Mapped[str] = mapped_column(String(80), default="opaque")
    algorithm: Mapped[str | None] = mapped_column(String(255))
    bit_length: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[str | None] = mapped_column(String(255))
    expiration: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    content_type: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now_us)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now_us, onupdate=_now_us)


class SecretContainer(Base):
    """A container of secrets (Barbican's ``/v1/containers``): type ``certificate``
    (certificate, private_key, private_key_passphrase, intermediates),
    ``generic`` or ``rsa``."""

    __tablename__ = "secret_container"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    creator_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_now_us)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=_now_us, onupdate=_now_us)

    secret_refs: Mapped[list[ContainerSecret]] = relationship(
        back_populates="container", cascade="all, delete-orphan", lazy="selectin",
        order_by="ContainerSecret.position")


class ContainerSecret(Base):
    """One named secret of a container; a secret in a container cannot be deleted."""

    __tablename__ = "container_secret"

    container_id: Mapped[str] = mapped_column(
        ForeignKey("secret_container.id", ondelete="CASCADE"), primary_key=True)
    secret_id: Mapped[str] = mapped_column(ForeignKey("secret.id"), primary_key=True,
                                           index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)

    container: Mapped[SecretContainer] = relationship(back_populates="secret_refs")
class Agent(Base):
    """A data-plane host's agent, as Neutron's agent API records one.

    An ``lbaas agent serve`` registers by its first heartbeat (keyed by
    ``host``, its certificate's name); the agent inside a standalone
    ``lbaas serve`` registers itself at start (``endpoint`` None).
    ``heartbeat_timestamp`` is when the control plane last heard from it;
    ``alive`` turns False once, when a control plane declares it dead
    (``[health_manager] heartbeat_timeout`` without a heartbeat) and moves
    its amphorae, and True again at its next heartbeat.
    ``admin_state_up`` False: no new amphora is placed on it.
    """

    __tablename__ = "agent"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    agent_type: Mapped[str] = mapped_column(String(255), default=c.AGENT_TYPE_LOADBALANCER)
    binary: Mapped[str] = mapped_column(String(255), default=c.AGENT_BINARY)
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    alive: Mapped[bool] = mapped_column(Boolean, default=True)
    # https://<address>:<port> of the agent's API; None for an in-process agent.
    endpoint: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    # What the agent reports of itself (placement, version...), shown as is.
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True), default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_timestamp: Mapped[datetime | None] = mapped_column(DateTime)

    amphorae: Mapped[list[Amphora]] = relationship(back_populates="agent")

