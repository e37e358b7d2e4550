"""The neutron-lbaas layout for real: ``qlbaas-<id>`` on a subnet bridge, hosts beside it.

Each test uses its own subnet 198.18.<n>.0/24 (n = 201..209 here), a
responder standing in for HAProxy (bound to the VIP inside the namespace,
as HAProxy will be), and backend "hosts" in namespaces of their own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pyroute2 import IPRoute

from lbaas.dataplane import netns
from lbaas.dataplane.spec import LoadBalancerSpec, VipSpec
from tests.functional.netns.base import Net, TrackedPlacement
from tests.support.netns_hosts import (
    responder_argv,
    stop_process,
    wait_ready,
)

pytestmark = pytest.mark.root

Report = Callable[[str, float, str], None]


def _inside(namespace: str) -> dict[str, object]:
    """What the namespace holds: links (name -> up), addresses, default gateway."""
    with IPRoute(netns=namespace, flags=0) as ns:
        links = {link.get("IFLA_IFNAME"): bool(link["flags"] & 1) for link in ns.link("dump")}
        addrs = sorted(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                       for a in ns.get_addr(family=socket.AF_INET))
        defaults = [r.get("RTA_GATEWAY") for r in ns.route("dump", family=socket.AF_INET)
                    if r["dst_len"] == 0 and r.get("RTA_GATEWAY")]
    return {"links": links, "addrs": addrs, "defaults": defaults}


def _host_neighbour(bridge: str, address: str) -> str | None:
    """The MAC the host has cached for ``address`` on ``bridge`` (None: no entry)."""
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=bridge)[0]
        for n in ipr.neigh("dump", ifindex=idx, family=socket.AF_INET):
            if n.get("NDA_DST") == address and n.get("NDA_LLADDR"):
                return str(n.get("NDA_LLADDR"))
    return None


def _serve_in_lb(net: Net, lb_id: str, vip: str, port: int = 80) -> subprocess.Popen[bytes]:
    """A responder inside qlbaas-<lb_id> bound to the VIP (HAProxy's place); returns listening."""
    proc = net.spawn(netns.namespace_name(lb_id), responder_argv(vip, port, "lb"),
                     stdout=subprocess.PIPE)
    wait_ready(proc)
    return proc


def test_prepare_serves_the_vip_from_qlbaas_to_the_host(net: Net, placement: TrackedPlacement,
                                                         report: Report) -> None:
    subnet = net.subnet(201)
    lb = subnet.load_balancer(10)
    vip = lb.vip.address

    start = time.monotonic()
    placement.prepare(lb)
    prepared = time.monotonic() - start
    net.spawn(placement.namespace(lb.id) or "", responder_argv(vip, 80, "lb"),
              stdout=subprocess.DEVNULL)
    net.wait_200(f"http://{vip}/")
    first = time.monotonic() - start
    report("netns_prepare", prepared * 1000, "ms")
    report("netns_prepare_to_first_200", first * 1000, "ms")

    ns = netns.namespace_name(lb.id)
    assert ns == f"qlbaas-{lb.id}"
    assert ns in netns.list_namespaces("qlbaas-")
    veth = netns.veth_names(lb.id)
    inside = _inside(ns)
    assert inside == {"links": {"lo": True, veth.namespace: True},
                      "addrs": ["127.0.0.1/8", f"{vip}/24"], "defaults": [subnet.gateway]}
    assert veth.host in netns.bridge_ports(subnet.bridge)
    assert netns.link_address(subnet.bridge) == netns.bridge_mac(subnet.subnet_id)
    r = net.get(f"http://{vip}/")
    assert (r.status_code, r.text) == (200, "Welcome to lb\n")


def test_backend_hosts_and_the_lb_namespace_reach_each_other(net: Net,
                                                              placement: TrackedPlacement) -> None:
    subnet = net.subnet(202)
    web1 = net.host(subnet, "web1", 21)
    client = net.host(subnet, "client", 31)
    web1.serve_http(8080, "web1")
    lb = subnet.load_balancer(10)
    placement.prepare(lb)
    _serve_in_lb(net, lb.id, lb.vip.address)

    # What HAProxy needs: members reachable from inside qlbaas-<id>.
    from_lb = net.spawn(placement.namespace(lb.id) or "",
                        [sys.executable, "-I", "-c", "import urllib.request as u, sys; "
                         "print(u.urlopen(sys.argv[1], timeout=5).read().decode(), end='')",
                         f"http://{web1.address}:8080/"], stdout=subprocess.PIPE)
    out, _ = from_lb.communicate(timeout=20)
    assert out.decode() == "Welcome to web1\n"
    # What clients need: the listener reachable from another host on the subnet.
    assert client.get(f"http://{lb.vip.address}/") == (200, "Welcome to lb\n")
    # And from the host, whose bridge holds the gateway address.
    assert net.get(f"http://{lb.vip.address}/").status_code == 200


@pytest.mark.timed
def test_rebuilt_namespace_is_reachable_within_a_second_of_announce(
        net: Net, placement: TrackedPlacement, report: Report) -> None:
    if shutil.which("arping") is None:
        pytest.skip("arping (iputils-arping) is not installed")
    subnet = net.subnet(203)
    # A neighbour that keeps the bridge (and its neighbour cache) alive across
    # the rebuild, as other ports on a real subnet would.
    client = net.host(subnet, "client", 31)
    lb = subnet.load_balancer(10)
    vip = lb.vip.address
    placement.prepare(lb)
    responder = _serve_in_lb(net, lb.id, vip)
    net.wait_200(f"http://{vip}/")
    assert client.get(f"http://{vip}/")[0] == 200  # the client caches the VIP's MAC too
    veth = netns.veth_names(lb.id)
    old_mac = netns.link_address(veth.namespace, placement.namespace(lb.id))
    assert _host_neighbour(subnet.bridge, vip) == old_mac

    stop_process(responder)
    placement.teardown(lb.id)
    placement.prepare(lb)
    new_mac = netns.link_address(veth.namespace, placement.namespace(lb.id))
    assert new_mac != old_mac
    _serve_in_lb(net, lb.id, vip)

    # Without announce: the host still sends to the old MAC, and nobody answers.
    assert _host_neighbour(subnet.bridge, vip) == old_mac
    with pytest.raises(httpx.HTTPError):
        net.get(f"http://{vip}/", timeout=0.5)
    assert client.get(f"http://{vip}/", timeout=0.5)[0] == 0

    start = time.monotonic()
    placement.announce(lb)
    host_recovery = net.wait_200(f"http://{vip}/", timeout=5)
    report("netns_rebuild_host_recovery_after_announce", host_recovery * 1000, "ms")
    assert host_recovery < 1.0
    assert _host_neighbour(subnet.bridge, vip) == new_mac

    # The client's cache is not the host's to flush: the gratuitous ARPs fix it.
    deadline = start + 5
    while client.get(f"http://{vip}/", timeout=0.3)[0] != 200:
        assert time.monotonic() < deadline, "the client never learnt the new MAC"
    report("netns_rebuild_neighbour_recovery_after_announce",
           (time.monotonic() - start) * 1000, "ms")


@pytest.mark.timed
def test_prepare_is_idempotent_and_repairs_half_made_state(net: Net,
                                                          placement: TrackedPlacement) -> None:
    subnet = net.subnet(204)
    lb = subnet.load_balancer(10)
    ns = netns.namespace_name(lb.id)
    veth = netns.veth_names(lb.id)

    # A crash inside namespace creation: the name exists, nothing is mounted on it.
    os.makedirs(netns.NETNS_RUN_DIR, exist_ok=True)
    open(netns.namespace_path(ns), "w").close()
    assert not netns.namespace_exists(ns)
    placement.prepare(lb)
    assert netns.namespace_exists(ns)
    mac = netns.link_address(veth.namespace, ns)
    expected = _inside(ns)

    placement.prepare(lb)  # twice: nothing changes, not even the MAC
    assert _inside(ns) == expected
    assert netns.link_address(veth.namespace, ns) == mac
    assert netns.bridge_ports(subnet.bridge) == [veth.host]

    # Knocked about: host end off the bridge and down, VIP gone, a stray
    # address and no default route inside.
    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=veth.host)[0], master=0, state="down")
    with IPRoute(netns=ns, flags=0) as inside:
        idx = inside.link_lookup(ifname=veth.namespace)[0]
        inside.flush_routes(family=socket.AF_INET, table=254)
        inside.addr("del", index=idx, address=lb.vip.address, prefixlen=24)
        inside.addr("add", index=idx, address=subnet.host(99), prefixlen=24)
    placement.prepare(lb)
    assert _inside(ns) == expected
    assert netns.bridge_ports(subnet.bridge) == [veth.host]
    assert netns.link_address(veth.namespace, ns) == mac

    # The namespace deleted under its veth (the kernel drops the pair
    # asynchronously): prepare builds a fresh one.
    netns.remove_namespace(ns)
    placement.prepare(lb)
    assert _inside(ns) == expected
    _serve_in_lb(net, lb.id, lb.vip.address)
    placement.announce(lb)
    assert net.wait_200(f"http://{lb.vip.address}/") < 1.0


def test_teardown_leaves_no_namespace_veth_or_bridge(net: Net,
                                                    placement: TrackedPlacement) -> None:
    subnet = net.subnet(205)
    first, second = subnet.load_balancer(10), subnet.load_balancer(11)
    placement.prepare(first)
    placement.prepare(second)
    assert sorted(netns.bridge_ports(subnet.bridge)) == sorted(
        [netns.veth_names(first.id).host, netns.veth_names(second.id).host])

    placement.teardown(first.id)
    # The bridge stays while another load balancer's port is on it.
    assert netns.bridge_ports(subnet.bridge) == [netns.veth_names(second.id).host]
    placement.teardown(second.id)
    placement.teardown(second.id)  # idempotent

    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    for lb in (first, second):
        ns = netns.namespace_name(lb.id)
        assert ns not in listed
        assert ns not in netns.list_namespaces()
        assert not os.path.lexists(netns.namespace_path(ns))
        for end in netns.veth_names(lb.id):
            assert end not in links
            assert netns.link_address(end) is None
    assert subnet.bridge not in links
    assert netns.link_address(subnet.bridge) is None


def test_preexec_runs_the_child_inside_qlbaas(net: Net, placement: TrackedPlacement) -> None:
    subnet = net.subnet(206)
    lb = subnet.load_balancer(10)
    placement.prepare(lb)
    # Exactly how the HAProxy process control starts HAProxy.
    proc = subprocess.Popen([sys.executable, "-I", "-c",
                             "import os; print(os.stat('/proc/self/ns/net').st_ino)"],
                            stdout=subprocess.PIPE, preexec_fn=placement.preexec(lb.id))
    out, _ = proc.communicate(timeout=20)
    ns_inode = os.stat(netns.namespace_path(netns.namespace_name(lb.id))).st_ino
    assert int(out) == ns_inode != os.stat("/proc/self/ns/net").st_ino
    bind = f"import socket; socket.create_server(({lb.vip.address!r}, 0)).close()"
    done = netns.run_in_namespace(netns.namespace_name(lb.id), [sys.executable, "-I", "-c", bind])
    assert done.returncode == 0  # the VIP is bindable in there, as HAProxy will need


def test_a_subnet_without_gateway_is_refused_before_anything_is_made(
        placement: TrackedPlacement) -> None:
    lb = LoadBalancerSpec(
        id="5f0e4c1e-0000-4000-8000-000000000001", project_id=None,
        vip=VipSpec(address="198.18.207.10", subnet_id="5f0e4c1e-1111-4000-8000-000000000001",
                    subnet_cidr="198.18.207.0/24", gateway_ip=None))
    with pytest.raises(netns.PlacementError, match="no gateway_ip"):
        placement.prepare(lb)
    assert not os.path.lexists(netns.namespace_path(netns.namespace_name(lb.id)))
    assert netns.link_address(netns.bridge_name(lb.vip.subnet_id or "")) is None


HAPROXY_CFG = """\
global
    log stdout format raw local0 emerg
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend vip
    bind {vip}:80
    http-request return status 200 content-type text/plain string "Welcome to lb\\n"
"""


def test_haproxy_in_qlbaas_answers_soon_after_prepare(net: Net, placement: TrackedPlacement,
                                                      tmp_path: Path, report: Report) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    subnet = net.subnet(208)
    lb = subnet.load_balancer(10)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(vip=lb.vip.address))

    start = time.monotonic()
    placement.prepare(lb)
    prepared = time.monotonic()
    # As the HAProxy process control will: Popen with the placement's preexec_fn.
    proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=placement.preexec(lb.id))
    net.procs.append(proc)
    placement.announce(lb)
    net.wait_200(f"http://{lb.vip.address}/")
    done = time.monotonic()
    report("netns_prepare_before_haproxy", (prepared - start) * 1000, "ms")
    report("netns_prepare_haproxy_to_first_200", (done - start) * 1000, "ms")
    assert net.get(f"http://{lb.vip.address}/").text == "Welcome to lb\n"


def test_parallel_prepare_and_teardown_on_one_subnet(net: Net,
                                                     placement: TrackedPlacement) -> None:
    # The worker plumbs several load balancers at once; they share the
    # subnet's bridge, which must be neither created twice nor deleted early.
    subnet = net.subnet(209)
    lbs = [subnet.load_balancer(10 + i) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(placement.prepare, lbs))
    assert sorted(netns.bridge_ports(subnet.bridge)) == sorted(
        netns.veth_names(lb.id).host for lb in lbs)
    for lb in lbs:
        _serve_in_lb(net, lb.id, lb.vip.address)
        assert net.get(f"http://{lb.vip.address}/").status_code == 200
    for proc in net.procs:
        stop_process(proc)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(placement.teardown, [lb.id for lb in lbs]))
    assert netns.link_address(subnet.bridge) is None
    assert not [lb for lb in lbs if netns.namespace_exists(netns.namespace_name(lb.id))]
