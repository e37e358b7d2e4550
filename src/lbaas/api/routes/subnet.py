"""Subnets: /v2.0/subnets, after Neutron's networking API v2.0 ("Subnets").

A subnet is a CIDR on a network with an optional gateway and the allocation
pools VIPs are taken from (:mod:`lbaas.db.ipam`). Admins create, change and
delete subnets; callers see the subnets of the networks they see and their
project's own (others' are 404, as in Neutron).

Neutron's address rules, checked on create and on every change:

- ``ip_version`` must be the CIDR's; the CIDR must not overlap another
  subnet of the same network;
- ``gateway_ip`` defaults to the first host of the CIDR; it must lie in the
  CIDR and (IPv4) be neither the network nor the broadcast address; null
  means no gateway;
- ``allocation_pools`` default to every host but the gateway; each pool must
  be ``start <= end`` inside the CIDR's hosts, pools must not overlap and
  must not contain the gateway.

A subnet with VIPs on it cannot be deleted (409, Neutron's words), and its
gateway cannot move onto an address a VIP holds.
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lbaas.api import deps
from lbaas.api.deps import Ctx, Db, Fields, Listing
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
from lbaas.api.routes.network import network_visible
from lbaas.api.schemas import subnet as s
from lbaas.common import exceptions as exc
from lbaas.db import locks
from lbaas.db import models as m

router = APIRouter(tags=["Subnets"])
RESOURCE = "subnet"
COLUMNS = columns_of(m.Subnet, aliases={"tenant_id": m.Subnet.project_id})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Pool = dict[str, str]


def subnet_visible(ctx: RequestContext, subnet: m.Subnet) -> bool:
    """True if ``ctx`` may see ``subnet``: on a network it sees, or its project's."""
    return network_visible(ctx, subnet.network) or ctx.can_see(subnet.project_id)


def get_subnet(db: Session, ctx: RequestContext, subnet_id: str) -> m.Subnet:
    """The subnet ``subnet_id`` if the caller may see it, else NotFound (404)."""
    subnet = db.get(m.Subnet, subnet_id)
    if subnet is None or not subnet_visible(ctx, subnet):
        raise exc.NotFound(resource="Subnet", id=subnet_id)
    return subnet


# -- address rules ------------------------------------------------------------

def _hosts(net: Network) -> tuple[int, int] | None:
    """First and last address a host may have on ``net`` (as integers), if any."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen < 31:
        first, last = first + 1, last - 1  # network and broadcast addresses
    elif net.version == 6 and net.prefixlen < 127:
        first += 1  # the subnet-router anycast address
    return (first, last) if first <= last else None


def _address(net: Network, n: int) -> str:
    return str(ipaddress.IPv4Address(n) if net.version == 4 else ipaddress.IPv6Address(n))


def default_gateway(net: Network) -> str | None:
    """The first host of ``net``, when it has room for a gateway and a VIP."""
    hosts = _hosts(net)
    return _address(net, hosts[0]) if hosts and hosts[1] > hosts[0] else None


def default_pools(net: Network, gateway: str | None) -> list[Pool]:
    """Every host of ``net`` but ``gateway``, as one or two pools."""
    hosts = _hosts(net)
    if hosts is None:
        return []
    spans = [hosts]
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        spans = [(hosts[0], gw - 1), (gw + 1, hosts[1])]
    return [{"start": _address(net, a), "end": _address(net, b)} for a, b in spans if a <= b]


def check_gateway(net: Network, gateway: str | None) -> None:
    """Raise InvalidInput (400, gateway_ip) unless ``gateway`` may be ``net``'s gateway."""
    if gateway is None:
        return
    ip = ipaddress.ip_address(gateway)
    if ip.version != net.version or ip not in net:
        raise exc.InvalidInput(field="gateway_ip", value=gateway,
                               detail=f"Gateway IP {gateway} is outside subnet "
                                      f"{net.with_prefixlen}.")
    if net.version == 4 and net.prefixlen < 31 and \
            ip in (net.network_address, net.broadcast_address):
        raise exc.InvalidInput(field="gateway_ip", value=gateway,
                               detail="Gateway is not valid on subnet.")


def check_pools(net: Network, pools: list[Pool], gateway: str | None) -> list[Pool]:
    """``pools`` in canonical form; InvalidInput (400, allocation_pools) naming the
    first pool that is reversed, outside ``net``, overlapping or holding ``gateway``.
    """
    cidr = net.with_prefixlen
    hosts = _hosts(net)
    spans: list[tuple[int, int, str]] = []
    for pool in pools:
        start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        text = f"{start}-{end}"
        if start.version != net.version or end.version != net.version or int(start) > int(end):
            raise exc.InvalidInput(field="allocation_pools", value=text,
                                   detail=f"The allocation pool {text} is not valid.")
        if hosts is None or int(start) < hosts[0] or int(end) > hosts[1]:
            raise exc.InvalidInput(
                field="allocation_pools", value=text,
                detail=f"The allocation pool {text} spans beyond the subnet cidr {cidr}.")
        spans.append((int(start), int(end), text))
    ordered = sorted(spans)
    for before, after in itertools.pairwise(ordered):
        if after[0] <= before[1]:
            raise exc.InvalidInput(
                field="allocation_pools", value=f"{before[2]} {after[2]}",
                detail=f"Found overlapping allocation pools: {before[2]} {after[2]} "
                       f"for subnet {cidr}.")
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        for start_n, end_n, text in spans:
            if start_n <= gw <= end_n:
                raise exc.InvalidInput(
                    field="allocation_pools", value=text,
                    detail=f"Gateway ip {gateway} conflicts with allocation pool {text}.")
    return [{"start": _address(net, a), "end": _address(net, b)} for a, b, _ in spans]


def _overlaps_sibling(network: m.Network, net: Network) -> bool:
    for other in network.subnets:
        other_net = ipaddress.ip_network(other.cidr, strict=False)
        if other_net.version == net.version and other_net.overlaps(net):
            return True
    return False


# -- handlers -----------------------------------------------------------------

@router.get("/subnets", response_model=s.SubnetPage)
def list_subnets(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List the subnets the caller may see."""
    ctx.authorize(RESOURCE, "get_all")
    stmt = select(m.Subnet).join(m.Subnet.network)
    if not ctx.sees_all_projects:
        stmt = stmt.where(or_(m.Network.shared.is_(True),
                              m.Network.project_id == ctx.project_id,
                              m.Subnet.project_id == ctx.project_id))
    return listing.respond("subnets", stmt, m.Subnet, COLUMNS, s.SubnetResponse.dump)


@router.post("/subnets", status_code=201, response_model=s.SubnetRoot)
def create_subnet(body: s.SubnetCreateRoot, ctx: Ctx, db: Db) -> JSONResponse:
    """Create a subnet on a network (admin); the address rules are in the module doc.

    NotFound (404) for an unknown network, InvalidInput (400) naming the field
    that breaks a rule.
    """
    ctx.authorize(RESOURCE, "post")
    data = body.subnet
    network = db.get(m.Network, data.network_id)
    if network is None:
        raise exc.NotFound(resource="Network", id=data.network_id)
    requested = data.project_id or data.tenant_id
    project_id = deps.resolve_project(ctx, requested) if requested else network.project_id
    net = ipaddress.ip_network(data.cidr)
    if data.ip_version is not None and data.ip_version != net.version:
        raise exc.InvalidInput(field="ip_version", value=data.ip_version,
                               detail=f"Value does not match the IP version of cidr "
                                      f"{data.cidr}.")
    if _overlaps_sibling(network, net):
        raise exc.InvalidInput(field="cidr", value=data.cidr,
                               detail=f"Requested subnet with cidr: {data.cidr} for network: "
                                      f"{network.id} overlaps with another subnet.")
    gateway = data.gateway_ip if "gateway_ip" in data.model_fields_set else default_gateway(net)
    check_gateway(net, gateway)
    if data.allocation_pools is None:
        pools = default_pools(net, gateway)
    else:
        pools = check_pools(net, [p.model_dump() for p in data.allocation_pools], gateway)
    subnet = m.Subnet(
        id=m.new_id(), project_id=project_id, name=data.name, description=data.description,
        network_id=network.id, ip_version=net.version, cidr=net.with_prefixlen,
        gateway_ip=gateway, allocation_pools=pools, enable_dhcp=data.enable_dhcp,
        dns_nameservers=list(data.dns_nameservers),
        host_routes=[r.model_dump() for r in data.host_routes])
    db.add(subnet)
    db.commit()
    return deps.respond("subnet", s.SubnetResponse.dump(subnet), 201)


@router.get("/subnets/{subnet_id}", response_model=s.SubnetRoot)
def show_subnet(subnet_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one subnet."""
    subnet = get_subnet(db, ctx, subnet_id)
    ctx.authorize(RESOURCE, "get_one")
    return deps.respond("subnet", s.SubnetResponse.dump(subnet), fields=fields)


@router.put("/subnets/{subnet_id}", response_model=s.SubnetRoot)
def update_subnet(subnet_id: str, body: s.SubnetUpdateRoot, ctx: Ctx, db: Db) -> JSONResponse:
    """Change a subnet's names, gateway, pools or recorded DHCP/DNS/routes (admin).

    Pools and gateway are checked together, as on create; VIPs already
    allocated stay where they are. Conflict (409) if the new gateway is a VIP.
    """
    subnet = get_subnet(db, ctx, subnet_id)
    ctx.authorize(RESOURCE, "put")
    changes: dict[str, Any] = body.subnet.model_dump(exclude_unset=True)
    deps.refuse_nulls(changes, ("allocation_pools", "enable_dhcp", "dns_nameservers",
                                "host_routes"))
    net = ipaddress.ip_network(subnet.cidr, strict=False)
    gateway = changes.get("gateway_ip", subnet.gateway_ip)
    if "gateway_ip" in changes or "allocation_pools" in changes:
        check_gateway(net, gateway)
        changes["allocation_pools"] = check_pools(
            net, changes.get("allocation_pools", subnet.allocation_pools or []), gateway)
    if gateway is not None and gateway != subnet.gateway_ip:
        locks.lock_subnet(db, subnet.id)  # no VIP takes it meanwhile
        taken = db.scalar(select(m.Port.id).where(m.Port.subnet_id == subnet.id,
                                                  m.Port.ip_address == gateway))
        if taken is not None:
            # Neutron's IpAddressInUse.
            raise exc.Conflict(detail=f"Unable to complete operation for network "
                                      f"{subnet.network_id}. The IP address {gateway} "
                                      "is in use.")
    deps.apply_changes(subnet, changes, keep_on_null=())
    db.commit()
    return deps.respond("subnet", s.SubnetResponse.dump(subnet))


@router.delete("/subnets/{subnet_id}", status_code=204, response_class=Response)
def delete_subnet(subnet_id: str, ctx: Ctx, db: Db) -> Response:
    """Delete a subnet (admin); a 409 while VIPs are on it."""
    subnet = get_subnet(db, ctx, subnet_id)
    ctx.authorize(RESOURCE, "delete")
    # Neutron's SubnetInUse.
    in_use = exc.Conflict(detail=f"Unable to complete operation on subnet {subnet.id}: "
                                 "One or more ports have an IP allocation from this subnet.")
    return deps.delete_unused(db, subnet, deps.used_by(db, m.Port.subnet_id, subnet.id), in_use)
