"""The README's walkthrough (``examples/walkthrough.py``) and quick start, run for real.

The walkthrough runs against its own ``lbaas serve`` (haproxy provider, a free
port, a state directory under /tmp, VIPs from a 127.200.<r>.0/24 pool) so
that it never meets a quick-start service left running on this machine, in
``local`` placement and, as root, in ``namespace`` placement on a
198.18.<n>.0/24 subnet nothing here routes, once SINGLE and once
ACTIVE_STANDBY (``--topology``: its amphora list and a failover under
traffic). Each test asserts one thing the
issue asks of the printed output (alternation, web1 alone while web2 is down,
DEGRADED, statistics above zero) or of the host afterwards (no namespace,
veth, bridge, HAProxy or backend left). ``test_quickstart_then_stop`` runs
``scripts/quickstart`` (without the install step) and ``scripts/stop``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.serve import Serve, free_port

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGH = REPO / "examples" / "walkthrough.py"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy not installed")]


def _namespaces_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, veths and a bridge"
    from lbaas.dataplane import netns

    probe = f"lbw-probe-{os.getpid()}"
    try:
        netns.ensure_namespace(probe)
    except OSError as e:
        return f"cannot create a network namespace: {e}"
    finally:
        netns.remove_namespace(probe)
    return None


def _routed(network: ipaddress.IPv4Network) -> bool:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for route in ipr.route("dump", family=socket.AF_INET):
            dst, plen = route.get("RTA_DST"), route["dst_len"]
            if dst and plen and ipaddress.ip_network(f"{dst}/{plen}",
                                                     strict=False).overlaps(network):
                return True
    return False


# -- what is running on the host ----------------------------------------------------

def _pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def haproxy_pids(state_dir: Path) -> list[int]:
    """Live HAProxy processes running in a load balancer directory under ``state_dir``."""
    found = []
    for pid in _pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(state_dir) + "/") and "haproxy" in _cmdline(pid) and _alive(pid):
            found.append(pid)
    return found


def backend_pids(addresses: tuple[str, ...]) -> list[int]:
    """Live ``lbaas.testing.backend`` processes listening on one of ``addresses``."""
    return [pid for pid in _pids()
            if "lbaas.testing.backend" in (cmd := _cmdline(pid)) and _alive(pid)
            and any(f"--host {a} " in cmd for a in addresses)]


def link_names() -> set[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {link.get("IFLA_IFNAME") for link in ipr.link("dump")}


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- one run of the walkthrough ------------------------------------------------------------

@dataclass
class Run:
    """One walkthrough run: its options, output, exit status, and what was left after it."""

    mode: str  # local | namespace | active-standby (namespace placement)
    state_dir: Path
    webs: tuple[str, str]
    host_prefix: str = ""
    output: str = ""
    returncode: int = -1
    lb_id: str = ""
    vip: str = ""
    bridge: str = ""
    leftovers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def namespace(self) -> bool:
        return self.mode != "local"

    @property
    def amphora_namespaces(self) -> list[str]:
        """Every amphora namespace the output names (ACTIVE_STANDBY)."""
        return sorted(set(re.findall(r"amphora-[0-9a-f-]{36}", self.output)))

    def section(self, title: str) -> str:
        """The output of the section whose heading contains ``title``."""
        parts = re.split(r"\n== \d+\. ", self.output)
        for part in parts[1:]:
            if title in part.split("\n", 1)[0]:
                return part
        raise AssertionError(f"no section {title!r} in the output:\n{self.output}")

    def served(self, text: str, kind: str = "http") -> list[str]:
        """Who answered each request of ``kind`` printed in ``text``."""
        prefix = {"http": "GET http://", "https": "GET https://", "tcp": "tcp "}[kind]
        return [line.rsplit("-> ", 1)[1].removeprefix("Welcome to ")
                for line in text.splitlines() if line.startswith(prefix)]


def _host_veth(namespace: str) -> str:
    return "lbd-" + hashlib.sha256(namespace.encode()).hexdigest()[:8]


def _collect_leftovers(run: Run, serve: Serve) -> None:
    from lbaas.dataplane import netns

    left: dict[str, list[str]] = {}
    left["haproxy"] = [str(p) for p in haproxy_pids(run.state_dir)]
    left["backends"] = [str(p) for p in backend_pids(run.webs)]
    with serve.client() as c:
        left["load balancers"] = [lb["name"] for lb in
                                  c.get("/loadbalancers").json()["loadbalancers"]]
        left["secrets"] = [x["name"] for x in
                           c.get(serve.url + "/v1/secrets").json()["secrets"]]
    if run.namespace:
        ours = [f"{run.host_prefix}web1", f"{run.host_prefix}web2"]
        if run.lb_id:
            ours.append(netns.namespace_name(run.lb_id))
        ours += run.amphora_namespaces
        left["namespaces"] = [ns for ns in ours if netns.namespace_exists(ns)]
        links = link_names()
        mine = [_host_veth(ns) for ns in ours[:2]] + [run.bridge]
        if run.lb_id:
            mine.append(netns.veth_names(run.lb_id).host)
        left["links"] = [name for name in mine if name and name in links]
        with serve.client() as c:
            base = serve.url + "/v2.0"
            left["subnets"] = [s["name"] for s in c.get(base + "/subnets").json()["subnets"]
                               if s["name"] != "lb-vip-subnet"]
    run.leftovers = {k: v for k, v in left.items() if v}


def _force_clean(run: Run) -> None:
    """Whatever a failed run left: processes by PID, namespaces and links by name."""
    _kill(haproxy_pids(run.state_dir) + backend_pids(run.webs))
    if not run.namespace:
        return
    from pyroute2 import IPRoute

    from lbaas.dataplane import netns

    namespaces = [f"{run.host_prefix}web1", f"{run.host_prefix}web2"]
    if run.lb_id:
        namespaces.append(netns.namespace_name(run.lb_id))
    namespaces += run.amphora_namespaces
    with IPRoute() as ipr:
        for name in [_host_veth(ns) for ns in namespaces[:2]] + [run.bridge]:
            idx = ipr.link_lookup(ifname=name) if name else []
            if idx:
                ipr.link("del", index=idx[0])
    for ns in namespaces:
        netns.remove_namespace(ns)


# The ACTIVE_STANDBY run asserts that no request fails while keepalived moves the VIP:
# timed, so it runs with the machine to itself (scripts/test).
@pytest.fixture(scope="module", params=["local", "namespace", pytest.param(
    "active-standby", marks=pytest.mark.timed)])
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    mode = request.param
    if mode != "local" and (reason := _namespaces_possible()):
        pytest.skip(reason)
    if mode == "active-standby" and shutil.which("keepalived") is None:
        pytest.skip("keepalived is not installed")
    r = random.Random()
    tmp = Path(tempfile.mkdtemp(prefix="lbw-", dir="/tmp"))  # short: socket paths <= 107
    octet = r.randrange(256)
    config = (f"[networking]\ndefault_subnet_cidr = 127.200.{octet}.0/24\n"
              f"default_subnet_pool_start = 127.200.{octet}.1\n"
              f"default_subnet_pool_end = 127.200.{octet}.254\n")
    args = ["--mode", "local" if mode == "local" else "namespace", "--run-dir", str(tmp / "run"),
            "--http-port", "8080", "--https-port", "8443", "--tcp-port", "9000"]
    if mode == "active-standby":
        args += ["--topology", "ACTIVE_STANDBY"]
    if mode != "local":
        config += "[haproxy_amphora]\nplacement = namespace\n"
        choices = [n for n in range(170, 200)
                   if not _routed(ipaddress.IPv4Network(f"198.18.{n}.0/24"))]
        if not choices:
            pytest.skip("every 198.18.170-199.0/24 is routed here already")
        subnet = ipaddress.IPv4Network(f"198.18.{r.choice(choices)}.0/24")
        webs = (str(subnet.network_address + 11), str(subnet.network_address + 12))
        prefix = f"lbw{r.randrange(16 ** 4):04x}-"
        args += ["--subnet-range", str(subnet), "--host-prefix", prefix]
    else:
        webs = (f"127.201.{octet}.11", f"127.201.{octet}.12")
        prefix = ""
    args += ["--web1", webs[0], "--web2", webs[1]]
    the_run = Run(mode, tmp / "state", webs, host_prefix=prefix)
    serve = Serve(the_run.state_dir, config=config, provider="haproxy")
    args += ["--os-endpoint", serve.url]
    try:
        serve.start()
        proc = subprocess.run([sys.executable, str(WALKTHROUGH), *args], capture_output=True,
                              text=True, timeout=600, cwd=REPO)
        the_run.output = proc.stdout + proc.stderr
        the_run.returncode = proc.returncode
        if m := re.search(r"load balancer lber: id (\S+), VIP (\S+)", the_run.output):
            the_run.lb_id, the_run.vip = m.group(1), m.group(2)
        if m := re.search(r"^bridge (lbr-\w+):", the_run.output, re.M):
            the_run.bridge = m.group(1)
        _collect_leftovers(the_run, serve)
        yield the_run
    finally:
        serve.stop()
        _force_clean(the_run)
        shutil.rmtree(tmp, ignore_errors=True)


def test_requests_to_the_vip_alternate_web1_web2(run: Run) -> None:
    served = run.served(run.section("alternate between web1 and web2"))
    assert len(served) == 4, run.output
    assert set(served) == {"web1", "web2"}, run.output
    assert all(a != b for a, b in itertools.pairwise(served)), served


def test_https_passthrough_and_tcp_reach_both_backends(run: Run) -> None:
    https = run.served(run.section("lber-https"), "https")
    tcp = run.served(run.section("lber-tcp"), "tcp")
    assert set(https) == {"web1", "web2"}, run.output
    assert set(tcp) == {"web1", "web2"}, run.output
    assert all(a != b for a, b in itertools.pairwise(tcp)), tcp


def test_terminated_https_serves_each_name_its_certificate(run: Run) -> None:
    section = run.section("lber-terminated")
    for name in ("www.lber.example", "api.lber.example"):
        assert f"--resolve {name}:8444:{run.vip}" in section, section
        assert f"CHECK ok: {name} gets its own certificate" in section, section
    assert "CHECK ok: a client without SNI gets the default certificate" in section, section


def test_web1_answers_alone_while_web2_is_down(run: Run) -> None:
    served = run.served(run.section("Stop web2"))
    assert len(served) == 8, run.output
    assert set(served) == {"web1"}, run.output


def test_the_status_tree_turns_degraded(run: Run) -> None:
    """Needs the health manager: operating statuses come from HAProxy's checks."""
    health = run.section("Health")
    assert "CHECK ok: lber operating_status is ONLINE" in health, health
    down = run.section("Stop web2")
    assert "CHECK ok: lber operating_status is DEGRADED" in down, down
    tree = json.loads(down[down.index("\n{") + 1:down.index("\n}\n") + 2])
    lb = tree["loadbalancer"]
    assert lb["operating_status"] == "DEGRADED"
    members = [m for li in lb["listeners"] for p in li["pools"] for m in p["members"]]
    assert len(members) == 8  # the HTTP pool serves lber-http and lber-terminated
    assert {m["operating_status"] for m in members if m["name"] == "web1"} == {"ONLINE"}
    assert {m["operating_status"] for m in members if m["name"] == "web2"} <= {"ERROR",
                                                                               "OFFLINE"}


def test_loadbalancer_stats_count_the_bytes(run: Run) -> None:
    """Needs the health manager: it adds HAProxy's counters up. The CHECK line reads the
    counters printed above it, not another poll's."""
    stats = run.section("Traffic statistics")
    shown, check = stats.split("CHECK", 1)
    pattern = r"(bytes_in|bytes_out|total_connections)\W+(\d+)"
    values = {m.group(1): int(m.group(2)) for m in re.finditer(pattern, shown)}
    assert values.get("bytes_in", 0) > 0, stats
    assert values.get("bytes_out", 0) > 0, stats
    assert values.get("total_connections", 0) > 0, stats
    checked = {m.group(1): int(m.group(2))
               for m in re.finditer(pattern, check.split("\n", 1)[0])}
    assert checked == values, stats


def test_cascade_delete_leaves_nothing_behind(run: Run) -> None:
    assert "lbaas loadbalancer delete lber --cascade --wait" in run.output
    assert run.leftovers == {}, run.leftovers
    if run.mode == "namespace":
        assert f"CHECK ok: namespace qlbaas-{run.lb_id} is gone" in run.output
    if run.mode == "active-standby":
        assert len(run.amphora_namespaces) == 4, run.output  # two, then two new ones
        assert "CHECK ok: the amphorae's namespaces are gone" in run.output


def test_active_standby_lists_its_amphorae_and_fails_over_without_a_failed_request(
        run: Run) -> None:
    if run.mode != "active-standby":
        pytest.skip("ACTIVE_STANDBY only")
    shown = run.section("Two amphorae")
    assert "$ lbaas amphora list --loadbalancer lber" in shown, shown
    assert "CHECK ok: one MASTER and one BACKUP" in shown, shown
    failover = run.section("Failover")
    assert "$ lbaas loadbalancer failover lber --wait" in failover, failover
    assert "CHECK ok: two new amphorae took the place of the old ones" in failover, failover
    assert re.search(r"CHECK ok: every request during the failover was answered \(\d+\)",
                     failover), failover


def test_every_check_passes(run: Run) -> None:
    assert run.returncode == 0, run.output
    assert re.search(r"walkthrough: all \d+ checks passed", run.output), run.output


# -- the README's quick start ---------------------------------------------------------------

@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "lbaas").exists(),
                    reason="scripts/quickstart runs .venv/bin/lbaas (scripts/setup makes it)")
@pytest.mark.timed  # processes gone 10 s after scripts/stop (failed once beside other tests)
def test_quickstart_then_stop() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lbq-", dir="/tmp"))
    state = tmp / "state"
    octet = random.randrange(256)
    config = tmp / "lbaas.conf"
    config.write_text(f"[networking]\ndefault_subnet_cidr = 127.202.{octet}.0/24\n"
                      f"default_subnet_pool_start = 127.202.{octet}.1\n"
                      f"default_subnet_pool_end = 127.202.{octet}.254\n")
    webs = (f"127.203.{octet}.11", f"127.203.{octet}.12")
    port = free_port()
    env = {**os.environ, "LBAAS_QUICKSTART_SKIP_SETUP": "1"}
    try:
        proc = subprocess.run(
            [str(REPO / "scripts" / "quickstart"), "--port", str(port), "--state-dir",
             str(state), "--config-file", str(config), "--", "--web1", webs[0], "--web2",
             webs[1]], capture_output=True, text=True, timeout=600, env=env)
        out = proc.stdout + proc.stderr
        m = re.search(r"carries traffic on its VIP (\S+)\.", out)
        assert m, out
        vip = m.group(1)
        assert vip.startswith(f"127.202.{octet}.")
        assert f"curl http://{vip}:8080/" in out
        assert f"scripts/stop --state-dir {state}" in out
        serve_pid = int((state / "quickstart" / "serve.pid").read_text())
        assert _alive(serve_pid)
        with socket.create_connection((vip, 8080), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert b"Welcome to web" in s.recv(4096)
        assert len(backend_pids(webs)) == 2
        assert haproxy_pids(state)

        stop = subprocess.run([str(REPO / "scripts" / "stop"), "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                _alive(serve_pid) or haproxy_pids(state) or backend_pids(webs)):
            time.sleep(0.1)
        assert not _alive(serve_pid)
        assert haproxy_pids(state) == []
        assert backend_pids(webs) == []
        assert (state / "lbaas.sqlite").exists()  # the state stays

        purge = subprocess.run([str(REPO / "scripts" / "stop"), "--state-dir", str(state),
                                "--purge"], capture_output=True, text=True, timeout=60)
        assert purge.returncode == 0, purge.stdout + purge.stderr
        assert not state.exists()
    finally:
        pid_file = state / "quickstart" / "serve.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            if "lbaas serve" in _cmdline(pid):
                _kill([pid])
        _kill(haproxy_pids(state) + backend_pids(webs))
        shutil.rmtree(tmp, ignore_errors=True)


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LBAAS_QUICKSTART_SKIP_SETUP": "1"}
    return subprocess.run([str(REPO / "scripts" / name), *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_stop_stops_an_lbaas_serve_started_by_hand() -> None:
    """Its supervision would restart the HAProxy processes scripts/stop stops."""
    tmp = Path(tempfile.mkdtemp(prefix="lbs-", dir="/tmp"))
    state = tmp / "state"
    octet = random.randrange(256)
    serve = Serve(state, provider="haproxy", config=(
        f"[networking]\ndefault_subnet_cidr = 127.205.{octet}.0/24\n"
        f"default_subnet_pool_start = 127.205.{octet}.1\n"
        f"default_subnet_pool_end = 127.205.{octet}.254\n"
        "[haproxy_amphora]\nsupervise_interval = 0.5\n"))
    try:
        serve.start()
        with serve.client() as c:
            lb = c.post("/loadbalancers", json={"loadbalancer": {"listeners": [
                {"protocol": "TCP", "protocol_port": free_port()}]}}).json()["loadbalancer"]
            deadline = time.monotonic() + 60
            while c.get(f"/loadbalancers/{lb['id']}").json()["loadbalancer"][
                    "provisioning_status"] != "ACTIVE":
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert haproxy_pids(state)
        assert serve.proc is not None
        stop = _script("stop", "--state-dir", str(state))
        out = stop.stdout + stop.stderr
        assert stop.returncode == 0, out
        assert f"stopped lbaas serve (pid {serve.proc.pid}, started by hand" in out, out
        assert serve.proc.poll() is not None, out
        time.sleep(2)  # four supervision intervals: nothing brings HAProxy back
        assert haproxy_pids(state) == [], out
    finally:
        serve.stop()
        _kill(haproxy_pids(state))
        shutil.rmtree(tmp, ignore_errors=True)


def test_quickstart_refuses_a_service_that_is_not_its_own() -> None:
    """Another clone's service (another state directory) on the port, or another port's
    service on the state directory: the quick start stops, naming it, with the options
    to run beside it; it creates nothing."""
    tmp = Path(tempfile.mkdtemp(prefix="lbq-", dir="/tmp"))
    serve = Serve(tmp / "theirs")
    try:
        serve.start()
        assert serve.proc is not None
        other_port = _script("quickstart", "--port", str(serve.port), "--state-dir",
                             str(tmp / "mine"))
        out = other_port.stdout + other_port.stderr
        assert other_port.returncode == 1, out
        assert f"lbaas serve (pid {serve.proc.pid}" in out, out
        assert "scripts/quickstart --port " in out and "--state-dir " in out, out
        other_dir = _script("quickstart", "--port", str(free_port()), "--state-dir",
                            str(tmp / "theirs"))
        out = other_dir.stdout + other_dir.stderr
        assert other_dir.returncode == 1, out
        assert f"lbaas serve (pid {serve.proc.pid}) already uses the state directory" in out
        with serve.client() as c:
            assert c.get("/loadbalancers").json()["loadbalancers"] == []
        assert not (tmp / "mine" / "quickstart" / "serve.pid").exists()
    finally:
        serve.stop()
        shutil.rmtree(tmp, ignore_errors=True)
