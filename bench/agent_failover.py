"""Agent failover: a data-plane host with ``--lbs`` load balancers dies; how long until each
is served again from the other hosts.

Three ``lbaas agent serve``, each in a network namespace of its own acting as
a host (:mod:`tests.support.agent_hosts`: management network 198.18.244.0/24,
VIP subnet 198.18.245.0/24, made here and removed at the end; root only),
one ``lbaas serve`` (namespace placement, the agents over HTTPS with mutual
TLS, the product's heartbeat timers unless given). agent-2 and agent-3 are
disabled while the load balancers (HTTP listener, pool, one member each) are
made, so all go to agent-1; then they are enabled and agent-1's host dies
(unplugged, every process of it killed). A client on this machine asks every
VIP (a new connection, 0.5 s timeout) until each has answered.

Figures (one line each: name, value, unit[, ratio to the baseline]):

- ``agent_failover_declared_dead``: the baseline: from the death to the
  API showing agent-1 dead (``heartbeat_timeout`` plus the failed polls);
- ``agent_failover_served_again_p50``/``_max``: from the death to each load
  balancer's first answer from another host (ratio: to the baseline);
- ``agent_failover_all_active``: from the death to every load balancer
  ACTIVE again;
- ``agent_failover_create_p50``: POST to ACTIVE while they were made.

Usage: sudo .venv/bin/python bench/agent_failover.py [--lbs 100]
           [--heartbeat-interval 2] [--heartbeat-timeout 20] [--workers 4]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench.failover import line, percentile
from tests.support.agent_hosts import AgentHosts
from tests.support.netns_hosts import NetnsHost, Subnet
from tests.support.serve import Serve

from lbaas.agent import pki

MGMT, VIPS = 244, 245  # 198.18.<n>.0/24
API = "/v2/lbaas"
LIMIT = 300.0  # seconds: every wait of the bench is bounded


def served(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def agents(c: httpx.Client) -> dict[str, dict[str, object]]:
    return {a["host"]: a for a in c.get("/v2.0/agents").json()["agents"]}


def statuses(c: httpx.Client) -> dict[str, str]:
    return {lb["id"]: lb["provisioning_status"]
            for lb in c.get(f"{API}/loadbalancers", params={"limit": 10000}).json()[
                "loadbalancers"]}


def run(base: Path, count: int, interval: float, timeout: float, workers: int) -> None:
    ca_dir = base / "ca"
    with AgentHosts(base, 3, MGMT) as hosts:
        hosts.issue_certificates(ca_dir)
        tls = ssl.create_default_context(cafile=ca_dir / pki.CA_CERT)
        tls.load_cert_chain(ca_dir / "controller.pem")
        (base / "control").mkdir()
        serve = Serve(base / "control" / "state", provider="haproxy", config=(
            "[controller_worker]\namphora_driver = amphora_haproxy_rest_driver\n"
            f"agent_endpoints = {','.join(h.endpoint for h in hosts.hosts)}\n"
            f"workers = {workers}\n"
            f"[haproxy_amphora]\nplacement = namespace\n"
            f"client_cert = {ca_dir / 'controller.pem'}\nserver_ca = {ca_dir / pki.CA_CERT}\n"
            f"[health_manager]\nheartbeat_interval = {interval}\n"
            f"heartbeat_timeout = {timeout}\n"))
        web: NetnsHost | None = None
        try:
            with ThreadPoolExecutor(2) as pool:
                started = [pool.submit(hosts.start, ca_dir, tls), pool.submit(serve.start, 120)]
                for f in started:
                    f.result()
            c = httpx.Client(base_url=serve.url, timeout=30)
            net = c.post("/v2.0/networks", json={"network": {"name": "bench"}}).json()
            cidr = ipaddress.IPv4Network(f"198.18.{VIPS}.0/24")
            sub = c.post("/v2.0/subnets", json={"subnet": {
                "network_id": net["network"]["id"], "cidr": str(cidr),
                "gateway_ip": str(cidr[1]), "allocation_pools": [
                    {"start": str(cidr[30]), "end": str(cidr[250])}]}}).json()["subnet"]
            subnet = Subnet(sub["id"], cidr, str(cidr[1]))
            hosts.plug(subnet)
            web = NetnsHost(subnet, "web", subnet.host(21)).__enter__()
            web.serve_http(8080, "web")
            ids = agents(c)
            for host in ("agent-2", "agent-3"):
                c.put(f"/v2.0/agents/{ids[host]['id']}",
                      json={"agent": {"admin_state_up": False}}).raise_for_status()

            made: dict[str, float] = {}
            vips: dict[str, str] = {}
            for i in range(count):
                r = c.post(f"{API}/loadbalancers", json={"loadbalancer": {
                    "name": f"lb{i}", "vip_subnet_id": subnet.subnet_id, "listeners": [{
                        "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                            "name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                            "members": [{"address": web.address, "protocol_port": 8080}]}}]}})
                r.raise_for_status()
                lb = r.json()["loadbalancer"]
                made[lb["id"]], vips[lb["id"]] = time.monotonic(), lb["vip_address"]
            active: dict[str, float] = {}
            deadline = time.monotonic() + LIMIT
            while len(active) < count:
                now = time.monotonic()
                for lb_id, status in statuses(c).items():
                    if status == "ERROR":
                        raise RuntimeError(f"load balancer {lb_id} in ERROR")
                    if status == "ACTIVE" and lb_id not in active:
                        active[lb_id] = now - made[lb_id]
                if now > deadline:
                    raise RuntimeError(f"only {len(active)} of {count} ACTIVE")
                time.sleep(0.2)
            serving: set[str] = set()
            with ThreadPoolExecutor(50) as pool:
                while len(serving) < count:
                    waiting = [lb_id for lb_id in vips if lb_id not in serving]
                    serving.update(lb_id for lb_id, ok in zip(
                        waiting, pool.map(lambda i: served(vips[i]), waiting), strict=True)
                        if ok)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{count - len(serving)} ACTIVE do not serve")
            held = agents(c)["agent-1"]["configurations"]
            print(f"# {count} load balancers on agent-1 ({held}); heartbeat_interval "
                  f"{interval} s, heartbeat_timeout {timeout} s, {workers} worker threads",
                  flush=True)
            for host in ("agent-2", "agent-3"):
                c.put(f"/v2.0/agents/{ids[host]['id']}",
                      json={"agent": {"admin_state_up": True}}).raise_for_status()

            died = time.monotonic()
            hosts.hosts[0].kill()
            back: dict[str, float] = {}
            dead_at: float | None = None
            with ThreadPoolExecutor(50) as pool:
                while len(back) < count:
                    waiting = [lb_id for lb_id in vips if lb_id not in back]
                    for lb_id, ok in zip(waiting, pool.map(lambda i: served(vips[i]), waiting),
                                         strict=True):
                        if ok:
                            back[lb_id] = time.monotonic() - died
                    if dead_at is None and agents(c)["agent-1"]["alive"] is False:
                        dead_at = time.monotonic() - died
                    if time.monotonic() - died > LIMIT:
                        raise RuntimeError(f"only {len(back)} of {count} served again")
                    time.sleep(0.05)
            wait_all = time.monotonic()
            while set(statuses(c).values()) != {"ACTIVE"}:
                if time.monotonic() - wait_all > LIMIT:
                    raise RuntimeError("not every load balancer ACTIVE again")
                time.sleep(0.2)
            all_active = time.monotonic() - died
            baseline = dead_at or all_active
            line("agent_failover_create_p50", statistics.median(active.values()), "s")
            line("agent_failover_declared_dead", baseline, "s")
            line("agent_failover_served_again_p50", statistics.median(back.values()), "s",
                 statistics.median(back.values()) / baseline)
            line("agent_failover_served_again_p95", percentile(list(back.values()), 95), "s",
                 percentile(list(back.values()), 95) / baseline)
            line("agent_failover_served_again_max", max(back.values()), "s",
                 max(back.values()) / baseline)
            line("agent_failover_all_active", all_active, "s", all_active / baseline)
            spread = agents(c)
            print(f"# after: agent-2 {spread['agent-2']['configurations']}, agent-3 "
                  f"{spread['agent-3']['configurations']}", flush=True)
            c.close()
        finally:
            if serve.proc is not None and serve.proc.poll() is None:
                serve.kill()  # an orderly stop waits for polls of the dead host to time out
            if web is not None:
                web.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lbs", type=int, default=100)
    parser.add_argument("--heartbeat-interval", type=float, default=2.0)
    parser.add_argument("--heartbeat-timeout", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=4,
                        help="[controller_worker] workers (the product's default: 4)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("root needed (network namespaces)")
    base = Path(tempfile.mkdtemp(prefix="lbb-", dir="/tmp"))  # short: UNIX socket paths
    try:
        run(base, args.lbs, args.heartbeat_interval, args.heartbeat_timeout, args.workers)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
