"""Health manager benchmarks: real service (haproxy provider, local placement), real HAProxy.

Figures (one line each: name, value, unit[, ratio to the baseline]):

- ``detect_member_down_p50/p95``: from a member's backend closing its port to
  the member's operating_status reading ERROR in the API, over ``--trials``
  trials (the backend comes back between trials; each failure at a random
  moment of the poll and check cycles). Health monitor delay 1 s,
  max_retries_down 1; the health manager polls every ``--interval`` seconds
  (the product default, 2). Ratio: to the bound the tests assert,
  delay x max_retries_down + interval + 1 s.
- ``poll_cpu_<n>_lbs_p50/p95``: CPU time of this process (all threads) for one
  steady-state health poll over ``--lbs`` load balancers, each its own HAProxy
  (one listener, one pool, two members), i.e. ``show proc``, ``show
  info;show stat``, the roll-up and the database read; nothing changes, so
  nothing is written. Ratio: to the poll interval (the share of one core the
  health manager costs).
- ``poll_wall_<n>_lbs_p50``: wall time of the same poll (ratio: to the interval).
- ``poll_haproxy_cpu_<n>_lbs``: CPU the HAProxy workers spent answering one
  poll, summed over all of them (from /proc, averaged over the measured polls).
- ``first_poll_cpu_<n>_lbs``: the first poll, which writes every status.

Everything listens on 127.0.0.0/8; every HAProxy started here is stopped by
PID at the end (also on Ctrl-C). The members of the poll benchmark are two
HAProxy processes answering ``http-request return``, so that no backend runs
inside the measured process.

Usage: .venv/bin/python bench/health.py [--trials 20] [--lbs 200] [--interval 2]
       [--polls 10] [--threads 8] [--only detect,poll]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from lbaas.common import constants as c
from lbaas.config import HaproxySettings, HealthSettings, Settings
from lbaas.health.manager import HealthManager
from lbaas.service import Service
from lbaas.testing.backend import Backend

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
API = "/v2/lbaas"
DELAY, MAX_RETRIES_DOWN = 1, 1

BACKEND_CFG = """global
    maxconn 5000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string "Welcome to {name}"
"""


def line(name: str, value: float, unit: str, ratio: float | None = None) -> None:
    print(f"{name} {value:.2f} {unit}" + (f" {ratio:.3f}" if ratio is not None else ""),
          flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] \
        if len(values) > 1 else values[0]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.02) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    raise RuntimeError("condition not reached")


@contextmanager
def plain_haproxy(directory: Path, text: str) -> Iterator[None]:
    """A hand-written HAProxy (a fast backend), stopped by PID."""
    directory.mkdir(parents=True)
    (directory / "haproxy.cfg").write_text(text)
    proc = subprocess.Popen([HAPROXY, "-f", "haproxy.cfg"], cwd=directory,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def service(state_dir: Path, interval: float, supervise_interval: float = 2.0,
            ) -> Iterator[tuple[Service, TestClient]]:
    """A running lbaas (haproxy provider); on exit every HAProxy it started is stopped."""
    svc = Service(Settings(state_dir=state_dir, default_provider="haproxy",
                           worker_poll_interval=0.05,
                           haproxy=HaproxySettings(supervise_interval=supervise_interval),
                           health=HealthSettings(interval=interval)))
    svc.start()
    client = TestClient(svc.app)
    try:
        yield svc, client
    finally:
        client.close()
        svc.stop()
        amphorae = svc.agent.amphorae  # type: ignore[union-attr]
        for lb_id in amphorae.lb_ids():
            amphorae.delete(lb_id)


def create_lb(client: TestClient, port: int, members: list[int],
              monitor: bool) -> dict[str, Any]:
    pool: dict[str, Any] = {"name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                            "members": [{"address": "127.0.0.1", "protocol_port": p}
                                        for p in members]}
    if monitor:
        pool["healthmonitor"] = {"type": "HTTP", "delay": DELAY, "timeout": 1,
                                 "max_retries": 1, "max_retries_down": MAX_RETRIES_DOWN}
    r = client.post(f"{API}/loadbalancers", json={"loadbalancer": {"listeners": [{
        "protocol": "HTTP", "protocol_port": port, "default_pool": pool}]}})
    if r.status_code != 201:
        raise RuntimeError(r.text)
    return dict(r.json()["loadbalancer"])


def bench_detect(tmp: Path, trials: int, interval: float) -> None:
    web1, web2 = Backend("web1").start(), Backend("web2").start()
    try:
        with service(tmp / "detect", interval) as (_, client):
            lb = create_lb(client, free_port(), [web1.port, web2.port], monitor=True)
            pool = lb["pools"][0]
            member = next(mb["id"] for mb in pool["members"]
                          if mb["protocol_port"] == web1.port)
            url = f"{API}/pools/{pool['id']}/members/{member}"

            def status() -> str:
                return str(client.get(url).json()["member"]["operating_status"])

            wait_for(lambda: status() == c.ONLINE)
            times = []
            phase = random.Random(1)
            for _ in range(trials):
                # Fail at a random moment of the poll and check cycles, not right after
                # the poll that saw the member come back.
                time.sleep(phase.uniform(0, max(interval, DELAY)))
                web1.stop()
                times.append(wait_for(lambda: status() == c.ERROR))
                web1 = Backend("web1", port=web1.port).start()
                wait_for(lambda: status() == c.ONLINE)
            bound = DELAY * MAX_RETRIES_DOWN + interval + 1.0
            for q in (50, 95):
                value = percentile(times, q)
                line(f"detect_member_down_p{q}", value, "s", value / bound)
    finally:
        web1.stop()
        web2.stop()


def _cpu_ns(pids: list[int]) -> int:
    """CPU time of ``pids`` so far, in nanoseconds (``/proc/<pid>/schedstat``)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def bench_poll(tmp: Path, n: int, polls: int, interval: float, threads: int) -> None:
    p1, p2 = free_port(), free_port()
    with plain_haproxy(tmp / "web1", BACKEND_CFG.format(port=p1, name="web1")), \
            plain_haproxy(tmp / "web2", BACKEND_CFG.format(port=p2, name="web2")), \
            service(tmp / "poll", interval=0, supervise_interval=3600) as (svc, client):
        lb_ids = [create_lb(client, free_port(), [p1, p2], monitor=False)["id"]
                  for _ in range(n)]
        wait_for(lambda: not svc.reconciler.pending_ids(), timeout=60 + n)
        manager = HealthManager(svc.sessions, svc.drivers, interval=interval, threads=threads)
        amphorae = svc.agent.amphorae  # type: ignore[union-attr]
        workers = [w for lb_id in lb_ids for w in amphorae.pids(lb_id)[1]]
        started = time.process_time()
        first = manager.poll_once()
        line(f"first_poll_cpu_{n}_lbs", (time.process_time() - started) * 1000, "ms",
             (time.process_time() - started) / interval)
        assert first.answered == n, first
        cpu, wall = [], []
        haproxy_ns = _cpu_ns(workers)
        for _ in range(polls):
            started = time.process_time()
            report = manager.poll_once()
            cpu.append((time.process_time() - started) * 1000)
            wall.append(report.seconds * 1000)
            assert report.status_changes == 0 and report.answered == n, report
        haproxy_ms = (_cpu_ns(workers) - haproxy_ns) / 1e6 / polls
        for q in (50, 95):
            line(f"poll_cpu_{n}_lbs_p{q}", percentile(cpu, q), "ms",
                 percentile(cpu, q) / 1000 / interval)
        line(f"poll_wall_{n}_lbs_p50", percentile(wall, 50), "ms",
             percentile(wall, 50) / 1000 / interval)
        line(f"poll_haproxy_cpu_{n}_lbs", haproxy_ms, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--lbs", type=int, default=200)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=HealthSettings().threads,
                        help="health_update_threads of the poll benchmark")
    parser.add_argument("--only", default="detect,poll")
    args = parser.parse_args()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="lbh-", dir="/tmp"))
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up on TERM too
    try:
        if "detect" in only:
            bench_detect(tmp, args.trials, args.interval)
        if "poll" in only:
            bench_poll(tmp, args.lbs, args.polls, args.interval, args.threads)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
