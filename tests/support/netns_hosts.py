"""Test subnets and "hosts" in network namespaces, as on a neutron-lbaas network node.

A :class:`Subnet` is a Linux bridge for a subnet of 198.18.0.0/15 (RFC
2544's benchmarking range, routed nowhere on a normal host) holding the
subnet's gateway address, exactly the bridge
:class:`lbaas.dataplane.netns.NamespacePlacement` would make for that
subnet, so load balancers prepared on it and test hosts share one L2
segment. A :class:`NetnsHost` is a namespace plugged into that bridge with
a veth, an address and a default route via the gateway; it runs processes
(backends, clients) inside.

Both are context managers and remove everything they made on exit: their
processes (by PID), veths, namespaces and the bridge. Every address involved
lives on the test's own bridge and namespaces::

    with subnet_bridge(201) as subnet, NetnsHost(subnet, "web1", subnet.host(11)) as web1:
        web1.serve_http(8080, "web1")
        assert http_get_in_namespace(web1.namespace, f"http://{web1.address}:8080/")[0] == 200
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import os
import secrets
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute

from lbaas.dataplane import netns
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec, VipSpec, VrrpSpec

TEST_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
TEST_NAMESPACE_PREFIX = "lbaas-test-"
TEST_VETH_PREFIX = "lbt-"

# A tiny HTTP responder (stdlib only): answers every GET with
# "Welcome to <name>" and prints "ready" once it listens, so a caller can wait
# for it without sending traffic (the address may not be reachable yet).
# Not http.server.HTTPServer: its server_bind() calls socket.getfqdn(), a
# reverse DNS query that, from inside a namespace, goes to the host's
# resolver (traffic to an address not ours) and hangs until it times out.
RESPONDER = r"""
import http.server, socketserver, sys
addr, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("Welcome to %s\n" % name).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
server = Server((addr, port), Handler)
print("ready", flush=True)
server.serve_forever()
"""

# An HTTP GET from wherever it runs (inside a namespace): prints the status
# and the body, or "000 <error>" if the request failed.
FETCH = r"""
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as r:
        print(r.status, r.read().decode(), end="")
except Exception as e:
    status = getattr(e, "code", 0)
    print("%03d %s" % (status, e), end="")
"""


# A client that sends requests continuously from wherever it runs (inside a
# namespace), each on a new connection: GET <url> with a <timeout> (seconds),
# a new request every <interval> seconds, for at most <seconds> or until
# SIGTERM. Prints one line per request: "<start> <end> <status> <body or error>"
# (monotonic seconds of this machine, as the test's time.monotonic()); an error
# is "connect:<exception>" if the connection could not be opened, else
# "request:<exception>" (opened, then reset or timed out).
PROBE = r"""
import signal, socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
timeout, interval, seconds = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()
end = time.monotonic() + seconds
print("ready", flush=True)
while not stop and time.monotonic() < end:
    start = time.monotonic()
    phase = "connect"
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            phase = "request"
            s.settimeout(timeout)
            s.sendall(request)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        text = body.decode(errors="replace").strip().replace(" ", "_") or "-"
    except OSError as e:
        status, text = 0, "%s:%s" % (phase, type(e).__name__)
    print("%.4f %.4f %d %s" % (start, time.monotonic(), status, text), flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - start)))
"""


@dataclass(frozen=True)
class ProbeResult:
    """One request of :data:`PROBE`: times in monotonic seconds, status 0 if it failed."""

    start: float
    end: float
    status: int
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 200


class Probe:
    """:data:`PROBE` running in ``host`` against ``url``-like ``address:port``; stop()
    returns every request it made."""

    def __init__(self, host: NetnsHost, address: str, port: int = 80, path: str = "/",
                 timeout: float = 0.5, interval: float = 0.02, seconds: float = 120.0) -> None:
        self.proc = host.popen([sys.executable, "-I", "-c", PROBE, address, str(port), path,
                                str(timeout), str(interval), str(seconds)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wait_ready(self.proc)

    def stop(self) -> list[ProbeResult]:
        """Stop the client (SIGTERM: it finishes the request in flight) and parse its lines."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        results = []
        for line in out.decode().splitlines():
            start, end, status, text = line.split(" ", 3)
            results.append(ProbeResult(float(start), float(end), int(status), text))
        return results


def longest_gap(results: Sequence[ProbeResult], after: float | None = None) -> float:
    """The longest time between two answered requests (end of the last answered one to
    the end of the next answered one), counting only gaps that end after ``after``."""
    answered = [r.end for r in results if r.ok]
    gaps = [b - a for a, b in itertools.pairwise(answered)
            if after is None or b > after]
    return max(gaps, default=0.0)


def responder_argv(address: str, port: int, name: str) -> list[str]:
    """argv of :data:`RESPONDER` listening on ``address:port`` and answering "Welcome to name"."""
    return [sys.executable, "-I", "-c", RESPONDER, address, str(port), name]


def wait_ready(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Wait for a :data:`RESPONDER` started with ``stdout=PIPE`` to print "ready"."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while b"ready" not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError("responder did not get ready")
        chunk = os.read(fd, 256)
        if not chunk:
            raise RuntimeError(f"responder exited with {proc.wait()}")
        seen += chunk


def http_get_in_namespace(namespace: str, url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET ``url`` from inside ``namespace``: (status, body); status 0 if it failed."""
    out = netns.run_in_namespace(namespace, [sys.executable, "-I", "-c", FETCH, url, str(timeout)],
                                 timeout=timeout + 10, capture_output=True, text=True).stdout
    status, _, body = out.partition(" ")
    return int(status or 0), body


def wait_tcp(address: str, port: int, timeout: float = 10.0) -> None:
    """Wait until ``address:port`` accepts a TCP connection from the host's namespace."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL after ``timeout`` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def routed(network: ipaddress.IPv4Network) -> str | None:
    """The host's route overlapping ``network`` (``dst/plen``; the default route aside),
    or None."""
    with IPRoute() as ipr:
        for route in ipr.route("dump", family=socket.AF_INET):
            dst, plen = route.get("RTA_DST"), route["dst_len"]
            if dst is None or plen == 0:
                continue  # the default route (eth0's) is not ours to judge
            if ipaddress.ip_network(f"{dst}/{plen}", strict=False).overlaps(network):
                return f"{dst}/{plen}"
    return None


def _check_unrouted(network: ipaddress.IPv4Network) -> None:
    """Refuse a subnet the host already routes (another test's, or anything real)."""
    if (route := routed(network)) is not None:
        raise RuntimeError(f"{network} is already routed on this host ({route}); "
                           "another test is using it")


@dataclass(frozen=True)
class Subnet:
    """A test subnet: id, CIDR, gateway (``.1``, on the bridge) and the bridge's name."""

    subnet_id: str
    network: ipaddress.IPv4Network
    gateway: str

    @property
    def bridge(self) -> str:
        return netns.bridge_name(self.subnet_id)

    @property
    def plan(self) -> netns.SubnetPlan:
        return netns.SubnetPlan.of(self.subnet_id, str(self.network), self.gateway)

    def host(self, n: int) -> str:
        """The ``n``-th address of the subnet (``host(10)`` is 198.18.x.10)."""
        return str(self.network.network_address + n)

    def vip(self, n: int) -> VipSpec:
        """A VIP at ``host(n)`` on this subnet."""
        return VipSpec(address=self.host(n), subnet_id=self.subnet_id,
                       subnet_cidr=str(self.network), gateway_ip=self.gateway)

    def load_balancer(self, n: int, lb_id: str | None = None) -> LoadBalancerSpec:
        """A load balancer spec (no listeners) with its VIP at ``host(n)``."""
        return LoadBalancerSpec(id=lb_id or str(uuid.uuid4()), project_id="test",
                                vip=self.vip(n))

    def active_standby(self, lb: LoadBalancerSpec, master: int, backup: int,
                       advert_int: float = 0.5) -> LoadBalancerSpec:
        """``lb`` (its VIP on this subnet) as ACTIVE_STANDBY: new amphorae at ``host(master)``
        (built for MASTER, priority 100) and ``host(backup)`` (BACKUP, 90)."""
        return dataclasses.replace(
            lb, topology="ACTIVE_STANDBY",
            amphorae=(AmphoraSpec(id=str(uuid.uuid4()), role="MASTER",
                                  vrrp_ip=self.host(master), vrrp_priority=100),
                      AmphoraSpec(id=str(uuid.uuid4()), role="BACKUP",
                                  vrrp_ip=self.host(backup), vrrp_priority=90)),
            vrrp=VrrpSpec(vrrp_id=1, auth_pass=secrets.token_hex(4), advert_int=advert_int))


@contextmanager
def subnet_bridge(n: int) -> Iterator[Subnet]:
    """198.18.<n>.0/24 with its bridge (gateway 198.18.<n>.1) for the test's duration.

    Use a different ``n`` per test so that tests running in parallel do not
    meet; raises RuntimeError if the host already routes that subnet. The
    bridge is deleted on exit, whatever is still plugged into it.
    """
    if not 0 <= n <= 255:
        raise ValueError("n must be 0..255 (198.18.<n>.0/24)")
    network = ipaddress.IPv4Network(f"198.18.{n}.0/24")
    assert network.subnet_of(TEST_RANGE)
    _check_unrouted(network)
    subnet = Subnet(str(uuid.uuid4()), network, str(network.network_address + 1))
    try:
        netns.ensure_bridge(subnet.plan)
        yield subnet
    finally:
        netns.delete_bridge(subnet.bridge, only_if_unused=False)


@dataclass
class NetnsHost:
    """A host on a test subnet: namespace ``lbaas-test-<name>-<random>``, veth into the bridge.

    Inside: ``veth0`` with ``address``/prefix, ``lo`` up, default route via
    the gateway. The host end ``lbt-<random>`` is a port of the bridge.
    Processes started with :meth:`popen` / :meth:`serve_http` are stopped by
    PID on exit.
    """

    subnet: Subnet
    name: str
    address: str
    namespace: str = field(init=False)
    veth: str = field(init=False)
    procs: list[subprocess.Popen[Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        tag = secrets.token_hex(4)
        self.namespace = f"{TEST_NAMESPACE_PREFIX}{self.name}-{tag}"
        self.veth = f"{TEST_VETH_PREFIX}{tag}"
        if ipaddress.ip_address(self.address) not in self.subnet.network:
            raise ValueError(f"{self.address} is not in {self.subnet.network}")

    def __enter__(self) -> NetnsHost:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Create the namespace and plug it into the subnet's bridge."""
        netns.ensure_namespace(self.namespace)
        with IPRoute() as ipr:
            bridge = ipr.link_lookup(ifname=self.subnet.bridge)[0]
            ipr.link("add", ifname=self.veth, kind="veth",
                     peer={"ifname": "veth0", "net_ns_fd": self.namespace})
            idx = ipr.link_lookup(ifname=self.veth)[0]
            ipr.link("set", index=idx, master=bridge, state="up")
        with IPRoute(netns=self.namespace, flags=0) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            idx = ns.link_lookup(ifname="veth0")[0]
            ns.link("set", index=idx, state="up")
            ns.addr("add", index=idx, address=self.address,
                    prefixlen=self.subnet.network.prefixlen)
            ns.route("add", dst="0.0.0.0/0", gateway=self.subnet.gateway)

    def popen(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside this host (stopped on exit); kwargs go to Popen."""
        proc = netns.popen_in_namespace(self.namespace, argv, **popen_kwargs)
        self.procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside this host to completion (see ``netns.run_in_namespace``)."""
        return netns.run_in_namespace(self.namespace, argv, **kwargs)

    def serve_http(self, port: int, name: str, timeout: float = 10.0) -> subprocess.Popen[Any]:
        """Serve HTTP on ``address:port`` ("Welcome to <name>"); returns once it listens.

        The server is :mod:`lbaas.testing.backend` (the shared real backend).
        """
        proc = self.popen([sys.executable, "-m", "lbaas.testing.backend", "--host", self.address,
                           "--port", str(port), "--name", name], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        # This host's address is on the test's bridge, so the host may probe it.
        wait_tcp(self.address, port, timeout)
        return proc

    def get(self, url: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET ``url`` from inside this host: (status, body), status 0 on failure."""
        return http_get_in_namespace(self.namespace, url, timeout)

    def close(self) -> None:
        """Stop our processes (by PID), delete the veth and the namespace. Idempotent."""
        for proc in self.procs:
            stop_process(proc)
        self.procs.clear()
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=self.veth)
            if idx:
                ipr.link("del", index=idx[0])
        netns.remove_namespace(self.namespace)
