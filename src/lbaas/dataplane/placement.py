"""Where a load balancer's HAProxy runs and how its VIP becomes reachable.

Two placements, chosen by configuration (``[haproxy_amphora] placement``):

- ``local`` (default): HAProxy in the host's network namespace; VIPs are on
  the default 127.0.0.0/8 subnet, which Linux routes to ``lo`` already.
- ``namespace`` (root): the neutron-lbaas layout: a network namespace
  ``qlbaas-<lb_id>`` per load balancer, joined by a veth pair to a Linux
  bridge for the VIP's subnet (the bridge holds the subnet's gateway address),
  the VIP on the namespace end, a default route via the gateway, and a
  gratuitous ARP so that neighbours forget an old MAC at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lbaas.dataplane.spec import LoadBalancerSpec


class Placement(Protocol):
    """Network plumbing around one load balancer's HAProxy."""

    name: str

    def prepare(self, lb: LoadBalancerSpec) -> None:
        """Make ``lb``'s VIP exist where HAProxy will bind (idempotent)."""

    def announce(self, lb: LoadBalancerSpec) -> None:
        """Tell neighbours where the VIP is now (gratuitous ARP); after HAProxy starts."""

    def teardown(self, lb_id: str) -> None:
        """Remove everything :meth:`prepare` made for ``lb_id`` (idempotent)."""

    def namespace(self, lb_id: str) -> str | None:
        """The network namespace HAProxy runs in, or None for the host's."""

    def preexec(self, lb_id: str) -> Callable[[], None] | None:
        """A function for ``subprocess.Popen(preexec_fn=...)`` that enters the namespace."""


class LocalPlacement:
    """HAProxy in the host's namespace; nothing to plumb (127.0.0.0/8 is on ``lo``)."""

    name = "local"

    def prepare(self, lb: LoadBalancerSpec) -> None:
        """Nothing: every 127.0.0.0/8 address is local."""

    def announce(self, lb: LoadBalancerSpec) -> None:
        """Nothing to announce on loopback."""

    def teardown(self, lb_id: str) -> None:
        """Nothing was made."""

    def namespace(self, lb_id: str) -> str | None:
        """The host's own namespace."""
        return None

    def preexec(self, lb_id: str) -> Callable[[], None] | None:
        """No namespace to enter."""
        return None
