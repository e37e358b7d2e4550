"""VIP addresses: taken from a subnet's allocation pools, recorded as ports.

A VIP is a :class:`~lbaas.db.models.Port` on its subnet whose ``device_id``
is the load balancer. The default network and subnet (127.1.0.0/16 unless
configured) are created on first start so that the standalone default needs
no setup.

A VIP comes from the subnet's allocation pools, or is an address the tenant
names inside the subnet's CIDR (as Neutron allows), but never the gateway,
the network or broadcast address, an address in use, nor an address of this
host's interfaces (127.0.0.1, ::1, the interfaces' own): HAProxy would bind
it beside the host's own services.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.common import exceptions as exc
from lbaas.common.endpoints import host_addresses
from lbaas.db import locks
from lbaas.db import models as m

LOG = logging.getLogger(__name__)

DEFAULT_NETWORK_NAME = "lb-vip-network"
DEFAULT_SUBNET_NAME = "lb-vip-subnet"
VIP_DEVICE_OWNER = "Octavia"
# The default subnet's CIDR before issue 9: it holds 127.0.0.1, the host's own.
OLD_DEFAULT_CIDR = "127.0.0.0/8"


def default_subnet(session: Session) -> m.Subnet | None:
    """The shared default subnet, if it exists."""
    return session.scalars(select(m.Subnet).where(m.Subnet.name == DEFAULT_SUBNET_NAME,
                                                  m.Subnet.project_id.is_(None))).first()


def ensure_default_subnet(session: Session, cidr: str, pool: tuple[str, str]) -> m.Subnet:
    """The shared default network/subnet, created if missing (idempotent).

    Raises ValueError if ``pool`` (first and last address) is not inside
    ``cidr`` (``[networking] default_subnet_*``).
    """
    subnet = default_subnet(session)
    if subnet is not None:
        return subnet
    net = ipaddress.ip_network(cidr, strict=False)
    if any(ipaddress.ip_address(a) not in net for a in pool):
        raise ValueError(f"[networking] default_subnet_pool_start/_end {pool[0]}-{pool[1]} "
                         f"is not inside default_subnet_cidr {net.with_prefixlen}")
    network = m.Network(name=DEFAULT_NETWORK_NAME, project_id=None, shared=True,
                        description="VIPs of the standalone default (loopback)")
    subnet = m.Subnet(name=DEFAULT_SUBNET_NAME, project_id=None, ip_version=net.version,
                      cidr=net.with_prefixlen, gateway_ip=None,
                      allocation_pools=[{"start": pool[0], "end": pool[1]}],
                      description="VIPs of the standalone default (loopback)")
    network.subnets.append(subnet)
    session.add(network)
    session.flush()
    return subnet


def narrow_old_default_subnet(session: Session, cidr: str, pool: tuple[str, str]) -> None:
    """Start-up fix for databases made before issue 9: a default subnet of
    127.0.0.0/8 becomes the configured ``cidr`` and ``pool``.

    Kept as it is (with a warning naming the load balancers) if a VIP on it
    lies outside ``cidr``; those VIPs keep working either way, and no new VIP
    takes a host address (:func:`allocate`).
    """
    subnet = default_subnet(session)
    if subnet is None or subnet.cidr != OLD_DEFAULT_CIDR or cidr == OLD_DEFAULT_CIDR:
        return
    net = ipaddress.ip_network(cidr, strict=False)
    outside = session.scalars(select(m.Port).where(m.Port.subnet_id == subnet.id)).all()
    outside = [p for p in outside if ipaddress.ip_address(p.ip_address) not in net]
    if outside:
        LOG.warning("default subnet %s stays %s: VIPs outside %s are in use (%s)", subnet.id,
                    subnet.cidr, cidr, ", ".join(f"{p.ip_address} of load balancer "
                                                 f"{p.device_id}" for p in outside))
        return
    LOG.info("default subnet %s: %s narrowed to %s (it held the host's own 127.0.0.1)",
             subnet.id, subnet.cidr, net.with_prefixlen)
    subnet.cidr = net.with_prefixlen
    subnet.allocation_pools = [{"start": pool[0], "end": pool[1]}]


def _pool_addresses(subnet: m.Subnet) -> Iterator[str]:
    for pool in subnet.allocation_pools or []:
        start = int(ipaddress.ip_address(pool["start"]))
        end = int(ipaddress.ip_address(pool["end"]))
        for n in range(start, end + 1):
            yield str(ipaddress.ip_address(n) if subnet.ip_version == 4
                      else ipaddress.IPv6Address(n))


def reserved_addresses(subnet: m.Subnet) -> set[str]:
    """Addresses of ``subnet`` no VIP may take: the gateway, and for IPv4 prefixes
    shorter than /31 the network and broadcast addresses."""
    net = ipaddress.ip_network(subnet.cidr, strict=False)
    reserved = {subnet.gateway_ip} if subnet.gateway_ip else set()
    if net.version == 4 and net.prefixlen < 31:
        reserved |= {str(net.network_address), str(net.broadcast_address)}
    elif net.version == 6:
        reserved.add(str(net.network_address))  # the subnet-router anycast address
    return reserved


def in_subnet(subnet: m.Subnet, address: str) -> bool:
    """True if ``address`` lies in ``subnet``'s CIDR."""
    return ipaddress.ip_address(address) in ipaddress.ip_network(subnet.cidr, strict=False)


def allocate(session: Session, subnet: m.Subnet, device_id: str,
             address: str | None = None) -> m.Port:
    """Take ``address`` (or the first free pool address) on ``subnet`` for ``device_id``.

    Raises InvalidIPAddress (400) if ``address`` is outside the subnet or
    its gateway, network or broadcast address, VIPAddressConflict (409) if it
    is taken or an address of this host, IPAddressExhausted (409) if the
    pools are full. Exact under concurrency: the subnet's row lock
    (:func:`lbaas.db.locks.lock_subnet`) is held from this read of the used
    addresses to the transaction's end.
    """
    locks.lock_subnet(session, subnet.id)
    used = set(session.scalars(select(m.Port.ip_address).where(m.Port.subnet_id == subnet.id)))
    host = {str(a) for a in host_addresses()}
    if address is not None:
        address = str(ipaddress.ip_address(address))
        if not in_subnet(subnet, address) or address in reserved_addresses(subnet):
            raise exc.InvalidIPAddress(ip_addr=address)
        if address in used:
            raise exc.VIPAddressConflict(msg=f"{address} on subnet {subnet.id}")
        if address in host:
            raise exc.VIPAddressConflict(msg=f"{address} is an address of this host")
    else:
        taken = used | reserved_addresses(subnet) | host
        address = next((a for a in _pool_addresses(subnet) if a not in taken), None)
        if address is None:
            raise exc.IPAddressExhausted(net_id=subnet.network_id)
    port = m.Port(id=m.new_id(), name=f"lbaas-vip-{device_id}", project_id=subnet.project_id,
                  network_id=subnet.network_id, subnet_id=subnet.id, ip_address=address,
                  device_id=device_id, device_owner=VIP_DEVICE_OWNER)
    session.add(port)
    return port
