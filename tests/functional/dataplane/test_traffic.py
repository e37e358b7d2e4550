"""Traffic through real HAProxy: algorithms, persistence, member states, health monitors."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx

from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port
from tests.support.specs import http_lb, member, with_listener, with_members, with_pool

URL = "http://127.0.0.1:{port}/"


def names(port: int, n: int, **kw: object) -> list[str]:
    """Who answered each of ``n`` requests, each on a new connection."""
    out = []
    for _ in range(n):
        r = httpx.get(URL.format(port=port), timeout=5, **kw)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        out.append(r.text.strip().removeprefix("Welcome to "))
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_round_robin_alternates(amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    amphorae.apply(http_lb("lb1", port, (member("m1", web1.port), member("m2", web2.port))))
    got = names(port, 6)
    assert got in (["web1", "web2"] * 3, ["web2", "web1"] * 3), got


def test_least_connections_prefers_the_idle_member(amphorae: Amphorae,
                                                   backend: Callable[..., Backend]) -> None:
    # Echo backends: a connection stays open (busy) until the client closes it.
    web1, web2 = (backend(name, tcp_port=0, tcp_echo=True) for name in ("web1", "web2"))
    port = free_port()
    amphorae.apply(http_lb("lb1", port, (member("m1", web1.tcp_port), member("m2", web2.tcp_port)),
                           protocol="TCP", algorithm="LEAST_CONNECTIONS"))

    def connect() -> tuple[socket.socket, str]:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        return sock, sock.recv(100).decode().strip().removeprefix("Welcome to ")

    first, a = connect()
    second, b = connect()
    assert {a, b} == {"web1", "web2"}  # the busy one is avoided
    first.close()
    wait_for(lambda: all(r.scur == 0 for r in amphorae.stats("lb1").servers if r.name ==
                         ("m1" if a == "web1" else "m2")))
    third, c = connect()
    assert c == a  # the member whose connection closed has the fewest now
    second.close()
    third.close()


def test_source_ip_pins_each_client_address(amphorae: Amphorae,
                                            backend: Callable[..., Backend]) -> None:
    webs = [backend(f"web{i}") for i in range(1, 4)]
    port = free_port()
    amphorae.apply(http_lb("lb1", port, tuple(member(f"m{i}", w.port)
                                              for i, w in enumerate(webs, 1)),
                           algorithm="SOURCE_IP"))
    seen = set()
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport, timeout=5) as client:
            got = {client.get(URL.format(port=port),
                              headers={"Connection": "close"}).text for _ in range(5)}
        assert len(got) == 1, (source, got)  # one source, one member
        seen |= got
    assert seen  # (several sources may hash to the same member)


def test_http_cookie_pins_a_client(amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    amphorae.apply(http_lb("lb1", port, (member("m1", web1.port), member("m2", web2.port)),
                           session_persistence=s.SessionPersistenceSpec(type="HTTP_COOKIE")))
    first = httpx.get(URL.format(port=port), timeout=5)
    cookie = first.cookies.get("SRV")
    assert cookie in ("m1", "m2")
    answers = {httpx.get(URL.format(port=port), cookies={"SRV": cookie}, timeout=5).text
               for _ in range(6)}
    assert answers == {first.text}


def test_app_cookie_pins_a_client(amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1 = backend("web1", set_cookie="JSESSIONID")
    web2 = backend("web2", set_cookie="JSESSIONID")
    port = free_port()
    amphorae.apply(http_lb("lb1", port, (member("m1", web1.port), member("m2", web2.port)),
                           session_persistence=s.SessionPersistenceSpec(
                               type="APP_COOKIE", cookie_name="JSESSIONID")))
    first = httpx.get(URL.format(port=port), timeout=5)
    session = first.cookies["JSESSIONID"]
    answers = {httpx.get(URL.format(port=port), cookies={"JSESSIONID": session}, timeout=5).text
               for _ in range(6)}
    assert answers == {first.text}


def test_disabled_and_zero_weight_members_get_no_new_traffic(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1, web2, web3 = backend("web1"), backend("web2"), backend("web3")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),
                               member("m2", web2.port, admin_state_up=False),
                               member("m3", web3.port, weight=0)))
    amphorae.apply(lb)  # rendered into the file at start
    assert set(names(port, 6)) == {"web1"}
    # and changed at runtime: m2 enabled, m1 drained to weight 0
    lb2 = with_members(lb, member("m1", web1.port, weight=0), member("m2", web2.port),
                       member("m3", web3.port, weight=0))
    assert amphorae.apply(lb2).action == "runtime"
    assert set(names(port, 6)) == {"web2"}


def monitored_lb(port: int, web1: Backend, web2: Backend, delay: int) -> s.LoadBalancerSpec:
    """lb1 with members m1 (web1) and m2 (web2) under an HTTP monitor that
    takes a member down at its first failed check, every ``delay`` seconds."""
    hm = s.HealthMonitorSpec(id="hm1", type="HTTP", delay=delay, timeout=1, max_retries=1,
                             max_retries_down=1, url_path="/health", expected_codes="200")
    return http_lb("lb1", port, (member("m1", web1.port), member("m2", web2.port)),
                   health_monitor=hm)


def server_status(amphorae: Amphorae, mid: str) -> str:
    """HAProxy's status of member ``mid`` of lb1 ("UP", "DOWN", "no check"...)."""
    return next(x.status for x in amphorae.health("lb1").servers if x.member_id == mid)


def test_http_monitor_takes_a_failing_member_out_and_back(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    amphorae.apply(monitored_lb(port, web1, web2, delay=1))

    def status(mid: str) -> str:
        return server_status(amphorae, mid)

    wait_for(lambda: status("m2") == "UP")
    web2.status = 500
    wait_for(lambda: status("m2") == "DOWN")
    assert set(names(port, 4)) == {"web1"}
    web2.status = 200
    wait_for(lambda: status("m2") == "UP")
    assert set(names(port, 4)) == {"web1", "web2"}
    checks = {x.member_id: x.check_status for x in amphorae.health("lb1").servers}
    assert checks["m2"] == "L7OK"


def test_a_member_found_down_stays_down_through_reloads(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    lb = monitored_lb(port, web1, web2, delay=2)
    amphorae.apply(lb)

    def status(mid: str) -> str:
        return server_status(amphorae, mid)

    web2.status = 500
    wait_for(lambda: status("m2") == "DOWN")
    # A reload starts a new worker; without the saved state it would take m2
    # for UP and send it requests until its first check failed (up to 2 s).
    lb = with_listener(lb, timeout_client_data=20000)
    assert amphorae.apply(lb).action == "reloaded"
    assert status("m2") == "DOWN"
    assert set(names(port, 6)) == {"web1"}
    # Without its monitor m2 is no longer checked: it must serve again rather
    # than stay DOWN for good on a state nothing would ever correct.
    web2.status = 200
    assert amphorae.apply(with_pool(lb, health_monitor=None)).action == "reloaded"
    assert status("m2") == "no check"
    assert set(names(port, 4)) == {"web1", "web2"}


def test_members_come_and_go_without_a_reload(amphorae: Amphorae,
                                              backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    started = amphorae.apply(lb)
    grown = amphorae.apply(with_members(lb, member("m1", web1.port), member("m2", web2.port)))
    assert grown.action == "runtime" and grown.worker_pids == started.worker_pids
    assert set(names(port, 4)) == {"web1", "web2"}
    shrunk = amphorae.apply(with_members(lb, member("m2", web2.port, weight=3)))
    assert shrunk.action == "runtime" and shrunk.worker_pids == started.worker_pids
    assert set(names(port, 4)) == {"web2"}
    # the file was rewritten first and stays the truth: a reload keeps the same servers
    amphorae.process("lb1").reload()
    assert set(names(port, 4)) == {"web2"}
    assert [r.name for r in amphorae.stats("lb1").servers] == ["m2"]


def test_l7_policies_switch_reject_and_redirect(amphorae: Amphorae,
                                                backend: Callable[..., Backend]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    api_pool = s.PoolSpec(id="pool2", protocol="HTTP", lb_algorithm="ROUND_ROBIN",
                          members=(member("m2", web2.port),))
    rule = s.L7RuleSpec
    policies = (
        s.L7PolicySpec(id="to-api", action="REDIRECT_TO_POOL", position=1,
                       redirect_pool_id="pool2",
                       rules=(rule(id="r1", type="PATH", compare_type="STARTS_WITH",
                                   value="/api"),)),
        s.L7PolicySpec(id="deny", action="REJECT", position=2,
                       rules=(rule(id="r2", type="HEADER", compare_type="EQUAL_TO",
                                   key="X-Evil", value="yes 'really' #1"),)),
        s.L7PolicySpec(id="moved", action="REDIRECT_PREFIX", position=3,
                       redirect_prefix="https://example.com/a%20b", redirect_http_code=301,
                       rules=(rule(id="r3", type="PATH", compare_type="EQUAL_TO",
                                   value="/old"),)),
    )
    import dataclasses

    lb = dataclasses.replace(lb, listeners=(dataclasses.replace(lb.listeners[0],
                                                                l7policies=policies),),
                             pools=(*lb.pools, api_pool))
    amphorae.apply(lb)
    base = URL.format(port=port)
    assert httpx.get(base + "api/x", timeout=5).text == "Welcome to web2\n"
    assert httpx.get(base, timeout=5).text == "Welcome to web1\n"
    # first match wins: /api with the evil header goes to the pool, elsewhere it is denied
    evil = {"X-Evil": "yes 'really' #1"}
    assert httpx.get(base + "api", headers=evil, timeout=5).status_code == 200
    assert httpx.get(base, headers=evil, timeout=5).status_code == 403
    moved = httpx.get(base + "old", timeout=5)
    assert moved.status_code == 301
    assert moved.headers["location"] == "https://example.com/a%20b/old"


def test_insert_headers_and_allowed_cidrs(amphorae: Amphorae,
                                          backend: Callable[..., Backend]) -> None:
    web1 = backend("web1")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),), listener={
        "insert_headers": (("X-Forwarded-For", "true"), ("X-Forwarded-Port", "true"),
                           ("X-Forwarded-Proto", "true")),
        "allowed_cidrs": ("127.0.0.0/30",)})
    amphorae.apply(lb)
    seen = httpx.get(URL.format(port=port) + "__backend__/headers", timeout=5).json()
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-port"] == str(port)
    assert seen["x-forwarded-proto"] == "http"
    outside = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(transport=outside, timeout=5) as client:
        try:
            r = client.get(URL.format(port=port))
            refused = False
            assert r.status_code != 200
        except httpx.TransportError:
            refused = True
    assert refused


def test_prometheus_listener_serves_metrics(amphorae: Amphorae) -> None:
    port = free_port()
    lb = s.LoadBalancerSpec(id="lb1", project_id="p", vip=s.VipSpec(address="127.0.0.1"),
                            listeners=(s.ListenerSpec(id="prom", protocol="PROMETHEUS",
                                                      protocol_port=port),))
    amphorae.apply(lb)
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200 and "haproxy_process_" in r.text
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
