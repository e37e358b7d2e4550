"""The agent's readings of a quiet HAProxy: handed out again until something happens.

An idle host with a thousand load balancers must cost the health polls next
to nothing (issue 12), so :meth:`LocalAgent.stats` asks HAProxy only when
its last reading said something new, or when HAProxy logged something, its
master exited, the agent changed it, or ``quiet_interval`` passed.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lbaas.agent.local import LocalAgent
from lbaas.dataplane import runtime
from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae
from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port
from tests.support.specs import http_lb, member, with_listener, with_members


def _quiet(agent: LocalAgent, lb_id: str, timeout: float = 10.0) -> LoadBalancerStats:
    """Read until a reading says nothing new (the same object comes back)."""
    deadline = time.monotonic() + timeout
    last = agent.stats(lb_id)
    while time.monotonic() < deadline:
        again = agent.stats(lb_id)
        if again is last:
            return again
        last = again
        time.sleep(0.05)
    raise AssertionError("readings never settled")


@pytest.fixture
def asked(amphorae: Amphorae, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The load balancers whose HAProxy the agent asked (Amphorae.stats calls)."""
    calls: list[str] = []
    real = amphorae.stats

    def counting(lb_id: str, master: int | None = None, reuse: bool = False,
                 keep: bool = False) -> LoadBalancerStats:
        calls.append(lb_id)
        return real(lb_id, master, reuse, keep)

    monkeypatch.setattr(amphorae, "stats", counting)
    return calls


@pytest.fixture
def started(amphorae: Amphorae) -> Iterator[Callable[..., LocalAgent]]:
    agents: list[LocalAgent] = []

    def start(**kwargs: float) -> LocalAgent:
        agent = LocalAgent(amphorae, supervise_interval=3600, **kwargs)
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()


def test_a_quiet_haproxy_is_not_asked_again_until_something_happens(
        started: Callable[..., LocalAgent], asked: list[str],
        backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    agent = started(quiet_interval=3600)
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    agent.apply(lb)
    quiet = _quiet(agent, "lb1")
    before = len(asked)
    assert all(agent.stats("lb1") is quiet for _ in range(20))
    assert agent.kept_stats("lb1") is quiet  # what the health manager takes in its thread
    assert len(asked) == before  # twenty polls, HAProxy never asked
    # Traffic is not logged: the quiet reading stays (counted within quiet_interval).
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    assert agent.stats("lb1") is quiet and len(asked) == before
    # A change by the agent: asked at once, the new member is there.
    agent.apply(with_members(lb, member("m1", web1.port), member("m2", web2.port)))
    assert agent.kept_stats("lb1") is None  # changed: stats() must ask
    grown = agent.stats("lb1")
    assert grown is not quiet and len(asked) == before + 1
    assert sorted(r.name for r in grown.servers) == ["m1", "m2"]
    assert all(r.stot >= 1 for r in grown.frontends)  # the traffic above, counted now


def test_a_server_state_change_is_read_at_once(started: Callable[..., LocalAgent],
                                               asked: list[str],
                                               backend: Callable[..., Backend]) -> None:
    """HAProxy logs every UP/DOWN transition to haproxy.log: its growth is the event."""
    web1 = backend("web1")
    port = free_port()
    agent = started(quiet_interval=3600)
    monitor = s.HealthMonitorSpec(id="hm1", type="HTTP", delay=1, timeout=1, max_retries=1,
                                  max_retries_down=1, url_path="/")
    agent.apply(http_lb("lb1", port, (member("m1", web1.port),), health_monitor=monitor))
    deadline = time.monotonic() + 10
    while not agent.stats("lb1").servers[0].status.startswith("UP"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _quiet(agent, "lb1")
    web1.stop()
    deadline = time.monotonic() + 10
    while agent.stats("lb1").servers[0].status != "DOWN":
        assert time.monotonic() < deadline, "the DOWN transition was never read"
        time.sleep(0.1)


def test_without_health_monitor_the_log_is_not_looked_at(
        started: Callable[..., LocalAgent], asked: list[str], amphorae: Amphorae,
        backend: Callable[..., Backend]) -> None:
    """Only health checks change a server's state by themselves (and log it): without
    a health monitor, haproxy.log growing asks nothing (with one, see above)."""
    web1 = backend("web1")
    agent = started(quiet_interval=3600)
    agent.apply(http_lb("lb1", free_port(), (member("m1", web1.port),)))
    quiet = _quiet(agent, "lb1")
    before = len(asked)
    with amphorae.files("lb1").log.open("a") as log:
        log.write("[WARNING] something HAProxy said\n")
    assert agent.stats("lb1") is quiet and agent.kept_stats("lb1") is quiet
    assert len(asked) == before


def test_a_quiet_reading_is_renewed_after_quiet_interval(
        started: Callable[..., LocalAgent], backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    agent = started(quiet_interval=0.5)
    agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    quiet = _quiet(agent, "lb1")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    time.sleep(0.6)
    assert agent.kept_stats("lb1") is None
    fresh = agent.stats("lb1")
    assert fresh is not quiet and fresh.frontends[0].stot == quiet.frontends[0].stot + 1


def test_an_exit_is_read_at_once(started: Callable[..., LocalAgent],
                                 backend: Callable[..., Backend], amphorae: Amphorae) -> None:
    web1 = backend("web1")
    agent = started(quiet_interval=3600)
    first = agent.apply(http_lb("lb1", free_port(), (member("m1", web1.port),)))
    quiet = _quiet(agent, "lb1")
    assert first.master_pid is not None
    os.kill(first.master_pid, signal.SIGKILL)  # restarted at once by the agent
    deadline = time.monotonic() + 10
    while agent.stats("lb1").worker in (None, quiet.worker):
        assert time.monotonic() < deadline, "the restarted HAProxy was never read"
        time.sleep(0.05)
    assert amphorae.pids("lb1")[0] not in (None, first.master_pid)


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The UNIX socket names connected to (runtime._connect calls), in order."""
    names: list[str] = []
    real = runtime._connect

    def counting(path: Path, timeout: float) -> socket.socket:
        names.append(path.name)
        return real(path, timeout)

    monkeypatch.setattr(runtime, "_connect", counting)
    return names


def test_readings_come_over_one_kept_connection(started: Callable[..., LocalAgent],
                                                connects: list[str], amphorae: Amphorae,
                                                backend: Callable[..., Backend]) -> None:
    """Every reading asks HAProxy here (quiet_interval 0), over one connection kept
    open (interactive mode): no connect per poll. What it reads is what a connection
    of its own reads."""
    web1 = backend("web1")
    port = free_port()
    agent = started(quiet_interval=0)
    agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    agent.stats("lb1")
    before = connects.count("stats.sock")
    readings = []
    for _ in range(10):
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        readings.append(agent.stats("lb1"))
    assert connects.count("stats.sock") == before  # ten readings, no new connection
    assert [r.frontends[0].stot for r in readings] == \
        list(range(readings[0].frontends[0].stot, readings[0].frontends[0].stot + 10))
    # The last request's session may still be open in HAProxy (scur 1) for a moment.
    deadline = time.monotonic() + 10
    kept = agent.stats("lb1")
    while any(row.scur for row in kept.rows):
        assert time.monotonic() < deadline, "a request's session stayed open"
        time.sleep(0.05)
        kept = agent.stats("lb1")
    own = amphorae.stats("lb1")  # a connection of its own: the same reading
    assert own.worker == kept.worker
    assert _settled(own.rows) == _settled(kept.rows)


def _settled(rows: tuple[runtime.StatRow, ...]) -> list[runtime.StatRow]:
    """``rows`` without the fields that move with time alone (a second may pass
    between two readings; a kept reading may carry them as first read)."""
    return [dataclasses.replace(row, lastchg=None, downtime=None, rate=None) for row in rows]


def test_a_reload_lets_the_kept_connection_go(started: Callable[..., LocalAgent],
                                              amphorae: Amphorae,
                                              backend: Callable[..., Backend]) -> None:
    """A worker serves its connections until they close, so a kept one would hold the
    worker that a reload retires alive (until ``stats timeout``, 30 s): the agent closes
    it before it reloads, and reads the new worker."""
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    agent = started(quiet_interval=0)
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    agent.apply(lb)
    old = agent.stats("lb1").worker
    changed = with_listener(with_members(lb, member("m1", web1.port), member("m2", web2.port)),
                            connection_limit=123)
    assert agent.apply(changed).action == "reloaded"
    deadline = time.monotonic() + 15
    while len(amphorae.pids("lb1")[1]) != 1 or _children(amphorae, "lb1") != 1:
        assert time.monotonic() < deadline, "the reloaded worker was kept alive"
        time.sleep(0.1)
    fresh = agent.stats("lb1")
    assert fresh.worker not in (None, old)
    assert sorted(r.name for r in fresh.servers) == ["m1", "m2"]


def _children(amphorae: Amphorae, lb_id: str) -> int:
    master = amphorae.pids(lb_id)[0]
    assert master is not None
    return len(Path(f"/proc/{master}/task/{master}/children").read_text().split())


def test_retired_readings_are_read_again_after_a_reload(amphorae: Amphorae,
                                                        backend: Callable[..., Backend]) -> None:
    """Only a reload writes retired-stats.json (just before its new worker starts):
    while the same worker answers, the file is not looked at again."""
    web1 = backend("web1")
    lb = http_lb("lb1", free_port(), (member("m1", web1.port),))
    amphorae.apply(lb)
    first = amphorae.stats("lb1")
    assert first.worker is not None and first.others == ()
    retired = amphorae.files("lb1").retired
    retired.write_text('[{"worker": "1@1", "live": false, "rows": []}]')
    assert amphorae.stats("lb1").others == ()  # the same worker: not looked at
    assert amphorae.apply(with_listener(lb, connection_limit=123)).action == "reloaded"
    after = amphorae.stats("lb1")
    assert after.worker != first.worker
    assert first.worker in [w.worker for w in after.others if not w.live]
