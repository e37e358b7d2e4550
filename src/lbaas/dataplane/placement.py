"""Where a load balancer's HAProxy runs and how its VIP becomes reachable.

Two placements, chosen by configuration (``[haproxy_amphora] placement``):

- ``local`` (default): HAProxy in the host's network namespace; VIPs are on
  the default 127.0.0.0/8 subnet, which Linux routes to ``lo`` already.
  A tenant's listener there shares the host's ports: a VIP on port 22 would
  keep the host's sshd (bound to the wildcard address) from starting again.
  So listeners may use only the ports of ``[haproxy_amphora]
  local_listener_ports`` (1024-65535 by default) and never one of lbaas's own
  endpoints (:mod:`lbaas.common.endpoints`).
- ``namespace`` (root): the neutron-lbaas layout: a network namespace
  ``qlbaas-<lb_id>`` per load balancer, joined by a veth pair to a Linux
  bridge for the VIP's subnet (the bridge holds the subnet's gateway address),
  the VIP on the namespace end, a default route via the gateway, and a
  gratuitous ARP so that neighbours forget an old MAC at once. It also
  serves ACTIVE_STANDBY: a namespace ``amphora-<amphora_id>`` per amphora,
  each with its own address on the VIP's subnet, the VIP held by keepalived.

Methods that take an ``amphora`` (or ``amphora_id``) act on that amphora of
an ACTIVE_STANDBY load balancer; without one, on a SINGLE load balancer.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Protocol

from lbaas.common import constants as c
from lbaas.common import endpoints
from lbaas.common.endpoints import Endpoint
from lbaas.common.exceptions import UnsupportedOption
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec

ACTIVE_STANDBY_NEEDS_NAMESPACES = (
    "ACTIVE_STANDBY topology needs the namespace placement ([haproxy_amphora] placement = "
    "namespace): each amphora needs a network namespace of its own, with its own address, "
    "for the VIP to move between them; the local placement serves SINGLE only")

PortRanges = tuple[tuple[int, int], ...]
# Unprivileged ports: the well-known ones are the host's services'.
DEFAULT_LOCAL_LISTENER_PORTS = "1024-65535"


def parse_port_ranges(text: str) -> PortRanges:
    """``"80,443,1024-65535"`` as ``((80, 80), (443, 443), (1024, 65535))``.

    Raises ValueError naming what is not a port or a range of ports (1-65535).
    """
    ranges = []
    for item in (part.strip() for part in text.split(",")):
        low, _, high = item.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"{item!r} is not a port or a range of ports") from None
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"{item!r} is not a range of ports within 1-65535")
        ranges.append((first, last))
    return tuple(ranges)


class Placement(Protocol):
    """Network plumbing around one load balancer's HAProxy."""

    name: str

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption(reason)`` if this placement cannot serve ``lb``'s VIPs.

        Called by the provider driver while the API still holds the request,
        so that the tenant gets a 501 instead of a load balancer in ERROR.
        """

    def prepare(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        """Make ``lb``'s VIP (or ``amphora``'s port) exist where HAProxy will bind
        (idempotent)."""

    def announce(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        """Tell neighbours where the VIP (or ``amphora``'s address) is now (gratuitous
        ARP); after HAProxy starts."""

    def teardown(self, lb_id: str, amphora_id: str | None = None) -> None:
        """Remove everything :meth:`prepare` made for ``lb_id`` or its amphora (idempotent)."""

    def namespace(self, lb_id: str, amphora_id: str | None = None) -> str | None:
        """The network namespace HAProxy runs in, or None for the host's."""

    def preexec(self, lb_id: str, amphora_id: str | None = None) -> Callable[[], None] | None:
        """A function for ``subprocess.Popen(preexec_fn=...)`` that enters the namespace."""

    def interface(self, lb_id: str, amphora_id: str | None = None) -> str:
        """The interface on the VIP's subnet in the namespace (keepalived's)."""

    def hold_vip(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> None:
        """Keep serving the VIP's packets in ``amphora`` while keepalived gives it up."""

    def forward_strays(self, lb: LoadBalancerSpec, amphora: AmphoraSpec, to: str) -> None:
        """During a handover to ``amphora``: packets of connections it does not know go on
        to ``to``, the retiring MASTER's address."""

    def stop_forwarding(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> None:
        """End :meth:`forward_strays`."""

    def broken(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> str | None:
        """Why ``amphora``'s plumbing cannot carry traffic, or None."""


class LocalPlacement:
    """HAProxy in the host's namespace; nothing to plumb (127.0.0.0/8 is on ``lo``).

    ``ports`` are the listener ports tenants may use (``[haproxy_amphora]
    local_listener_ports``); ``control_plane`` the endpoints no listener may take.
    """

    name = "local"

    def __init__(self, ports: PortRanges | None = None,
                 control_plane: tuple[Endpoint, ...] = ()) -> None:
        self.ports = ports if ports is not None else parse_port_ranges(
            DEFAULT_LOCAL_LISTENER_PORTS)
        self.control_plane = control_plane

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Every VIP must be an address of this host (127.0.0.0/8 is; so are the
        addresses of its interfaces), since HAProxy binds it in the host's
        namespace (checked by binding a throw-away socket to the address, port
        0); every listener's port must be one of :attr:`ports` and reach no
        control-plane endpoint on any VIP; and the topology SINGLE (two
        amphorae cannot share the host's addresses).
        """
        if lb.topology == c.TOPOLOGY_ACTIVE_STANDBY:
            raise UnsupportedOption(ACTIVE_STANDBY_NEEDS_NAMESPACES)
        vips = [vip.address for vip in (lb.vip, *lb.additional_vips) if vip.address]
        for address in vips:
            if not _local_address(address):
                raise UnsupportedOption(
                    f"VIP {address} is not an address of this host; the local placement "
                    "serves VIPs on 127.0.0.0/8 or routed to this host (the namespace "
                    "placement serves any subnet)")
        for listener in lb.listeners:
            port = listener.protocol_port
            if not any(low <= port <= high for low, high in self.ports):
                allowed = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ports)
                raise UnsupportedOption(
                    f"listener port {port}: in the local placement listeners share the "
                    f"host's ports and may use {allowed} ([haproxy_amphora] "
                    "local_listener_ports)")
            for address in vips:
                ep = endpoints.reached(self.control_plane, address, port)
                if ep is not None:
                    raise UnsupportedOption(f"listener port {port} on VIP {address}: it is "
                                            f"{ep.what} ({ep})")

    def prepare(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        """Nothing: every 127.0.0.0/8 address is local."""

    def announce(self, lb: LoadBalancerSpec, amphora: AmphoraSpec | None = None) -> None:
        """Nothing to announce on loopback."""

    def teardown(self, lb_id: str, amphora_id: str | None = None) -> None:
        """Nothing was made."""

    def namespace(self, lb_id: str, amphora_id: str | None = None) -> str | None:
        """The host's own namespace."""
        return None

    def preexec(self, lb_id: str, amphora_id: str | None = None) -> Callable[[], None] | None:
        """No namespace to enter."""
        return None

    def interface(self, lb_id: str, amphora_id: str | None = None) -> str:
        """None here: ACTIVE_STANDBY is refused (:meth:`validate`)."""
        raise UnsupportedOption(ACTIVE_STANDBY_NEEDS_NAMESPACES)

    def hold_vip(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> None:
        """Never called: ACTIVE_STANDBY is refused (:meth:`validate`)."""
        raise UnsupportedOption(ACTIVE_STANDBY_NEEDS_NAMESPACES)

    def forward_strays(self, lb: LoadBalancerSpec, amphora: AmphoraSpec, to: str) -> None:
        """Never called: ACTIVE_STANDBY is refused (:meth:`validate`)."""
        raise UnsupportedOption(ACTIVE_STANDBY_NEEDS_NAMESPACES)

    def stop_forwarding(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> None:
        """Never called: ACTIVE_STANDBY is refused (:meth:`validate`)."""
        raise UnsupportedOption(ACTIVE_STANDBY_NEEDS_NAMESPACES)

    def broken(self, lb: LoadBalancerSpec, amphora: AmphoraSpec) -> str | None:
        """Never called: ACTIVE_STANDBY is refused (:meth:`validate`)."""
        raise UnsupportedOption(ACTIVE_STANDBY_NEEDS_NAMESPACES)


def _local_address(address: str) -> bool:
    """True if a socket can bind ``address`` here (it is one of this host's)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except socket.gaierror:  # not an address at all
            return False
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True
