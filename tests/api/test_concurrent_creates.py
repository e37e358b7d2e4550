"""Many clients creating at once: quotas hold exactly and no VIP is handed out twice
(issue 9, item 7), on SQLite and on PostgreSQL.

Each test starts its clients together (a barrier) and the provider's
``validate`` (called inside the creating transaction, between the quota
count / VIP choice and the commit) waits :data:`WINDOW` seconds, so every
transaction is open while the others count and choose: without the locks of
:func:`lbaas.api.deps.check_quota` and :func:`lbaas.db.ipam.allocate`,
PostgreSQL's concurrent transactions all see the same count and the same free
address (before the fix: up to 30 of 30 accepted under a quota of 5, and
500s from the port's unique ``(subnet_id, ip_address)``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.db import models as m
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import Api
from tests.conftest import fresh_database, make_settings

CLIENTS = 30
WINDOW = 0.05  # seconds each creating transaction stays open after choosing
PROJECT = "racer"


class SlowValidateDriver(NoopDriver):
    """A noop provider whose ``validate`` (inside the API's transaction) takes time."""

    def validate(self, lb: LoadBalancerSpec) -> None:
        time.sleep(WINDOW)
        super().validate(lb)


@pytest.fixture
def api(tmp_path: Path, db_url: str, sqlite_template: Path) -> Iterator[Api]:
    fresh_database(tmp_path, db_url, sqlite_template)
    driver = SlowValidateDriver()
    service = Service(make_settings(tmp_path, database_url=db_url),
                      drivers={"noop": driver, "haproxy": driver})
    service.start()
    try:
        with TestClient(service.app, raise_server_exceptions=False) as client:
            yield Api(client, service)
    finally:
        service.stop()


def together(n: int, request: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """Send ``request(i)`` for i in 0..n-1 from n threads released at the same moment."""
    start = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        start.wait(timeout=30)
        return request(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


def codes(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def count(api: Api, model: Any) -> int:
    with api.service.read_sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)
                                  .where(model.project_id == PROJECT)) or 0)


def test_a_quota_holds_exactly_under_parallel_creates(api: Api) -> None:
    api.put(f"/quotas/{PROJECT}", {"quota": {"loadbalancer": 5, "listener": 5}}, status=202)

    # 30 load balancers at once, each naming its own VIP: 5 fit.
    responses = together(CLIENTS, lambda i: api.post(
        "/loadbalancers", {"loadbalancer": {"name": f"lb{i}", "vip_address": f"127.1.200.{i + 1}"}},
        project=PROJECT))
    assert codes(responses) == {201: 5, 403: CLIENTS - 5}, [r.text for r in responses
                                                           if r.status_code >= 500][:3]
    assert all("Quota has been met" in api.fault(r) for r in responses if r.status_code == 403)
    assert count(api, m.LoadBalancer) == 5
    api.wait_idle(30)

    # Every quota is checked the same way: listeners on different load balancers of
    # the project (one each, so that no load balancer's PENDING lock orders them).
    api.put(f"/quotas/{PROJECT}", {"quota": {"loadbalancer": CLIENTS}}, status=202)
    lbs = [r.json()["loadbalancer"]["id"] for r in responses if r.status_code == 201]
    lbs += [api.create_lb(wait=False, _project=PROJECT)["id"] for _ in range(CLIENTS - 5)]
    api.wait_idle(30)
    responses = together(CLIENTS, lambda i: api.post("/listeners", {"listener": {
        "loadbalancer_id": lbs[i], "protocol": "TCP", "protocol_port": 80}}, project=PROJECT))
    assert codes(responses) == {201: 5, 403: CLIENTS - 5}, [r.text for r in responses
                                                           if r.status_code >= 500][:3]
    assert count(api, m.Listener) == 5


def test_parallel_creates_never_share_a_vip(api: Api) -> None:
    clients = CLIENTS + 10
    responses = together(clients, lambda i: api.post(
        "/loadbalancers", {"loadbalancer": {"name": f"lb{i}"}}, project=PROJECT))
    assert codes(responses) == {201: clients}, [r.text for r in responses
                                               if r.status_code != 201][:3]
    vips = [r.json()["loadbalancer"]["vip_address"] for r in responses]
    assert len(set(vips)) == clients, Counter(vips).most_common(3)
    with api.service.read_sessions() as session:
        ports = session.execute(select(m.Port.ip_address, m.Port.device_id)).all()
    assert sorted(ports) == sorted(zip(vips, (r.json()["loadbalancer"]["id"]
                                              for r in responses), strict=True))

    # Racing for one named address: exactly one wins, the others are told it is taken.
    responses = together(CLIENTS, lambda i: api.post(
        "/loadbalancers", {"loadbalancer": {"name": f"same{i}", "vip_address": "127.1.250.250"}},
        project=PROJECT))
    assert codes(responses) == {201: 1, 409: CLIENTS - 1}, [r.text for r in responses
                                                           if r.status_code >= 500][:3]
    api.wait_idle(30)
