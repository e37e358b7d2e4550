"""The health manager against a real database, with a provider that reports canned stats."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from lbaas.agent.heartbeat import Heartbeat, HeartbeatReply, Held
from lbaas.agent.remote import AgentTLS, RemoteAgents
from lbaas.common import constants as c
from lbaas.config import HealthSettings
from lbaas.dataplane.runtime import LoadBalancerStats, StatRow, WorkerStats
from lbaas.db import models as m
from lbaas.drivers.haproxy.driver import HaproxyDriver
from lbaas.drivers.noop import NoopDriver
from lbaas.health.manager import HealthManager
from lbaas.service import Service
from lbaas.worker.agents import AgentPoller
from lbaas.worker.claims import LocalClaims
from lbaas.worker.scheduler import Scheduler
from tests.conftest import fresh_database, make_settings

API = "/v2/lbaas"


class Canned(NoopDriver):
    """A noop provider whose ``stats`` answers what the test sets (or raises it), after
    running ``meanwhile`` once if set; its applies wait while ``hold`` is clear."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: LoadBalancerStats | Exception | None = None
        self.asked: list[str] = []
        self.hold = threading.Event()
        self.hold.set()
        self.meanwhile: Callable[[], None] | None = None  # runs before the next answer
        self.kept: LoadBalancerStats | None = None  # what kept_stats answers
        self.kept_in: list[str] = []  # the threads that asked kept_stats

    def stats(self, lb_id: str) -> LoadBalancerStats | None:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        self.asked.append(lb_id)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """``kept`` (None by default: ``stats`` answers), recording the thread asking."""
        self.kept_in.append(threading.current_thread().name)
        return self.kept

    def apply(self, lb: Any) -> None:
        assert self.hold.wait(30), "an apply held for 30 s"
        super().apply(lb)


@dataclass
class World:
    service: Service
    client: TestClient
    driver: Canned
    lb: str
    listener: str
    pool: str
    members: tuple[str, str]
    monitor: str

    def manager(self, **kw: Any) -> HealthManager:
        return HealthManager(self.service.sessions, {"noop": self.driver}, **kw)

    def initial_tree(self) -> bool:
        """True if the statuses are those of a new graph: all OFFLINE but the health
        monitor, ONLINE once provisioned (Octavia's MarkHealthMonitorActiveInDB)."""
        tree = self.tree()
        return tree.pop(self.monitor) == c.ONLINE and set(tree.values()) == {c.OFFLINE}

    def tree(self) -> dict[str, str]:
        """{object id: operating_status} from the status tree."""
        body = self.client.get(f"{API}/loadbalancers/{self.lb}/status").json()
        lb = body["statuses"]["loadbalancer"]
        out = {lb["id"]: lb["operating_status"]}
        for li in lb["listeners"]:
            out[li["id"]] = li["operating_status"]
            for pool in li["pools"]:
                out[pool["id"]] = pool["operating_status"]
                out[pool["health_monitor"]["id"]] = pool["health_monitor"]["operating_status"]
                out.update({mb["id"]: mb["operating_status"] for mb in pool["members"]})
        return out

    def stats(self) -> dict[str, int]:
        return dict(self.client.get(f"{API}/listeners/{self.listener}/stats").json()["stats"])

    def rows(self, m1: str = "UP", m2: str = "UP", bin_: int = 0, bout: int = 0, stot: int = 0,
             scur: int = 0, worker: str = "100@1",
             others: tuple[WorkerStats, ...] = ()) -> LoadBalancerStats:
        be = f"{self.pool}:{self.listener}"
        return LoadBalancerStats(lb_id=self.lb, running=True, worker=worker, others=others, rows=(
            StatRow(proxy=self.listener, name="FRONTEND", type="frontend", status="OPEN",
                    bin=bin_, bout=bout, stot=stot, scur=scur, ereq=0),
            StatRow(proxy=be, name=self.members[0], type="server", status=m1, weight=1,
                    bin=bin_, bout=bout, stot=stot, scur=scur),
            StatRow(proxy=be, name=self.members[1], type="server", status=m2, weight=1),
            StatRow(proxy=be, name="BACKEND", type="backend",
                    status="DOWN" if m1 == m2 == "DOWN" else "UP")))


@pytest.fixture
def world(tmp_path: Path, sqlite_template: Path) -> Iterator[World]:
    fresh_database(tmp_path, "", sqlite_template)
    driver = Canned()
    service = Service(make_settings(tmp_path, health=HealthSettings(interval=0)),
                      drivers={"noop": driver, "haproxy": driver})
    assert service.health is None
    service.start()
    with TestClient(service.app) as client:
        body = {"loadbalancer": {"name": "lb", "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1},
                "members": [{"address": "127.0.0.1", "protocol_port": 81},
                            {"address": "127.0.0.1", "protocol_port": 82}]}}]}}
        r = client.post(f"{API}/loadbalancers", json=body)
        assert r.status_code == 201, r.text
        lb = r.json()["loadbalancer"]
        assert service.reconciler.wait_idle()
        li = lb["listeners"][0]
        pool = lb["pools"][0]
        yield World(service, client, driver, lb["id"], li["id"], pool["id"],
                    tuple(mb["id"] for mb in pool["members"]),  # type: ignore[arg-type]
                    pool["healthmonitor"]["id"])
    service.stop()


def test_a_kept_reading_is_taken_in_the_poll_thread(world: World) -> None:
    """A reading the driver holds without asking the data plane (a quiet HAProxy's) is
    judged like an answer of ``stats``, which is not called for it; the others are
    asked in the pool."""
    hm = world.manager()
    world.driver.kept = world.rows(m2="DOWN")
    world.driver.answer = world.rows()
    report = hm.poll_once()
    assert report.answered == 1 and world.driver.asked == []
    assert world.driver.kept_in == [threading.current_thread().name]
    assert world.tree()[world.members[1]] == c.ERROR  # what the kept reading said
    world.driver.kept = None  # no longer kept: asked in the pool
    hm.poll_once()
    assert world.driver.asked == [world.lb]
    assert world.tree()[world.members[1]] == c.ONLINE


def test_statuses_are_written_once(world: World) -> None:
    hm = world.manager()
    assert world.initial_tree()
    world.driver.answer = world.rows(m2="DOWN")
    first = hm.poll_once()
    assert (first.polled, first.answered, first.status_changes) == (1, 1, 5)
    tree = world.tree()
    assert tree[world.members[1]] == c.ERROR and tree[world.members[0]] == c.ONLINE
    assert tree[world.pool] == tree[world.listener] == tree[world.lb] == c.DEGRADED
    assert tree[world.monitor] == c.ONLINE
    again = hm.poll_once()
    assert (again.status_changes, again.counter_rows) == (0, 0)  # nothing changed, no write
    world.driver.answer = world.rows()
    assert hm.poll_once().status_changes == 4  # member, pool, listener, load balancer
    assert set(world.tree().values()) == {c.ONLINE}


def test_counters_accumulate_and_survive_a_control_plane_restart(world: World) -> None:
    hm = world.manager()
    world.driver.answer = world.rows(bin_=100, bout=1000, stot=2, scur=1)
    assert hm.poll_once().counter_rows == 2  # listener and member rows created
    assert world.stats() == {"active_connections": 1, "bytes_in": 100, "bytes_out": 1000,
                             "request_errors": 0, "total_connections": 2}
    restarted = world.manager()  # a new process: only the database remembers
    assert restarted.poll_once().counter_rows == 0
    assert world.stats()["bytes_in"] == 100
    # A reload: the old worker's last reading kept by the agent, the new one from zero.
    retired = WorkerStats(worker="100@1", live=False, rows=world.rows(bin_=150).rows)
    world.driver.answer = world.rows(bin_=30, bout=5, stot=1, worker="200@9", others=(retired,))
    restarted.poll_once()
    stats = world.stats()
    assert (stats["bytes_in"], stats["bytes_out"], stats["total_connections"]) == \
        (150 + 30, 1000 + 5, 2 + 1)
    assert stats["active_connections"] == 0
    with world.service.sessions() as session:
        row = session.get(m.ListenerStatistics, world.listener)
        assert row is not None and set(row.readings) == {"100@1", "200@9"}
        member = session.get(m.MemberStatistics, world.members[0])
        assert member is not None and (member.bytes_in, member.total_connections) == (180, 3)


def test_dead_haproxy_is_error_and_keeps_counters(world: World) -> None:
    hm = world.manager()
    world.driver.answer = world.rows(bin_=10, scur=3)
    hm.poll_once()
    world.driver.answer = LoadBalancerStats(lb_id=world.lb, running=False)
    report = hm.poll_once()
    assert report.dead == (world.lb,)
    tree = world.tree()
    assert tree[world.lb] == tree[world.listener] == c.ERROR
    assert tree[world.members[0]] == c.ONLINE  # nothing observed: unchanged
    assert world.stats()["bytes_in"] == 10 and world.stats()["active_connections"] == 0
    world.driver.answer = world.rows(bin_=4, worker="300@20")  # restarted: a new worker
    assert hm.poll_once().dead == ()
    assert world.tree()[world.lb] == c.ONLINE and world.stats()["bytes_in"] == 14


def _provisioning(world: World) -> tuple[str, str | None]:
    lb = world.client.get(f"{API}/loadbalancers/{world.lb}").json()["loadbalancer"]
    return lb["provisioning_status"], lb["provisioning_status_reason"]


def test_what_the_agent_cannot_restart_is_applied_again_from_the_database(
        world: World) -> None:
    """Issue 9 item 8: the agent lost the spec (or cannot start it): the controller sends
    it again, once per outage; a running-again load balancer may be re-sent next time."""
    hm = world.manager(reapply=world.service.reconciler.reapply)
    world.driver.answer = world.rows()
    hm.poll_once()
    applied = world.driver.calls.count(("apply", world.lb))
    # Dead with a restart on its way (error None): the agent's business, nothing re-sent.
    world.driver.answer = LoadBalancerStats(lb_id=world.lb, running=False)
    assert hm.poll_once().dead == (world.lb,)
    assert _provisioning(world) == (c.ACTIVE, None)
    # The agent cannot: re-sent once through the worker (PENDING_UPDATE -> ACTIVE).
    world.driver.answer = LoadBalancerStats(lb_id=world.lb, running=False,
                                            error="no spec on this host")
    hm.poll_once()
    assert world.service.reconciler.wait_idle()
    assert world.driver.calls.count(("apply", world.lb)) == applied + 1
    assert _provisioning(world) == (c.ACTIVE, None)
    assert world.tree()[world.lb] == c.ERROR
    hm.poll_once()
    assert world.service.reconciler.wait_idle()
    assert world.driver.calls.count(("apply", world.lb)) == applied + 1  # once per outage
    world.driver.answer = world.rows()
    hm.poll_once()
    assert world.tree()[world.lb] == c.ONLINE
    world.driver.answer = LoadBalancerStats(lb_id=world.lb, running=False, error="again")
    hm.poll_once()
    assert world.service.reconciler.wait_idle()
    assert world.driver.calls.count(("apply", world.lb)) == applied + 2


def test_an_error_load_balancer_is_not_applied_again(world: World) -> None:
    hm = world.manager(reapply=world.service.reconciler.reapply)
    with world.service.sessions() as session, session.begin():
        session.execute(update(m.LoadBalancer).where(m.LoadBalancer.id == world.lb)
                        .values(provisioning_status=c.ERROR))
    applied = world.driver.calls.count(("apply", world.lb))
    world.driver.answer = LoadBalancerStats(lb_id=world.lb, running=False, error="no spec")
    assert hm.poll_once().dead == (world.lb,)
    assert world.service.reconciler.wait_idle()
    assert world.driver.calls.count(("apply", world.lb)) == applied
    assert _provisioning(world)[0] == c.ERROR


@pytest.mark.parametrize("failure", ["mute", "raises"])
def test_unanswered_polls_before_error(world: World, failure: str) -> None:
    hm = world.manager(unanswered_polls=2)
    world.driver.answer = world.rows()
    hm.poll_once()
    world.driver.answer = LoadBalancerStats(lb_id=world.lb, running=True, error="timed out") \
        if failure == "mute" else RuntimeError("agent unreachable")
    assert hm.poll_once().dead == ()
    assert world.tree()[world.lb] == c.ONLINE
    assert hm.poll_once().dead == (world.lb,)
    assert world.tree()[world.lb] == c.ERROR


def test_a_provider_that_observes_nothing_is_left_alone(world: World) -> None:
    hm = world.manager()
    world.driver.answer = None  # the noop provider
    report = hm.poll_once()
    assert (report.polled, report.answered, report.status_changes) == (1, 0, 0)
    assert world.initial_tree()


def test_load_balancers_being_created_or_deleted_are_not_polled(world: World) -> None:
    hm = world.manager()
    world.driver.answer = world.rows()
    for pending in (c.PENDING_CREATE, c.PENDING_DELETE):
        with world.service.sessions() as session, session.begin():
            session.execute(update(m.LoadBalancer).where(m.LoadBalancer.id == world.lb)
                            .values(provisioning_status=pending))
        assert hm.poll_once().polled == 0
    assert world.driver.asked == []


def test_manager_thread_polls_on_its_own(world: World) -> None:
    hm = world.manager(interval=0.05)
    world.driver.answer = world.rows()
    hm.start()
    try:
        import time
        deadline = time.monotonic() + 5
        while world.tree()[world.lb] != c.ONLINE and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        hm.stop()
    assert world.tree()[world.lb] == c.ONLINE and hm.last_report is not None


def test_two_managers_never_add_the_same_growth_twice(world: World) -> None:
    first, second = world.manager(), world.manager()
    world.driver.answer = world.rows(bin_=100, bout=10, stot=1)
    stale = first._snapshot()  # first reads the database...
    second.poll_once()  # ...second writes the growth meanwhile...
    first._snapshot = lambda: stale  # type: ignore[method-assign]
    first.poll_once()  # ...first writes from the counters it re-reads under lock
    assert world.stats()["bytes_in"] == 100


def test_an_unchanged_reading_of_an_unchanged_graph_is_not_evaluated_again(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: an idle host costs a lookup per load balancer, not a roll-up."""
    hm = world.manager()
    world.driver.answer = world.rows()
    assert hm.poll_once().status_changes > 0

    def evaluated(*_: Any) -> None:
        raise AssertionError("an unchanged load balancer was evaluated again")

    monkeypatch.setattr("lbaas.health.rollup.evaluate", evaluated)
    monkeypatch.setattr("lbaas.health.stats.collect", evaluated)
    again = hm.poll_once()
    assert (again.answered, again.status_changes, again.counter_rows) == (1, 0, 0)


def test_a_changed_graph_is_evaluated_with_the_same_reading(world: World) -> None:
    """The graphs are kept between polls; a change through the API is seen all the same."""
    hm = world.manager()
    world.driver.answer = world.rows()
    hm.poll_once()
    assert world.tree()[world.members[0]] == c.ONLINE
    r = world.client.put(f"{API}/pools/{world.pool}/members/{world.members[0]}",
                         json={"member": {"admin_state_up": False}})
    assert r.status_code == 200, r.text
    assert world.service.reconciler.wait_idle()
    hm.poll_once()  # the same reading: the member is UP in HAProxy's answer
    assert world.tree()[world.members[0]] == c.OFFLINE
    assert world.tree()[world.lb] == c.ONLINE


def _set_listener(world: World, enabled: bool, wait: bool = True) -> None:
    r = world.client.put(f"{API}/listeners/{world.listener}",
                         json={"listener": {"admin_state_up": enabled}})
    assert r.status_code == 200, r.text
    if wait:
        assert world.service.reconciler.wait_idle()
        assert _provisioning(world)[0] == c.ACTIVE


def _disabled(world: World) -> LoadBalancerStats:
    """HAProxy's answer while the only listener is admin-down: no frontend, no backend."""
    return LoadBalancerStats(lb_id=world.lb, running=True, worker="100@1")


def test_a_reading_is_not_judged_against_a_graph_being_applied(world: World) -> None:
    """The race of octavia-tempest-plugin's test_terminated_https_listener_update: a
    listener enabled through the API is in the database (PENDING_UPDATE) before HAProxy
    has its frontend; a reading taken then must not make it ERROR (no frontend)."""
    hm = world.manager()
    _set_listener(world, False)
    world.driver.answer = _disabled(world)
    hm.poll_once()
    assert world.tree()[world.listener] == c.OFFLINE
    world.driver.hold.clear()  # the worker's apply waits: HAProxy serves the old config
    try:
        _set_listener(world, True, wait=False)
        assert _provisioning(world)[0] == c.PENDING_UPDATE
        asked = len(world.driver.asked)
        hm.poll_once()
        assert world.tree()[world.listener] == c.OFFLINE  # was ERROR
        assert len(world.driver.asked) == asked  # nothing to ask: the graph is not served
    finally:
        world.driver.hold.set()
    assert world.service.reconciler.wait_idle()
    assert _provisioning(world)[0] == c.ACTIVE
    world.driver.answer = world.rows()  # the frontend, once applied
    hm.poll_once()
    assert world.tree()[world.listener] == c.ONLINE


class _Agent:
    """A remote agent's connection as the poller sees it: hands out ``heartbeat``."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self.heartbeat_ = heartbeat

    def heartbeat(self, timeout: float = 10.0) -> tuple[Heartbeat, str]:
        return self.heartbeat_, self.heartbeat_.host

    def reply(self, reply: HeartbeatReply) -> None:
        pass


def test_a_heartbeat_reading_taken_before_an_apply_is_not_judged_against_it(
        world: World) -> None:
    """Remote agents: readings come with heartbeats and are kept for up to
    ``heartbeat_timeout`` seconds. One taken before an update was applied describes the
    old configuration: it is not judged against the new graph (the listener, enabled
    since, would be ERROR for want of a frontend); the next heartbeat's is."""
    registry = world.service.registry
    endpoint = "https://127.0.0.1:9443"
    agent = _Agent(Heartbeat(host="h1", binary=c.AGENT_BINARY, port=9443, address="127.0.0.1"))
    poller = AgentPoller(registry, lambda _: agent, (endpoint,),  # type: ignore[arg-type,return-value]
                         interval=60.0, claims=LocalClaims())
    assert poller.poll(endpoint)
    with world.service.sessions() as session, session.begin():
        agent_id = session.scalars(select(m.Agent.id).where(m.Agent.host == "h1")).one()
        lb = session.get(m.LoadBalancer, world.lb)
        assert lb is not None
        Scheduler(local_agent_id=agent_id).place(session, lb)
    remote = HaproxyDriver(RemoteAgents(AgentTLS("unused", "unused"), registry.endpoint,
                                        registry.endpoints_of, registry.observation))
    hm = HealthManager(world.service.sessions, {"noop": remote, "haproxy": remote})

    def beat(reading: LoadBalancerStats) -> None:
        agent.heartbeat_ = dataclasses.replace(agent.heartbeat_,
                                               load_balancers={world.lb: Held(stats=reading)})
        assert poller.poll(endpoint)
        assert registry.observation(world.lb) == reading

    _set_listener(world, False)
    beat(_disabled(world))
    hm.poll_once()
    assert world.tree()[world.listener] == c.OFFLINE
    _set_listener(world, True)  # applied; the agent's last heartbeat is older
    hm.poll_once()
    assert world.tree()[world.listener] == c.OFFLINE  # was ERROR
    beat(world.rows())
    hm.poll_once()
    assert world.tree()[world.listener] == c.ONLINE


def test_a_reading_is_not_judged_against_a_graph_older_than_it(world: World) -> None:
    """The other way round: the graph was read, then a change was applied before HAProxy
    was asked. The reading (no frontend: the listener was disabled meanwhile) must not be
    judged against the graph read before (an enabled listener, which would be ERROR)."""
    hm = world.manager()
    world.driver.answer = world.rows()
    hm.poll_once()
    assert world.tree()[world.listener] == c.ONLINE

    def disable() -> None:
        _set_listener(world, False)
        world.driver.answer = _disabled(world)

    world.driver.meanwhile = disable
    hm.poll_once()
    assert world.tree()[world.listener] == c.ONLINE  # was ERROR; nothing written
    hm.poll_once()  # the new graph, read again, with a reading of it
    assert world.tree()[world.listener] == c.OFFLINE
