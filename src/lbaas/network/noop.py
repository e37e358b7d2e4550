"""The ``noop`` network driver: any network and subnet, a made-up VIP port.

As Octavia's ``network_noop_driver``: every network and subnet id is
accepted (nothing is looked up), and the VIP port is invented: the port id
given or a new one, the subnet and network given or new ids, the address
given or 198.51.100.1 (TEST-NET-2, Octavia's noop address). Nothing is
stored but the load balancer's own VIP fields, so two load balancers may
hold the same address. Nothing is known of a subnet's CIDR, so a provider
that needs it (the haproxy provider in ``namespace`` placement) cannot
serve these VIPs: use it with the ``noop`` provider, for API tests.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from lbaas.db.models import new_id
from lbaas.network.base import Caller, Subnet, VipPort

NOOP_VIP_ADDRESS = "198.51.100.1"


class NoopNetwork:
    """Accepts every network and subnet; VIP ports are invented, not stored."""

    name = "noop"

    def get_subnet(self, db: Session, caller: Caller, subnet_id: str) -> Subnet:
        """Any subnet exists, on an unknown network."""
        return Subnet(id=subnet_id, network_id="")

    def vip_subnet(self, db: Session, subnet_id: str) -> Subnet | None:
        """Nothing is known of any subnet."""
        return None

    def allocate_vip(self, db: Session, caller: Caller, device_id: str, *,
                     port_id: str | None = None, subnet_id: str | None = None,
                     network_id: str | None = None, address: str | None = None) -> VipPort:
        """The VIP asked for, ids and address filled in where not given."""
        return VipPort(id=port_id or new_id(), network_id=network_id or new_id(),
                       subnet_id=subnet_id or new_id(), ip_address=address or NOOP_VIP_ADDRESS)
