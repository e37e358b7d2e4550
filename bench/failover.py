"""ACTIVE_STANDBY failover: how long the VIP is gone when its MASTER dies, and how long until
a backup is there again.

A real service (haproxy provider, namespace placement, ACTIVE_STANDBY by
default, the product's timers: ``[keepalived_vrrp]`` defaults, supervision
and health manager every 2 s) serves one HTTP load balancer over a backend
host. A client host sends a request on a new connection every 10 ms (0.2 s
timeout); every address is on the bench's own subnet 198.18.240.0/24 (bridge
and namespaces made here, removed at the end; root only). Each trial, at a
random moment of the advert cycle, does one of:

- **kill**: SIGKILL of the MASTER's keepalived (both processes) and HAProxy
  master: no priority-0 advert, the BACKUP takes over when its master-down
  timer runs out; the agent starts the killed amphora again, and it joins
  as BACKUP;
- **cut**: the MASTER's veth deleted (its namespace is cut off, its
  processes live on): the BACKUP takes over the same way; the health
  manager finds the amphora broken and the worker replaces it with a new
  one (new namespace, same address), which joins as BACKUP.

Figures (one line each: name, value, unit[, ratio to the baseline]):

- ``vrrp_handover_gap_p50``: the baseline, measured first: the VIP gap when
  the MASTER's keepalived stops in order (SIGTERM: it sends priority 0, the
  BACKUP takes over after its skew time alone), ``--trials`` / 4 trials;
- ``failover_kill_vip_gap_p50/p95/max``, ``failover_cut_vip_gap_p50/p95/max``:
  from the last answered request before the event to the first answered
  after it (ratio: to the baseline); goal p50 <= 2 s, p95 <= 3 s;
- ``failover_kill_new_master_p50/p95``, ``failover_cut_new_master_p50/p95``:
  from the event to the BACKUP's keepalived reporting MASTER (ratio: to
  ``vrrp_handover_new_master_p50``, the same in the baseline);
- ``failover_kill_backup_back_p50/p95``: from the kill to the killed
  amphora running again as BACKUP;
- ``failover_cut_rebuilt_backup_p50/p95``: from the cut to a new amphora
  running as BACKUP and the load balancer ACTIVE again;
- ``failover_failed_requests_mean``: requests that failed per trial.

Usage: sudo .venv/bin/python bench/failover.py [--trials 20] [--only kill,cut]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from pyroute2 import IPRoute
from tests.support.netns_hosts import NetnsHost, Probe, ProbeResult, Subnet, routed
from tests.support.serve import Serve

from lbaas.dataplane import netns
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings

API = "/v2/lbaas"
SUBNET = 240  # 198.18.240.0/24


def line(name: str, value: float, unit: str, ratio: float | None = None) -> None:
    print(f"{name} {value:.2f} {unit}" + (f" {ratio:.3f}" if ratio is not None else ""),
          flush=True)


def percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> float:
    """Seconds until ``check()`` is true; RuntimeError after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


CONFIG = """\
[haproxy_amphora]
placement = namespace
[controller_worker]
loadbalancer_topology = ACTIVE_STANDBY
"""


@contextmanager
def service(state_dir: Path) -> Iterator[tuple[Amphorae, httpx.Client]]:
    """A running ``lbaas serve`` (namespace placement, ACTIVE_STANDBY, the product's
    timers otherwise), a reader of its amphorae's files, and a client of its API."""
    serve = Serve(state_dir, config=CONFIG, provider="haproxy")
    serve.start()
    client = httpx.Client(base_url=serve.url, timeout=30)
    try:
        yield Amphorae(AmphoraSettings(base_path=state_dir / "lb")), client
    finally:
        for lb in client.get(f"{API}/loadbalancers").json()["loadbalancers"]:
            client.delete(f"{API}/loadbalancers/{lb['id']}", params={"cascade": "true"})
            wait_for("deleted", lambda lb=lb: client.get(
                f"{API}/loadbalancers/{lb['id']}").status_code == 404)
        client.close()
        serve.stop()


@contextmanager
def api_subnet(client: httpx.Client) -> Iterator[Subnet]:
    """198.18.240.0/24 made through the API, and its bridge (the one the agent plugs the
    amphorae into; the bench's hosts plug in too), deleted at the end."""
    network = ipaddress.IPv4Network(f"198.18.{SUBNET}.0/24")
    if (route := routed(network)) is not None:
        raise RuntimeError(f"{network} is already routed on this host ({route})")
    net = client.post("/v2.0/networks", json={"network": {"name": "bench"}}).json()
    sub = client.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["network"]["id"], "cidr": str(network),
        "gateway_ip": str(network[1]), "allocation_pools": [
            {"start": str(network[100]), "end": str(network[150])}]}}).json()["subnet"]
    subnet = Subnet(sub["id"], network, str(network[1]))
    netns.ensure_bridge(subnet.plan)
    try:
        yield subnet
    finally:
        netns.delete_bridge(subnet.bridge, only_if_unused=False)


class Bench:
    """The load balancer under test and what it takes to look at it."""

    def __init__(self, amphorae: Amphorae, client: httpx.Client, subnet: Subnet,
                 web: NetnsHost, client_host: NetnsHost) -> None:
        self.amphorae, self.client, self.host = amphorae, client, client_host
        self.failed: list[int] = []  # failed requests per trial
        r = client.post(f"{API}/loadbalancers", json={"loadbalancer": {
            "vip_subnet_id": subnet.subnet_id, "listeners": [{
                "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                    "name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"address": web.address, "protocol_port": 8080}]}}]}})
        if r.status_code != 201:
            raise RuntimeError(r.text)
        self.lb_id, self.vip = r.json()["loadbalancer"]["id"], r.json()["loadbalancer"][
            "vip_address"]
        wait_for("ACTIVE", lambda: self.status() in ("ACTIVE", "ERROR"))
        if self.status() != "ACTIVE":
            raise RuntimeError(f"the load balancer is {self.status()}")
        self.advert_int = self.spec().vrrp.advert_int
        wait_for("a MASTER and a BACKUP", self.pair)

    def status(self) -> str:
        return str(self.client.get(f"{API}/loadbalancers/{self.lb_id}").json()
                   ["loadbalancer"]["provisioning_status"])

    def spec(self) -> Any:
        spec = self.amphorae.last_spec(self.lb_id)
        assert spec is not None
        return spec

    def states(self) -> dict[str, str | None]:
        return {a: self.amphorae.vrrp_state(self.lb_id, a)
                for a in self.amphorae.amphora_ids(self.lb_id)}

    def pair(self) -> tuple[str, str] | None:
        """(MASTER id, BACKUP id) when exactly one of each runs, and the load balancer is
        ACTIVE with its two amphorae."""
        states = self.states()
        by_state = {s: a for a, s in states.items()}
        if len(states) != 2 or set(by_state) != {"MASTER", "BACKUP"} or \
                self.status() != "ACTIVE":
            return None
        return by_state["MASTER"], by_state["BACKUP"]

    def event(self, kind: str) -> tuple[float, float, float]:
        """One trial: (seconds without answers, seconds until the BACKUP is MASTER,
        seconds until a backup is there again)."""
        pair = self.pair()
        assert pair is not None
        master, backup = pair
        time.sleep(random.uniform(0, self.advert_int))  # anywhere in the advert cycle
        d = self.amphorae.files(self.lb_id, master).root
        probe = Probe(self.host, self.vip, timeout=0.2, interval=0.01, seconds=120)
        time.sleep(0.3)
        at = time.monotonic()
        if kind == "handover":
            os.kill(int((d / "keepalived.pid").read_text()), signal.SIGTERM)
        elif kind == "kill":
            for name in ("keepalived.pid", "vrrp.pid", "haproxy.pid"):
                os.kill(int((d / name).read_text()), signal.SIGKILL)
        else:
            with IPRoute() as ipr:
                ipr.link("del", index=ipr.link_lookup(ifname=netns.veth_names(master).host)[0])
        took = wait_for("the backup takes the VIP",
                        lambda: self.states().get(backup) == "MASTER")

        def back() -> bool:
            pair = self.pair()
            return pair is not None and pair[0] == backup
        wait_for("a backup again", back, 120)
        restored = time.monotonic() - at
        time.sleep(1.5)  # answers after the event, whatever the client was waiting for
        results = probe.stop()
        self.failed.append(sum(1 for r in results if not r.ok))
        return gap(results, at), took, restored


def gap(results: list[ProbeResult], at: float) -> float:
    """From the last answered request ending before ``at`` to the first answered after."""
    before = [r.end for r in results if r.ok and r.end <= at]
    after = [r.end for r in results if r.ok and r.end > at]
    if not before or not after:
        raise RuntimeError("the client saw no answer before or after the event")
    return min(after) - max(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", default="kill,cut")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/failover.py needs root (network namespaces)")
    tmp = Path(tempfile.mkdtemp(prefix="lbf-", dir="/tmp"))
    me = os.getpid()  # a forked child (pyroute2's namespace helper) must not clean up

    def terminated(*_: object) -> None:
        if os.getpid() != me:
            os._exit(0)
        sys.exit(1)

    previous = signal.signal(signal.SIGTERM, terminated)  # clean up on TERM too
    try:
        with ExitStack() as stack:
            amphorae, client = stack.enter_context(service(tmp / "state"))
            subnet = stack.enter_context(api_subnet(client))
            web = stack.enter_context(NetnsHost(subnet, "web", subnet.host(21)))
            client_host = stack.enter_context(NetnsHost(subnet, "client", subnet.host(31)))
            web.serve_http(8080, "web")
            bench = Bench(amphorae, client, subnet, web, client_host)
            handovers = [bench.event("handover") for _ in range(max(1, args.trials // 4))]
            baseline = statistics.median(h[0] for h in handovers)
            baseline_master = statistics.median(h[1] for h in handovers)
            line("vrrp_handover_gap_p50", baseline * 1000, "ms")
            line("vrrp_handover_new_master_p50", baseline_master * 1000, "ms")
            bench.failed = []
            for kind in args.only.split(","):
                gaps, masters, backs = [], [], []
                for _ in range(args.trials):
                    g, m, b = bench.event(kind)
                    gaps.append(g)
                    masters.append(m)
                    backs.append(b)
                for q in (50, 95):
                    value = percentile(gaps, q)
                    line(f"failover_{kind}_vip_gap_p{q}", value * 1000, "ms", value / baseline)
                line(f"failover_{kind}_vip_gap_max", max(gaps) * 1000, "ms",
                     max(gaps) / baseline)
                for q in (50, 95):
                    value = percentile(masters, q)
                    line(f"failover_{kind}_new_master_p{q}", value * 1000, "ms",
                         value / baseline_master)
                name = "backup_back" if kind == "kill" else "rebuilt_backup"
                for q in (50, 95):
                    line(f"failover_{kind}_{name}_p{q}", percentile(backs, q) * 1000, "ms")
            line("failover_failed_requests_mean", statistics.mean(bench.failed), "requests")
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
