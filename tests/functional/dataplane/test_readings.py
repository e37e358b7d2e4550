"""The agent's readings of a quiet HAProxy: handed out again until something happens.

An idle host with a thousand load balancers must cost the health polls next
to nothing (issue 12), so :meth:`LocalAgent.stats` asks HAProxy only when
its last reading said something new, or when HAProxy logged something, its
master exited, the agent changed it, or ``quiet_interval`` passed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from lbaas.agent.local import LocalAgent
from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae
from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port
from tests.support.specs import http_lb, member, with_members


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
                 ) -> LoadBalancerStats:
        calls.append(lb_id)
        return real(lb_id, master, reuse)

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
    assert len(asked) == before  # twenty polls, HAProxy never asked
    # Traffic is not logged: the quiet reading stays (counted within quiet_interval).
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    assert agent.stats("lb1") is quiet and len(asked) == before
    # A change by the agent: asked at once, the new member is there.
    agent.apply(with_members(lb, member("m1", web1.port), member("m2", web2.port)))
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


def test_a_quiet_reading_is_renewed_after_quiet_interval(
        started: Callable[..., LocalAgent], backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    agent = started(quiet_interval=0.5)
    agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    quiet = _quiet(agent, "lb1")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    time.sleep(0.6)
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
