"""Performance at scale (issue 12): one host, haproxy provider, local placement.

Starts a real ``lbaas serve`` (SQLite, default settings) and measures:

- ``post_to_first_200_p50/p95``: POST of a fully-populated load balancer
  (HTTP listener, pool, one member) until its VIP first proxies a 200, over
  ``--post-samples`` load balancers created one after the other on a quiet
  service. Baseline: ``haproxy_start_to_first_200``, a hand-written minimal
  configuration of the same shape started by hand (``haproxy -W``, no
  check) and polled the same way: what the data plane alone costs.
- ``create_<n>_lbs``: wall time to POST the remaining load balancers up to
  ``--lbs`` and have every one ACTIVE, then ``serving_<n>_lbs``: how many
  answer 200 through their VIP (target: all).
- ``idle_cpu_<n>_lbs``: CPU of the ``lbaas serve`` process (all threads,
  user + system, from /proc) over ``--idle-seconds`` once every status has
  settled, in % of one core (ratio: the fraction of a core); and
  ``idle_haproxy_cpu_<n>_lbs``: what all the HAProxy processes spent meanwhile.
- ``rss_<n>_lbs``: resident memory of ``lbaas serve`` (MiB).
- ``haproxy_pss_per_lb`` (and ``_master``, ``_worker``): proportional set size
  of the HAProxy processes (from ``smaps_rollup``), per load balancer (MiB).
- ``list_<n>_lbs_p50/p95``: ``GET /v2/lbaas/loadbalancers`` returning all n;
  baseline ``show_lb_p50``: ``GET`` of one, interleaved with it. Then the
  same as CPU of the ``lbaas serve`` process (all its threads, from
  ``schedstat``) during each request: ``list_<n>_lbs_server_cpu_p50`` and
  baseline ``show_lb_server_cpu_p50``, which the machine's other load
  stretches far less than wall time (it also counts what the service's
  other threads, the health polling, did meanwhile).
- ``member_add_<m>_members_p50/p95``: POST of a member until it takes
  traffic, in a pool that already holds m members (for each ``--members``
  size). The pool's other members have weight 0 (they take no new traffic),
  so the VIP answers 503 until the new member serves; it is deleted again
  between samples. Ratio: to the smallest pool size.

Every line: name, value, unit[, ratio]. The load average is printed with the
figures (the machine is shared: compare before/after in the same conditions).
Only 127.0.0.0/8 is used. Limits are raised where needed (open files, and
``kernel.pid_max`` as root); the bench refuses to start without enough free
memory for the HAProxy processes. Every HAProxy it made is stopped by PID at
the end (also on Ctrl-C or SIGTERM).

Usage: .venv/bin/python bench/scale.py [--lbs 1000] [--post-samples 20]
       [--members 10,100,1000] [--member-samples 15] [--idle-seconds 30]
       [--list-samples 20] [--only post,create,idle,list,member] [--config INI]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.serve import Serve

from lbaas.dataplane.amphora import Amphorae, AmphoraSettings

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
API = "/v2/lbaas"
PSS_PER_LB_MIB = 8  # memory needed per load balancer (HAProxy master + worker), with margin

BACKEND_CFG = """global
    maxconn 5000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string "ok"
"""

MINIMAL_CFG = """global
    maxconn 1000
defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
frontend fe
    bind {vip}:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{backend}
"""


def line(name: str, value: float, unit: str, ratio: float | None = None) -> None:
    print(f"{name} {value:.2f} {unit}" + (f" {ratio:.3f}" if ratio is not None else ""),
          flush=True)


def loadavg(when: str) -> None:
    one, five, fifteen = os.getloadavg()
    print(f"# load average ({when}): {one:.2f} {five:.2f} {fifteen:.2f} on "
          f"{os.cpu_count()} cores", flush=True)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] \
        if len(values) > 1 else values[0]


def report(name: str, ms: list[float], baseline: float | None = None) -> float:
    p50 = percentile(ms, 50)
    line(f"{name}_p50", p50, "ms", p50 / baseline if baseline else None)
    line(f"{name}_p95", percentile(ms, 95), "ms")
    return p50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05,
             what: str = "condition") -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what} not reached within {timeout:g} s")
        time.sleep(step)
    return time.monotonic() - started


def http_status(host: str, port: int) -> int | None:
    """The status of ``GET /`` on host:port, or None (refused, reset, timed out)."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status
        finally:
            conn.close()
    except OSError:
        return None


def until_status(host: str, port: int, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while http_status(host, port) != status:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}:{port} did not answer {status} within {timeout:g} s")
        time.sleep(0.001)


# -- limits and processes -------------------------------------------------------------------

def raise_limits(lbs: int) -> None:
    """Open files to the hard limit; kernel.pid_max (root) if the HAProxy tasks would not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 4 * lbs + 1024:
        print(f"# warning: open files limited to {hard} (the agent holds a pidfd per "
              "load balancer)", flush=True)
    tasks = len([p for p in os.listdir("/proc") if p.isdigit()])
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    needed = tasks + 6 * lbs + 4096  # master + worker threads per load balancer, and churn
    if pid_max < needed and os.geteuid() == 0:
        Path("/proc/sys/kernel/pid_max").write_text(str(min(4194304, 2 * needed)))
        print(f"# kernel.pid_max raised from {pid_max} to {min(4194304, 2 * needed)}")


def check_memory(lbs: int) -> None:
    available = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                     if ln.startswith("MemAvailable:")) // 1024
    needed = lbs * PSS_PER_LB_MIB + 1024
    print(f"# memory available {available} MiB, needed about {needed} MiB", flush=True)
    if available < needed:
        sys.exit(f"not enough free memory for {lbs} load balancers ({available} MiB free, "
                 f"about {needed} MiB needed): lower --lbs")


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid: int) -> float:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    try:
        for ln in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if ln.startswith("Pss:"):
                return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def haproxy_pids(lb_root: Path) -> tuple[int | None, list[int]]:
    """(master, workers) of the HAProxy serving ``lb_root`` (children from /proc)."""
    try:
        master = int((lb_root / "haproxy.pid").read_text().split()[0])
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return None, []
    return master, [int(p) for p in children]


@contextmanager
def plain_haproxy(directory: Path, text: str, wait: bool = True) -> Iterator[int]:
    """An HAProxy (master-worker) on ``text``, not managed by lbaas; stopped by its PID."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "haproxy.cfg").write_text(text)
    proc = subprocess.Popen([HAPROXY, "-W", "-f", "haproxy.cfg"], cwd=directory,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stop_amphorae(lb_base: Path) -> int:
    """Stop every HAProxy under ``lb_base`` (by pid file and working directory)."""
    if not lb_base.is_dir():
        return 0
    amphorae = Amphorae(AmphoraSettings(base_path=lb_base, haproxy_cmd=HAPROXY))
    ids = amphorae.lb_ids()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(amphorae.delete, ids))
    return len(ids)


# -- the API ----------------------------------------------------------------------------

def lb_body(port: int, members: list[dict[str, Any]]) -> dict[str, Any]:
    return {"loadbalancer": {"name": "scale", "listeners": [{
        "name": "http", "protocol": "HTTP", "protocol_port": port,
        "default_pool": {"name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                         "members": members}}]}}


def create_lb(c: httpx.Client, port: int, members: list[dict[str, Any]]) -> dict[str, Any]:
    r = c.post(f"{API}/loadbalancers", json=lb_body(port, members))
    if r.status_code != 201:
        raise RuntimeError(f"create: {r.status_code} {r.text[:300]}")
    return dict(r.json()["loadbalancer"])


def _gone(c: httpx.Client, url: str) -> bool:
    return c.get(url).status_code == 404


def lb_status(c: httpx.Client, lb_id: str) -> str:
    return str(c.get(f"{API}/loadbalancers/{lb_id}").json()["loadbalancer"]
               ["provisioning_status"])


def wait_active(c: httpx.Client, lb_id: str, timeout: float = 60.0) -> None:
    def active() -> bool:
        status = lb_status(c, lb_id)
        if status == "ERROR":
            raise RuntimeError(f"load balancer {lb_id} went to ERROR")
        return status == "ACTIVE"

    wait_for(active, timeout, 0.01, f"load balancer {lb_id} ACTIVE")


def all_lbs(c: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "1000"}
    while True:
        page = c.get(f"{API}/loadbalancers", params=params).json()
        out += page["loadbalancers"]
        nxt = [ln for ln in page.get("loadbalancers_links", []) if ln["rel"] == "next"]
        if not nxt or not page["loadbalancers"]:
            return out
        params = {"limit": "1000", "marker": page["loadbalancers"][-1]["id"]}


# -- phases -------------------------------------------------------------------------------

def bench_post(c: httpx.Client, tmp: Path, samples: int, port: int, backend: int) -> None:
    loadavg("post")
    base = []
    for i in range(samples):
        vip = f"127.2.0.{1 + i % 250}"
        started = time.perf_counter()
        with plain_haproxy(tmp / f"minimal{i}", MINIMAL_CFG.format(vip=vip, port=port,
                                                                    backend=backend)):
            until_status(vip, port, 200)
            base.append((time.perf_counter() - started) * 1000)
    b50 = report("haproxy_start_to_first_200", base)
    ms = []
    member = [{"address": "127.0.0.1", "protocol_port": backend}]
    for _ in range(samples):
        started = time.perf_counter()
        lb = create_lb(c, port, member)
        until_status(lb["vip_address"], port, 200)
        ms.append((time.perf_counter() - started) * 1000)
        wait_active(c, lb["id"])
    report("post_to_first_200", ms, b50)


def bench_create(c: httpx.Client, lbs: int, port: int, backend: int) -> list[dict[str, Any]]:
    loadavg("create")
    existing = all_lbs(c)
    member = [{"address": "127.0.0.1", "protocol_port": backend}]
    started = time.monotonic()
    for _ in range(lbs - len(existing)):
        create_lb(c, port, member)

    def settled() -> bool:
        states = [lb["provisioning_status"] for lb in all_lbs(c)]
        if "ERROR" in states:
            raise RuntimeError(f"{states.count('ERROR')} load balancers in ERROR")
        return states.count("ACTIVE") == len(states)

    wait_for(settled, timeout=60 + 3 * lbs, step=5, what="every load balancer ACTIVE")
    line(f"create_{lbs}_lbs", time.monotonic() - started, "s")
    created = all_lbs(c)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda lb: http_status(lb["vip_address"], port), created))
    line(f"serving_{lbs}_lbs", answers.count(200), "lbs", answers.count(200) / len(created))
    return created


def bench_idle(c: httpx.Client, serve_pid: int, lb_base: Path, lbs: int,
               seconds: float) -> None:
    def settled() -> bool:
        return all(lb["operating_status"] == "ONLINE" for lb in all_lbs(c))

    wait_for(settled, timeout=300, step=5, what="every load balancer ONLINE")
    time.sleep(10)  # let anything triggered by the last changes finish
    loadavg("idle")
    roots = [p for p in lb_base.iterdir() if (p / "haproxy.pid").exists()]
    procs = []
    for root in roots:
        master, children = haproxy_pids(root)
        procs += children + ([master] if master else [])
    hz = os.sysconf("SC_CLK_TCK")
    before, hp_before, t0 = cpu_ticks(serve_pid), sum(_ticks(p) for p in procs), time.monotonic()
    time.sleep(seconds)
    after, hp_after, t1 = cpu_ticks(serve_pid), sum(_ticks(p) for p in procs), time.monotonic()
    share = (after - before) / hz / (t1 - t0)
    line(f"idle_cpu_{lbs}_lbs", share * 100, "%core", share)
    line(f"idle_haproxy_cpu_{lbs}_lbs", (hp_after - hp_before) / hz / (t1 - t0) * 100, "%core")
    line(f"rss_{lbs}_lbs", rss_mib(serve_pid), "MiB")
    masters = workers = 0.0
    for root in roots:
        master, children = haproxy_pids(root)
        masters += pss_mib(master) if master else 0.0
        workers += sum(pss_mib(w) for w in children)
    n = max(1, len(roots))
    line("haproxy_pss_per_lb", (masters + workers) / n, "MiB")
    line("haproxy_pss_per_lb_master", masters / n, "MiB")
    line("haproxy_pss_per_lb_worker", workers / n, "MiB")


def _ticks(pid: int) -> int:
    try:
        return cpu_ticks(pid)
    except (OSError, IndexError, ValueError):
        return 0


def server_cpu_ms(pid: int) -> float:
    """CPU time of ``pid`` so far, every thread (``schedstat``: nanoseconds), in ms."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total / 1e6


def bench_list(c: httpx.Client, serve_pid: int, samples: int) -> None:
    loadavg("list")
    body = c.get(f"{API}/loadbalancers").json()["loadbalancers"]
    n, one = len(body), body[0]["id"]
    show, listing, show_cpu, listing_cpu = [], [], [], []
    for _ in range(samples):  # interleaved, so drift on the shared host hits both
        cpu, t0 = server_cpu_ms(serve_pid), time.perf_counter()
        assert c.get(f"{API}/loadbalancers/{one}").status_code == 200
        show.append((time.perf_counter() - t0) * 1000)
        show_cpu.append(server_cpu_ms(serve_pid) - cpu)
        cpu, t0 = server_cpu_ms(serve_pid), time.perf_counter()
        r = c.get(f"{API}/loadbalancers")
        listing.append((time.perf_counter() - t0) * 1000)
        listing_cpu.append(server_cpu_ms(serve_pid) - cpu)
        assert len(r.json()["loadbalancers"]) == n
    base = report("show_lb", show)
    report(f"list_{n}_lbs", listing, base)
    base = report("show_lb_server_cpu", show_cpu)
    report(f"list_{n}_lbs_server_cpu", listing_cpu, base)


def bench_member(c: httpx.Client, sizes: list[int], samples: int, port: int,
                 backend: int) -> None:
    loadavg("member")
    base = None
    for size in sizes:
        # Weight 0: in the configuration, taking no new traffic (nothing listens there).
        idle = [{"address": f"127.3.{i // 250}.{1 + i % 250}", "protocol_port": 9,
                 "weight": 0} for i in range(size)]
        lb = create_lb(c, port, idle)
        wait_active(c, lb["id"], timeout=120)
        vip, pool_id = lb["vip_address"], lb["pools"][0]["id"]
        until_status(vip, port, 503)
        ms = []
        for _ in range(samples):
            started = time.perf_counter()
            r = c.post(f"{API}/pools/{pool_id}/members", json={"member": {
                "address": "127.0.0.1", "protocol_port": backend}})
            if r.status_code != 201:
                raise RuntimeError(f"member add: {r.status_code} {r.text[:300]}")
            until_status(vip, port, 200)
            ms.append((time.perf_counter() - started) * 1000)
            wait_active(c, lb["id"])
            member_id = r.json()["member"]["id"]
            assert c.delete(f"{API}/pools/{pool_id}/members/{member_id}").status_code == 204
            wait_active(c, lb["id"])
            until_status(vip, port, 503)
        p50 = report(f"member_add_{size}_members", ms, base)
        base = base or p50
        url = f"{API}/loadbalancers/{lb['id']}"
        c.delete(url, params={"cascade": "true"})
        wait_for(functools.partial(_gone, c, url), 60, 0.1, "load balancer deleted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lbs", type=int, default=1000)
    parser.add_argument("--post-samples", type=int, default=20)
    parser.add_argument("--members", default="10,100,1000")
    parser.add_argument("--member-samples", type=int, default=15)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--list-samples", type=int, default=20)
    parser.add_argument("--only", default="post,create,idle,list,member")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    parser.add_argument("--config", default="",
                        help="INI text for lbaas serve, e.g. $'[haproxy_amphora]\\n"
                             "stats_quiet_interval = 20\\n'")
    args = parser.parse_args()
    only = set(args.only.split(","))
    # The interpreter (lbaas serve runs on it too): a build without optimisations ran
    # lbaas's requests and tests 1.3-1.7x slower on the same machine (scripts/setup).
    print(f"# python {sys.version.split()[0]} ({os.path.realpath(sys.executable)})", flush=True)
    loadavg("start")
    check_memory(args.lbs if "create" in only else args.post_samples + 2)
    raise_limits(args.lbs)
    tmp = Path(tempfile.mkdtemp(prefix="lbs-", dir="/tmp"))
    lb_base = tmp / "state" / "lb"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up on TERM too
    port, backend = free_port(), free_port()
    serve = Serve(tmp / "state", provider="haproxy", config=args.config)
    try:
        with plain_haproxy(tmp / "backend", BACKEND_CFG.format(port=backend)):
            until_status("127.0.0.1", backend, 200)
            serve.start()
            assert serve.proc is not None
            with httpx.Client(base_url=serve.url, timeout=120) as c:
                if "post" in only:
                    bench_post(c, tmp, args.post_samples, port, backend)
                if "create" in only:
                    bench_create(c, args.lbs, port, backend)
                if "idle" in only:
                    bench_idle(c, serve.proc.pid, lb_base, len(all_lbs(c)), args.idle_seconds)
                if "list" in only:
                    bench_list(c, serve.proc.pid, args.list_samples)
                if "member" in only:
                    bench_member(c, [int(x) for x in args.members.split(",")],
                                 args.member_samples, port, backend)
            loadavg("end")
    finally:
        serve.stop()
        stopped = stop_amphorae(lb_base)
        print(f"# stopped {stopped} HAProxy processes", flush=True)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
