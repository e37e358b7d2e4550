"""The provisioning worker through the API: ACTIVE, ERROR with the reason, recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from lbaas.common import constants as c
from lbaas.common.exceptions import DriverError
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.db import models as m
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from lbaas.worker import graph
from tests.api.base import Api
from tests.conftest import make_settings


class FlakyDriver(NoopDriver):
    """Fails every apply while ``failing`` is set; records concurrency per load balancer."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(apply_delay=delay)
        self.failing = False
        self.active: dict[str, int] = {}
        self.max_parallel_same_lb = 0
        self.max_parallel = 0
        self._guard = threading.Lock()

    def apply(self, lb: LoadBalancerSpec) -> None:
        with self._guard:
            self.active[lb.id] = self.active.get(lb.id, 0) + 1
            self.max_parallel_same_lb = max(self.max_parallel_same_lb, self.active[lb.id])
            self.max_parallel = max(self.max_parallel, sum(self.active.values()))
        try:
            super().apply(lb)
            if self.failing:
                raise DriverError("[ALERT] parsing [haproxy.cfg:12]: unknown keyword 'oops'")
        finally:
            with self._guard:
                self.active[lb.id] -= 1


@pytest.fixture
def flaky() -> FlakyDriver:
    return FlakyDriver()


@pytest.fixture
def api(tmp_path: Path, db_url: str, flaky: FlakyDriver) -> Iterator[Api]:
    svc = Service(make_settings(tmp_path, database_url=db_url),
                  drivers={"noop": flaky, "haproxy": flaky})
    svc.start()
    with TestClient(svc.app, raise_server_exceptions=False) as client:
        yield Api(client, svc)
    svc.stop()


def test_failed_apply_is_error_with_the_reason_and_can_be_fixed(api: Api,
                                                                 flaky: FlakyDriver) -> None:
    flaky.failing = True
    lb = api.create_lb()
    shown = api.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert shown["provisioning_status"] == c.ERROR
    assert "unknown keyword 'oops'" in shown["provisioning_status_reason"]

    flaky.failing = False
    api.put(f"/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "fixed"}}, status=200)
    api.wait_idle()
    shown = api.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert shown["provisioning_status"] == c.ACTIVE
    assert shown["provisioning_status_reason"] is None


def test_a_create_wakes_the_worker_without_waiting_for_its_poll(tmp_path: Path,
                                                               db_url: str) -> None:
    """The commit of a change wakes the worker: with a poll an hour apart, a noop create
    is ACTIVE within the 20 s this test waits (a worker that only polled would not be)."""
    svc = Service(make_settings(tmp_path, database_url=db_url, worker_poll_interval=3600.0))
    svc.start()
    try:
        with TestClient(svc.app, raise_server_exceptions=False) as client:
            api = Api(client, svc)
            lb = api.create_lb(wait=False)
            deadline = time.monotonic() + 20
            while api.lb_status(lb["id"]) != c.ACTIVE:
                assert time.monotonic() < deadline, "not ACTIVE: the worker was not woken"
                time.sleep(0.01)
    finally:
        svc.stop()


def test_a_member_change_goes_to_a_worker_without_the_dispatchers_scan(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member change hands its load balancer to a worker thread at commit (issue 12:
    no dispatcher hop): with a poll an hour apart and scans that find nothing, a member
    add, update and delete are still applied (before, they stayed PENDING)."""
    svc = Service(make_settings(tmp_path, database_url=db_url, worker_poll_interval=3600.0))
    svc.start()
    try:
        with TestClient(svc.app, raise_server_exceptions=False) as client:
            api = Api(client, svc)
            lb = api.create_lb()
            pool = api.create_pool(listener_id=api.create_listener(lb["id"])["id"])
            monkeypatch.setattr(svc.reconciler, "pending_ids", lambda: [])

            def settled(what: str) -> None:
                deadline = time.monotonic() + 20
                while api.lb_status(lb["id"]) != c.ACTIVE:
                    assert time.monotonic() < deadline, f"{what}: not applied"
                    time.sleep(0.01)

            member = api.create_member(pool["id"], wait=False)
            settled("add")
            path = f"/pools/{pool['id']}/members/{member['id']}"
            api.put(path, {"member": {"weight": 7}}, status=200)
            settled("update")
            assert api.status_of(f"pools/{pool['id']}/members", "member",
                                 member["id"]) == c.ACTIVE
            api.delete(path, status=204)
            settled("delete")
            api.get(path, status=404)
    finally:
        svc.stop()


def test_one_change_per_load_balancer_many_in_parallel(api: Api, flaky: FlakyDriver) -> None:
    flaky.apply_delay = 0.2
    ids = [api.create_lb(wait=False)["id"] for _ in range(8)]
    api.wait_idle(timeout=30)
    assert all(api.lb_status(i) == c.ACTIVE for i in ids)
    assert flaky.max_parallel_same_lb == 1
    assert flaky.max_parallel > 1  # parallel across load balancers (4 worker threads)


def test_a_change_after_one_applied_here_reads_only_its_pending_members(
        api: Api, flaky: FlakyDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    """graph.MemberCache (issue 12): a change whose load balancer's graph_version is one
    more than the one this worker applied reads only the PENDING_* members, anything
    else reads them all; either way the driver gets the members the database holds."""
    reads: list[bool] = []  # each read of members: pending only?
    read_members = graph.read_members

    def counted(session: Session, lb: m.LoadBalancer, pending: bool = False) -> graph.Members:
        reads.append(pending)
        return read_members(session, lb, pending)

    monkeypatch.setattr(graph, "read_members", counted)
    monkeypatch.setattr(graph.MemberCache, "min_members", 2)  # kept from two members

    def database_members() -> list[tuple[graph.s.MemberSpec, ...]]:
        with api.service.sessions() as session:
            lb = graph.load_graph(session, lb_id, members="none")
            assert lb is not None
            spec = graph.build_spec(lb, members=read_members(session, lb))
            return [p.members for p in spec.pools]

    def settled(full: bool) -> None:
        api.wait_idle()
        assert [p.members for p in flaky.applied[lb_id].pools] == database_members()
        assert reads[-1] is not full, reads

    lb_id = api.create_lb()["id"]
    assert reads == [False]  # a new load balancer: nothing kept
    pool_id = api.create_pool(loadbalancer_id=lb_id)["id"]
    settled(full=True)  # none kept: fewer than min_members
    members = [api.create_member(pool_id, address=f"127.0.0.{i}")["id"] for i in (1, 2, 3)]
    settled(full=False)
    assert len(database_members()[0]) == 3 and reads == [False, False, False, False, True]
    api.put(f"/pools/{pool_id}/members/{members[0]}", {"member": {"weight": 7}}, status=200)
    settled(full=False)
    api.put(f"/pools/{pool_id}/members", {"members": [
        {"address": "127.0.0.1", "protocol_port": 8080, "weight": 5},
        {"address": "127.0.0.4", "protocol_port": 8080}]}, status=202)
    settled(full=False)  # one updated, one created, two deleted
    assert [(mb.address, mb.weight) for mb in database_members()[0]] == [
        ("127.0.0.1", 5), ("127.0.0.4", 1)]

    flaky.failing = True  # the member shown ERROR stays; nothing kept from this change
    api.create_member(pool_id, address="127.0.0.5")
    assert api.lb_status(lb_id) == c.ERROR
    flaky.failing = False
    api.create_member(pool_id, address="127.0.0.6")
    settled(full=True)
    assert len(database_members()[0]) == 4

    # Another process applies a change (it bumped graph_version and changed a member
    # this worker keeps): the next change here reads every member again.
    with api.service.sessions() as session, session.begin():
        session.execute(update(m.LoadBalancer).where(m.LoadBalancer.id == lb_id)
                        .values(graph_version=m.LoadBalancer.graph_version + 1))
        session.execute(update(m.Member).where(m.Member.address == "127.0.0.4")
                        .values(weight=42))
    api.create_member(pool_id, address="127.0.0.7")
    settled(full=True)
    assert 42 in [mb.weight for mb in database_members()[0]]
    api.delete(f"/pools/{pool_id}", status=204)
    settled(full=False)
    assert database_members() == []
