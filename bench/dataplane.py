"""Data-plane benchmarks: real HAProxy processes on loopback, local placement.

Figures (one line each: name, value, unit[, ratio to the baseline]):

- ``apply_to_first_200_p50/p95``: from ``apply()`` of a fully-populated spec
  (listener, pool, two members, HTTP health monitor) until the first proxied
  200, over ``--lbs`` new load balancers;
- ``rps_lbaas`` / ``p99_lbaas``: requests/s and p99 latency (wrk, keep-alive)
  through a load balancer rendered by lbaas, against the baseline
  ``rps_minimal`` / ``p99_minimal``: a hand-written minimal haproxy.cfg for
  the same topology (one frontend, round robin over the same two backends),
  measured in the same run with the same load generator, interleaved;
- ``reload_failed_requests``: failed requests (wrk socket errors and non-2xx,
  keep-alive and new connections) while ``--reloads`` changes that need a
  reload are applied under load (target 0);
- ``rss_one_lb`` / ``rss_<n>_lbs`` (and ``pss_...``): memory of idle load
  balancers' HAProxy processes (master and worker), from /proc.

Backends are HAProxy processes answering ``http-request return`` (fast, so
the load balancer is what is measured). All traffic is on 127.0.0.1; every
process started here is stopped by PID at the end. wrk is installed from
Debian if missing (``apt-get install wrk``, root only).

Usage: .venv/bin/python bench/dataplane.py [--lbs 50] [--memory-lbs 200]
       [--reloads 20] [--seconds 5] [--only apply,throughput,reloads,memory]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.specs import http_lb, member, with_listener

from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

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

MINIMAL_CFG = """global
    maxconn 6000
defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
"""


def line(name: str, value: float, unit: str, ratio: float | None = None) -> None:
    print(f"{name} {value:.2f} {unit}" + (f" {ratio:.3f}" if ratio is not None else ""),
          flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() != 0:
        sys.exit("wrk is not installed and installing it needs root (apt-get install wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("wrk did not install")


@contextmanager
def plain_haproxy(directory: Path, text: str) -> Iterator[None]:
    """An HAProxy daemon on ``text`` (not managed by lbaas); stopped by its PID."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "haproxy.cfg").write_text(text)
    subprocess.run([HAPROXY, "-D", "-p", "haproxy.pid", "-f", "haproxy.cfg"], cwd=directory,
                   check=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not (directory / "haproxy.pid").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = int((directory / "haproxy.pid").read_text().split()[0])
    try:
        yield
    finally:
        os.kill(pid, signal.SIGTERM)


def first_200(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError(f"no 200 on port {port}")


def full_spec(lb_id: str, port: int, p1: int, p2: int) -> s.LoadBalancerSpec:
    hm = s.HealthMonitorSpec(id=f"{lb_id}-hm", type="HTTP", delay=5, timeout=2, max_retries=2,
                             max_retries_down=2, url_path="/", expected_codes="200")
    return http_lb(lb_id, port, (member("m1", p1), member("m2", p2)), health_monitor=hm,
                   listener={"insert_headers": (("X-Forwarded-For", "true"),)})


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def bench_apply(am: Amphorae, n: int, p1: int, p2: int) -> None:
    samples = []
    for i in range(n):
        port = free_port()
        lb = full_spec(f"apply{i}", port, p1, p2)
        t0 = time.perf_counter()
        am.apply(lb)
        first_200(port)
        samples.append((time.perf_counter() - t0) * 1000)
    for i in range(n):
        am.delete(f"apply{i}")
    line("apply_to_first_200_p50", percentile(samples, 50), "ms")
    line("apply_to_first_200_p95", percentile(samples, 95), "ms")


def run_wrk(wrk: str, port: int, seconds: float, connections: int = 32,
            close: bool = False, url: str | None = None) -> dict[str, float]:
    """wrk against ``url`` (default http://127.0.0.1:<port>/): req/s, p99 (ms), counts."""
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "5s"]
    if close:
        cmd += ["-H", "Connection: close"]
    out = subprocess.run([*cmd, url or f"http://127.0.0.1:{port}/"], capture_output=True,
                         text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99": float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0,
            "requests": total, "failed": errors + (int(non2xx.group(1)) if non2xx else 0)}


def bench_throughput(am: Amphorae, wrk: str, tmp: Path, p1: int, p2: int,
                     seconds: float) -> None:
    lbaas_port, minimal_port = free_port(), free_port()
    am.apply(http_lb("tput", lbaas_port, (member("m1", p1), member("m2", p2))))
    with plain_haproxy(tmp / "minimal", MINIMAL_CFG.format(port=minimal_port, p1=p1, p2=p2)):
        first_200(lbaas_port)
        first_200(minimal_port)
        results: dict[str, list[dict[str, float]]] = {"lbaas": [], "minimal": []}
        run_wrk(wrk, lbaas_port, 1)  # warm-up
        run_wrk(wrk, minimal_port, 1)
        for _ in range(3):  # interleaved, so drift on the shared host hits both
            results["lbaas"].append(run_wrk(wrk, lbaas_port, seconds))
            results["minimal"].append(run_wrk(wrk, minimal_port, seconds))
    am.delete("tput")
    rps = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
    p99 = {k: statistics.median(r["p99"] for r in v) for k, v in results.items()}
    line("rps_minimal", rps["minimal"], "req/s")
    line("rps_lbaas", rps["lbaas"], "req/s", rps["lbaas"] / rps["minimal"])
    line("p99_minimal", p99["minimal"], "ms")
    line("p99_lbaas", p99["lbaas"], "ms", p99["lbaas"] / p99["minimal"] if p99["minimal"]
         else None)


def bench_reloads(am: Amphorae, wrk: str, p1: int, p2: int, reloads: int) -> None:
    port = free_port()
    lb = http_lb("reloads", port, (member("m1", p1), member("m2", p2)))
    am.apply(lb)
    first_200(port)
    seconds = 2 + reloads * 0.35
    outcome: dict[str, dict[str, float]] = {}

    def load(kind: str, close: bool) -> None:
        outcome[kind] = run_wrk(wrk, port, seconds, connections=16, close=close)

    threads = [threading.Thread(target=load, args=("keepalive", False)),
               threading.Thread(target=load, args=("close", True))]
    for t in threads:
        t.start()
    time.sleep(1)
    done = 0
    for i in range(reloads):
        if am.apply(with_listener(lb, timeout_client_data=40000 + i)).action == "reloaded":
            done += 1
        time.sleep(0.25)
    for t in threads:
        t.join()
    am.delete("reloads")
    failed = sum(o["failed"] for o in outcome.values())
    total = sum(o["requests"] for o in outcome.values())
    line("reload_count", done, "reloads")
    line("reload_requests", total, "requests")
    line("reload_failed_requests", failed, "requests")


def memory_of(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) in MiB summed over ``pids``."""
    rss = pss = 0
    for pid in pids:
        for field_line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if field_line.startswith("Rss:"):
                rss += int(field_line.split()[1])
            elif field_line.startswith("Pss:"):
                pss += int(field_line.split()[1])
    return rss / 1024, pss / 1024


def bench_memory(am: Amphorae, n: int, p1: int, p2: int) -> None:
    pids: list[int] = []
    for i in range(n):
        port = free_port()
        result = am.apply(http_lb(f"mem{i}", port, (member("m1", p1), member("m2", p2))))
        pids += [p for p in (result.master_pid, *result.worker_pids) if p]
        if i == 0:
            time.sleep(0.5)
            rss, pss = memory_of(pids)
            line("rss_one_lb", rss, "MiB")
            line("pss_one_lb", pss, "MiB")
    time.sleep(0.5)
    rss, pss = memory_of(pids)
    line(f"rss_{n}_lbs", rss, "MiB")
    line(f"pss_{n}_lbs", pss, "MiB")
    for i in range(n):
        am.delete(f"mem{i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lbs", type=int, default=50)
    parser.add_argument("--memory-lbs", type=int, default=200)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", default="apply,throughput,reloads,memory")
    args = parser.parse_args()
    only = set(args.only.split(","))
    wrk = ensure_wrk() if only & {"throughput", "reloads"} else ""
    tmp = Path(tempfile.mkdtemp(prefix="lbb-", dir="/tmp"))
    am = Amphorae(AmphoraSettings(base_path=tmp / "lb", haproxy_cmd=HAPROXY))
    p1, p2 = free_port(), free_port()
    try:
        with plain_haproxy(tmp / "web1", BACKEND_CFG.format(port=p1, name="web1")), \
                plain_haproxy(tmp / "web2", BACKEND_CFG.format(port=p2, name="web2")):
            first_200(p1)
            first_200(p2)
            if "apply" in only:
                bench_apply(am, args.lbs, p1, p2)
            if "throughput" in only:
                bench_throughput(am, wrk, tmp, p1, p2, args.seconds)
            if "reloads" in only:
                bench_reloads(am, wrk, p1, p2, args.reloads)
            if "memory" in only:
                bench_memory(am, args.memory_lbs, p1, p2)
    finally:
        for lb_id in am.lb_ids():
            am.delete(lb_id)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
