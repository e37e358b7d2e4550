"""HAProxy kill gap: how long a load balancer refuses connections when its HAProxy dies.

A real service (haproxy provider, local placement, product defaults:
``supervise_interval`` 2 s, health manager every 2 s) serves one HTTP load
balancer over two backends. A client in a separate process opens a new
connection for every request (``GET /``, HTTP/1.0) at most every
``--pace`` ms, on 127.0.0.0/8 only. Each trial kills the master (SIGKILL) or
the current worker (SIGKILL), at a random moment of the 2 s cycles, and waits
until the load balancer answers again.

Figures (one line each: name, value, unit[, ratio to the baseline]):

- ``haproxy_cold_start_p50``: the baseline, the floor HAProxy allows: from
  spawning ``haproxy -W`` on the same configuration to its first answer,
  over ``--trials`` starts (no lbaas involved);
- ``kill_master_gap_p50/p95/max`` and ``kill_worker_gap_p50/p95/max``: from
  the last answered request before the kill to the first answered after it,
  over ``--trials`` trials each (ratio: to the cold start's p50);
- ``kill_master_refused_mean`` / ``kill_worker_refused_mean``: requests that
  failed per trial (refused or reset), mean.

Every HAProxy started here is stopped by PID at the end (also on Ctrl-C).

Usage: .venv/bin/python bench/kill_gap.py [--trials 20] [--pace 2]
       [--only master,worker]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import select
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
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:  # the client process imports nothing but the standard library
    from fastapi.testclient import TestClient

    from lbaas.dataplane.amphora import Amphorae
    from lbaas.service import Service

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
API = "/v2/lbaas"
KILL_SPACING = 2.5  # seconds between two kills, at least

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


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.01) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    raise RuntimeError("condition not reached")


# -- the client (a separate process: no GIL shared with the service) ---------------
def _answered(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def client_main(host: str, port: int, pace: float, limit: float) -> None:
    """Request until a line arrives on stdin (or ``limit`` seconds); print one JSON line:
    counts, the longest interval between two answered requests (``gap``, with its
    ``gap_start``/``gap_end`` in CLOCK_MONOTONIC seconds) and the first answered
    request's time (``first_ok``)."""
    print("ready", flush=True)
    ok = failed = 0
    last_ok: float | None = None
    first_ok: float | None = None
    gap, gap_start, gap_end = 0.0, 0.0, 0.0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if select.select([sys.stdin], [], [], 0)[0]:
            break
        if _answered(host, port):
            now = time.monotonic()
            ok += 1
            if first_ok is None:
                first_ok = now
            if last_ok is not None and now - last_ok > gap:
                gap, gap_start, gap_end = now - last_ok, last_ok, now
            last_ok = now
        else:
            failed += 1
        time.sleep(pace)
    print(json.dumps({"ok": ok, "failed": failed, "gap": gap, "gap_start": gap_start,
                      "gap_end": gap_end, "first_ok": first_ok}), flush=True)


class Client:
    """A running client process; :meth:`result` stops it and returns its JSON line."""

    def __init__(self, host: str, port: int, pace: float, limit: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--client", host, str(port), str(pace), str(limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def result(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        self.proc.wait(10)
        return dict(out)


# -- processes ------------------------------------------------------------------
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
def service(state_dir: Path) -> Iterator[tuple[Service, TestClient]]:
    """A running lbaas with the product's supervision and health defaults."""
    from fastapi.testclient import TestClient

    from lbaas.config import HaproxySettings, HealthSettings, Settings
    from lbaas.service import Service

    svc = Service(Settings(state_dir=state_dir, default_provider="haproxy",
                           worker_poll_interval=0.05, haproxy=HaproxySettings(),
                           health=HealthSettings()))
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


def create_lb(client: TestClient, port: int, members: list[int]) -> tuple[str, str]:
    """A load balancer with one HTTP listener on ``port``: (id, VIP address), ACTIVE."""
    r = client.post(f"{API}/loadbalancers", json={"loadbalancer": {"listeners": [{
        "protocol": "HTTP", "protocol_port": port, "default_pool": {
            "name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": "127.0.0.1", "protocol_port": p} for p in members]}}]}})
    if r.status_code != 201:
        raise RuntimeError(r.text)
    lb_id, vip = str(r.json()["loadbalancer"]["id"]), str(r.json()["loadbalancer"]["vip_address"])
    wait_for(lambda: client.get(f"{API}/loadbalancers/{lb_id}").json()["loadbalancer"]
             ["provisioning_status"] == "ACTIVE")
    return lb_id, vip


# -- measurements -----------------------------------------------------------------
def bench_cold_start(tmp: Path, cfg: str, vip: str, port: int, trials: int, pace: float,
                     ) -> float:
    """Spawn HAProxy on ``cfg`` (binding ``vip``:``port``) ``trials`` times: p50 in ms
    from the spawn to the first answer."""
    directory = tmp / "cold"
    directory.mkdir()
    (directory / "haproxy.cfg").write_text(cfg)
    samples = []
    for _ in range(trials):
        client = Client(vip, port, pace)
        spawned = time.monotonic()
        proc = subprocess.Popen([HAPROXY, "-W", "-S", "unix@master.sock,mode,600",
                                 "-f", "haproxy.cfg"], cwd=directory,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: _answered(vip, port), timeout=10)
            time.sleep(0.05)
        finally:
            out = client.result()
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        samples.append((out["first_ok"] - spawned) * 1000)
    value = percentile(samples, 50)
    line("haproxy_cold_start_p50", value, "ms")
    return value


def restarted(amphorae: Amphorae, lb_id: str, old_master: int) -> bool:
    """A new master with a worker serves ``lb_id``."""
    master, workers = amphorae.pids(lb_id)
    return master not in (None, old_master) and bool(workers)


def bench_kill(amphorae: Amphorae, lb_id: str, vip: str, port: int, kind: str, trials: int,
               pace: float, baseline: float) -> None:
    gaps, refused = [], []
    phase = random.Random(1)
    last_kill = 0.0
    for _ in range(trials):
        wait_for(lambda: _answered(vip, port), timeout=30)
        master, workers = amphorae.pids(lb_id)
        assert master is not None and workers
        victim = master if kind == "master" else workers[0]
        client = Client(vip, port, pace)
        # At a random moment of supervision's and the health manager's cycles.
        time.sleep(0.3 + phase.uniform(0, 2.0))
        # Kills at least KILL_SPACING apart: supervision holds back a crash loop (more
        # than 5 restarts within 10 s), which is not what is measured here.
        time.sleep(max(0.0, last_kill + KILL_SPACING - time.monotonic()))
        last_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(functools.partial(restarted, amphorae, lb_id, master), timeout=30)
        wait_for(lambda: _answered(vip, port), timeout=30)
        time.sleep(0.3)
        out = client.result()
        gaps.append(out["gap"] * 1000)
        refused.append(out["failed"])
    for q in (50, 95):
        value = percentile(gaps, q)
        line(f"kill_{kind}_gap_p{q}", value, "ms", value / baseline)
    line(f"kill_{kind}_gap_max", max(gaps), "ms", max(gaps) / baseline)
    line(f"kill_{kind}_refused_mean", statistics.mean(refused), "requests")


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--client":
        client_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pace", type=float, default=2.0,
                        help="ms between the client's requests (bounds the load)")
    parser.add_argument("--only", default="master,worker")
    args = parser.parse_args()
    pace = args.pace / 1000
    tmp = Path(tempfile.mkdtemp(prefix="lbk-", dir="/tmp"))
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up on TERM too
    p1, p2 = free_port(), free_port()
    try:
        with plain_haproxy(tmp / "web1", BACKEND_CFG.format(port=p1, name="web1")), \
                plain_haproxy(tmp / "web2", BACKEND_CFG.format(port=p2, name="web2")), \
                service(tmp / "state") as (svc, client):
            amphorae = svc.agent.amphorae  # type: ignore[union-attr]
            cold_port = free_port()
            probe, cold_vip = create_lb(client, cold_port, [p1, p2])
            cfg = amphorae.files(probe).cfg.read_text()
            client.delete(f"{API}/loadbalancers/{probe}", params={"cascade": "true"})
            wait_for(lambda: client.get(f"{API}/loadbalancers/{probe}").status_code == 404)
            baseline = bench_cold_start(tmp, cfg, cold_vip, cold_port, args.trials, pace)
            port = free_port()
            lb_id, vip = create_lb(client, port, [p1, p2])
            for kind in args.only.split(","):
                bench_kill(amphorae, lb_id, vip, port, kind, args.trials, pace, baseline)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
