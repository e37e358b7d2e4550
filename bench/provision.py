"""Time from POST of a fully-populated load balancer to its first proxied 200.

Starts a real ``lbaas serve`` with the haproxy provider and one backend, then
for each of N load balancers: POST the whole graph (listener, pool, two
members, HTTP health monitor) and poll the VIP until it answers 200. Runs in
local placement (VIPs on 127.0.0.0/8) and, as root, in namespace placement
(VIPs inside qlbaas-<id> on a 198.18.0.0/15 bridge the bench makes and
removes). The baseline is the same POST with the noop provider, timed to
ACTIVE: what the control plane alone costs.

Prints one line per figure: name, value, unit[, ratio to the baseline].
Usage: .venv/bin/python bench/provision.py [--count 50] [--no-namespace]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.serve import Serve, free_port

from lbaas.testing.backend import Backend

NAMESPACE_CIDR = ipaddress.IPv4Network("198.18.240.0/24")


def _graph(port: int, members: list[tuple[str, int]], vip: dict[str, str]) -> dict[str, Any]:
    return {"loadbalancer": {**vip, "name": "bench", "listeners": [{
        "name": "http", "protocol": "HTTP", "protocol_port": port,
        "default_pool": {"name": "p", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                         "members": [{"address": a, "protocol_port": p} for a, p in members],
                         "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3,
                                           "max_retries": 2}}}]}}


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.005)


def _first_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _run(serve: Serve, count: int, port: int, members: list[tuple[str, int]],
         vip: dict[str, str], until: str) -> list[float]:
    """Create ``count`` load balancers one after the other; seconds to 200 (or ACTIVE)."""
    samples = []
    with serve.client() as c:
        for _ in range(count):
            started = time.monotonic()
            r = c.post("/loadbalancers", json=_graph(port, members, vip))
            assert r.status_code == 201, r.text
            lb = r.json()["loadbalancer"]
            if until == "200":
                _wait(lambda lb=lb: _first_200(f"http://{lb['vip_address']}:{port}/"))
            else:
                _wait(lambda lb=lb: c.get(f"/loadbalancers/{lb['id']}").json()
                      ["loadbalancer"]["provisioning_status"] == "ACTIVE")
            samples.append(time.monotonic() - started)
        for lb in c.get("/loadbalancers").json()["loadbalancers"]:
            c.delete(f"/loadbalancers/{lb['id']}", params={"cascade": "true"})
        _wait(lambda: c.get("/loadbalancers").json()["loadbalancers"] == [], timeout=120)
    return samples


def _report(name: str, samples: list[float], baseline: float | None = None) -> float:
    p50 = statistics.median(samples) * 1000
    p95 = statistics.quantiles(samples, n=20)[-1] * 1000
    ratio = f" ratio={p50 / baseline:.1f}" if baseline else ""
    print(f"{name}_p50 {p50:.1f} ms{ratio}")
    print(f"{name}_p95 {p95:.1f} ms")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--no-namespace", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lbb-", dir="/tmp"))
    backend = Backend("bench", host="0.0.0.0").start()
    port = free_port()
    try:
        noop = Serve(tmp / "noop", provider="noop")
        noop.start()
        try:
            base = _report("noop_post_to_active", _run(
                noop, args.count, port, [("127.0.0.1", backend.port)], {}, "ACTIVE"))
        finally:
            noop.stop()

        local = Serve(tmp / "local", provider="haproxy")
        local.start()
        try:
            _report("local_post_to_first_200", _run(
                local, args.count, port, [("127.0.0.1", backend.port)], {}, "200"), base)
        finally:
            local.stop()

        if os.geteuid() == 0 and not args.no_namespace:
            _namespace(tmp, args.count, port, backend, base)
    finally:
        backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _namespace(tmp: Path, count: int, port: int, backend: Backend, base: float) -> None:
    from lbaas.dataplane import netns

    gateway = str(NAMESPACE_CIDR.network_address + 1)
    serve = Serve(tmp / "ns", provider="haproxy",
                  config="[haproxy_amphora]\nplacement = namespace\n")
    serve.start()
    bridge = None
    try:
        with httpx.Client(base_url=serve.url, timeout=10) as c:
            net = c.post("/v2.0/networks", json={"network": {"name": "bench"}}).json()["network"]
            sub = c.post("/v2.0/subnets", json={"subnet": {
                "network_id": net["id"], "cidr": str(NAMESPACE_CIDR), "gateway_ip": gateway,
                "allocation_pools": [{"start": "198.18.240.10", "end": "198.18.240.250"}]}}
            ).json()["subnet"]
        bridge = netns.bridge_name(sub["id"])
        # HAProxy inside each namespace reaches the backend at the gateway (the host).
        _report("namespace_post_to_first_200", _run(
            serve, count, port, [(gateway, backend.port)], {"vip_subnet_id": sub["id"]},
            "200"), base)
    finally:
        serve.stop()
        if bridge:
            netns.delete_bridge(bridge, only_if_unused=False)


if __name__ == "__main__":
    main()
