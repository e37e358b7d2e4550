"""The ``local`` network driver: lbaas's own Neutron-shaped networks, subnets and ports.

Networks and subnets are rows of lbaas's database, managed through
``/v2.0/networks`` and ``/v2.0/subnets``; a VIP is a :class:`~lbaas.db.models.Port`
row taken from its subnet's allocation pools (:mod:`lbaas.db.ipam`).

Who may use what, as in Neutron: a shared network, or the caller's
project's, or any for an admin; a subnet of the caller's project or on such
a network. Others are "not found" (InvalidSubresource, 400), as Octavia
answers for a subnet it cannot see.

A load balancer created with no port, subnet or network gets its VIP from
the default subnet (``[networking] default_subnet_cidr``), made on first use.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from lbaas.common import exceptions as exc
from lbaas.db import ipam
from lbaas.db import models as m
from lbaas.network.base import Caller, Subnet, VipPort


def _may_use(caller: Caller, network: m.Network) -> bool:
    return network.shared or network.project_id == caller.project_id or caller.is_admin


def _view(subnet: m.Subnet) -> Subnet:
    return Subnet(id=subnet.id, network_id=subnet.network_id, cidr=subnet.cidr,
                  gateway_ip=subnet.gateway_ip)


# What a spec needs of a VIP's subnet, its statement made once (SQLAlchemy keeps its cache
# key on it): the worker reads it on every change (issue 12: 0.33 -> 0.20 ms of CPU
# against the whole ORM row).
_VIP_SUBNET = select(m.Subnet.id, m.Subnet.network_id, m.Subnet.cidr,
                     m.Subnet.gateway_ip).where(m.Subnet.id == bindparam("id"))


class LocalNetwork:
    """Subnets and VIP ports from lbaas's own database."""

    name = "local"

    def __init__(self, default_subnet_cidr: str, default_subnet_pool: tuple[str, str]) -> None:
        self.default_subnet_cidr = default_subnet_cidr
        self.default_subnet_pool = default_subnet_pool

    def _subnet_row(self, db: Session, caller: Caller, subnet_id: str) -> m.Subnet:
        subnet = db.get(m.Subnet, subnet_id)
        if subnet is None or not (subnet.project_id == caller.project_id
                                  or _may_use(caller, subnet.network)):
            raise exc.InvalidSubresource(resource="Subnet", id=subnet_id)
        return subnet

    def _network_row(self, db: Session, caller: Caller, network_id: str) -> m.Network:
        network = db.get(m.Network, network_id)
        if network is None or not _may_use(caller, network):
            raise exc.InvalidSubresource(resource="Network", id=network_id)
        return network

    def get_subnet(self, db: Session, caller: Caller, subnet_id: str) -> Subnet:
        """Subnet ``subnet_id`` if ``caller`` may use it, else InvalidSubresource (400)."""
        return _view(self._subnet_row(db, caller, subnet_id))

    def vip_subnet(self, db: Session, subnet_id: str) -> Subnet | None:
        """Subnet ``subnet_id``'s CIDR and gateway, None if it is gone."""
        row = db.execute(_VIP_SUBNET, {"id": subnet_id}).first()
        return Subnet(id=row[0], network_id=row[1], cidr=row[2], gateway_ip=row[3]) \
            if row is not None else None

    def allocate_vip(self, db: Session, caller: Caller, device_id: str, *,
                     port_id: str | None = None, subnet_id: str | None = None,
                     network_id: str | None = None, address: str | None = None) -> VipPort:
        """Take a VIP (see :meth:`lbaas.network.base.NetworkDriver.allocate_vip`).

        A ``port_id`` is refused: the only ports here are VIPs, each already in
        use (InvalidSubresource 400 for an unknown one, VIPAddressConflict 409).
        ValidationError (400) if the subnet is not on ``network_id`` or the
        network has no subnet for ``address``; the errors of
        :func:`lbaas.db.ipam.allocate`.
        """
        if port_id is not None:
            if db.get(m.Port, port_id) is None:
                raise exc.InvalidSubresource(resource="Port", id=port_id)
            raise exc.VIPAddressConflict(msg=f"port {port_id} is already in use")
        if subnet_id is not None:
            subnet = self._subnet_row(db, caller, subnet_id)
            if network_id is not None and subnet.network_id != network_id:
                raise exc.ValidationError(
                    detail=f"Subnet {subnet.id} is not on network {network_id}.")
        elif network_id is not None:
            network = self._network_row(db, caller, network_id)
            candidates = [sn for sn in network.subnets
                          if address is None or ipam.in_subnet(sn, address)]
            if not candidates:
                raise exc.ValidationError(detail="Supplied network does not contain a subnet.")
            subnet = sorted(candidates, key=lambda sn: sn.ip_version)[0]
        else:
            subnet = ipam.ensure_default_subnet(db, self.default_subnet_cidr,
                                                self.default_subnet_pool)
        port = ipam.allocate(db, subnet, device_id, address)
        return VipPort(id=port.id, network_id=subnet.network_id, subnet_id=subnet.id,
                       ip_address=port.ip_address)
