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

import errno
import socket
from collections.abc import Callable
from typing import Protocol

from lbaas.common.exceptions import UnsupportedOption
from lbaas.dataplane.spec import LoadBalancerSpec


class Placement(Protocol):
    """Network plumbing around one load balancer's HAProxy."""

    name: str

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption(reason)`` if this placement cannot serve ``lb``'s VIPs.

        Called by the provider driver while the API still holds the request,
        so that the tenant gets a 501 instead of a load balancer in ERROR.
        """

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

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Every VIP must be an address of this host (127.0.0.0/8 is; so are the
        addresses of its interfaces), since HAProxy binds it in the host's namespace.

        Checked by binding a throw-away socket to the address (port 0).
        """
        for vip in (lb.vip, *lb.additional_vips):
            if vip.address and not _local_address(vip.address):
                raise UnsupportedOption(
                    f"VIP {vip.address} is not an address of this host; the local placement "
                    "serves VIPs on 127.0.0.0/8 or on the host's own addresses (the namespace "
                    "placement serves any subnet)")

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


def _local_address(address: str) -> bool:
    """True if a socket can bind ``address`` here (it is one of this host's)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True
