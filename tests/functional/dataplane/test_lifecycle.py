"""The apply transaction, failures, supervision, adoption and deletion with real HAProxy."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lbaas.agent.local import NO_SPEC, RESTART_BURST, LocalAgent
from lbaas.common.exceptions import DriverError
from lbaas.dataplane import render
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.dataplane.errors import ConfigCheckError, ProcessError
from lbaas.dataplane.haproxy import LbFiles
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.drivers.haproxy import HaproxyDriver
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import HAPROXY, free_port, squat
from tests.support.specs import http_lb, member, with_listener

BROKEN_TIMEOUT = 12345  # a listener timeout that makes the test renderer break the config


def get(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text


def answers(port: int, text: str = "Welcome to web1\n") -> bool:
    """True if a request to ``port`` gets ``text`` (False if refused)."""
    try:
        return get(port) == text
    except httpx.TransportError:
        return False


def wait_for_seconds(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until ``predicate()`` held (checked every 10 ms); AssertionError after
    ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    wait_for_seconds(predicate, timeout)


def test_files_of_an_applied_load_balancer(amphorae: Amphorae,
                                           backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    result = amphorae.apply(lb)
    f = amphorae.files("lb1")
    assert result.action == "started" and result.master_pid == int(f.pid.read_text())
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(lb)
    assert f.master_socket.exists() and f.stats_socket.exists()
    assert amphorae.last_spec("lb1") == lb
    assert get(port) == "Welcome to web1\n"


def test_unchanged_apply_is_a_no_op(amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    lb = http_lb("lb1", free_port(), (member("m1", web1.port),))
    first = amphorae.apply(lb)
    again = amphorae.apply(lb)
    assert again.action == "unchanged"
    assert (again.master_pid, again.worker_pids) == (first.master_pid, first.worker_pids)
    procs = amphorae.process("lb1").processes()
    assert procs is not None and procs.reloads == 0


def test_a_listener_change_reloads_seamlessly(amphorae: Amphorae,
                                              backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    first = amphorae.apply(lb)
    second = amphorae.apply(with_listener(lb, timeout_client_data=20000))
    assert second.action == "reloaded"
    assert second.master_pid == first.master_pid and second.worker_pids != first.worker_pids
    assert "timeout client 20000" in amphorae.files("lb1").cfg.read_text()
    assert get(port) == "Welcome to web1\n"


def _breaking_renderer(lb: LoadBalancerSpec, paths: render.ConfigPaths | None = None,
                       tuning: render.Tuning | None = None) -> str:
    text = render.render(lb, paths, tuning)
    if lb.listeners and lb.listeners[0].timeout_client_data == BROKEN_TIMEOUT:
        text += "    no-such-directive here\n"
    return text


def test_a_config_haproxy_refuses_keeps_the_old_one_serving(
        base_path: Path, backend: Callable[..., Backend]) -> None:
    am = Amphorae(AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY),
                  renderer=_breaking_renderer)
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    try:
        first = am.apply(lb)
        good = am.files("lb1").cfg.read_text()
        with pytest.raises(ConfigCheckError) as caught:
            am.apply(with_listener(lb, timeout_client_data=BROKEN_TIMEOUT))
        assert isinstance(caught.value, DriverError)
        assert "no-such-directive" in caught.value.reason  # HAProxy's own message
        f = am.files("lb1")
        assert "no-such-directive" in f.failed.read_text()
        assert f.cfg.read_text() == f.good.read_text() == good
        assert am.pids("lb1") == (first.master_pid, first.worker_pids)  # not even reloaded
        assert get(port) == "Welcome to web1\n"
        assert am.apply(lb).action == "unchanged"
    finally:
        for lb_id in am.lb_ids():
            am.delete(lb_id)


def test_a_reload_that_fails_keeps_the_old_one_serving(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port, taken = free_port(), free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    first = amphorae.apply(lb)
    second_listener = with_listener(lb)
    import dataclasses

    blocked = dataclasses.replace(second_listener, listeners=(
        *lb.listeners, dataclasses.replace(lb.listeners[0], id="listener2",
                                           protocol_port=taken)))
    with socket.socket() as squatter:  # no SO_REUSEPORT: HAProxy cannot bind next to it
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with pytest.raises(ProcessError) as caught:
            amphorae.apply(blocked)
    assert "cannot bind socket" in caught.value.reason
    f = amphorae.files("lb1")
    assert "listener2" in f.failed.read_text()
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(lb)
    assert amphorae.pids("lb1") == (first.master_pid, first.worker_pids)
    assert get(port) == "Welcome to web1\n"
    # the port is free now: the same change goes through
    assert amphorae.apply(blocked).action == "reloaded"


def test_start_failure_reports_haproxy_message(amphorae: Amphorae) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(ProcessError, match="cannot bind socket"):
            amphorae.apply(http_lb("lb1", port, (member("m1", 1),)))
    assert not amphorae.process("lb1").alive()


def test_delete_stops_haproxy_and_removes_its_directory(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    result = amphorae.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    assert amphorae.delete("lb1") is True
    assert not amphorae.files("lb1").root.exists()
    assert not Path(f"/proc/{result.master_pid}").exists() or \
        Path(f"/proc/{result.master_pid}/stat").read_text().split()[2] == "Z"
    with pytest.raises(httpx.TransportError):
        get(port)
    assert amphorae.delete("lb1") is False  # idempotent


def test_concurrent_applies_coalesce_into_few_reloads(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    agent = LocalAgent(amphorae)
    agent.apply(lb)
    specs = [with_listener(lb, timeout_client_data=10000 + i) for i in range(8)]
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(agent.apply(s)))
               for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    procs = amphorae.process("lb1").processes()
    assert procs is not None and procs.reloads <= 3, procs  # 8 changes, at most 3 reloads
    installed = amphorae.files("lb1").cfg.read_text()
    assert any(f"timeout client {s.listeners[0].timeout_client_data}\n" in installed
               for s in specs)
    assert get(port) == "Welcome to web1\n"


def test_supervision_restarts_a_killed_haproxy(amphorae: Amphorae,
                                               backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    agent = LocalAgent(amphorae, supervise_interval=0.2)
    first = agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    agent.start()
    try:
        assert first.master_pid is not None
        os.kill(first.master_pid, signal.SIGKILL)
        wait_for(lambda: amphorae.pids("lb1")[0] not in (None, first.master_pid)
                 and bool(amphorae.pids("lb1")[1]))
        wait_for(lambda: get(port) == "Welcome to web1\n")
        assert agent.health("lb1").alive
    finally:
        agent.stop()


def test_a_new_agent_adopts_running_haproxy(base_path: Path,
                                            backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    settings = AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY)
    old = LocalAgent(Amphorae(settings), supervise_interval=0.2)
    old.start()
    first = old.apply(lb)
    old.stop()  # the control plane goes away; HAProxy keeps serving
    assert get(port) == "Welcome to web1\n"
    new_amphorae = Amphorae(settings)
    new = LocalAgent(new_amphorae, supervise_interval=0.2)
    try:
        assert new.supervise_once() == {"lb1": "running"}
        new.start()
        assert new_amphorae.pids("lb1") == (first.master_pid, first.worker_pids)
        assert new.apply(lb).action == "unchanged"
        # and the restarted agent can still diff: a member change is hitless
        web2 = backend("web2")
        grown = new.apply(http_lb("lb1", port, (member("m1", web1.port),
                                                member("m2", web2.port))))
        assert grown.action == "runtime" and grown.worker_pids == first.worker_pids
    finally:
        new.stop()
        for lb_id in new_amphorae.lb_ids():
            new_amphorae.delete(lb_id)


def test_agent_start_restarts_what_died_while_it_was_away(
        base_path: Path, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    settings = AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY)
    am = Amphorae(settings)
    first = am.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    assert first.master_pid is not None
    os.kill(first.master_pid, signal.SIGKILL)
    wait_for(lambda: not am.process("lb1").alive())
    agent = LocalAgent(Amphorae(settings))
    try:
        assert agent.supervise_once() == {"lb1": "restarted"}
        assert get(port) == "Welcome to web1\n"
    finally:
        am.delete("lb1")


def test_driver_over_local_agent(amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    agent = LocalAgent(amphorae)
    driver = HaproxyDriver(agent)
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    driver.validate(lb)
    driver.apply(lb)
    assert get(port) == "Welcome to web1\n"
    stats = agent.stats("lb1")
    assert stats.running and [r.name for r in stats.servers] == ["m1"]
    assert stats.frontends[0].listener_id == "listener1"
    assert stats.servers[0].pool_id == "pool1" and stats.servers[0].stot >= 1
    assert stats.frontends[0].bin > 0 and stats.frontends[0].bout > 0
    health = agent.health("lb1")
    assert health.alive and health.listeners == (("listener1", "OPEN"),)
    assert health.to_dict()["servers"][0]["member_id"] == "m1"
    driver.failover(lb)
    assert get(port) == "Welcome to web1\n"
    driver.delete(lb)
    assert not agent.health("lb1").alive and not agent.stats("lb1").running


def _argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_ps_tells_which_load_balancer_each_haproxy_serves(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    first = amphorae.apply(lb)
    root = amphorae.files("lb1").root.resolve()
    expected = ["-p", f"{root}/haproxy.pid", "-f", f"{root}/haproxy.cfg"]
    assert first.master_pid is not None
    for pid in (first.master_pid, *first.worker_pids):
        argv = _argv(pid)
        assert argv[0] == HAPROXY and argv[1:2] == ["-W"], argv
        assert " ".join(expected) in " ".join(argv), argv
    # A reload re-executes the master with the same arguments (plus -x and -sf).
    second = amphorae.apply(with_listener(lb, timeout_client_data=20000))
    assert second.action == "reloaded"
    for pid in (first.master_pid, *second.worker_pids):
        assert " ".join(expected) in " ".join(_argv(pid))


def test_a_master_started_with_the_previous_command_line_is_adopted(
        base_path: Path, backend: Callable[..., Backend]) -> None:
    """Masters of earlier versions (relative -p and -f) are adopted: identity is the pid
    file and the working directory, not the command line."""
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    settings = AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY)
    am = Amphorae(settings)
    am.apply(lb)
    am.process("lb1").stop()
    root = am.files("lb1").root
    old = subprocess.Popen([HAPROXY, "-W", "-S", "unix@master.sock,mode,600", "-p",
                            "haproxy.pid", "-f", "haproxy.cfg"], cwd=root,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    new_amphorae = Amphorae(settings)
    agent = LocalAgent(new_amphorae)
    try:
        wait_for(lambda: new_amphorae.pids("lb1")[0] == old.pid
                 and bool(new_amphorae.pids("lb1")[1]))
        wait_for(lambda: get(port) == "Welcome to web1\n")
        assert agent.supervise_once() == {"lb1": "running"}
        assert new_amphorae.pids("lb1")[0] == old.pid
        assert agent.apply(lb).action == "unchanged"
        web2 = backend("web2")
        grown = http_lb("lb1", port, (member("m1", web1.port), member("m2", web2.port)))
        assert agent.apply(grown).action == "runtime"
        reloaded = agent.apply(with_listener(grown, timeout_client_data=20000))
        assert reloaded.action == "reloaded" and reloaded.master_pid == old.pid
        assert {get(port) for _ in range(4)} == {"Welcome to web1\n", "Welcome to web2\n"}
    finally:
        new_amphorae.delete("lb1")
        old.wait(10)


def _kill(pid: int | None) -> None:
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def _damage(f: LbFiles, how: str) -> None:
    """What an operator's mistake or a full disk leaves of a load balancer's files."""
    if how == "config garbage":
        f.cfg.write_bytes(b"global\n    no-such-directive \xff\xfe\n")
        f.good.write_text("garbage\n")
    elif how == "config deleted":
        f.cfg.unlink()
        f.good.unlink()
    elif how == "config and spec deleted":  # only the agent's memory is left
        for path in (f.cfg, f.good, f.spec):
            path.unlink()
    elif how == "directory deleted":
        shutil.rmtree(f.root)


@pytest.mark.parametrize("how", ["config garbage", "config deleted", "config and spec deleted",
                                 "directory deleted"])
def test_a_killed_haproxy_comes_back_from_its_spec_not_from_the_files(
        amphorae: Amphorae, backend: Callable[..., Backend], how: str) -> None:
    """Issue 9 item 8: supervision renders the spec again (render -> check -> start)."""
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    agent = LocalAgent(amphorae, supervise_interval=0.2)
    first = agent.apply(lb)
    agent.start()
    try:
        _damage(amphorae.files("lb1"), how)
        _kill(first.master_pid)
        wait_for(lambda: amphorae.pids("lb1")[0] not in (None, first.master_pid))
        wait_for(lambda: answers(port))
        f = amphorae.files("lb1")
        # HAProxy answers before the agent keeps what it started (last good, then spec).
        wait_for(lambda: f.good.exists() and f.good.read_text() == amphorae.render(lb)
                 and amphorae.last_spec("lb1") == lb)
        assert f.cfg.read_text() == f.good.read_text() == amphorae.render(lb)
    finally:
        agent.stop()


def test_a_restarted_agent_restarts_from_spec_json(
        base_path: Path, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    settings = AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY)
    am = Amphorae(settings)
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    first = am.apply(lb)
    _damage(am.files("lb1"), "config garbage")
    _kill(first.master_pid)
    wait_for(lambda: not am.process("lb1").alive())
    agent = LocalAgent(Amphorae(settings))
    try:
        assert agent.supervise_once() == {"lb1": "restarted"}
        assert get(port) == "Welcome to web1\n"
        assert am.files("lb1").cfg.read_text() == am.render(lb)
    finally:
        am.delete("lb1")


def test_with_no_spec_left_the_agent_says_so(
        base_path: Path, backend: Callable[..., Backend]) -> None:
    """Nothing to start from: the agent reports it (the controller sends the spec again)."""
    web1 = backend("web1")
    settings = AmphoraSettings(base_path=base_path, haproxy_cmd=HAPROXY)
    am = Amphorae(settings)
    first = am.apply(http_lb("lb1", free_port(), (member("m1", web1.port),)))
    _damage(am.files("lb1"), "config and spec deleted")
    _kill(first.master_pid)
    wait_for(lambda: not am.process("lb1").alive())
    agent = LocalAgent(Amphorae(settings))
    try:
        assert agent.supervise_once() == {"lb1": "no-spec"}
        stats = agent.stats("lb1")
        assert not stats.running and stats.error == NO_SPEC
        stats = agent.stats("never-here")
        assert not stats.running and stats.error == NO_SPEC
    finally:
        am.delete("lb1")


@pytest.mark.parametrize("victim", ["master", "worker"])
def test_a_killed_haproxy_is_restarted_at_once(
        amphorae: Amphorae, backend: Callable[..., Backend], victim: str) -> None:
    """Issue 9 item 9: the master's exit is an event (pidfd), not found by a periodic pass
    (an hour apart here). A 2.6 master exits when its worker is killed."""
    web1 = backend("web1")
    port = free_port()
    agent = LocalAgent(amphorae, supervise_interval=3600)
    first = agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    agent.start()
    try:
        _kill(first.master_pid if victim == "master" else first.worker_pids[0])
        wait_for_seconds(lambda: amphorae.pids("lb1")[0] not in (None, first.master_pid)
                         and bool(amphorae.pids("lb1")[1]), timeout=60)
        assert get(port) == "Welcome to web1\n"  # within 60 s, the periodic pass is 3600 s
    finally:
        agent.stop()


def test_an_haproxy_that_cannot_be_restarted_says_why_and_is_retried(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    agent = LocalAgent(amphorae, supervise_interval=1.0)  # back-off: 2 s, then 4 s
    first = agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    _kill(first.master_pid)
    wait_for(lambda: not amphorae.process("lb1").alive())
    with squat("127.0.0.1", port) as squatter:
        agent.start()
        try:
            stats = agent.stats("lb1")
            assert not stats.running and stats.error is not None
            assert stats.error.startswith("HAProxy could not be restarted: ")
            assert "cannot bind socket" in stats.error
            squatter.close()
            wait_for(lambda: answers(port), timeout=15)
            assert agent.stats("lb1").running and agent.stats("lb1").error is None
        finally:
            agent.stop()


def test_a_crash_loop_is_held_back(amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    agent = LocalAgent(amphorae, supervise_interval=3600)
    agent.apply(http_lb("lb1", port, (member("m1", web1.port),)))
    agent.start()
    try:
        for _ in range(RESTART_BURST):
            master = amphorae.pids("lb1")[0]
            _kill(master)
            # restarted, and the restart over (not "busy"): the new master is watched
            wait_for(lambda m=master: amphorae.pids("lb1")[0] not in (None, m)
                     and agent.supervise_once() == {"lb1": "running"})
        _kill(amphorae.pids("lb1")[0])
        wait_for(lambda: not amphorae.process("lb1").alive())
        time.sleep(0.5)
        assert not amphorae.process("lb1").alive()
        assert agent.supervise_once() == {"lb1": "waiting"}
    finally:
        agent.stop()


def test_delete_and_failover_are_not_restarts(amphorae: Amphorae,
                                              backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    agent = LocalAgent(amphorae, supervise_interval=0.1)
    agent.apply(lb)
    agent.start()
    try:
        rebuilt = agent.failover(lb)
        time.sleep(0.5)
        assert amphorae.pids("lb1")[0] == rebuilt.master_pid
        agent.delete("lb1")
        time.sleep(0.5)
        assert not amphorae.files("lb1").root.exists() and amphorae.lb_ids() == []
        with pytest.raises(httpx.TransportError):
            get(port)
    finally:
        agent.stop()
