"""Data-plane hosts on one machine: each ``lbaas agent serve`` in a network namespace of
its own, acting as a host (issue 12's three-host layout, for e2e tests and benches).

::

    this machine's namespace (the control planes: lbaas serve, PostgreSQL)
    ───────────────────────────────────────────────────────────────────────
    lbr-<mgmt>    management bridge, 198.18.<m>.1/24
      ├── lbt-<rnd> ══ veth ══ veth0 198.18.<m>.1<i>       ─┐ namespace lbaas-test-agent-<i>-<rnd>
    lbr-<subnet>  the VIP subnet's wire, .254/24            │   (the host): lbaas agent serve,
      ├── lbt-<tag>u<i> ══ veth ══ uplink0 ─ lbr-<subnet> ──┘   its bridge of the VIP subnet
      └── backends and clients (NetnsHost)                      (gateway .1, as the namespace
                                                                placement makes it)

Each agent also has a mount namespace of its own with a private
``/run/netns``: the namespaces it makes for load balancers
(``qlbaas-<id>``, ``amphora-<id>``) are its host's alone, as on separate
machines (the same load balancer's namespace on two hosts does not meet),
and they vanish with the last process of that mount namespace. A host
"dies" (:meth:`AgentHost.kill`) when its links are cut and every process
of it (agent, HAProxy, keepalived) is killed.

The hosts' bridges of the VIP subnet are joined by the machine's wire
(``lbr-<subnet>`` here, with address .254, not the gateway), so a VIP that
moves to another host stays on one L2 segment, and keepalived's VRRP
between two hosts' amphorae crosses it. Each host's bridge holds the
gateway address with the same MAC (the namespace placement derives it from
the subnet): like a distributed router, every host answers for the gateway
itself.

Every address is in the test's own subnets of 198.18.0.0/15; everything is
removed on exit (processes by PID, veths, namespaces, bridges).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pyroute2 import IPRoute

from lbaas.agent import pki
from lbaas.dataplane import netns
from tests.support.netns_hosts import TEST_VETH_PREFIX, NetnsHost, Subnet, routed, subnet_bridge

AGENT_PORT = 9443
# The agent in its host: its own mount namespace with a private /run/netns.
_PRIVATE_NETNS = 'mount -t tmpfs lbaas-netns /run/netns && exec "$@"'
_ENSURE_BRIDGE = ("import sys; from lbaas.dataplane import netns; "
                  "netns.ensure_bridge(netns.SubnetPlan.of(*sys.argv[1:4]))")


def _mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


@dataclass
class AgentHost:
    """Host ``name`` (the agent's ``[DEFAULT] host`` and certificate's common name): a
    :class:`NetnsHost` on the management network, its agent's API at
    ``https://<address>:9443``."""

    name: str
    node: NetnsHost
    base: Path
    links: list[str] = field(default_factory=list)  # our ends of its veths
    proc: subprocess.Popen[bytes] | None = None
    mount_ns: str | None = None

    @property
    def namespace(self) -> str:
        return self.node.namespace

    @property
    def address(self) -> str:
        return self.node.address

    @property
    def endpoint(self) -> str:
        return f"https://{self.address}:{AGENT_PORT}"

    @property
    def state_dir(self) -> Path:
        return self.base / self.name

    @property
    def log(self) -> Path:
        return self.base / f"agent-{self.name}.log"

    def write_config(self, ca_dir: Path, extra: str = "") -> Path:
        config = self.base / f"{self.name}.conf"
        config.write_text(
            f"[DEFAULT]\nhost = {self.name}\n[amphora_agent]\nbind_host = {self.address}\n"
            f"bind_port = {AGENT_PORT}\nagent_server_cert = {ca_dir / (self.name + '.pem')}\n"
            f"agent_server_ca = {ca_dir / pki.CA_CERT}\n"
            "[haproxy_amphora]\nplacement = namespace\nsupervise_interval = 0.5\n" + extra)
        return config

    def start(self, config: Path) -> None:
        """Start ``lbaas agent serve`` inside the host, with its own ``/run/netns``."""
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={netns.namespace_path(self.namespace)}", "--",
             "unshare", "--mount", "--propagation", "private", "--",
             "sh", "-c", _PRIVATE_NETNS, "sh",
             sys.executable, "-m", "lbaas", "agent", "serve", "--config-file", str(config),
             "--state-dir", str(self.state_dir)],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait(self, tls: ssl.SSLContext, timeout: float = 90.0) -> None:
        """Wait until the agent answers a heartbeat (from this machine, over mgmt)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.endpoint + "/v1/heartbeat", verify=tls,
                             timeout=2).status_code == 200:
                    self.mount_ns = _mount_ns(self.proc.pid)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"agent {self.name} did not answer: {self.log.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        """Every process of this host: those in its mount namespace (its agent, and the
        HAProxy, keepalived and arping processes the agent started)."""
        if self.mount_ns is None:
            return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _mount_ns(int(entry)) == self.mount_ns:
                found.append(int(entry))
        return found

    def cut(self) -> None:
        """Unplug the host: its veths are deleted (both ends)."""
        with IPRoute() as ipr:
            for link in self.links:
                idx = ipr.link_lookup(ifname=link)
                if idx:
                    ipr.link("del", index=idx[0])
        self.links.clear()

    def kill(self) -> None:
        """The host dies: unplugged, then every process of it SIGKILLed."""
        self.cut()
        self._kill_all()

    def _kill_all(self) -> None:
        for _ in range(3):  # a process may start another while we kill
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the agent (SIGTERM), then every process left in the host (the data plane
        outlives the agent: stopped here), then its links and namespace."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        self._kill_all()
        self.cut()
        self.node.close()


class AgentHosts:
    """``count`` hosts on management subnet 198.18.<mgmt>.0/24 (agent-1 at .11, ...).

    :meth:`plug` joins them to a VIP subnet once the control plane has made
    it (its bridge name comes from the subnet's id).
    """

    def __init__(self, base: Path, count: int, mgmt: int) -> None:
        self.base = base
        self.count = count
        self.tag = secrets.token_hex(4)
        self._stack = contextlib.ExitStack()
        self._mgmt = mgmt
        self.hosts: list[AgentHost] = []
        self.wire: Subnet | None = None

    def __enter__(self) -> AgentHosts:
        try:
            mgmt = self._stack.enter_context(subnet_bridge(self._mgmt))
            for i in range(1, self.count + 1):
                node = NetnsHost(mgmt, f"agent-{i}", mgmt.host(10 + i))
                self.hosts.append(AgentHost(f"agent-{i}", node, self.base))
                node.start()
                self.hosts[-1].links.append(node.veth)
                with IPRoute(netns=node.namespace, flags=0) as ns:  # the agent talks to
                    ns.route("del", dst="0.0.0.0/0")  # its subnets only, nothing beyond
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def issue_certificates(self, ca_dir: Path) -> None:
        """The controller's certificate and each host's (for its management address)."""
        pki.issue(ca_dir, "controller")
        for host in self.hosts:
            pki.issue(ca_dir, host.name, (host.address,))

    def start(self, ca_dir: Path, tls: ssl.SSLContext, extra: str = "") -> None:
        """Start every agent and wait until each answers."""
        for host in self.hosts:
            host.state_dir.mkdir(parents=True, exist_ok=True)
            host.start(host.write_config(ca_dir, extra))
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            list(pool.map(lambda h: h.wait(tls), self.hosts))

    def plug(self, subnet: Subnet) -> None:
        """Join every host to ``subnet``: the machine's wire (a bridge named as the
        subnet's, address .254), each host's bridge of it (made as the agent makes it)
        and a veth between the two."""
        if (route := routed(subnet.network)) is not None:
            raise RuntimeError(f"{subnet.network} is already routed on this host ({route})")
        with IPRoute() as ipr:
            ipr.link("add", ifname=subnet.bridge, kind="bridge")
            self.wire = subnet
            idx = ipr.link_lookup(ifname=subnet.bridge)[0]
            ipr.addr("add", index=idx, address=subnet.host(254),
                     prefixlen=subnet.network.prefixlen)
            ipr.link("set", index=idx, state="up")
        for i, host in enumerate(self.hosts, 1):
            netns.run_in_namespace(host.namespace, [
                sys.executable, "-c", _ENSURE_BRIDGE, subnet.subnet_id, str(subnet.network),
                subnet.gateway], check=True, timeout=60)
            ours = f"{TEST_VETH_PREFIX}{self.tag}u{i}"
            with IPRoute() as ipr:
                ipr.link("add", ifname=ours, kind="veth",
                         peer={"ifname": "uplink0", "net_ns_fd": host.namespace})
                ipr.link("set", index=ipr.link_lookup(ifname=ours)[0],
                         master=ipr.link_lookup(ifname=subnet.bridge)[0], state="up")
            host.links.append(ours)
            with IPRoute(netns=host.namespace, flags=0) as ns:
                idx = ns.link_lookup(ifname="uplink0")[0]
                ns.link("set", index=idx, master=ns.link_lookup(ifname=subnet.bridge)[0],
                        state="up")

    def close(self) -> None:
        """Stop every host and delete what was made. Idempotent."""
        with ThreadPoolExecutor(max(1, len(self.hosts))) as pool:
            list(pool.map(AgentHost.stop, self.hosts))
        if self.wire is not None:
            netns.delete_bridge(self.wire.bridge, only_if_unused=False)
            self.wire = None
        self._stack.close()
