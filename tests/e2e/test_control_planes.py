"""Two ``lbaas serve`` processes on one PostgreSQL database (issue 12 item 4).

Both run the API and the worker; each pending load balancer is claimed by
exactly one of them (:mod:`lbaas.worker.claims`), and a process killed in
the middle of a change leaves it to the other. The window is real: every
apply takes ``[provider_noop] apply_delay`` seconds while the other process
scans every 0.1 s.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from lbaas.db.session import make_engine
from lbaas.worker.claims import CLAIM_CLASS, claim_key
from tests.support.serve import Serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CONFIG = """[controller_worker]
amphora_driver = amphora_noop_driver
poll_interval = 0.1
[provider_noop]
apply_delay = {delay}
[health_manager]
health_check_interval = 0
"""
APPLIED = re.compile(r"load balancer (\S+): (apply|delete|failover) in ")


@pytest.fixture
def two(tmp_path: Path, database: str) -> Iterator[tuple[Serve, Serve]]:
    serves = []
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        serves.append(Serve(tmp_path / side / "state", config=CONFIG.format(delay=1.0),
                            provider="haproxy", extra=("--database-url", database)))
    try:
        with ThreadPoolExecutor(2) as pool:  # both start at once: ~20 s each under load
            list(pool.map(Serve.start, serves))
        yield serves[0], serves[1]
    finally:
        for s in serves:
            s.stop()


def _applied(serve: Serve) -> Counter[str]:
    return Counter(m.group(1) for m in APPLIED.finditer(serve.log_path.read_text()))


def _wait(client: httpx.Client, lb_id: str, status: str, timeout: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if client.get(f"/loadbalancers/{lb_id}").json()["loadbalancer"][
                "provisioning_status"] == status:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{lb_id} not {status} after {timeout} s")


def test_each_change_runs_in_exactly_one_process_and_a_killed_one_s_is_taken_over(
        two: tuple[Serve, Serve], database: str) -> None:
    a, b = two
    with a.client() as ca, b.client() as cb:
        ids = [(ca if i % 2 else cb).post("/loadbalancers", json={"loadbalancer": {
            "name": f"lb{i}"}}).json()["loadbalancer"]["id"]
            for i in range(12)]
        for lb_id in ids:
            _wait(ca, lb_id, "ACTIVE")
        # an update made through one process, seen and settled by either
        assert cb.put(f"/loadbalancers/{ids[0]}",
                      json={"loadbalancer": {"name": "renamed"}}).status_code == 200
        _wait(ca, ids[0], "ACTIVE")
    applied = _applied(a) + _applied(b)
    assert {lb_id: applied[lb_id] for lb_id in ids} == {
        lb_id: 2 if lb_id == ids[0] else 1 for lb_id in ids}, (applied, a.log_path, b.log_path)
    assert _applied(a) and _applied(b)  # both worked

    _a_killed_worker_s_change_is_finished_by_the_other(a, b, database)


def _holder(url: str, lb_id: str, timeout: float = 20.0) -> int:
    """The PID of the lbaas process holding ``lb_id``'s claim (its session's name)."""
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                name = conn.execute(text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :c AND l.objid = :k"),
                    {"c": CLAIM_CLASS, "k": claim_key(lb_id) & 0xFFFFFFFF}).scalar()
            if name:
                return int(name.removeprefix("lbaas pid "))
            time.sleep(0.02)
        raise AssertionError(f"nobody claimed {lb_id}")
    finally:
        engine.dispose()


def _a_killed_worker_s_change_is_finished_by_the_other(a: Serve, b: Serve,
                                                       database: str) -> None:
    with a.client() as ca:
        lb_id = ca.post("/loadbalancers", json={"loadbalancer": {"name": "x"}}).json()[
            "loadbalancer"]["id"]
        holder_pid = _holder(database, lb_id)
        holder, survivor = (a, b) if a.proc and a.proc.pid == holder_pid else (b, a)
        assert holder.proc is not None and holder.proc.pid == holder_pid
        holder.kill()  # in the middle of its 1 s apply
        assert survivor.proc is not None
        assert _holder(database, lb_id) == survivor.proc.pid  # taken over
    with survivor.client() as cs:
        took = _wait(cs, lb_id, "ACTIVE")
    assert _applied(survivor)[lb_id] == 1
    assert _applied(holder)[lb_id] == 0  # it never finished
    print(f"taken over and settled {took:.2f} s after the kill")
