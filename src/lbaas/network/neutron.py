"""The ``neutron`` network driver: networks and subnets read from the cloud's Neutron.

In a cloud with a real Neutron, ``[controller_worker] network_driver =
neutron`` makes lbaas check the VIP and member subnets a tenant names
against that Neutron, as Octavia's ``allowed_address_pairs_driver`` does,
instead of lbaas's own ``/v2.0/networks`` and ``/v2.0/subnets``:

- Neutron is found in the Keystone catalog (service type ``network``,
  ``[neutron] region_name`` and ``endpoint_type``) or at ``[neutron]
  endpoint_override``, and read through openstacksdk on a keystoneauth
  session of lbaas's service user (``[service_auth]``, as Octavia's), who
  must be able to read every project's networks and subnets (Neutron's
  ``admin`` or ``service`` role).
- Who may use a subnet, as Neutron shows it: a subnet of the caller's
  project, or on a shared network, or any for an admin. Others, and
  subnets Neutron does not know, are refused with 400 (``vip_subnet_id`` /
  ``vip_network_id`` named for a VIP, "Subnet <id> not found." for a member).
- The VIP address is allocated by lbaas's own IPAM (:mod:`lbaas.db.ipam`)
  inside the Neutron subnet's CIDR and allocation pools; **no port is
  created in Neutron** (Neutron does not reserve the address: keep lbaas's
  VIPs out of the pools Neutron hands to other ports). lbaas records a copy
  of each Neutron network and subnet it put a VIP on (same ids, refreshed
  at each allocation) so its IPAM can lock the subnet and count used
  addresses; those copies show in lbaas's own ``/v2.0/subnets``.
- ``vip_port_id`` (an existing Neutron port) is refused with 400; a load
  balancer with no VIP subnet, network or port gets its VIP from lbaas's
  default subnet, as with ``local``.
- Neutron unreachable or answering an error: 503, nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.common import exceptions as exc
from lbaas.common.service_auth import service_session
from lbaas.db import ipam
from lbaas.db import models as m
from lbaas.network.base import Caller, Subnet, VipPort
from lbaas.network.local import LocalNetwork

T = TypeVar("T")


class NeutronUnavailable(exc.APIError):
    """Neutron could not be asked (unreachable, no endpoint, an error answer)."""

    code = 503
    message = "Neutron cannot be read: %(reason)s. Nothing was changed."


class NeutronNetwork:
    """Subnets from Neutron, VIP addresses from lbaas's IPAM (see the module docstring).

    ``config_files``: lbaas's INI files, whose ``[service_auth]`` (keystoneauth
    auth and session options) is the service user. ``local``: the driver
    giving the default subnet. Raises ValueError if ``[service_auth]`` is
    missing or incomplete.
    """

    name = "neutron"

    def __init__(self, config_files: Sequence[str], local: LocalNetwork,
                 endpoint_override: str | None = None, region_name: str | None = None,
                 interface: str = "public") -> None:
        self._session = service_session(config_files, "network_driver = neutron")
        self._local = local
        self._endpoint_override = endpoint_override
        self._region = region_name
        self._interface = interface
        self._conn: Any = None

    # -- Neutron ---------------------------------------------------------------------
    def _network_api(self) -> Any:
        """openstacksdk's network proxy on the service user's session (made once)."""
        if self._conn is None:
            import openstack.connection

            extra: dict[str, Any] = ({"network_endpoint_override": self._endpoint_override}
                     if self._endpoint_override else {})
            self._conn = openstack.connection.Connection(
                session=self._session, region_name=self._region, interface=self._interface,
                **extra)
        return self._conn.network

    def _ask(self, what: str, call: Callable[[Any], T]) -> T | None:
        """``call(network proxy)``; None if Neutron answers 404, NeutronUnavailable
        (503) for any other failure."""
        from openstack import exceptions as os_exc

        try:
            return call(self._network_api())
        except os_exc.NotFoundException:
            return None
        except Exception as e:  # keystoneauth / openstacksdk: refused, no endpoint, 5xx
            raise NeutronUnavailable(reason=f"{what}: {type(e).__name__}: {e}") from None

    def _usable(self, caller: Caller, subnet: Any) -> bool:
        if caller.is_admin or subnet.project_id == caller.project_id:
            return True
        network = self._ask(f"network {subnet.network_id}",
                            lambda api: api.get_network(subnet.network_id))
        return bool(network is not None and network.is_shared)

    def _neutron_subnet(self, caller: Caller, subnet_id: str) -> Any | None:
        subnet = self._ask(f"subnet {subnet_id}", lambda api: api.get_subnet(subnet_id))
        return subnet if subnet is not None and self._usable(caller, subnet) else None

    # -- the local copy ---------------------------------------------------------------
    def _record(self, db: Session, subnet: Any) -> m.Subnet:
        """lbaas's copy of Neutron subnet ``subnet`` (and its network), made or refreshed."""
        for _ in range(2):  # a concurrent first use of the same subnet inserts it too
            try:
                with db.begin_nested():
                    network = db.get(m.Network, subnet.network_id)
                    if network is None:
                        network = m.Network(id=subnet.network_id, project_id=subnet.project_id,
                                            shared=False, name=None,
                                            description="Neutron network (copy)")
                        db.add(network)
                    row = db.get(m.Subnet, subnet.id)
                    if row is None:
                        row = m.Subnet(id=subnet.id, network_id=subnet.network_id,
                                       description="Neutron subnet (copy)")
                        db.add(row)
                    row.name = subnet.name
                    row.project_id = subnet.project_id
                    row.ip_version = subnet.ip_version
                    row.cidr = subnet.cidr
                    row.gateway_ip = subnet.gateway_ip
                    row.allocation_pools = [{"start": p["start"], "end": p["end"]}
                                            for p in subnet.allocation_pools or []]
                    db.flush()
                return row
            except IntegrityError:
                continue
        raise exc.VIPAddressConflict(msg=f"subnet {subnet.id} is being recorded concurrently")

    # -- the driver ---------------------------------------------------------------------
    def get_subnet(self, db: Session, caller: Caller, subnet_id: str) -> Subnet:
        """Neutron's subnet ``subnet_id`` if ``caller`` may use it, else
        InvalidSubresource (400); NeutronUnavailable (503)."""
        subnet = self._neutron_subnet(caller, subnet_id)
        if subnet is None:
            raise exc.InvalidSubresource(resource="Subnet", id=subnet_id)
        return Subnet(id=subnet.id, network_id=subnet.network_id, cidr=subnet.cidr,
                      gateway_ip=subnet.gateway_ip)

    def vip_subnet(self, db: Session, subnet_id: str) -> Subnet | None:
        """The recorded copy of the VIP's subnet (no Neutron round trip)."""
        return self._local.vip_subnet(db, subnet_id)

    def allocate_vip(self, db: Session, caller: Caller, device_id: str, *,
                     port_id: str | None = None, subnet_id: str | None = None,
                     network_id: str | None = None, address: str | None = None) -> VipPort:
        """A VIP from lbaas's IPAM inside a Neutron subnet (see
        :meth:`lbaas.network.base.NetworkDriver.allocate_vip`).

        InvalidInput (400) naming ``vip_port_id`` (ports are not supported),
        ``vip_subnet_id`` (Neutron has no such subnet, or the caller may not
        use it) or ``vip_network_id`` (likewise, or no subnet of it holds
        ``address``); ValidationError (400) if the subnet is not on
        ``network_id``; NeutronUnavailable (503); the errors of
        :func:`lbaas.db.ipam.allocate`.
        """
        if port_id is not None:
            raise exc.InvalidInput(field="vip_port_id", value=port_id,
                                   detail="network_driver = neutron creates no ports and uses "
                                          "none: give vip_subnet_id or vip_network_id.")
        if subnet_id is not None:
            subnet = self._neutron_subnet(caller, subnet_id)
            if subnet is None:
                raise exc.InvalidInput(field="vip_subnet_id", value=subnet_id,
                                       detail=f"Subnet {subnet_id} not found in Neutron.")
            if network_id is not None and subnet.network_id != network_id:
                raise exc.ValidationError(
                    detail=f"Subnet {subnet_id} is not on network {network_id}.")
        elif network_id is not None:
            network = self._ask(f"network {network_id}", lambda api: api.get_network(network_id))
            if network is None or not (caller.is_admin or network.is_shared
                                       or network.project_id == caller.project_id):
                raise exc.InvalidInput(field="vip_network_id", value=network_id,
                                       detail=f"Network {network_id} not found in Neutron.")
            found = self._ask(f"subnets of network {network_id}",
                              lambda api: list(api.subnets(network_id=network_id)))
            candidates = sorted(
                (sn for sn in found or []
                 if address is None or ipam.in_subnet(sn, address)),
                key=lambda sn: sn.ip_version)
            if not candidates:
                raise exc.ValidationError(detail="Supplied network does not contain a subnet.")
            subnet = candidates[0]
        else:
            return self._local.allocate_vip(db, caller, device_id, address=address)
        row = self._record(db, subnet)
        port = ipam.allocate(db, row, device_id, address)
        return VipPort(id=port.id, network_id=row.network_id, subnet_id=row.id,
                       ip_address=port.ip_address)
