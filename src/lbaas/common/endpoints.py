"""The control plane's own endpoints: where tenants' traffic must never go.

A member (``address``:``protocol_port``) and its health checks
(``monitor_address``:``monitor_port``) make HAProxy connect from this host,
so a member pointing at lbaas's API would let any tenant talk to it as a
local client. :func:`control_plane_endpoints` is the one list of what must
not be reached:

- the API's listening address and port (``[api_settings] bind_host`` /
  ``bind_port``); a wildcard bind (``0.0.0.0``, ``::``) is every address of
  this host at that port;
- the database server of a PostgreSQL ``[database] connection``;
- Octavia's ``[networking] reserved_ips`` (default the cloud metadata
  address 169.254.169.254), at every port.

:func:`host_addresses` are the addresses of this host's interfaces, which
no VIP may take. Remote agents (a later issue) add their endpoints here. :func:`reached`
says which endpoint a connection to an address and port would reach,
reading addresses the way the kernel does: an IPv4-mapped IPv6 address is
its IPv4 address, and ``0.0.0.0`` / ``::`` mean this host.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from lbaas.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# pyroute2's route type of an address delivered to this host (rtnetlink RTN_LOCAL).
_RTN_LOCAL = 2
_POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Endpoint:
    """An address (and port) of lbaas's own.

    ``address`` unspecified (``0.0.0.0`` / ``::``) is every address of this
    host; ``port`` None is every port. ``what`` names it in error messages.
    """

    address: IPAddress
    port: int | None
    what: str

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}" if self.port is not None else str(self.address)


def control_plane_endpoints(settings: Settings) -> tuple[Endpoint, ...]:
    """Every endpoint of this lbaas deployment that members must not reach.

    Host names (``bind_host = localhost``, a database host) are resolved
    once, here.
    """
    out = [Endpoint(address, settings.port, "the lbaas API")
           for address in _resolve(settings.host)]
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "postgresql" and url.host and not url.host.startswith("/"):
        out += [Endpoint(address, url.port or _POSTGRES_PORT, "the lbaas database")
                for address in _resolve(url.host)]
    out += [Endpoint(ipaddress.ip_address(a), None, "a reserved address "
                     "([networking] reserved_ips)") for a in settings.reserved_ips]
    return tuple(dict.fromkeys(out))


def reached(endpoints: Iterable[Endpoint], address: str, port: int) -> Endpoint | None:
    """The endpoint a TCP connection from this host to ``address``:``port`` reaches.

    None if it reaches none of ``endpoints``. ``address`` must be an IP
    address (the API has parsed it).
    """
    target = _as_dialled(ipaddress.ip_address(address))
    for ep in endpoints:
        if ep.port is not None and ep.port != port:
            continue
        if ep.address == target:
            return ep
        if ep.port is not None and ep.address.is_unspecified and _wildcard_covers(ep, target) \
                and is_local(target):
            return ep
    return None


def is_local(address: IPAddress) -> bool:
    """True if this host's routing delivers ``address`` to itself (its own
    addresses, all of 127.0.0.0/8, ::1, addresses routed to ``lo``)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        with IPRoute() as ipr:
            routes = ipr.route("get", dst=str(address))
    except NetlinkError:  # no route: not this host's
        return False
    return bool(routes) and routes[0].get("type") == _RTN_LOCAL


def host_addresses() -> frozenset[IPAddress]:
    """The addresses configured on this host's interfaces (``ip addr``: 127.0.0.1,
    ::1, each interface's own), which no VIP may take."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = {a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS") for a in ipr.get_addr()}
    return frozenset(ipaddress.ip_address(a) for a in found if a)


def _as_dialled(address: IPAddress) -> IPAddress:
    """``address`` as the kernel dials it: IPv4-mapped -> IPv4, unspecified -> loopback."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return ipaddress.ip_address("127.0.0.1" if address.version == 4 else "::1")
    return address


def _wildcard_covers(ep: Endpoint, target: IPAddress) -> bool:
    # A socket bound to "::" also takes IPv4 (Linux's default bindv6only=0).
    return ep.address.version == target.version or ep.address.version == 6


def _resolve(host: str) -> list[IPAddress]:
    """The addresses of ``host`` (an address or a name); none if it does not resolve."""
    try:
        return [_as_bound(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return list(dict.fromkeys(_as_bound(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
                              for info in infos))


def _as_bound(address: IPAddress) -> IPAddress:
    """An IPv4-mapped bind address is its IPv4 address (the socket serves that)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
