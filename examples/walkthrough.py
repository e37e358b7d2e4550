#!/usr/bin/env python3
"""The classic LBaaS v2 walkthrough, on real backends, with the ``lbaas`` CLI.

The scenario of the neutron-lbaas and Octavia guides, run against a live
``lbaas serve`` (haproxy provider): every ``lbaas ...`` command is printed
before it runs, with its output, so that reading the output teaches the CLI.

1. start two backend servers, web1 and web2, each answering HTTP, HTTPS and
   raw TCP with "Welcome to <name>";
2. create load balancer ``lber`` with a VIP on the default subnet;
3. listener ``lber-http`` (HTTP), a ROUND_ROBIN pool with both members and an
   HTTP health monitor (delay 5, max-retries 2, timeout 10, on ``/``);
   successive requests to the VIP alternate web1 / web2;
4. listener ``lber-https`` (HTTPS pass-through: TLS ends on the backends),
   LEAST_CONNECTIONS, TLS-HELLO monitor;
5. listener ``lber-tcp`` (TCP) over the backends' TCP service, TCP monitor;
5b. listener ``lber-terminated`` (TERMINATED_HTTPS): the walkthrough makes a
   CA and certificates for ``www.<name>.example`` (default) and
   ``api.<name>.example`` (SNI), stores them with ``lbaas secret
   store-certificate``, and ``curl --resolve`` to each name shows its
   certificate; HTTP to the backends' pool behind it;
6. stop web2: requests keep being answered by web1 and the status tree turns
   DEGRADED;
7. ``lbaas loadbalancer stats`` shows the bytes that went through;
8. clean up with a cascade delete (unless ``--keep``).

Two modes:

- ``--mode local`` (default): what ``lbaas serve`` does out of the box; the
  backends listen on loopback addresses (127.0.0.11 and 127.0.0.12) and the
  VIP comes from the default subnet ``lb-vip-subnet`` (127.0.0.0/8).
- ``--mode namespace`` (root; the service runs with ``[haproxy_amphora]
  placement = namespace``): the layout of a neutron-lbaas network node. The
  walkthrough creates a network and a subnet of 198.18.0.0/15 through the
  API, the subnet's bridge holds the gateway address, each backend is a host
  in its own network namespace plugged into that bridge, and the VIP lives in
  ``qlbaas-<lb_id>``. Every namespace, veth and the bridge are removed at the
  end.

With ``--topology ACTIVE_STANDBY`` (namespace mode) the load balancer is made
with a flavor whose profile says ``{"loadbalancer_topology":
"ACTIVE_STANDBY"}``: two amphorae, each in its namespace ``amphora-<id>``
with its own address on the subnet, keepalived giving the VIP to one.
``lbaas amphora list`` shows them (MASTER and BACKUP), and a load balancer
failover rebuilds them one at a time while requests keep being answered.

Lines starting with ``CHECK`` say whether what was shown is what the scenario
expects; the exit status is 1 if any check failed.

Usage (from the repository; it re-executes itself with ``.venv/bin/python``)::

    examples/walkthrough.py [--os-endpoint URL] [--mode local|namespace] [--keep]
    examples/walkthrough.py --cleanup          # remove what a --keep run left

Every address it sends traffic to is on 127.0.0.0/8 or on the subnet and
namespaces it creates itself; it stops only processes it started, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import importlib.util
import ipaddress
import itertools
import json
import os
import select
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ENDPOINT = "http://127.0.0.1:9876"
DEFAULT_SUBNET_RANGE = "198.18.100.0/24"
TEST_RANGE = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544: routed nowhere
BACKEND_MODULE = "lbaas.testing.backend"
WEBS = ("web1", "web2")


class Abort(Exception):
    """A step failed in a way the walkthrough cannot go on from."""


# -- printing and running commands -------------------------------------------------

@dataclass
class Tutorial:
    """Prints sections and commands, runs ``lbaas``, records checks."""

    endpoint: str
    failures: list[str] = field(default_factory=list)
    checks: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        here = Path(sys.executable).with_name("lbaas")
        found = shutil.which("lbaas")
        self.argv = [str(here)] if here.exists() else [found] if found else \
            [sys.executable, "-m", "lbaas"]
        self.env = {**os.environ, "LBAAS_URL": self.endpoint}
        # lbaas's output is captured, then printed here: tables fit this terminal, and are
        # whole when this output goes to a pipe or a file.
        if sys.stdout.isatty():
            self.env["COLUMNS"] = str(shutil.get_terminal_size().columns)

    def section(self, title: str) -> None:
        self.step += 1
        say(f"\n== {self.step}. {title}")

    def lbaas(self, *args: str, show: bool = True) -> str:
        """Run ``lbaas <args>``: printed as typed, with its output (unless ``show`` is False).

        Returns the output; raises :class:`Abort` (after printing the command
        and its error) if the command fails.
        """
        if show:
            say(f"$ lbaas {shlex.join(args)}")
        proc = subprocess.run([*self.argv, *args], env=self.env, capture_output=True,
                              text=True, timeout=600)
        if show and proc.stdout:
            say(proc.stdout.rstrip("\n"))
        if proc.returncode != 0:
            if not show:
                say(f"$ lbaas {shlex.join(args)}")
            say(proc.stderr.rstrip("\n"))
            raise Abort(f"lbaas {shlex.join(args)} failed")
        return proc.stdout

    def value(self, *args: str, show: bool = True) -> str:
        """``lbaas <args> -f value``, stripped (one field: use ``-c``)."""
        return self.lbaas(*args, "-f", "value", show=show).strip()

    def check(self, ok: bool, what: str) -> bool:
        self.checks += 1
        if ok:
            say(f"CHECK ok: {what}")
        else:
            say(f"CHECK FAILED: {what}")
            self.failures.append(what)
        return ok


def say(text: str = "") -> None:
    print(text, flush=True)


# -- traffic -------------------------------------------------------------------------

def http_get(address: str, port: int, tls: bool = False, timeout: float = 5.0) -> str:
    """GET / (over TLS without verifying: the backends' certificates are self-signed).

    Returns the body's first line, or ``error: ...``. No proxy is ever used.
    """
    conn: http.client.HTTPConnection
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(address, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode(errors="replace").strip()
        return body if response.status == 200 else f"HTTP {response.status} {body}"
    except (OSError, http.client.HTTPException) as e:
        return f"error: {e}"
    finally:
        conn.close()


@dataclass(frozen=True)
class TlsAnswer:
    """What an HTTPS request through a TLS-terminating listener showed."""

    subject: str  # the certificate's CN, or "error: ..."
    alpn: str | None
    body: str


def curl_https(host: str | None, port: int, vip: str, ca_file: Path,
               timeout: float = 5.0) -> TlsAnswer:
    """GET https://<host>:<port>/ at ``vip`` (what ``curl --resolve`` does), verifying the
    certificate against ``ca_file`` and the name; ``host`` None sends no SNI."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.set_alpn_protocols(["http/1.1"])
    if host is None:
        ctx.check_hostname = False
    try:
        with socket.create_connection((vip, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as tls:
            peer: Any = tls.getpeercert()
            subject = str(dict(x[0] for x in peer["subject"])["commonName"])
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host or vip}\r\nConnection: close\r\n\r\n"
                        .encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            body = data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
            return TlsAnswer(subject, tls.selected_alpn_protocol(), body)
    except (OSError, ssl.SSLError) as e:
        return TlsAnswer(f"error: {e}", None, "")


def tcp_greeting(address: str, port: int, timeout: float = 5.0) -> str:
    """Connect, read the backend's one-line greeting, close."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace").strip() or "error: closed without a greeting"
    except OSError as e:
        return f"error: {e}"


def requests(kind: str, vip: str, port: int, count: int = 4) -> list[str]:
    """``count`` requests of ``kind`` (http, https, tcp) to the VIP, printed; the answers."""
    url = {"http": f"http://{vip}:{port}/", "https": f"https://{vip}:{port}/",
           "tcp": f"tcp {vip}:{port}"}[kind]
    answers = []
    for _ in range(count):
        if kind == "tcp":
            answer = tcp_greeting(vip, port)
        else:
            answer = http_get(vip, port, tls=kind == "https")
        say(f"{'GET ' if kind != 'tcp' else ''}{url} -> {answer}")
        answers.append(answer)
    return answers


def served_by(answers: list[str]) -> list[str]:
    """``Welcome to web1`` -> ``web1``; anything else is kept as is."""
    return [a.removeprefix("Welcome to ") for a in answers]


def alternate(names: list[str]) -> bool:
    return len(names) >= 2 and set(names) == set(WEBS) and \
        all(a != b for a, b in itertools.pairwise(names))


# -- backends --------------------------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def host_veth(namespace: str) -> str:
    """The host end of a backend host's veth (a port of the bridge): ``lbd-`` + 8 hex digits.

    Derived from the namespace's name, so that a later run finds it again;
    interface names have 15 characters at most.
    """
    return "lbd-" + hashlib.sha256(namespace.encode()).hexdigest()[:8]


@dataclass
class Host:
    """A backend host in namespace mode: ``<prefix><web>`` with ``eth0`` on the subnet's bridge."""

    name: str
    prefix: str
    address: str
    prefixlen: int
    gateway: str
    bridge: str

    @property
    def namespace(self) -> str:
        return f"{self.prefix}{self.name}"

    @property
    def veth(self) -> str:
        return host_veth(self.namespace)

    def create(self) -> None:
        from pyroute2 import IPRoute

        from lbaas.dataplane import netns

        netns.ensure_namespace(self.namespace)
        with IPRoute() as ipr:
            bridge = ipr.link_lookup(ifname=self.bridge)[0]
            ipr.link("add", ifname=self.veth, kind="veth",
                     peer={"ifname": "eth0", "net_ns_fd": self.namespace})
            idx = ipr.link_lookup(ifname=self.veth)[0]
            ipr.link("set", index=idx, master=bridge, state="up")
        with IPRoute(netns=self.namespace, flags=0) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            idx = ns.link_lookup(ifname="eth0")[0]
            ns.link("set", index=idx, state="up")
            ns.addr("add", index=idx, address=self.address, prefixlen=self.prefixlen)
            ns.route("add", dst="0.0.0.0/0", gateway=self.gateway)

    @staticmethod
    def remove(namespace: str) -> bool:
        """Delete namespace ``namespace`` and its veth; True if there was anything."""
        from pyroute2 import IPRoute

        from lbaas.dataplane import netns

        veth = host_veth(namespace)
        found = False
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=veth)
            if idx:
                ipr.link("del", index=idx[0])
                found = True
        if netns.namespace_exists(namespace) or os.path.lexists(netns.namespace_path(namespace)):
            netns.remove_namespace(namespace)
            found = True
        return found


@dataclass
class Backend:
    """One backend process (``python -m lbaas.testing.backend``) serving HTTP, HTTPS and TCP."""

    name: str
    address: str
    ports: tuple[int, int, int]  # http, https (TLS), tcp
    run_dir: Path
    namespace: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def argv(self) -> list[str]:
        http, https, tcp = self.ports
        return [sys.executable, "-m", BACKEND_MODULE, "--name", self.name, "--host", self.address,
                "--port", str(http), "--tls-port", str(https), "--tcp-port", str(tcp)]

    def start(self, timeout: float = 15.0) -> None:
        """Start it (in its own session, so that it may outlive this script) and wait for READY."""
        log = (self.run_dir / f"{self.name}.log").open("ab")
        kwargs: dict[str, Any] = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=log, start_new_session=True)
        try:
            if self.namespace:
                from lbaas.dataplane import netns

                self.proc = netns.popen_in_namespace(self.namespace, self.argv(), **kwargs)
            else:
                self.proc = subprocess.Popen(self.argv(), **kwargs)
        finally:
            log.close()
        self.pid_file.write_text(f"{self.proc.pid}\n")
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        seen = b""
        while b"\n" not in seen:  # "READY <http> <tls> <tcp>\n"
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise Abort(f"{self.name} did not start within {timeout:.0f} s")
            chunk = os.read(fd, 256)
            if not chunk:
                self.stop()
                log_text = (self.run_dir / f"{self.name}.log").read_text(errors="replace")
                raise Abort(f"{self.name} exited: {log_text.strip()[-500:]}")
            seen += chunk
        self.proc.stdout.close()

    def stop(self) -> None:
        """Stop it by its PID (SIGTERM, then SIGKILL) and remove its pid file."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        else:
            stop_pid_file(self.pid_file, self.name)
        self.pid_file.unlink(missing_ok=True)


def stop_pid_file(pid_file: Path, name: str) -> bool:
    """Stop the backend ``name`` whose PID is in ``pid_file``, if that PID is still it.

    A recycled PID is left alone: the process must be ``lbaas.testing.backend
    --name <name>``. Returns True if a process was stopped.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    cmd = _cmdline(pid)
    if BACKEND_MODULE not in cmd or name not in cmd or not _alive(pid):
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


# -- the walkthrough -------------------------------------------------------------------

@dataclass(frozen=True)
class Names:
    """The names of everything the walkthrough creates, from ``--name`` (default lber)."""

    lb: str

    @property
    def http(self) -> str:
        return f"{self.lb}-http"

    @property
    def https(self) -> str:
        return f"{self.lb}-https"

    @property
    def tcp(self) -> str:
        return f"{self.lb}-tcp"

    @property
    def http_pool(self) -> str:
        return f"{self.http}-pool"

    @property
    def terminated(self) -> str:
        return f"{self.lb}-terminated"

    def host(self, label: str) -> str:
        """A TLS server name of the walkthrough: www.lber.example, api.lber.example."""
        return f"{label}.{self.lb}.example"

    def certificate(self, label: str) -> str:
        """The name of the secret holding the certificate of ``host(label)``."""
        return f"{self.lb}-{label}-certificate"

    @property
    def net(self) -> str:
        return f"{self.lb}-net"

    @property
    def subnet(self) -> str:
        return f"{self.lb}-subnet"

    @property
    def flavor(self) -> str:
        return f"{self.lb}-ha"

    @property
    def flavorprofile(self) -> str:
        return f"{self.lb}-ha-profile"


class Walkthrough:
    """The scenario, step by step. ``args`` are the parsed command-line options."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t = Tutorial(args.os_endpoint)
        self.n = Names(args.name)
        self.ports = (args.http_port, args.https_port, args.tcp_port)
        self.run_dir: Path = args.run_dir
        self.backends: dict[str, Backend] = {}
        self.hosts: list[Host] = []
        self.subnet: ipaddress.IPv4Network | None = None
        self.subnet_id: str | None = None
        self.bridge: str | None = None
        self.lb_id = ""
        self.vip = ""
        self.namespace_mode = args.mode == "namespace"
        self.active_standby = args.topology == "ACTIVE_STANDBY"
        self.amphora_ids: set[str] = set()  # every amphora seen (their namespaces go too)

    # -- before: what a previous --keep run (or a crash) left --------------------------

    def remove_leftovers(self) -> None:
        """Remove what an earlier run with these names left: LB, backends, hosts, subnet."""
        t, n = self.t, self.n
        if t.value("loadbalancer", "list", "--name", n.lb, "-c", "id", show=False):
            say(f"(load balancer {n.lb} exists, left by an earlier run: deleting it)")
            t.lbaas("loadbalancer", "delete", n.lb, "--cascade", "--wait")
        self.delete_certificates(quiet=True)
        for web in WEBS:
            if stop_pid_file(self.run_dir / f"{web}.pid", web):
                say(f"(stopped {web}, left running by an earlier run)")
        for web in WEBS:
            if self.namespace_mode and Host.remove(f"{self.args.host_prefix}{web}"):
                say(f"(removed the host namespace {self.args.host_prefix}{web} of an earlier run)")
        if self.namespace_mode:
            old = t.value("subnet", "list", "--name", n.subnet, "-c", "id", show=False)
            if old:
                from lbaas.dataplane import netns

                say(f"(subnet {n.subnet} exists, left by an earlier run: deleting it)")
                netns.delete_bridge(netns.bridge_name(old.split()[0]), only_if_unused=True)
                t.lbaas("subnet", "delete", n.subnet)
            if t.value("network", "list", "--name", n.net, "-c", "id", show=False):
                t.lbaas("network", "delete", n.net)
        self.remove_flavor(show=False)

    # -- 1. backends ------------------------------------------------------------------

    def start_backends(self) -> None:
        t = self.t
        if self.namespace_mode:
            t.section("A subnet and two backend hosts in their own network namespaces")
            self.make_subnet()
        else:
            t.section("Two backend servers, web1 and web2")
        for web, address in zip(WEBS, (self.args.web1, self.args.web2), strict=True):
            namespace = None
            if self.namespace_mode:
                assert self.subnet is not None and self.bridge is not None
                host = Host(web, self.args.host_prefix, address, self.subnet.prefixlen,
                            str(self.subnet.network_address + 1), self.bridge)
                self.hosts.append(host)
                host.create()
                namespace = host.namespace
                say(f"host {web}: namespace {host.namespace}, eth0 {address}/"
                    f"{self.subnet.prefixlen} on bridge {self.bridge} (via {host.veth})")
            backend = Backend(web, address, self.ports, self.run_dir, namespace)
            backend.start()
            self.backends[web] = backend
            http, https, tcp = self.ports
            assert backend.proc is not None
            say(f"{web}: HTTP {address}:{http}, HTTPS {address}:{https}, TCP {address}:{tcp} "
                f"(pid {backend.proc.pid}) answers \"Welcome to {web}\"")

    def make_subnet(self) -> None:
        """The VIP subnet through the API, and its bridge with the gateway address."""
        from lbaas.dataplane import netns

        t, n = self.t, self.n
        subnet = ipaddress.IPv4Network(self.args.subnet_range)
        if not subnet.subnet_of(TEST_RANGE):
            raise Abort(f"--subnet-range {subnet} is not inside {TEST_RANGE}: the namespace "
                        "mode uses only addresses that nothing on this host routes")
        refuse_if_routed(subnet)
        self.subnet = subnet
        gateway = str(subnet.network_address + 1)
        pool = f"start={subnet.network_address + 100},end={subnet.network_address + 199}"
        t.lbaas("network", "create", "--name", n.net, "-c", "id", "-c", "name")
        t.lbaas("subnet", "create", "--name", n.subnet, "--network", n.net, "--subnet-range",
                str(subnet), "--gateway", gateway, "--allocation-pool", pool,
                "-c", "id", "-c", "cidr", "-c", "gateway_ip", "-c", "allocation_pools")
        self.subnet_id = t.value("subnet", "show", n.subnet, "-c", "id", show=False)
        plan = netns.SubnetPlan.of(self.subnet_id, str(subnet), gateway)
        netns.ensure_bridge(plan)
        self.bridge = plan.bridge
        say(f"bridge {plan.bridge}: the subnet's segment, gateway {gateway} on it "
            "(the same bridge the agent plugs each load balancer's namespace into)")

    # -- 2. the load balancer ------------------------------------------------------------

    def create_load_balancer(self) -> None:
        t, n = self.t, self.n
        subnet = n.subnet if self.namespace_mode else "lb-vip-subnet"
        flavor: tuple[str, ...] = ()
        if self.active_standby:
            t.section("A flavor for ACTIVE_STANDBY load balancers (admin)")
            t.lbaas("flavorprofile", "create", "--name", n.flavorprofile, "--provider",
                    "haproxy", "--flavor-data", '{"loadbalancer_topology": "ACTIVE_STANDBY"}',
                    "-c", "id", "-c", "name", "-c", "provider_name", "-c", "flavor_data")
            t.lbaas("flavor", "create", "--name", n.flavor, "--flavorprofile",
                    n.flavorprofile, "-c", "id", "-c", "name", "-c", "enabled")
            flavor = ("--flavor", n.flavor)
        t.section(f"Load balancer {n.lb} with a VIP on "
                  f"{'subnet ' + n.subnet if self.namespace_mode else 'the default subnet'}")
        t.lbaas("loadbalancer", "create", "--name", n.lb, "--vip-subnet-id", subnet, *flavor,
                "--wait", "-c", "id", "-c", "name", "-c", "vip_address", "-c",
                "provisioning_status", "-c", "operating_status")
        self.lb_id = t.value("loadbalancer", "show", n.lb, "-c", "id", show=False)
        self.vip = t.value("loadbalancer", "show", n.lb, "-c", "vip_address")
        say(f"load balancer {n.lb}: id {self.lb_id}, VIP {self.vip}")
        if self.active_standby:
            self.show_amphorae()
        elif self.namespace_mode:
            from lbaas.dataplane import netns

            ns = netns.namespace_name(self.lb_id)
            if not t.check(netns.namespace_exists(ns), f"the VIP lives in namespace {ns}"):
                raise Abort("the service does not run in namespace placement: start it with "
                            "a --config-file that has [haproxy_amphora] placement = namespace")

    # -- ACTIVE_STANDBY ----------------------------------------------------------------

    def amphorae(self, show: bool = False) -> list[dict[str, Any]]:
        """``lbaas amphora list --loadbalancer <lb>`` (printed as a table if ``show``)."""
        args = ("amphora", "list", "--loadbalancer", self.n.lb)
        columns = ("-c", "id", "-c", "role", "-c", "status", "-c", "vrrp_ip", "-c", "ha_ip")
        if show:
            self.t.lbaas(*args, *columns)
        rows: list[dict[str, Any]] = json.loads(self.t.lbaas(*args, *columns, "-f", "json",
                                                             show=False))
        self.amphora_ids.update(row["id"] for row in rows)
        return rows

    def settled_roles(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The amphorae once keepalived's report shows one MASTER and one BACKUP."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.amphorae()
            if sorted(r["role"] for r in rows) == ["BACKUP", "MASTER"] or \
                    time.monotonic() > deadline:
                return rows
            time.sleep(0.5)

    def show_amphorae(self) -> None:
        t = self.t
        t.section("Two amphorae, each in its own namespace; keepalived gives the VIP to the "
                  "MASTER")
        rows = self.settled_roles()
        self.amphorae(show=True)
        t.check(sorted(r["role"] for r in rows) == ["BACKUP", "MASTER"],
                f"one MASTER and one BACKUP: {', '.join(r['role'] for r in rows)}")
        if not self.in_namespaces(rows):
            raise Abort("the service does not run in namespace placement: start it with a "
                        "--config-file that has [haproxy_amphora] placement = namespace")

    def in_namespaces(self, rows: list[dict[str, Any]]) -> bool:
        """Check that each amphora runs in its namespace amphora-<id>."""
        from lbaas.dataplane import netns

        spaces = [netns.amphora_namespace_name(r["id"]) for r in rows]
        return self.t.check(all(netns.namespace_exists(ns) for ns in spaces),
                            f"each amphora runs in its namespace: {', '.join(spaces)}")

    def failover(self) -> None:
        """A load balancer failover under traffic: both amphorae rebuilt, one at a time."""
        t, n = self.t, self.n
        t.section("Failover: each amphora is rebuilt in turn, the BACKUP first, while the "
                  "VIP keeps answering")
        before = {r["id"] for r in self.amphorae()}
        answers: list[str] = []
        done = threading.Event()

        def load() -> None:  # a request every 20 ms on a new connection, to the VIP
            while not done.is_set():
                try:  # opened here, so that a connection refused tells from a reset
                    socket.create_connection((self.vip, self.args.http_port), 5).close()
                except OSError as e:
                    answers.append(f"connect failed: {e}")
                else:
                    answers.append(http_get(self.vip, self.args.http_port, timeout=5))
                time.sleep(0.02)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        try:
            t.lbaas("loadbalancer", "failover", n.lb, "--wait")
        finally:
            done.set()
            loader.join(10)
        rows = self.settled_roles()
        self.amphorae(show=True)
        refused = [a for a in answers if a.startswith("connect failed")]
        failed = [a for a in answers if not a.startswith(("Welcome to", "connect failed"))]
        say(f"{len(answers)} connections to {self.vip}:{self.args.http_port} during the "
            f"failover: {len(refused)} could not be opened, {len(failed)} requests failed")
        t.check(before.isdisjoint(r["id"] for r in rows) and len(rows) == 2,
                "two new amphorae took the place of the old ones")
        self.in_namespaces(rows)
        t.check(sorted(r["role"] for r in rows) == ["BACKUP", "MASTER"],
                f"one MASTER and one BACKUP again: {', '.join(r['role'] for r in rows)}")
        t.check(not refused and not failed and bool(answers),
                f"every request during the failover was answered ({len(answers)})")

    def remove_flavor(self, show: bool = True) -> None:
        t, n = self.t, self.n
        if t.value("flavor", "list", "--name", n.flavor, "-c", "id", show=False):
            t.lbaas("flavor", "delete", n.flavor, show=show)
        if t.value("flavorprofile", "list", "--name", n.flavorprofile, "-c", "id", show=False):
            t.lbaas("flavorprofile", "delete", n.flavorprofile, show=show)

    # -- 3-5. listeners --------------------------------------------------------------------

    def add_listener(self, protocol: str, port: int, algorithm: str, monitor: list[str],
                     member_port: int, listener: str) -> None:
        t, n = self.t, self.n
        pool = f"{listener}-pool"
        t.lbaas("listener", "create", n.lb, "--name", listener, "--protocol", protocol,
                "--protocol-port", str(port), "--wait", "-c", "id", "-c", "name", "-c",
                "protocol", "-c", "protocol_port", "-c", "provisioning_status")
        t.lbaas("pool", "create", "--name", pool, "--listener", listener, "--protocol",
                protocol, "--lb-algorithm", algorithm, "--wait", "-c", "id", "-c", "name",
                "-c", "protocol", "-c", "lb_algorithm", "-c", "provisioning_status")
        for web in WEBS:
            t.lbaas("member", "create", pool, "--name", web, "--address",
                    self.backends[web].address, "--protocol-port", str(member_port), "--wait",
                    "-c", "id", "-c", "name", "-c", "address", "-c", "protocol_port")
        t.lbaas("healthmonitor", "create", pool, "--name", f"{listener}-monitor", *monitor,
                "--wait", "-c", "id", "-c", "name", "-c", "type", "-c", "delay", "-c",
                "max_retries", "-c", "timeout", "-c", "url_path")

    def http_listener(self) -> None:
        t, n = self.t, self.n
        http = self.args.http_port
        t.section(f"Listener {n.http} (HTTP {http}): a ROUND_ROBIN pool of web1 and web2, "
                  "an HTTP health monitor")
        self.add_listener("HTTP", http, "ROUND_ROBIN", self.http_monitor(), http, n.http)
        t.section("Successive requests to the VIP alternate between web1 and web2")
        names = served_by(requests("http", self.vip, http))
        t.check(alternate(names), f"requests alternate web1/web2: {' '.join(names)}")

    def http_monitor(self) -> list[str]:
        a = self.args
        return ["--type", "HTTP", "--delay", str(a.delay), "--max-retries", str(a.max_retries),
                "--timeout", str(a.timeout), "--url-path", "/"]

    def https_listener(self) -> None:
        t, n = self.t, self.n
        https = self.args.https_port
        t.section(f"Listener {n.https} (HTTPS {https}, pass-through: TLS ends on the backends), "
                  "LEAST_CONNECTIONS, TLS-HELLO monitor")
        self.add_listener("HTTPS", https, "LEAST_CONNECTIONS",
                          ["--type", "TLS-HELLO", "--delay", str(self.args.delay),
                           "--max-retries", str(self.args.max_retries),
                           "--timeout", str(self.args.timeout)], https, n.https)
        names = served_by(requests("https", self.vip, https))
        t.check(set(names) <= set(WEBS), f"HTTPS requests answered by the backends over TLS: "
                f"{' '.join(names)}")

    def tcp_listener(self) -> None:
        t, n = self.t, self.n
        tcp = self.args.tcp_port
        t.section(f"Listener {n.tcp} (TCP {tcp}) over the backends' TCP service, TCP monitor")
        self.add_listener("TCP", tcp, "ROUND_ROBIN",
                          ["--type", "TCP", "--delay", str(self.args.delay), "--max-retries",
                           str(self.args.max_retries), "--timeout", str(self.args.timeout)],
                          tcp, n.tcp)
        names = served_by(requests("tcp", self.vip, tcp))
        t.check(alternate(names), f"TCP connections alternate web1/web2: {' '.join(names)}")

    def terminated_listener(self) -> None:
        """TLS ends on the VIP: a certificate per name, SNI picks it."""
        t, n = self.t, self.n
        port = self.args.terminated_port
        t.section(f"Listener {n.terminated} (TERMINATED_HTTPS {port}): certificates for "
                  f"{n.host('www')} (default) and {n.host('api')} (SNI), HTTP to the pool")
        from lbaas.testing.pki import Authority

        ca = Authority.new(f"{n.lb} walkthrough CA")
        ca_file = self.run_dir / "ca.pem"
        ca_file.write_bytes(ca.cert_pem)
        refs = {}
        for label in ("www", "api"):
            issued = ca.issue(n.host(label))
            cert, key = self.run_dir / f"{label}.crt", self.run_dir / f"{label}.key"
            cert.write_bytes(issued.cert_pem)
            key.write_bytes(issued.key_pem())
            key.chmod(0o600)
            say(f"{cert.name}, {key.name}: a certificate for {n.host(label)}, signed by "
                f"{ca_file.name}")
            refs[label] = t.value("secret", "store-certificate", "--name", n.certificate(label),
                                  "--certificate", str(cert), "--private-key", str(key),
                                  "-c", "secret_ref")
        t.lbaas("listener", "create", n.lb, "--name", n.terminated, "--protocol",
                "TERMINATED_HTTPS", "--protocol-port", str(port),
                "--default-tls-container-ref", refs["www"],
                "--sni-container-refs", refs["www"], "--sni-container-refs", refs["api"],
                "--default-pool", n.http_pool, "--insert-headers", "X-Forwarded-Proto=true",
                "--wait", "-c", "id", "-c", "name", "-c", "protocol", "-c", "protocol_port",
                "-c", "sni_container_refs", "-c", "provisioning_status")
        for label in ("www", "api"):
            host = n.host(label)
            argv = ["curl", "-sSv", "--noproxy", "*", "--cacert", str(ca_file), "--resolve",
                    f"{host}:{port}:{self.vip}", f"https://{host}:{port}/"]
            say("$ " + shlex.join(argv[:2] + argv[4:]).replace(str(ca_file), ca_file.name))
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            subject = next((line.split("subject:", 1)[1].strip() for line in
                            done.stderr.splitlines() if "subject:" in line), "")
            say(done.stdout.strip() or done.stderr.strip()[-300:])
            say(f"(curl -v: subject: {subject})")
            t.check(subject == f"CN={host}" and done.stdout.startswith("Welcome to web"),
                    f"{host} gets its own certificate and a backend's answer")
        plain = curl_https(None, port, self.vip, ca_file)
        t.check(plain.subject == n.host("www"),
                f"a client without SNI gets the default certificate ({plain.subject})")

    def delete_certificates(self, quiet: bool = False) -> None:
        """Delete the walkthrough's certificate secrets (once no listener uses them)."""
        t, n = self.t, self.n
        for label in ("www", "api"):
            for ref in t.value("secret", "list", "--name", n.certificate(label), "-c",
                               "secret_ref", show=False).split():
                if quiet:
                    say(f"(secret {n.certificate(label)} exists, left by an earlier run: "
                        "deleting it)")
                t.lbaas("secret", "delete", ref, show=not quiet)

    # -- 6. health -------------------------------------------------------------------------

    def wait_status(self, want: str, timeout: float) -> str:
        """Poll the load balancer's operating_status until ``want`` (at most ``timeout`` s)."""
        t, n = self.t, self.n
        args = ("loadbalancer", "show", n.lb, "-c", "operating_status")
        say(f"$ lbaas {shlex.join(args)} -f value    # every second, until {want} "
            f"(at most {timeout:.0f} s)")
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            status = t.value(*args, show=False)
            if status != last:
                say(status)
                last = status
            if status == want or time.monotonic() > deadline:
                return status
            time.sleep(1)

    def wait_degraded(self, timeout: float) -> str:
        """Poll the status tree until web2 is down in every pool and the load balancer
        DEGRADED (at most ``timeout`` s); returns the load balancer's operating_status."""
        t, n = self.t, self.n
        say(f"$ lbaas loadbalancer status {n.lb}    # every second, until web2 is down in "
            f"every pool (at most {timeout:.0f} s)")
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            lb = json.loads(t.lbaas("loadbalancer", "status", n.lb, show=False))["loadbalancer"]
            web2 = {pool["name"]: member["operating_status"]
                    for listener in lb.get("listeners", []) for pool in listener.get("pools", [])
                    for member in pool.get("members", []) if member.get("name") == "web2"}
            now = f"{n.lb} {lb['operating_status']}; web2: " + \
                ", ".join(f"{pool} {status}" for pool, status in sorted(web2.items()))
            if now != last:
                say(now)
                last = now
            down = all(status in ("ERROR", "OFFLINE") for status in web2.values())
            if (down and lb["operating_status"] == "DEGRADED") or time.monotonic() > deadline:
                return str(lb["operating_status"])
            time.sleep(1)

    def health(self) -> None:
        t, n = self.t, self.n
        a = self.args
        # HAProxy marks a member up after max_retries good checks (servers start up) and
        # down after max_retries_down (3 by default) failed ones, a delay apart; the
        # health manager then reports it.
        up_timeout = a.delay * a.max_retries + a.status_margin
        down_timeout = a.delay * max(a.max_retries, 3) + a.status_margin
        t.section(f"Health: every member checked, {n.lb} ONLINE")
        status = self.wait_status("ONLINE", up_timeout)
        t.check(status == "ONLINE", f"{n.lb} operating_status is {status} (expected ONLINE)")
        t.lbaas("member", "list", n.http_pool, "-c", "name", "-c", "address", "-c",
                "protocol_port", "-c", "operating_status")

        t.section("Stop web2: web1 keeps answering, and the status tree turns DEGRADED")
        self.backends["web2"].stop()
        say("web2 stopped")
        names = served_by(requests("http", self.vip, a.http_port))
        t.check(names == ["web1"] * len(names), f"requests answered by web1 only: "
                f"{' '.join(names)}")
        status = self.wait_degraded(down_timeout)
        t.check(status == "DEGRADED", f"{n.lb} operating_status is {status} (expected DEGRADED)")
        tree = t.lbaas("loadbalancer", "status", n.lb)
        t.check('"DEGRADED"' in tree, "the status tree shows DEGRADED")
        t.lbaas("member", "list", n.http_pool, "-c", "name", "-c", "address", "-c",
                "protocol_port", "-c", "operating_status")
        names = served_by(requests("http", self.vip, a.http_port))
        t.check(names == ["web1"] * len(names), f"still answered by web1 only: "
                f"{' '.join(names)}")

    # -- 7. statistics -------------------------------------------------------------------

    def stats(self) -> None:
        t, n = self.t, self.n
        t.section("Traffic statistics")
        args = ("loadbalancer", "stats", n.lb, "-f", "json")
        say(f"$ lbaas {shlex.join(args)}    # every second, until it counts the traffic "
            f"(at most {self.args.stats_timeout:.0f} s)")
        deadline = time.monotonic() + self.args.stats_timeout
        while True:  # the health manager adds HAProxy's counters up periodically
            shown = t.lbaas(*args, show=False)
            counters: dict[str, Any] = json.loads(shown)
            counted = counters.get("bytes_in", 0) > 0 and counters.get("bytes_out", 0) > 0
            if counted or time.monotonic() > deadline:
                break
            time.sleep(1)
        say(shown.rstrip("\n"))  # the reading checked below
        t.check(counted, f"loadbalancer stats count the traffic: "
                f"bytes_in={counters.get('bytes_in')} bytes_out={counters.get('bytes_out')} "
                f"total_connections={counters.get('total_connections')}")
        t.lbaas("listener", "stats", n.http)

    # -- 8. the end ------------------------------------------------------------------------

    def clean_up(self) -> None:
        t, n = self.t, self.n
        t.section(f"Clean up: delete {n.lb} and everything under it")
        t.lbaas("loadbalancer", "delete", n.lb, "--cascade", "--wait")
        left = t.value("loadbalancer", "list", "--name", n.lb, "-c", "id")
        t.check(left == "", f"load balancer {n.lb} is gone")
        self.delete_certificates()
        if self.active_standby:
            self.remove_flavor()
        self.stop_backends()
        if self.namespace_mode:
            self.remove_network()
        else:
            answer = http_get(self.vip, self.args.http_port, timeout=2)
            t.check(answer.startswith("error"), f"the VIP no longer answers ({answer})")

    def stop_backends(self) -> None:
        for web, backend in self.backends.items():
            backend.stop()
            say(f"{web} stopped")
        self.backends.clear()

    def remove_network(self) -> None:
        from lbaas.dataplane import netns

        t, n = self.t, self.n
        for host in self.hosts:
            Host.remove(host.namespace)
            say(f"host namespace {host.namespace} removed")
        self.hosts.clear()
        if self.bridge and netns.delete_bridge(self.bridge, only_if_unused=True):
            say(f"bridge {self.bridge} removed")
        if self.subnet_id:
            t.lbaas("subnet", "delete", n.subnet)
            self.subnet_id = None
        if self.subnet is not None:
            t.lbaas("network", "delete", n.net)
            self.subnet = None
        if self.lb_id and not self.active_standby:
            ns = netns.namespace_name(self.lb_id)
            t.check(not netns.namespace_exists(ns), f"namespace {ns} is gone")
        if self.amphora_ids:
            left = [ns for ns in map(netns.amphora_namespace_name, self.amphora_ids)
                    if netns.namespace_exists(ns)]
            t.check(not left, "the amphorae's namespaces are gone"
                    + (f" (left: {', '.join(left)})" if left else ""))
            self.amphora_ids.clear()
        if self.bridge:
            t.check(self.bridge not in link_names(), f"bridge {self.bridge} is gone")

    def keep(self) -> None:
        """Bring web2 back and say how to use what is left running."""
        t, n = self.t, self.n
        t.section(f"{n.lb} is kept")
        web2 = Backend("web2", self.args.web2, self.ports, self.run_dir,
                       self.hosts[1].namespace if self.namespace_mode else None)
        web2.start()
        self.backends["web2"] = web2
        assert web2.proc is not None
        say(f"web2 started again (pid {web2.proc.pid}); HAProxy's checks bring it back in "
            f"{self.args.delay * self.args.max_retries} s or so")
        http, https, _ = self.ports
        say(f"\nLoad balancer {n.lb} carries traffic on its VIP {self.vip}. What to type next:")
        lbaas = Path(self.t.argv[0])
        if len(self.t.argv) == 1 and shutil.which("lbaas") != str(lbaas):
            say(f"  export PATH={lbaas.parent}:$PATH")
        if t.endpoint != DEFAULT_ENDPOINT:
            say(f"  export LBAAS_URL={t.endpoint}")
        for command, comment in ((f"curl http://{self.vip}:{http}/", "web1, web2, web1, ..."),
                                 (f"curl -k https://{self.vip}:{https}/",
                                  "TLS from the backends")):
            say(f"  {command:<36} # {comment}")
        www, port = n.host("www"), self.args.terminated_port
        say(f"  curl --cacert {self.run_dir / 'ca.pem'} --resolve {www}:{port}:{self.vip} "
            f"https://{www}:{port}/    # TLS ended on the VIP")
        say(f"  lbaas loadbalancer status {n.lb}")
        say(f"  lbaas loadbalancer stats {n.lb}")
        say(f"  lbaas loadbalancer delete {n.lb} --cascade --wait")
        say(f"The backends' pid files and logs are in {self.run_dir}.")

    def run(self) -> int:
        t = self.t
        mode = "namespace placement" if self.namespace_mode else "local placement"
        say(f"lbaas walkthrough: the classic LBaaS v2 scenario ({mode}), API {t.endpoint}")
        say(f"$ export LBAAS_URL={t.endpoint}")
        wait_for_api(t.endpoint)
        self.remove_leftovers()
        finished = False
        try:
            self.start_backends()
            self.create_load_balancer()
            self.http_listener()
            self.https_listener()
            self.tcp_listener()
            self.terminated_listener()
            self.health()
            if self.active_standby:
                self.failover()
            self.stats()
            if self.args.keep:
                self.keep()
            else:
                self.clean_up()
            finished = True
        finally:
            if not finished and not self.args.keep:
                self.abandon()
        say()
        if t.failures:
            say(f"walkthrough: {len(t.failures)} of {t.checks} checks FAILED:")
            for what in t.failures:
                say(f"  - {what}")
            return 1
        say(f"walkthrough: all {t.checks} checks passed")
        return 0

    def abandon(self) -> None:
        """After a failure or an interrupt: remove whatever of ours is still there."""
        say(f"(removing what this run made: {self.n.lb}, the backends"
            f"{', the hosts and the subnet' if self.namespace_mode else ''})")
        with contextlib.suppress(Abort):
            if self.t.value("loadbalancer", "list", "--name", self.n.lb, "-c", "id",
                            show=False):
                self.t.lbaas("loadbalancer", "delete", self.n.lb, "--cascade", "--wait",
                             show=False)
        self.stop_backends()
        if self.namespace_mode:
            with contextlib.suppress(Abort):
                self.remove_network()
        with contextlib.suppress(Abort):
            self.remove_flavor(show=False)


def wait_for_api(endpoint: str, timeout: float = 20.0) -> None:
    """Wait until ``GET <endpoint>/healthcheck`` answers 200 (a service just started)."""
    url = urllib.parse.urlsplit(endpoint)
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=2)
        try:
            conn.request("GET", url.path.rstrip("/") + "/healthcheck")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise Abort(f"no lbaas API answers at {endpoint} (is `lbaas serve` running? "
                        "give --os-endpoint or set LBAAS_URL)")
        time.sleep(0.2)


def link_names() -> set[str]:
    """The names of the host's network interfaces."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {link.get("IFLA_IFNAME") for link in ipr.link("dump")}


def refuse_if_routed(network: ipaddress.IPv4Network) -> None:
    """Refuse a subnet that overlaps anything this host already routes."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for route in ipr.route("dump", family=socket.AF_INET):
            dst, plen = route.get("RTA_DST"), route["dst_len"]
            if dst is None or plen == 0:
                continue
            if ipaddress.ip_network(f"{dst}/{plen}", strict=False).overlaps(network):
                raise Abort(f"{network} overlaps {dst}/{plen}, which this host already routes; "
                            "choose another --subnet-range in 198.18.0.0/15")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="The classic LBaaS v2 walkthrough against a running lbaas serve.",
        epilog="Ports below 1024 need root. Every name derives from --name.")
    p.add_argument("--os-endpoint", default=os.environ.get("LBAAS_URL", DEFAULT_ENDPOINT),
                   help="lbaas API (env LBAAS_URL; default %(default)s)")
    p.add_argument("--mode", choices=("local", "namespace"), default="local",
                   help="local: backends on loopback, VIP on the default subnet; namespace: "
                        "backends and VIP in network namespaces on a 198.18.0.0/15 subnet "
                        "(root; the service must run with placement = namespace)")
    p.add_argument("--topology", choices=("SINGLE", "ACTIVE_STANDBY"), default="SINGLE",
                   help="namespace mode: ACTIVE_STANDBY makes the load balancer with a flavor "
                        "of that topology (two amphorae, keepalived), lists its amphorae and "
                        "fails it over under traffic")
    p.add_argument("--name", default="lber", help="load balancer name, prefix of the others")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--https-port", type=int, default=8443)
    p.add_argument("--tcp-port", type=int, default=9000)
    p.add_argument("--terminated-port", type=int, default=8444,
                   help="port of the TERMINATED_HTTPS listener")
    p.add_argument("--web1", help="web1's address (local: 127.0.0.11; namespace: host .11)")
    p.add_argument("--web2", help="web2's address (local: 127.0.0.12; namespace: host .12)")
    p.add_argument("--subnet-range", default=DEFAULT_SUBNET_RANGE,
                   help="namespace mode: the VIP subnet, inside 198.18.0.0/15")
    p.add_argument("--host-prefix", default=None,
                   help="namespace mode: prefix of the backend hosts' namespaces "
                        "(default lbaas-<name>-)")
    p.add_argument("--delay", type=int, default=5, help="health monitor delay (s)")
    p.add_argument("--max-retries", type=int, default=2, help="health monitor max-retries")
    p.add_argument("--timeout", type=int, default=10, help="health monitor timeout (s)")
    p.add_argument("--status-margin", type=float, default=15.0,
                   help="seconds allowed beyond the health checks for a status to show")
    p.add_argument("--stats-timeout", type=float, default=20.0,
                   help="seconds to wait for the statistics to count the traffic")
    p.add_argument("--keep", action="store_true",
                   help="leave the load balancer and the backends running at the end")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="backends' pid files and logs (default /tmp/lbaas-walkthrough-<name>)")
    p.add_argument("--cleanup", action="store_true",
                   help="only remove what a --keep run with the same options left, and exit")
    args = p.parse_args(argv)
    if args.mode == "namespace":
        net = ipaddress.IPv4Network(args.subnet_range)
        args.web1 = args.web1 or str(net.network_address + 11)
        args.web2 = args.web2 or str(net.network_address + 12)
    else:
        args.web1 = args.web1 or "127.0.0.11"
        args.web2 = args.web2 or "127.0.0.12"
    args.host_prefix = args.host_prefix or f"lbaas-{args.name}-"
    args.run_dir = args.run_dir or Path(tempfile.gettempdir()) / f"lbaas-walkthrough-{args.name}"
    return args


def use_lbaas_python() -> None:
    """Re-execute with the repository's virtualenv if this Python lacks lbaas."""
    if importlib.util.find_spec("lbaas") is not None:
        return
    venv = REPO / ".venv" / "bin" / "python"
    if venv.exists() and Path(sys.executable) != venv:
        os.execv(venv, [str(venv), __file__, *sys.argv[1:]])
    sys.exit("walkthrough: lbaas is not installed here; run scripts/setup first")


def main(argv: list[str] | None = None) -> int:
    use_lbaas_python()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.topology == "ACTIVE_STANDBY" and args.mode != "namespace":
        say("walkthrough: --topology ACTIVE_STANDBY needs --mode namespace (each amphora has "
            "a network namespace of its own)")
        return 2
    if args.mode == "namespace" and os.geteuid() != 0:
        say("walkthrough: --mode namespace needs root (it creates namespaces, veths, a bridge)")
        return 2
    args.run_dir.mkdir(parents=True, exist_ok=True)
    walk = Walkthrough(args)
    try:
        if args.cleanup:
            walk.remove_leftovers()
            say("walkthrough: nothing of an earlier run is left")
            return 0
        return walk.run()
    except Abort as e:
        say(f"walkthrough: stopped: {e}")
        return 1
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                for f in args.run_dir.iterdir():
                    if f.suffix == ".log":
                        f.unlink()
                args.run_dir.rmdir()


if __name__ == "__main__":
    sys.exit(main())
