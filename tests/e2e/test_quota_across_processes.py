"""Quotas and VIPs stay exact across two ``lbaas serve`` processes on one PostgreSQL
(issue 9 item 7; :mod:`lbaas.db.locks`): 30 real HTTP clients, half on each
process, all released at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.test_control_planes import two  # noqa: F401 (fixture; database is in tests/e2e/conftest.py)
from tests.support.serve import Serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENTS = 30
PROJECT = {"X-Project-Id": "racer", "X-Roles": "member"}


def _together(clients: list[httpx.Client], body: dict[str, object],
              vip: bool) -> list[httpx.Response]:
    start = threading.Barrier(CLIENTS)

    def one(i: int) -> httpx.Response:
        lb = {**body, "name": f"lb{i}"}
        if vip:
            lb["vip_address"] = f"127.1.201.{i + 1}"
        start.wait(timeout=30)
        return clients[i % 2].post("/loadbalancers", json={"loadbalancer": lb})

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def test_a_quota_and_vips_hold_across_two_processes(two: tuple[Serve, Serve]) -> None:  # noqa: F811
    a, b = two
    with a.client() as admin:
        assert admin.put("/quotas/racer", json={"quota": {"loadbalancer": 5}}).status_code == 202
    with a.client(**PROJECT) as ca, b.client(**PROJECT) as cb:
        responses = _together([ca, cb], {}, vip=True)
        assert Counter(r.status_code for r in responses) == {201: 5, 403: CLIENTS - 5}, \
            [r.text for r in responses if r.status_code >= 500][:3]
        with a.client() as admin:
            assert admin.put("/quotas/racer",
                             json={"quota": {"loadbalancer": -1}}).status_code == 202
        responses = _together([ca, cb], {}, vip=False)
        assert Counter(r.status_code for r in responses) == {201: CLIENTS}, \
            [r.text for r in responses if r.status_code != 201][:3]
        vips = [r.json()["loadbalancer"]["vip_address"] for r in responses]
        assert len(set(vips)) == CLIENTS
        listed = ca.get("/loadbalancers").json()["loadbalancers"]
        assert len(listed) == 5 + CLIENTS
        assert len({lb["vip_address"] for lb in listed}) == 5 + CLIENTS
