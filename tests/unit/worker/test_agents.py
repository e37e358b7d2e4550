"""The agent registry: registration, strays, reconciliation, observations, dead agents."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lbaas.agent.heartbeat import Heartbeat, Held, spec_digest
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.db import models as m
from lbaas.db.models import utcnow
from lbaas.db.session import make_sessionmaker
from lbaas.drivers.noop import NoopDriver
from lbaas.network.local import LocalNetwork
from lbaas.worker import amphorae, graph, status
from lbaas.worker.agents import AgentPoller, AgentRegistry, endpoint_of
from lbaas.worker.claims import LocalClaims
from lbaas.worker.reconciler import Reconciler
from lbaas.worker.scheduler import Scheduler

NETWORK = LocalNetwork("127.1.0.0/16", ("127.1.0.1", "127.1.255.254"))


def beat(host: str = "h1", resync: bool = False, port: int | None = 9443,
         **held: Held) -> Heartbeat:
    return Heartbeat(host=host, binary=c.AGENT_BINARY, availability_zone="az1", port=port,
                     resync=resync, started_at="2026-12-01T10:00:00+00:00",
                     configurations={"placement": "namespace"}, load_balancers=held)


def placed_lb(sessions: sessionmaker[Session], agent_id: str,
              state: str = c.ACTIVE) -> str:
    """A load balancer placed on ``agent_id`` (by the scheduler), in ``state``."""
    with sessions() as session, session.begin():
        lb = m.LoadBalancer(id=m.new_id(), project_id="p", provisioning_status=state,
                            vip_address="127.1.0.9")
        session.add(lb)
        session.flush()
        Scheduler(local_agent_id=agent_id).place(session, lb)
        return lb.id


def digest(sessions: sessionmaker[Session], lb_id: str) -> str:
    with sessions() as session:
        lb = graph.load_graph(session, lb_id)
        assert lb is not None
        return spec_digest(graph.spec_of(session, lb, NETWORK))


def provisioning(sessions: sessionmaker[Session], lb_id: str) -> str:
    with sessions() as session:
        lb = session.get(m.LoadBalancer, lb_id)
        assert lb is not None
        return lb.provisioning_status


def test_a_first_heartbeat_registers_the_agent_and_later_ones_update_it(
        sessions: sessionmaker[Session]) -> None:
    registry = AgentRegistry(sessions, NETWORK)
    reply = registry.heartbeat(beat(), source="198.18.5.11")
    again = registry.heartbeat(beat(port=9444), source="198.18.5.12")
    assert again.agent_id == reply.agent_id and reply.delete == ()
    with sessions() as session:
        [agent] = session.scalars(select(m.Agent)).all()
        assert (agent.host, agent.binary, agent.availability_zone, agent.alive,
                agent.admin_state_up) == ("h1", c.AGENT_BINARY, "az1", True, True)
        assert agent.endpoint == "https://198.18.5.12:9444"
        assert agent.configurations == {"placement": "namespace"}
        assert agent.started_at is not None and agent.started_at.hour == 10
        assert agent.heartbeat_timestamp is not None


def test_endpoint_from_the_heartbeat_or_its_source() -> None:
    assert endpoint_of(beat(), "10.0.0.1") == "https://10.0.0.1:9443"
    assert endpoint_of(Heartbeat(host="h", binary="b", port=1, address="fd00::1"), "10.0.0.1") \
        == "https://[fd00::1]:1"
    assert endpoint_of(beat(port=None), "10.0.0.1") is None


def test_what_the_database_does_not_place_on_the_agent_is_named_for_deletion(
        sessions: sessionmaker[Session]) -> None:
    registry = AgentRegistry(sessions, NETWORK)
    agent_id = registry.heartbeat(beat()).agent_id
    other = registry.heartbeat(beat("h2")).agent_id
    mine, theirs = placed_lb(sessions, agent_id), placed_lb(sessions, other)
    reply = registry.heartbeat(beat(**{mine: Held(), theirs: Held(), "gone": Held()}))
    assert sorted(reply.delete) == sorted([theirs, "gone"])


def test_reconciliation_applies_again_what_the_agent_lacks_or_holds_otherwise(
        sessions: sessionmaker[Session]) -> None:
    registry = AgentRegistry(sessions, NETWORK)
    woken = []
    registry.notify = lambda: woken.append(1)
    agent_id = registry.heartbeat(beat()).agent_id
    same, stale, missing = (placed_lb(sessions, agent_id) for _ in range(3))
    busy = placed_lb(sessions, agent_id, c.PENDING_UPDATE)
    failed = placed_lb(sessions, agent_id, c.ERROR)
    held = {same: Held(digest=digest(sessions, same)), stale: Held(digest="0" * 64),
            busy: Held(), failed: Held()}
    registry.heartbeat(beat(**held))  # not asking for reconciliation: nothing
    assert provisioning(sessions, stale) == c.ACTIVE and not woken
    registry.heartbeat(beat(resync=True, **held))
    assert {lb: provisioning(sessions, lb) for lb in (same, stale, missing, busy, failed)} == {
        same: c.ACTIVE, stale: c.PENDING_UPDATE, missing: c.PENDING_UPDATE,
        busy: c.PENDING_UPDATE, failed: c.ERROR}
    assert woken


def test_health_readings_are_kept_for_this_process_only_while_fresh(
        sessions: sessionmaker[Session]) -> None:
    registry = AgentRegistry(sessions, NETWORK, heartbeat_timeout=0.5)
    agent_id = registry.heartbeat(beat()).agent_id
    lb_id = placed_lb(sessions, agent_id)
    reading = LoadBalancerStats(lb_id=lb_id, running=True, worker="1@2")
    registry.heartbeat(beat(**{lb_id: Held(stats=reading), "stray": Held(
        stats=LoadBalancerStats(lb_id="stray", running=True))}))
    assert registry.observation(lb_id) == reading
    assert registry.observation("stray") is None
    assert AgentRegistry(sessions, NETWORK).observation(lb_id) is None  # another process
    registry.heartbeat_timeout = 0.0
    assert registry.observation(lb_id) is None


def test_a_silent_agent_is_declared_dead_once_and_its_load_balancers_fail_over(
        sessions: sessionmaker[Session]) -> None:
    registry = AgentRegistry(sessions, NETWORK, heartbeat_timeout=5)
    dead_id = registry.heartbeat(beat("dead"), source="198.18.5.11").agent_id
    registry.heartbeat(beat("alive"), source="198.18.5.12")
    in_process = registry.register_in_process(Heartbeat(host="serve-host",
                                                        binary=c.AGENT_BINARY_IN_PROCESS))
    active, failed = placed_lb(sessions, dead_id), placed_lb(sessions, dead_id, c.ERROR)
    creating = placed_lb(sessions, dead_id, c.PENDING_CREATE)
    deleting = placed_lb(sessions, dead_id, c.PENDING_DELETE)
    with sessions() as session, session.begin():
        for agent in session.scalars(select(m.Agent)):
            if agent.host in ("dead", "serve-host"):
                agent.heartbeat_timestamp = utcnow() - timedelta(seconds=6)
    # a poller declares only agents it failed to reach (its own slowness is not theirs)
    assert registry.declare_dead(["https://198.18.5.12:9443"]) == []
    assert registry.declare_dead() == ["dead"]
    assert registry.declare_dead() == []  # once
    with sessions() as session:
        agents = {a.host: a for a in session.scalars(select(m.Agent))}
        assert not agents["dead"].alive and agents["alive"].alive
        assert agents["serve-host"].alive and agents["serve-host"].id == in_process
        for lb_id in (active, failed, creating, deleting):
            lb = session.get(m.LoadBalancer, lb_id)
            assert lb is not None
            assert [(a.agent_id, a.status) for a in lb.amphorae] == [(None, c.AMPHORA_ERROR)]
        states = {lb_id: (session.get(m.LoadBalancer, lb_id).provisioning_status,  # type: ignore[union-attr]
                          session.get(m.LoadBalancer, lb_id).failover_requested)  # type: ignore[union-attr]
                  for lb_id in (active, failed, creating, deleting)}
    assert states == {active: (c.PENDING_UPDATE, True), failed: (c.PENDING_UPDATE, True),
                      creating: (c.PENDING_CREATE, True), deleting: (c.PENDING_DELETE, False)}
    # Back: alive again, and told to delete what it still holds.
    reply = registry.heartbeat(beat("dead", **{active: Held()}), source="198.18.5.11")
    assert reply.delete == (active,)
    with sessions() as session:
        assert session.scalars(select(m.Agent).where(m.Agent.host == "dead")).one().alive


def test_a_failover_that_found_no_agent_is_retried_once_an_agent_can_take_it(
        sessions: sessionmaker[Session]) -> None:
    """Before: the load balancer stayed in ERROR, its amphora on no agent, forever."""
    read_only = make_sessionmaker(sessions.kw["bind"], read_only=True)
    registry = AgentRegistry(sessions, NETWORK, heartbeat_timeout=5, read_sessions=read_only)
    woken = []
    registry.notify = lambda: woken.append(1)
    worker = Reconciler(sessions, {c.PROVIDER_HAPROXY: NoopDriver()}, NETWORK,
                        scheduler=Scheduler(heartbeat_timeout=5))
    dead_id = registry.heartbeat(beat("dead"), source="198.18.5.11").agent_id
    spare_id = registry.heartbeat(beat("spare"), source="198.18.5.12").agent_id
    lb_id, created = placed_lb(sessions, dead_id), placed_lb(sessions, dead_id, c.ERROR)
    with sessions() as session, session.begin():
        session.get(m.Agent, spare_id).admin_state_up = False  # type: ignore[union-attr]
        session.get(m.Agent, dead_id).heartbeat_timestamp = \
            utcnow() - timedelta(seconds=6)  # type: ignore[union-attr]
        never_placed = session.get(m.LoadBalancer, created)
        assert never_placed is not None
        never_placed.amphorae[0].agent_id = never_placed.amphorae[0].lb_network_ip = None
    assert registry.declare_dead() == ["dead"]
    worker.process(lb_id)

    def state() -> tuple[str, str | None, bool, list[tuple[str | None, str]]]:
        with sessions() as session:
            lb = session.get(m.LoadBalancer, lb_id)
            assert lb is not None
            return (lb.provisioning_status, lb.provisioning_status_reason,
                    lb.failover_requested, [(a.agent_id, a.status) for a in lb.amphorae])

    assert state() == (c.ERROR, "no enabled and alive agent in any zone; failed over again "
                       "as soon as an agent can take it", False, [(None, c.AMPHORA_ERROR)])
    woken.clear()
    assert registry.retry_failovers() == []  # no capacity: nothing to do
    assert state()[0] == c.ERROR and not woken

    def enable(up: bool) -> None:
        with sessions() as session, session.begin():
            session.get(m.Agent, spare_id).admin_state_up = up  # type: ignore[union-attr]

    enable(True)
    # only the load balancer that lost its agent, by one of two control planes at once;
    # one never placed is not failed over
    other = AgentRegistry(sessions, NETWORK, heartbeat_timeout=5, read_sessions=read_only,
                          notify=registry.notify)
    with ThreadPoolExecutor(2) as pool:
        begun = list(pool.map(lambda r: r.retry_failovers(), (registry, other)))
    assert sorted(begun) == [[], [lb_id]]
    assert state()[0] == c.PENDING_UPDATE and state()[2]
    assert registry.retry_failovers() == other.retry_failovers() == []  # begun once
    assert provisioning(sessions, created) == c.ERROR
    winner = registry if begun[0] else other  # its backoff (each process keeps its own)

    # a retry that fails again while an agent could take it waits before the next
    with sessions() as session, session.begin():
        lb = graph.load_graph(session, lb_id)
        assert lb is not None
        status.finish(session, lb, "the agent failed")
    assert winner.retry_failovers() == []  # FAILOVER_RETRY_BACKOFF seconds later
    enable(False)
    assert winner.retry_failovers() == []
    enable(True)  # capacity again after none: at once
    woken.clear()
    assert winner.retry_failovers() == [lb_id] and woken
    worker.process(lb_id)
    assert state() == (c.ACTIVE, None, False, [(spare_id, c.AMPHORA_ALLOCATED)])


def test_an_active_standby_pair_on_dead_agents_waits_for_two_agents(
        sessions: sessionmaker[Session]) -> None:
    registry = AgentRegistry(sessions, NETWORK, heartbeat_timeout=5)
    worker = Reconciler(sessions, {c.PROVIDER_HAPROXY: NoopDriver()}, NETWORK,
                        scheduler=Scheduler(heartbeat_timeout=5))
    first = registry.heartbeat(beat("a1"), source="198.18.5.11").agent_id
    second = registry.heartbeat(beat("a2"), source="198.18.5.12").agent_id
    with sessions() as session, session.begin():
        lb = m.LoadBalancer(id=m.new_id(), project_id="p", provisioning_status=c.ACTIVE,
                            vip_address="127.1.0.9", topology=c.TOPOLOGY_ACTIVE_STANDBY)
        session.add(lb)
        session.flush()
        for i, role in enumerate((c.AMPHORA_ROLE_MASTER, c.AMPHORA_ROLE_BACKUP)):
            lb.amphorae.append(amphorae.new_amphora(lb, m.new_id(), role, f"127.1.0.{20 + i}",
                                                    None))
        Scheduler(heartbeat_timeout=5).place(session, lb)
        assert {a.agent_id for a in lb.amphorae} == {first, second}
        lb_id = lb.id
        for agent in session.scalars(select(m.Agent)):
            agent.heartbeat_timestamp = utcnow() - timedelta(seconds=6)
    assert sorted(registry.declare_dead()) == ["a1", "a2"]

    def state() -> tuple[str, list[tuple[str | None, str]]]:
        with sessions() as session:
            lb = session.get(m.LoadBalancer, lb_id)
            assert lb is not None
            return lb.provisioning_status, [(a.agent_id, a.status) for a in lb.amphorae]

    registry.heartbeat(beat("a1"), source="198.18.5.11")  # back, but one for two amphorae
    worker.process(lb_id)
    # before: the MASTER placed on a1 (and ALLOCATED) though the failover failed
    assert state() == (c.ERROR, [(None, c.AMPHORA_ERROR)] * 2)
    assert registry.retry_failovers() == []
    registry.heartbeat(beat("spare"), source="198.18.5.13")
    assert registry.retry_failovers() == [lb_id]  # both to be replaced
    assert state() == (c.PENDING_UPDATE, [(None, c.AMPHORA_PENDING_DELETE)] * 2)
    with sessions() as session, session.begin():
        for agent in session.scalars(select(m.Agent)):
            agent.admin_state_up = False  # gone again before the worker got to it
    worker.process(lb_id)
    # before: ALLOCATED ("not replaced: it still serves"), though they run nowhere
    assert state() == (c.ERROR, [(None, c.AMPHORA_ERROR)] * 2)


class _Hung:
    """An agent whose host is gone: its heartbeat hangs until ``release`` (as a request on
    a kept-alive connection to an unplugged host waits for its timeout)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def heartbeat(self, timeout: float = 10.0) -> tuple[Heartbeat, str]:
        self.release.wait(timeout)
        raise exc.DriverError("agent unreachable: ReadTimeout")


class _Alive:
    def __init__(self, host: str) -> None:
        self.hb = beat(host)

    def heartbeat(self, timeout: float = 10.0) -> tuple[Heartbeat, str]:
        return self.hb, self.hb.host

    def reply(self, reply: object) -> None:
        pass


def test_a_hung_agent_delays_no_other_agent_s_heartbeat(
        sessions: sessionmaker[Session]) -> None:
    """Rounds do not wait for a dead agent's heartbeat (before: the others' heartbeats
    went unrecorded until it timed out, every agent looked silent, and a failover found no
    agent to go to)."""
    registry = AgentRegistry(sessions, NETWORK, heartbeat_timeout=5.0)
    hung = _Hung()
    agents = {"https://h0:1": hung, "https://h1:1": _Alive("h1")}
    poller = AgentPoller(registry, agents.__getitem__,  # type: ignore[arg-type]
                         tuple(agents), interval=60.0, claims=LocalClaims())
    def round() -> None:
        started = time.monotonic()
        poller.round()
        # not waited for: the hung heartbeat holds its thread for 10 s
        assert time.monotonic() - started < 5.0

    try:
        round()
        seen: list[datetime] = []
        for _ in range(3):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with sessions() as session:
                    stamp = session.scalars(select(m.Agent.heartbeat_timestamp)
                                            .where(m.Agent.host == "h1")).one_or_none()
                if stamp is not None and stamp not in seen:
                    break
                time.sleep(0.01)
            assert stamp is not None and stamp not in seen  # recorded again
            seen.append(stamp)
            round()  # h0 is still being asked: not asked twice
        assert len(seen) == 3
    finally:
        hung.release.set()
        poller.stop()
