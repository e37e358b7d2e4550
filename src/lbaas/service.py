"""Assembly: settings -> database, drivers, worker, health manager and API, started and
stopped together.

``lbaas serve`` and the tests build a :class:`Service` the same way; only the
drivers differ when a test passes its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lbaas.agent.base import AgentClient
from lbaas.agent.heartbeat import Heartbeat, Heartbeater
from lbaas.agent.local import LocalAgent, make_placement
from lbaas.agent.remote import AgentTLS, RemoteAgents
from lbaas.api.app import create_app
from lbaas.api.auth import make_authenticator
from lbaas.api.deps import ApiState
from lbaas.api.policy import Policy
from lbaas.certificates.base import CertManager
from lbaas.certificates.local import LocalCertManager
from lbaas.certificates.store import SecretBox
from lbaas.common import constants as c
from lbaas.common.endpoints import control_plane_endpoints
from lbaas.config import Settings
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.dataplane.keepalived import KeepalivedSettings
from lbaas.dataplane.render import Tuning
from lbaas.db import ipam, migrate
from lbaas.db.session import make_engine, make_sessionmaker, transaction
from lbaas.drivers.base import ProviderDriver
from lbaas.drivers.haproxy import HaproxyDriver
from lbaas.drivers.noop import NoopDriver
from lbaas.health.manager import HealthManager
from lbaas.network.base import NetworkDriver
from lbaas.network.local import LocalNetwork
from lbaas.network.noop import NoopNetwork
from lbaas.ownership import Ownership, describe_process
from lbaas.worker.agents import AgentPoller, AgentRegistry
from lbaas.worker.claims import make_claims
from lbaas.worker.reconciler import Reconciler
from lbaas.worker.scheduler import Scheduler

LOG = logging.getLogger(__name__)


def make_agent(settings: Settings) -> LocalAgent:
    """The in-process agent for this host's amphorae (not started).

    The placement (``[haproxy_amphora] placement``) is constructed here, so
    ``namespace`` is imported only when configured.
    """
    h = settings.haproxy
    tuning = Tuning(hard_stop_after=h.hard_stop_after,
                    default_connection_limit=h.default_connection_limit,
                    stick_size=h.stick_size,
                    nbthread=h.nbthread, timeout_client_data=h.timeout_client_data,
                    timeout_member_connect=h.timeout_member_connect,
                    timeout_member_data=h.timeout_member_data)
    k = settings.keepalived
    vrrp = KeepalivedSettings(
        keepalived_cmd=k.keepalived_cmd, check_interval=k.vrrp_check_interval,
        fail_count=k.vrrp_fail_count, success_count=k.vrrp_success_count,
        garp_refresh_interval=k.vrrp_garp_refresh_interval,
        garp_refresh_count=k.vrrp_garp_refresh_count, start_timeout=h.reload_timeout)
    amphorae = Amphorae(AmphoraSettings(
        base_path=settings.haproxy_base_path, haproxy_cmd=h.haproxy_cmd, tuning=tuning,
        start_timeout=h.reload_timeout, reload_timeout=h.reload_timeout,
        drain_timeout=h.member_drain_timeout, keepalived=vrrp, host=settings.agents.host),
        placement=make_placement(h.placement, h.local_listener_ports,
                                 control_plane_endpoints(settings)))
    return LocalAgent(amphorae, supervise_interval=h.supervise_interval,
                      quiet_interval=h.stats_quiet_interval)


def default_drivers(settings: Settings,
                    agent: AgentClient | None = None) -> dict[str, ProviderDriver]:
    """The provider drivers of a standard deployment, by name.

    ``haproxy`` runs over ``agent`` (default: a new :func:`make_agent`) and serves
    ACTIVE_STANDBY where the placement can (``namespace``), or, with
    ``[controller_worker] amphora_driver = amphora_noop_driver``, runs nothing (a
    noop driver, as Octavia's amphora noop driver).
    """
    noop = NoopDriver(apply_delay=settings.noop_apply_delay)
    if agent is None and settings.agents.amphora_driver == c.AMPHORA_DRIVER_NOOP:
        return {c.PROVIDER_NOOP: noop, c.PROVIDER_HAPROXY: NoopDriver(settings.noop_apply_delay)}
    topologies = c.TOPOLOGIES if settings.haproxy.placement == "namespace" \
        else (c.TOPOLOGY_SINGLE,)
    return {c.PROVIDER_NOOP: noop,
            c.PROVIDER_HAPROXY: HaproxyDriver(agent or make_agent(settings),
                                              topologies=topologies)}


def remote_agents(settings: Settings, registry: AgentRegistry) -> RemoteAgents:
    """The haproxy provider's agents over HTTPS (``amphora_haproxy_rest_driver``).

    Raises ValueError when the TLS files are not configured.
    """
    a = settings.agents
    if not a.client_cert or not a.server_ca:
        raise ValueError("amphora_haproxy_rest_driver needs [haproxy_amphora] client_cert and "
                         "server_ca (lbaas agent certificate issue makes them)")
    return RemoteAgents(AgentTLS(a.client_cert, a.server_ca), registry.endpoint,
                        registry.endpoints_of, registry.observation)


def make_network_driver(settings: Settings) -> NetworkDriver:
    """The network driver named by ``[controller_worker] network_driver``."""
    if settings.network_driver == "noop":
        return NoopNetwork()
    local = LocalNetwork(settings.default_subnet_cidr, settings.default_subnet_pool)
    if settings.network_driver == "neutron":
        from lbaas.network.neutron import NeutronNetwork

        return NeutronNetwork(settings.config_files, local, settings.neutron.endpoint_override,
                              settings.neutron.region_name, settings.neutron.endpoint_type)
    return local


def make_cert_manager(settings: Settings, sessions: sessionmaker[Session],
                      box: SecretBox | None) -> CertManager:
    """The certificate manager of ``[certificates] cert_manager``:
    ``local_cert_manager`` reads lbaas's own store (``box`` encrypts it),
    ``noop_cert_manager`` answers any reference with one made-up certificate,
    ``barbican_cert_manager`` reads Barbican (``[service_auth]`` in the config files)."""
    if settings.certificates.cert_manager == "barbican_cert_manager":
        from lbaas.certificates.barbican import BarbicanCertManager

        return BarbicanCertManager(settings.config_files, settings.certificates.region_name,
                                   settings.certificates.endpoint_type)
    if settings.certificates.cert_manager == "noop_cert_manager":
        from lbaas.certificates.noop import NoopCertManager

        return NoopCertManager()
    assert box is not None
    return LocalCertManager(sessions, box)


class Service:
    """One lbaas process: API app, provisioning worker, health manager, database,
    data-plane agent.

    ``drivers`` replaces :func:`default_drivers` (tests); then no agent runs
    unless ``agent`` is given too. From construction to :meth:`stop` it holds
    its state directory and database (:mod:`lbaas.ownership`); a second
    Service on either raises AlreadyRunning. The health manager runs unless
    ``[health_manager] health_check_interval`` is 0 (:attr:`health` is None then).

    The in-process agent registers itself as this host's agent
    (``[DEFAULT] host``), every amphora is placed on it, and it heartbeats
    like a remote one (:class:`~lbaas.agent.heartbeat.Heartbeater`): what
    it holds that the database does not place on it is deleted.
    """

    def __init__(self, settings: Settings,
                 drivers: Mapping[str, ProviderDriver] | None = None,
                 agent: AgentClient | None = None) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.effective_database_url)
        self.ownership = Ownership(
            settings.state_dir, self.engine, describe_process(f"{settings.host}:{settings.port}"),
            data_plane=settings.agents.amphora_driver == c.AMPHORA_DRIVER_IN_PROCESS)
        self.ownership.acquire()  # AlreadyRunning: another lbaas has them
        try:
            self._assemble(settings, drivers, agent)
        except BaseException:
            self.ownership.release()
            self.engine.dispose()
            raise

    def _assemble(self, settings: Settings, drivers: Mapping[str, ProviderDriver] | None,
                  agent: AgentClient | None) -> None:
        migrate.upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self.read_sessions = make_sessionmaker(self.engine, read_only=True)
        with transaction(self.sessions) as session:
            ipam.narrow_old_default_subnet(session, settings.default_subnet_cidr,
                                           settings.default_subnet_pool)
            ipam.ensure_default_subnet(session, settings.default_subnet_cidr,
                                       settings.default_subnet_pool)
        # lbaas's own certificate store serves only with the local cert manager.
        self.secret_box = SecretBox(settings.store_key_file) \
            if settings.certificates.cert_manager == "local_cert_manager" else None
        self.certificates = make_cert_manager(settings, self.sessions, self.secret_box)
        a = settings.agents
        self.network = make_network_driver(settings)
        self.registry = AgentRegistry(self.sessions, self.network,
                                      heartbeat_timeout=a.heartbeat_timeout,
                                      read_sessions=self.read_sessions)
        claims = make_claims(self.engine)
        scheduler: Scheduler | None = None
        self.heartbeater: Heartbeater | None = None
        self.poller: AgentPoller | None = None
        if drivers is None and agent is None:
            if a.amphora_driver == c.AMPHORA_DRIVER_IN_PROCESS:
                agent = make_agent(settings)
            elif a.amphora_driver == c.AMPHORA_DRIVER_REST:
                remote = remote_agents(settings, self.registry)
                agent = remote
                scheduler = Scheduler(heartbeat_timeout=a.heartbeat_timeout)
                self.poller = AgentPoller(self.registry, remote.connection, a.agent_endpoints,
                                          interval=a.heartbeat_interval, claims=claims)
        self.agent = agent
        self.drivers = dict(drivers) if drivers is not None \
            else default_drivers(settings, agent)
        if isinstance(agent, LocalAgent):
            identity = Heartbeat(host=a.host, binary=c.AGENT_BINARY_IN_PROCESS,
                                 availability_zone=a.availability_zone,
                                 started_at=datetime.now(UTC).isoformat(),
                                 configurations={"placement": settings.haproxy.placement})
            agent_id = self.registry.register_in_process(identity)
            scheduler = Scheduler(heartbeat_timeout=a.heartbeat_timeout, local_agent_id=agent_id)
            self.heartbeater = Heartbeater(agent, identity, self.registry.heartbeat,
                                           interval=a.heartbeat_interval)
        self.reconciler = Reconciler(self.sessions, self.drivers, self.network,
                                     threads=settings.worker_threads,
                                     poll_interval=settings.worker_poll_interval,
                                     certificates=self.certificates,
                                     scheduler=scheduler, claims=claims,
                                     read_sessions=self.read_sessions)
        self.registry.notify = self.reconciler.notify
        self.health: HealthManager | None = None
        if settings.health.interval > 0:
            self.health = HealthManager(self.sessions, self.drivers,
                                        interval=settings.health.interval,
                                        threads=settings.health.threads,
                                        unanswered_polls=settings.health.unanswered_polls,
                                        reapply=self.reconciler.reapply,
                                        read_sessions=self.read_sessions,
                                        failover=self.reconciler.failover_amphora)
        self.app: FastAPI = create_app(ApiState(
            settings=settings, sessions=self.sessions,
            policy=Policy(settings.config_files, settings.policy_file), drivers=self.drivers,
            notify=self.reconciler.notify, network=self.network,
            endpoints=control_plane_endpoints(settings),
            authenticator=make_authenticator(settings, self.read_sessions),  # reads keys
            certificates=self.certificates, secret_box=self.secret_box,
            read_sessions=self.read_sessions))

    def start(self) -> None:
        """Start the agent (adopting running amphorae), the worker, then the health manager.

        The API is served by whoever runs :attr:`app`.
        """
        if self.agent is not None:
            self.agent.start()
        if self.heartbeater is not None:
            self.heartbeater.start()
        if self.poller is not None:
            self.poller.start()
        self.reconciler.start()
        self.reconciler.notify()
        if self.health is not None:
            self.health.start()

    def stop(self, grace: float = 10.0) -> None:
        """Stop the worker (abandoned changes stay PENDING), the agent's supervision,
        and release the database. HAProxy processes keep serving."""
        if self.health is not None:
            self.health.stop()
        if self.heartbeater is not None:
            self.heartbeater.stop()
        if self.poller is not None:
            self.poller.stop()
        abandoned = self.reconciler.stop(grace)
        if abandoned:
            LOG.warning("stopping with changes in flight, resumed on next start: %s",
                        ", ".join(abandoned))
        if self.agent is not None:
            self.agent.stop()
        self.ownership.release()
        self.engine.dispose()
