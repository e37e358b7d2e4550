"""What a namespace test builds, and how it is taken down and checked.

:class:`Net` records everything one test made (load balancers prepared by a
:class:`TrackedPlacement`, host namespaces, subnets, processes) and, on
close, removes it all; :meth:`Net.leftovers` then names anything that
survived.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import httpx

from lbaas.dataplane import netns
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec
from tests.support.netns_hosts import NetnsHost, Subnet, stop_process, subnet_bridge


class TrackedPlacement(netns.NamespacePlacement):
    """A NamespacePlacement that remembers the load balancers (and amphorae) it prepared."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: set[tuple[str, str | None]] = set()  # (lb id, amphora id or None)

    def prepare(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        self.prepared.add((lb.id, amphora.id if amphora is not None else None))
        super().prepare(lb, amphora)


class Net:
    """What one test builds: subnets, hosts, processes; all removed and checked at the end."""

    def __init__(self, placement: TrackedPlacement) -> None:
        self.placement = placement
        self.stack = ExitStack()
        self.hosts: list[NetnsHost] = []
        self.bridges: list[str] = []
        self.procs: list[subprocess.Popen[Any]] = []
        self.http = httpx.Client(trust_env=False, timeout=2.0)

    def subnet(self, n: int) -> Subnet:
        """198.18.<n>.0/24 and its bridge, for this test."""
        subnet = self.stack.enter_context(subnet_bridge(n))
        self.bridges.append(subnet.bridge)
        return subnet

    def host(self, subnet: Subnet, name: str, n: int) -> NetnsHost:
        """A host namespace at ``subnet.host(n)`` on the subnet's bridge."""
        host = self.stack.enter_context(NetnsHost(subnet, name, subnet.host(n)))
        self.hosts.append(host)
        return host

    def spawn(self, namespace: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``namespace``; stopped by PID at the end of the test."""
        proc = netns.popen_in_namespace(namespace, argv, **kwargs)
        self.procs.append(proc)
        return proc

    def get(self, url: str, timeout: float = 2.0) -> httpx.Response:
        """GET from the host's own namespace (through the subnet's bridge)."""
        return self.http.get(url, timeout=timeout)

    def wait_200(self, url: str, timeout: float = 5.0) -> float:
        """Poll ``url`` from the host until it answers 200; returns the seconds it took."""
        start = time.monotonic()
        while True:
            try:
                if self.get(url, timeout=0.2).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            if time.monotonic() - start > timeout:
                raise AssertionError(f"{url} did not answer 200 within {timeout} s")
            time.sleep(0.005)

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        for lb_id, amphora_id in self.placement.prepared:
            self.placement.teardown(lb_id, amphora_id)
        self.stack.close()
        self.http.close()

    def leftovers(self) -> list[str]:
        """Names of anything this test made that still exists."""
        left = [n for n in (self.placement.namespace(*p) or "" for p in self.placement.prepared)
                if os.path.lexists(netns.namespace_path(n))]
        left += [h.namespace for h in self.hosts
                 if os.path.lexists(netns.namespace_path(h.namespace))]
        names = [netns.veth_names(amphora_id or lb_id).host
                 for lb_id, amphora_id in self.placement.prepared]
        names += [h.veth for h in self.hosts] + self.bridges
        left += [n for n in names if netns.link_address(n) is not None]
        left += [f"pid {p.pid}" for p in self.procs if p.poll() is None]
        return left
