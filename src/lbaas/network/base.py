"""The network driver boundary: subnets that VIPs and members are on, and VIP ports.

Octavia asks a network driver (``[controller_worker] network_driver``) for
everything about networks: whether a subnet exists and may be used by the
caller, and a port with the VIP address. lbaas does the same, with these
drivers:

- ``local`` (:mod:`lbaas.network.local`, the default): lbaas's own
  Neutron-shaped networks, subnets and ports in its database
  (``/v2.0/networks``, ``/v2.0/subnets``), VIPs taken from the subnet's
  allocation pools;
- ``noop`` (:mod:`lbaas.network.noop`): Octavia's ``network_noop_driver``:
  any network and subnet id is accepted and the VIP port is made up, so
  API tests (octavia-tempest-plugin's noop mode) need no network set-up.

The API calls :meth:`NetworkDriver.allocate_vip` and
:meth:`NetworkDriver.get_subnet` with the caller; the worker reads a VIP
subnet's CIDR and gateway with :meth:`NetworkDriver.vip_subnet` to build a
load balancer's spec. Errors are the API's: InvalidSubresource (400) for
what does not exist or may not be used, ValidationError (400),
InvalidIPAddress (400), VIPAddressConflict and IPAddressExhausted (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Caller:
    """Who asks: their project, and whether they may use every project's networks."""

    project_id: str
    is_admin: bool


@dataclass(frozen=True)
class Subnet:
    """A subnet as the load balancer needs it; ``cidr`` None when not known (noop)."""

    id: str
    network_id: str
    cidr: str | None = None
    gateway_ip: str | None = None


@dataclass(frozen=True)
class VipPort:
    """The port holding a VIP address."""

    id: str
    network_id: str
    subnet_id: str
    ip_address: str


class NetworkDriver(Protocol):
    """Where subnets and VIP ports come from. Errors: the API's 400s and 409s."""

    name: str

    def allocate_vip(self, db: Session, caller: Caller, device_id: str, *,
                     port_id: str | None = None, subnet_id: str | None = None,
                     network_id: str | None = None, address: str | None = None) -> VipPort:
        """A port with a VIP for ``device_id`` (a load balancer), on what the request names.

        ``port_id``: an existing port; else ``subnet_id`` (which must be on
        ``network_id`` when both are given); else a subnet of ``network_id``
        that holds ``address``; with none of them, the driver's default.
        ``address`` is taken if given, else the first free one. Nothing is
        committed: the port goes with the caller's transaction.
        """

    def get_subnet(self, db: Session, caller: Caller, subnet_id: str) -> Subnet:
        """Subnet ``subnet_id`` if ``caller`` may put a VIP or member on it, else
        InvalidSubresource (400, "Subnet <id> not found.")."""

    def vip_subnet(self, db: Session, subnet_id: str) -> Subnet | None:
        """What is known of subnet ``subnet_id`` (no access check: the worker's view)."""
