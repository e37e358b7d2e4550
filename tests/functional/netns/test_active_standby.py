"""ACTIVE_STANDBY for real: two amphorae (namespaces), HAProxy and keepalived in each.

Each test builds its own subnet 198.18.<n>.0/24 (n = 212, 215, one of 216..231 here), a
backend host, a client host sending requests continuously
(:class:`~tests.support.netns_hosts.Probe`), and an ACTIVE_STANDBY load
balancer through the in-process agent (supervision on, as in ``lbaas serve``).
What needs the control plane too (an amphora replaced when the health manager
finds it broken, a failover, changes under load) is in
``tests/e2e/test_active_standby.py``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from pyroute2 import IPRoute

from lbaas.agent.local import LocalAgent
from lbaas.common.exceptions import DriverError
from lbaas.dataplane import netns
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec
from tests.functional.netns.base import Net, TrackedPlacement
from tests.support import netns_hosts
from tests.support.netns_hosts import NetnsHost, Probe, Subnet, longest_gap, wait_ready
from tests.support.specs import http_lb, member, with_listener, with_members
from tests.support.state_dirs import make_state_dir, remove_state_dir

pytestmark = [pytest.mark.root, pytest.mark.timed,  # VIP gaps under 3 s
              pytest.mark.skipif(shutil.which("keepalived") is None,
                                 reason="keepalived is not installed")]

Report = Callable[[str, float, str], None]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@pytest.fixture
def agent(placement: TrackedPlacement) -> Iterator[LocalAgent]:
    base = make_state_dir()
    try:
        amphorae = Amphorae(AmphoraSettings(base_path=base / "lb", haproxy_cmd=HAPROXY,
                                            drain_timeout=1.0), placement=placement)
        agent = LocalAgent(amphorae, supervise_interval=0.5)
        agent.start()
        try:
            yield agent
        finally:
            agent.stop()
            for lb_id in amphorae.lb_ids():
                amphorae.delete(lb_id)
    finally:  # HAProxy and keepalived left by a teardown that failed: stopped by PID
        remove_state_dir(base)


def _pair(net: Net, n: int) -> tuple[Subnet, NetnsHost, NetnsHost, LoadBalancerSpec]:
    """Subnet 198.18.<n>.0/24, a backend at .21, a client at .31, and an ACTIVE_STANDBY
    load balancer (VIP .10, amphorae .11 MASTER and .12 BACKUP) over the backend."""
    subnet = net.subnet(n)
    web = net.host(subnet, "web1", 21)
    client = net.host(subnet, "client", 31)
    web.serve_http(8080, "web1")
    lb = http_lb(str(uuid.uuid4()), 80, (member("m1", 8080, web.address),))
    lb = subnet.active_standby(dataclasses.replace(lb, vip=subnet.vip(10)), 11, 12)
    return subnet, web, client, lb


def _unrouted(net: Net, choices: range) -> int:
    """The first ``n`` of ``choices`` whose 198.18.<n>.0/24 the host does not route
    (another test, or another engineer's, may hold one)."""
    for n in choices:
        if not netns_hosts.routed(ipaddress.IPv4Network(f"198.18.{n}.0/24")):
            return n
    raise RuntimeError(f"every subnet 198.18.<{choices}>.0/24 is routed here")


def _states(agent: LocalAgent, lb: LoadBalancerSpec) -> dict[str, str | None]:
    return {a.role: agent.amphorae.vrrp_state(lb.id, a.id) for a in lb.amphorae}


def _wait(what: str, check: Callable[[], bool], timeout: float = 15.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _addresses(namespace: str, ifname: str) -> list[str]:
    with IPRoute(netns=namespace, flags=0) as ns:
        idx = ns.link_lookup(ifname=ifname)
        return sorted(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                      for a in ns.get_addr(index=idx[0], family=socket.AF_INET)) if idx else []


def _sysctl(namespace: str, name: str) -> str:
    done = netns.run_in_namespace(namespace, ["cat", "/proc/sys/" + name.replace(".", "/")],
                                  capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _kill_amphora(agent: LocalAgent, lb_id: str, amphora_id: str) -> float:
    """SIGKILL the amphora's keepalived (both processes) and HAProxy master at once: no
    priority 0 advert, nothing cleaned up. Returns the monotonic time of the kill."""
    am = agent.amphorae
    ka = am.keepalived(lb_id, amphora_id)
    pids = [ka.pid(), int(ka.files.vrrp_pid.read_text()), am.process(lb_id, amphora_id).pid()]
    killed = time.monotonic()
    for pid in pids:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    return killed


def test_the_vip_moves_to_the_backup_when_the_master_dies_and_back_again(
        net: Net, agent: LocalAgent, report: Report) -> None:
    _, _, client, lb = _pair(net, 212)
    start = time.monotonic()
    result = agent.apply(lb)
    report("active_standby_first_apply", (time.monotonic() - start) * 1000, "ms")
    assert result.action == "started"
    # Both started, the BACKUP's HAProxy first; keepalived made the MASTER-built one MASTER.
    assert [(r.amphora_id, r.action) for r in result.amphorae] == [
        (lb.amphorae[1].id, "started"), (lb.amphorae[0].id, "started")]
    assert _states(agent, lb) == {"MASTER": "MASTER", "BACKUP": "BACKUP"}
    master, backup = lb.amphorae
    for amphora in lb.amphorae:
        ns = netns.amphora_namespace_name(amphora.id)
        assert ns in netns.list_namespaces("amphora-")
        # The backup's HAProxy is bound to the VIP, which is not here yet; ARP never
        # says this MAC has the VIP unless it holds it on the veth.
        assert {name: _sysctl(ns, name) for name in netns.AMPHORA_SYSCTLS} == {
            "net.ipv4.ip_nonlocal_bind": "1", "net.ipv4.conf.all.arp_ignore": "1",
            "net.ipv4.conf.all.arp_announce": "2"}
        vip = [f"{lb.vip.address}/32"] if amphora is master else []
        assert _addresses(ns, netns.veth_names(amphora.id).namespace) == sorted(
            [f"{amphora.vrrp_ip}/24", *vip])
    assert client.get(f"http://{lb.vip.address}/") == (200, "Welcome to web1\n")
    health = {a.id: a for a in agent.stats(lb.id).amphorae}
    assert health[master.id].running and health[backup.id].running

    probe = Probe(client, lb.vip.address, timeout=0.3)
    time.sleep(0.5)
    killed = _kill_amphora(agent, lb.id, master.id)
    took_over = _wait("backup takes the VIP", lambda: _states(agent, lb)["BACKUP"] == "MASTER")
    # Supervision restarts the dead amphora at once, and it joins as BACKUP (nopreempt).
    _wait("killed amphora back as BACKUP", lambda: _states(agent, lb)["MASTER"] == "BACKUP")
    time.sleep(0.5)
    results = probe.stop()
    gap = longest_gap(results, after=killed)
    report("active_standby_master_killed_vip_gap", gap * 1000, "ms")
    report("active_standby_master_killed_takeover", took_over * 1000, "ms")
    assert results[-1].ok and results[-1].text == "Welcome_to_web1"
    assert gap < 3.0
    assert _addresses(netns.amphora_namespace_name(master.id),
                      netns.veth_names(master.id).namespace) == [f"{master.vrrp_ip}/24"]

    # Kill the new master: the VIP moves back.
    probe = Probe(client, lb.vip.address, timeout=0.3)
    time.sleep(0.5)
    killed = _kill_amphora(agent, lb.id, backup.id)
    _wait("the first amphora takes the VIP back", lambda: _states(agent, lb)["MASTER"] == "MASTER")
    _wait("killed amphora back as BACKUP", lambda: _states(agent, lb)["BACKUP"] == "BACKUP")
    time.sleep(0.5)
    results = probe.stop()
    gap = longest_gap(results, after=killed)
    report("active_standby_new_master_killed_vip_gap", gap * 1000, "ms")
    assert results[-1].ok and gap < 3.0

    # A new agent (lbaas serve restarted) adopts both amphorae as they run.
    agent.stop()
    pids = agent.amphorae.processes(lb.id)
    again = LocalAgent(agent.amphorae, supervise_interval=0.5)
    again.start()
    try:
        assert again.supervise_once() == {lb.id: "running"}
        assert agent.amphorae.processes(lb.id) == pids
        assert len(pids) == 4 and all(pid for pid, _ in pids.values())
    finally:
        again.stop()


def test_changes_and_a_rebuild_of_both_amphorae_under_load_fail_no_request(
        net: Net, agent: LocalAgent, report: Report) -> None:
    subnet, web1, client, lb = _pair(net, _unrouted(net, range(216, 232)))
    web2 = net.host(subnet, "web2", 22)
    web2.serve_http(8080, "web2")
    agent.apply(lb)
    probe = Probe(client, lb.vip.address, timeout=5.0, interval=0.01)
    # And requests answered after 300 ms, one after the other: one is in flight
    # whenever the VIP moves. Its next packets reach the new MASTER, which must
    # not reset it (the handover sends them back to the old one).
    slow = Probe(client, lb.vip.address, path="/__backend__/sleep/300", timeout=5.0,
                 interval=0.0)
    time.sleep(0.3)
    current = with_listener(lb, timeout_client_data=30000)
    result = agent.apply(current)
    # Every change reaches both, the backup first.
    assert [(r.amphora_id, r.action) for r in result.amphorae] == [
        (lb.amphorae[1].id, "reloaded"), (lb.amphorae[0].id, "reloaded")]
    for i in range(20):
        members = (member("m1", 8080, web1.address),) if i % 2 else (
            member("m1", 8080, web1.address), member("m2", 8080, web2.address, weight=1 + i))
        current = with_members(current, *members)
        result = agent.apply(current)
        assert [r.action for r in result.amphorae] == ["runtime", "runtime"]
    cfgs = {agent.amphorae.files(lb.id, a.id).cfg.read_text() for a in lb.amphorae}
    assert len(cfgs) == 1  # the same configuration on both

    # A load balancer failover: each amphora replaced in turn, the backup first.
    master, backup = current.amphorae
    start = time.monotonic()
    for old in (backup, master):
        new = AmphoraSpec(id=str(uuid.uuid4()), role=old.role, vrrp_ip=old.vrrp_ip,
                          vrrp_priority=old.vrrp_priority)
        current = dataclasses.replace(current, amphorae=tuple(
            new if a.id == old.id else a for a in current.amphorae))
        agent.apply(current)
    report("active_standby_failover_both", (time.monotonic() - start) * 1000, "ms")
    time.sleep(0.5)
    results = probe.stop()
    slow_results = slow.stop()
    assert [r for r in slow_results if not r.ok] == []
    assert len(slow_results) > 10
    failed = [r for r in results if not r.ok]
    slowest = max(r.end - r.start for r in results)
    report("active_standby_under_load_requests", len(results), "requests")
    report("active_standby_under_load_slowest", slowest * 1000, "ms")
    assert failed == []
    assert len(results) > 100
    assert {r.text for r in results} <= {"Welcome_to_web1", "Welcome_to_web2"}
    assert sorted(agent.amphorae.amphora_ids(lb.id)) == sorted(a.id for a in current.amphorae)
    assert not {netns.amphora_namespace_name(a.id) for a in lb.amphorae} & set(
        netns.list_namespaces("amphora-"))


def test_a_change_one_amphora_refuses_names_it_and_the_master_serves_as_before(
        net: Net, agent: LocalAgent) -> None:
    _, _, client, lb = _pair(net, 215)
    agent.apply(lb)
    master, backup = lb.amphorae
    # Something else holds VIP:8081 in the backup's namespace only.
    squatter = net.spawn(netns.amphora_namespace_name(backup.id), [
        sys.executable, "-I", "-c", "import socket, sys, time; s = socket.socket(); "
        f"s.bind(({lb.vip.address!r}, 8081)); s.listen(); print('ready', flush=True); "
        "time.sleep(600)"], stdout=subprocess.PIPE)
    wait_ready(squatter)
    listener = dataclasses.replace(lb.listeners[0], id="listener2", protocol_port=8081)
    changed = dataclasses.replace(lb, listeners=(*lb.listeners, listener))
    with pytest.raises(DriverError) as failed:
        agent.apply(changed)
    assert failed.value.reason.startswith(f"amphora {backup.id}: ")
    assert "8081" in failed.value.reason
    # The master was never touched: it serves what it served, and holds the VIP.
    assert "listener2" not in agent.amphorae.files(lb.id, master.id).cfg.read_text()
    assert _states(agent, lb) == {"MASTER": "MASTER", "BACKUP": "BACKUP"}
    assert client.get(f"http://{lb.vip.address}/") == (200, "Welcome to web1\n")
