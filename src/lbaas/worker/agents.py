"""The agent registry: the control plane's side of heartbeats, and dead agents.

Agents are rows of the ``agent`` table (:class:`~lbaas.db.models.Agent`),
keyed by host. :meth:`AgentRegistry.heartbeat` records one
:class:`~lbaas.agent.heartbeat.Heartbeat` (registering a new agent) and
computes the reply:

- load balancers the agent holds that the database does not place on it
  (deleted meanwhile, or moved to another agent while it was out of
  reach) are named for deletion;
- when the agent asks to be reconciled (first heartbeat after its start,
  or after heartbeats failed), and when it comes back after being declared
  dead, every ACTIVE load balancer placed on it whose spec it lacks or
  holds in another version is applied again from the database
  (:func:`~lbaas.worker.status.begin_reapply`: PENDING_UPDATE, then the
  worker);
- the health readings it carries are kept in memory
  (:meth:`AgentRegistry.observation`) for this process's health manager.

:meth:`AgentRegistry.declare_dead` is the failover: an agent with an
endpoint (another host) not heard from for ``heartbeat_timeout`` seconds is
marked dead, once, by whichever control-plane process gets there first
(a conditional update under ``FOR UPDATE SKIP LOCKED``); each of its
amphorae loses its agent and its load balancer is rebuilt by the worker on
another agent (:func:`~lbaas.worker.status.begin_agent_failover` then
:class:`~lbaas.worker.scheduler.Scheduler`).

A failover that finds no enabled and alive agent (every other agent
disabled or dead too, or none in the load balancer's availability zone)
leaves the load balancer in ERROR, its reason saying so, and its amphorae
without an agent (ERROR, :func:`~lbaas.worker.amphorae.lost`).
:meth:`AgentRegistry.retry_failovers`, run every poll round of every
control-plane process, fails such a load balancer over again as soon as
agents that can take it exist (an agent enabled again, a dead one whose
heartbeats resume, a new one), as Octavia's health manager keeps failing
over amphorae whose heartbeats are stale. A dead agent that comes back is
an agent like any other: it is told to delete what it still holds (its
load balancers are the database's, rebuilt from their spec wherever the
scheduler puts them, possibly on it again).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from lbaas.agent.heartbeat import Heartbeat, HeartbeatReply, spec_digest
from lbaas.agent.remote import AgentConnection
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.common.periodic import Periodic
from lbaas.dataplane.runtime import LoadBalancerStats, combine
from lbaas.db import models as m
from lbaas.db.models import utcnow
from lbaas.network.base import NetworkDriver
from lbaas.worker import amphorae, graph, status
from lbaas.worker.claims import Claims
from lbaas.worker.scheduler import agent_zone, put_on, usable_agents

LOG = logging.getLogger(__name__)

# A failover retried by AgentRegistry.retry_failovers that fails again (with agents able
# to take it) is retried after this many seconds, doubled each time up to the maximum.
FAILOVER_RETRY_BACKOFF = 5.0
FAILOVER_RETRY_BACKOFF_MAX = 300.0


def endpoint_of(heartbeat: Heartbeat, source: str | None) -> str | None:
    """``https://<address>:<port>`` of a heartbeat's agent API (None: in-process).

    The address is the one the agent gives, else ``source``, the address
    its heartbeat came from.
    """
    address = heartbeat.address or source
    if heartbeat.port is None or not address:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{heartbeat.port}"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


class AgentRegistry:
    """Heartbeats in, replies out; dead agents failed over. Times in seconds.

    ``network`` gives VIP subnets (to build specs as the worker does);
    ``notify`` wakes the worker after load balancers were marked for it.
    ``read_sessions`` (default ``sessions``) serve the scans that only read
    (:meth:`retry_failovers`'s, every poll round).
    """

    def __init__(self, sessions: sessionmaker[Session], network: NetworkDriver,
                 heartbeat_timeout: float = 20.0,
                 notify: Callable[[], None] = lambda: None,
                 read_sessions: sessionmaker[Session] | None = None) -> None:
        self._sessions = sessions
        self._read_sessions = read_sessions or sessions
        self._network = network
        self.heartbeat_timeout = heartbeat_timeout
        self.notify = notify
        # lb id -> host -> (monotonic time, reading): an ACTIVE_STANDBY load balancer's
        # two amphorae may be on two agents, each reporting its own.
        self._observed: dict[str, dict[str, tuple[float, LoadBalancerStats]]] = {}
        # lb id -> (failovers retried, monotonic time before which not to retry again)
        self._retries: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    # -- heartbeats ----------------------------------------------------------
    def heartbeat(self, hb: Heartbeat, source: str | None = None,
                  endpoint: str | None = None, asked_at: float | None = None,
                  ) -> HeartbeatReply:
        """Record ``hb`` (from address ``source``; an agent whose heartbeats are pulled
        from ``endpoint``) and answer it (see the module docstring).

        ``asked_at``: this process's ``time.monotonic()`` (seconds) when a pulled
        heartbeat was asked for; its readings were taken then or later, and are
        kept with it as their ``taken_at``. None: the heartbeat was taken in
        this process and its own ``taken_at`` says when (none: 0.0, older than
        any apply).
        """
        for attempt in (1, 2):
            try:
                with self._sessions() as session, session.begin():
                    agent_id, delete, reapply = self._record(session, hb, source, endpoint)
                break
            except IntegrityError:  # two processes registered the same new host at once
                if attempt == 2:
                    raise
        now = time.monotonic()
        taken = asked_at if asked_at is not None else hb.taken_at or 0.0
        with self._lock:
            for lb_id, held in hb.load_balancers.items():
                if held.stats is not None and lb_id not in delete:
                    self._observed.setdefault(lb_id, {})[hb.host] = (
                        now, dataclasses.replace(held.stats, taken_at=taken))
            for lb_id in delete:
                readings = self._observed.get(lb_id, {})
                readings.pop(hb.host, None)
                if not readings:
                    self._observed.pop(lb_id, None)
        if reapply:
            LOG.warning("agent %s: applying %d load balancer(s) again from the database: %s",
                        hb.host, len(reapply), ", ".join(reapply))
            self.notify()
        return HeartbeatReply(agent_id=agent_id, delete=tuple(delete), taken_at=hb.taken_at)

    def _record(self, session: Session, hb: Heartbeat, source: str | None,
                endpoint: str | None) -> tuple[str, list[str], list[str]]:
        now = utcnow()
        agent = session.scalars(select(m.Agent).where(m.Agent.host == hb.host)
                                .with_for_update()).one_or_none()
        returning = agent is not None and agent.alive
        if agent is None:
            agent = m.Agent(id=m.new_id(), host=hb.host, created_at=now)
            session.add(agent)
            LOG.info("agent %s registered (%s)", hb.host, hb.binary)
        elif not agent.alive:
            LOG.warning("agent %s is back after being declared dead", hb.host)
        agent.binary = hb.binary
        agent.availability_zone = hb.availability_zone
        agent.endpoint = endpoint or endpoint_of(hb, source)
        agent.configurations = dict(hb.configurations)
        agent.started_at = _parse_time(hb.started_at) or agent.started_at or now
        agent.heartbeat_timestamp = now
        agent.alive = True
        session.flush()
        # Every heartbeat: the ids placed here (one column: the in-process agent's beat
        # every 2 s reads them all); the states only to reconcile.
        placed = set(session.scalars(select(m.Amphora.load_balancer_id)
                                     .where(m.Amphora.agent_id == agent.id)))
        delete = sorted(set(hb.load_balancers) - placed)
        reapply: list[str] = []
        if hb.resync or not returning:
            states = dict(session.execute(
                select(m.LoadBalancer.id, m.LoadBalancer.provisioning_status)
                .join(m.Amphora, m.Amphora.load_balancer_id == m.LoadBalancer.id)
                .where(m.Amphora.agent_id == agent.id)).all())
            for lb_id, state in sorted(states.items()):
                if state != c.ACTIVE:
                    continue  # a change in flight applies it anyway; ERROR waits for its owner
                held = hb.load_balancers.get(lb_id)
                if held is not None and held.digest is not None and \
                        held.digest == self._digest(session, lb_id):
                    continue
                try:
                    status.begin_reapply(session, lb_id)
                except exc.ImmutableObject:
                    continue
                reapply.append(lb_id)
        return agent.id, delete, reapply

    def _digest(self, session: Session, lb_id: str) -> str | None:
        lb = graph.load_graph(session, lb_id)
        return None if lb is None else spec_digest(graph.spec_of(session, lb, self._network))

    def observation(self, lb_id: str) -> LoadBalancerStats | None:
        """The newest reading of ``lb_id`` heartbeats brought to this process, if younger
        than ``heartbeat_timeout`` seconds (else None: nothing observed here); its
        ``taken_at`` says when its heartbeat was asked for. The readings of two agents
        (an ACTIVE_STANDBY pair) are combined, ``taken_at`` the older one's."""
        now = time.monotonic()
        with self._lock:
            seen = [st for at, st in self._observed.get(lb_id, {}).values()
                    if now - at <= self.heartbeat_timeout]
        if len(seen) <= 1:
            return seen[0] if seen else None
        return dataclasses.replace(combine(lb_id, seen), taken_at=min(
            (st.taken_at for st in seen if st.taken_at is not None), default=None))

    # -- where agents are -------------------------------------------------------
    def endpoint(self, agent_id: str) -> str | None:
        """The URL of agent ``agent_id``'s API (None: unknown, or in-process)."""
        with self._sessions() as session:
            agent = session.get(m.Agent, agent_id)
            return agent.endpoint if agent is not None else None

    def endpoints_of(self, lb_id: str) -> list[str]:
        """The URLs of the agents that run ``lb_id``'s amphorae."""
        with self._sessions() as session:
            return sorted(set(session.scalars(
                select(m.Agent.endpoint).join(m.Amphora, m.Amphora.agent_id == m.Agent.id)
                .where(m.Amphora.load_balancer_id == lb_id,
                       m.Agent.endpoint.is_not(None)))))

    # -- the standalone agent --------------------------------------------------
    def register_in_process(self, identity: Heartbeat) -> str:
        """Register the agent inside this process (``identity``: its heartbeat without
        load balancers) and place on it every amphora that has no agent. Returns its id."""
        reply = self.heartbeat(identity)
        with self._sessions() as session, session.begin():
            agent = session.get(m.Agent, reply.agent_id)
            assert agent is not None
            for amphora in session.scalars(select(m.Amphora).where(m.Amphora.agent_id.is_(None))):
                put_on(amphora, agent)
        return reply.agent_id

    # -- dead agents -----------------------------------------------------------
    def declare_dead(self, endpoints: Collection[str] | None = None) -> list[str]:
        """Mark dead every remote agent silent for ``heartbeat_timeout`` seconds and hand
        its load balancers to the worker for a rebuild elsewhere. Returns their hosts.

        ``endpoints``: only agents at these URLs (those a poller just failed to
        reach: a control plane too slow to record heartbeats in time declares
        no agent dead whose heartbeat it did get).
        """
        cutoff = utcnow() - timedelta(seconds=self.heartbeat_timeout)
        stmt = select(m.Agent).where(m.Agent.alive.is_(True), m.Agent.endpoint.is_not(None),
                                     m.Agent.heartbeat_timestamp < cutoff)
        if endpoints is not None:
            stmt = stmt.where(m.Agent.endpoint.in_(list(endpoints)))
        with self._sessions() as session, session.begin():
            dead = session.scalars(stmt.with_for_update(skip_locked=True)).all()
            moved = 0
            for agent in dead:
                agent.alive = False
                lbs = []
                for amphora in list(agent.amphorae):
                    amphora.agent_id = None
                    lbs.append(amphora.load_balancer)
                session.flush()
                for lb in {lb.id: lb for lb in lbs}.values():
                    moved += status.begin_agent_failover(session, lb)
                LOG.error("agent %s: no heartbeat since %s (over %g s): declared dead; %d load "
                          "balancer(s) to rebuild on other agents", agent.host,
                          agent.heartbeat_timestamp, self.heartbeat_timeout, len(lbs))
            hosts = [a.host for a in dead]
        with self._lock:  # what they said of their amphorae is no more
            for readings in self._observed.values():
                for host in hosts:
                    readings.pop(host, None)
        if moved:
            self.notify()
        return hosts

    def _lost_load_balancers(self) -> tuple[list[str], set[str]]:
        """The ids of ERROR load balancers with amphorae that lost their agent: those
        that agents can take now (by id), and those that none can."""
        lost = select(m.Amphora.load_balancer_id).where(amphorae.LOST)
        ready: list[str] = []
        stuck: set[str] = set()
        zones: dict[str | None, list[str]] = {}  # agents' zone -> usable agents' ids
        with self._read_sessions() as session:
            for lb in session.scalars(select(m.LoadBalancer).where(
                    m.LoadBalancer.provisioning_status == c.ERROR,
                    m.LoadBalancer.id.in_(lost)).order_by(m.LoadBalancer.id)
                    .options(selectinload(m.LoadBalancer.amphorae))):
                zone = agent_zone(session, lb.availability_zone)
                if zone not in zones:
                    zones[zone] = [a.id for a in usable_agents(session, self.heartbeat_timeout,
                                                               zone)]
                placed = {a.agent_id for a in lb.amphorae if a.agent_id is not None}
                free = [agent_id for agent_id in zones[zone] if agent_id not in placed]
                if len(free) >= sum(amphorae.lost(a) for a in lb.amphorae):
                    ready.append(lb.id)
                else:
                    stuck.add(lb.id)
        return ready, stuck

    def retry_failovers(self) -> list[str]:
        """Fail over again the load balancers whose failover found no agent, if agents
        can take them now. Returns the ids of those begun.

        Candidates are ERROR load balancers with an amphora that lost its agent
        (:data:`~lbaas.worker.amphorae.LOST`); one is begun
        (:func:`~lbaas.worker.status.begin_agent_failover`: PENDING_UPDATE, then the
        worker) when its availability zone has as many enabled and alive agents
        (:func:`~lbaas.worker.scheduler.usable_agents`), not hosting its other
        amphora, as it has lost amphorae: nothing is retried while there is no
        capacity. Every control-plane process calls this (each poll round); the
        conditional update of the load balancer row lets exactly one begin each
        retry, the others skip it. A retry that fails again while agents could take
        it waits ``FAILOVER_RETRY_BACKOFF`` seconds, doubled each time up to
        ``FAILOVER_RETRY_BACKOFF_MAX`` (kept in this process, forgotten after that
        long); one that found no capacity is retried as soon as there is some.
        """
        now = time.monotonic()
        ready, stuck = self._lost_load_balancers()
        with self._lock:
            for lb_id, (_, not_before) in list(self._retries.items()):
                if lb_id in stuck or now - not_before > FAILOVER_RETRY_BACKOFF_MAX:
                    del self._retries[lb_id]  # no capacity: at once when there is; or old
            due = [lb_id for lb_id in ready if self._retries.get(lb_id, (0, 0.0))[1] <= now]
        begun = []
        for lb_id in due:
            try:
                with self._sessions() as session, session.begin():
                    found = session.get(m.LoadBalancer, lb_id)
                    if found is None or found.provisioning_status != c.ERROR:
                        continue
                    status.begin_agent_failover(session, found)
            except exc.ImmutableObject:
                continue  # another process began it, or a change did
            begun.append(lb_id)
            with self._lock:
                tries = self._retries.get(lb_id, (0, 0.0))[0]
                self._retries[lb_id] = (tries + 1, now + min(
                    FAILOVER_RETRY_BACKOFF_MAX, FAILOVER_RETRY_BACKOFF * 2 ** tries))
        if begun:
            LOG.warning("failing over again %d load balancer(s) whose failover found no "
                        "agent, now that agents can take them: %s", len(begun), ", ".join(begun))
            self.notify()
        return begun


class AgentPoller:
    """Pulls the heartbeats of the remote agents at ``endpoints`` every ``interval``
    seconds, answers them, and declares silent agents dead.

    ``connect(endpoint)`` gives an :class:`~lbaas.agent.remote.AgentConnection`;
    ``claims`` lets one control-plane process at a time poll an agent. An
    agent whose certificate's common name is not the host its heartbeat
    names is not recorded (it would speak for another host).
    """

    def __init__(self, registry: AgentRegistry, connect: Callable[[str], AgentConnection],
                 endpoints: tuple[str, ...], interval: float, claims: Claims) -> None:
        self.registry = registry
        self.connect = connect
        self.endpoints = endpoints
        self.interval = interval
        self.claims = claims
        self._periodic = Periodic(self.round, interval, "lbaas-agent-poller",
                                  "agent heartbeats")
        self._lock = threading.Lock()
        self._asking: set[str] = set()  # endpoints whose heartbeat is being asked for

    def poll(self, endpoint: str) -> bool | None:
        """One heartbeat of the agent at ``endpoint``, recorded and answered. True if so,
        False if the agent did not answer (or answered as another host), None if another
        control-plane process is polling it."""
        with self.claims.claim(f"agent {endpoint}") as mine:
            if not mine:
                return None
            conn = self.connect(endpoint)
            asked = time.monotonic()
            try:
                hb, name = conn.heartbeat(timeout=min(10.0, self.registry.heartbeat_timeout))
            except exc.DriverError as e:
                LOG.debug("agent %s: %s", endpoint, e.reason)
                return False
            if name != hb.host:
                LOG.error("agent %s: its certificate is for %r but its heartbeat says host %r: "
                          "ignored", endpoint, name, hb.host)
                return False
            reply = self.registry.heartbeat(hb, endpoint=endpoint, asked_at=asked)
            try:
                conn.reply(reply)
            except exc.DriverError as e:
                LOG.warning("agent %s: reply not delivered: %s", endpoint, e.reason)
            return True

    def round(self) -> None:
        """Ask every agent that is not being asked already, each in a thread of its own
        (returns at once): a dead or slow agent delays no other agent's heartbeat. One
        that did not answer and was silent for ``heartbeat_timeout`` seconds is then
        declared dead. Then failovers that found no agent are retried if agents can take
        them now (:meth:`AgentRegistry.retry_failovers`)."""
        with self._lock:
            asking = [e for e in self.endpoints if e not in self._asking]
            self._asking.update(asking)
        for endpoint in asking:
            # a daemon: a heartbeat hung on a host that is gone never delays the exit
            threading.Thread(target=self._ask, args=(endpoint,), daemon=True,
                             name=f"lbaas-agent-poll {endpoint}").start()
        self.registry.retry_failovers()

    def _ask(self, endpoint: str) -> None:
        try:
            if self._safe_poll(endpoint) is False:
                self.registry.declare_dead([endpoint])
        except Exception:
            LOG.exception("agent %s: declaring it dead failed", endpoint)
        finally:
            with self._lock:
                self._asking.discard(endpoint)

    def _safe_poll(self, endpoint: str) -> bool | None:
        try:
            return self.poll(endpoint)
        except Exception:
            LOG.exception("agent %s: heartbeat failed", endpoint)
            return False

    def start(self) -> None:
        """Poll now, then every ``interval`` seconds in a daemon thread."""
        self._periodic.start()

    def stop(self) -> None:
        """Stop polling; returns at once (heartbeats being asked for finish in their
        daemon threads, or end with the process: one hung on an agent whose host is
        gone waits for no timeout)."""
        self._periodic.stop()
