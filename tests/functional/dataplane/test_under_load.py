"""No failed request while the configuration changes under load (reloads and member changes).

A bounded load loop (at most ``LOAD_SECONDS``) runs clients on new
connections and on keep-alive connections against one load balancer while
the test applies 20 changes that need a reload (listener timeout edits) and
20 member changes (runtime API). Every request must get a 200.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from lbaas.dataplane.amphora import Amphorae
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port
from tests.support.specs import http_lb, member, with_listener, with_members

LOAD_SECONDS = 45.0  # hard bound of the load loop
CHANGES = 20  # of each kind


@dataclass
class Load:
    """Counters of a load loop (shared by its threads)."""

    ok: int = 0
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, error: str | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                self.failed.append(error)


def _client_loop(url: str, load: Load, keep_alive: bool, deadline: float) -> None:
    headers = {} if keep_alive else {"Connection": "close"}
    with httpx.Client(timeout=10) as client:
        while not load.stop.is_set() and time.monotonic() < deadline:
            try:
                r = client.get(url, headers=headers)
                load.record(None if r.status_code == 200 else f"HTTP {r.status_code}")
            except httpx.HTTPError as e:
                load.record(f"{type(e).__name__}: {e}")


def test_zero_failed_requests_across_reloads_and_member_changes(
        amphorae: Amphorae, backend: Callable[..., Backend]) -> None:
    web1, web2, web3 = backend("web1"), backend("web2"), backend("web3")
    port = free_port()
    base = (member("m1", web1.port), member("m2", web2.port))
    lb = http_lb("lb1", port, base)
    first = amphorae.apply(lb)

    load = Load()
    deadline = time.monotonic() + LOAD_SECONDS
    url = f"http://127.0.0.1:{port}/"
    threads = [threading.Thread(target=_client_loop, args=(url, load, keep_alive, deadline))
               for keep_alive in (False, False, True, True)]
    for t in threads:
        t.start()
    actions = []
    try:
        time.sleep(0.5)
        current = lb
        for i in range(CHANGES):
            current = with_listener(current, timeout_client_data=30000 + i)
            actions.append(amphorae.apply(current).action)
            time.sleep(0.1)
            members = (*base, member("m3", web3.port)) if i % 2 == 0 else \
                (member("m1", web1.port, weight=1 + i % 3), member("m2", web2.port))
            current = with_members(current, *members)
            actions.append(amphorae.apply(current).action)
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        load.stop.set()
        for t in threads:
            t.join(15)
    assert actions.count("reloaded") == CHANGES
    assert actions.count("runtime") == CHANGES
    print(f"under load: {load.ok} requests, {len(load.failed)} failed, actions {actions}")
    assert load.ok > 200, load.ok
    assert load.failed == [], f"{len(load.failed)} failed of {load.ok}: {load.failed[:5]}"
    pids = amphorae.pids("lb1")
    assert pids[0] == first.master_pid  # one master all along
