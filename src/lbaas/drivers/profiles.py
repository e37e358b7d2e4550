"""Flavor and availability-zone profile keys: Octavia's amphora keys, and what they do here.

Octavia's amphora provider accepts the keys of its ``flavor_schema.py`` and
``availability_zone_schema.py``; profiles written for it must keep working
when a cloud moves to lbaas. Each key is one of:

- **served**: it means something here (``loadbalancer_topology``);
- **ignored**: it configures Nova, Glance or Cinder (``compute_flavor``,
  ``amp_image_tag``, ``compute_zone``, ``volume_zone``,
  ``management_network``), which lbaas does not use: accepted and stored,
  with a warning in the log, since Octavia's response shape has no room for
  one;
- **refused**: it would change behaviour in a way lbaas does not serve
  (``sriov_vip``/``allow_member_sriov`` set true, ``valid_vip_networks``):
  ``UnsupportedOption``, the API's 501. The same key set false or empty
  asks for nothing and is accepted.

Keys no amphora profile has are refused too. The descriptions are Octavia's,
so the capability lists read as they do there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from lbaas.common import constants as c
from lbaas.common.exceptions import UnsupportedOption
from lbaas.dataplane.placement import ACTIVE_STANDBY_NEEDS_NAMESPACES

LOG = logging.getLogger(__name__)

TOPOLOGIES = c.TOPOLOGIES
# Octavia's description of the key; a provider's lists only the topologies it serves:
# a capability list advertises nothing that a flavor profile would be refused for.
_TOPOLOGIES = {c.TOPOLOGY_SINGLE: "SINGLE - One amphora per load balancer.",
               c.TOPOLOGY_ACTIVE_STANDBY: "ACTIVE_STANDBY - Two amphora per load balancer."}


def topology_description(topologies: tuple[str, ...] = TOPOLOGIES) -> str:
    """Octavia's description of ``loadbalancer_topology``, naming only ``topologies``."""
    return "The load balancer topology. One of: " + " ".join(_TOPOLOGIES[t]
                                                              for t in topologies)


TOPOLOGY_DESCRIPTION = topology_description()

FLAVOR_KEYS: dict[str, str] = {
    "loadbalancer_topology": TOPOLOGY_DESCRIPTION,
    "compute_flavor": "The compute driver flavor ID.",
    "amp_image_tag": "The amphora image tag.",
    "sriov_vip": "When true, the VIP port will be created using an SR-IOV VF port.",
    "allow_member_sriov": "When true, users can request a member port be SR-IOV enabled "
                          "at member creation time.",
}
AVAILABILITY_ZONE_KEYS: dict[str, str] = {
    "compute_zone": "The compute availability zone.",
    "volume_zone": "The volume availability zone.",
    "management_network": "The management network ID for the amphora.",
    "valid_vip_networks": "List of network IDs that are allowed for VIP use. This "
                          "overrides/replaces the list of allowed networks configured in "
                          "`octavia.conf`.",
}
# Keys for the compute, image and volume services: no meaning without amphora VMs.
IGNORED_KEYS = frozenset({"compute_flavor", "amp_image_tag", "compute_zone", "volume_zone",
                          "management_network"})
# Keys that ask for something when set (true, non-empty) that lbaas does not serve.
REFUSED_WHEN_SET: dict[str, str] = {
    "sriov_vip": "SR-IOV VIP ports (sriov_vip)",
    "allow_member_sriov": "SR-IOV member ports (allow_member_sriov)",
    "valid_vip_networks": "VIP network restrictions per availability zone "
                          "(valid_vip_networks)",
}


def _check(kind: str, data: Mapping[str, Any], known: Iterable[str], provider: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UnsupportedOption(f"unknown {kind} keys: {', '.join(unknown)}")
    refused = [what for key, what in REFUSED_WHEN_SET.items() if data.get(key)]
    if refused:
        raise UnsupportedOption("; ".join(refused))
    ignored = sorted(IGNORED_KEYS & set(data))
    if ignored:
        LOG.warning("%s profile for provider %s: %s accepted and ignored (Octavia amphora "
                    "settings for compute, image or volume services that lbaas does not use)",
                    kind, provider, ", ".join(ignored))


def check_flavor(data: Mapping[str, Any], provider: str,
                 topologies: tuple[str, ...] = TOPOLOGIES) -> None:
    """Refuse (``UnsupportedOption``) a flavor profile's ``data`` that asks for more than
    ``provider`` serves; ``topologies`` are the ``loadbalancer_topology`` values it serves.
    Logs the ignored keys.
    """
    _check("flavor", data, FLAVOR_KEYS, provider)
    topology = data.get("loadbalancer_topology")
    if topology is not None and topology not in topologies:
        raise UnsupportedOption(topology_refusal(topology))


def topology_refusal(topology: object) -> str:
    """Why a provider refuses ``topology`` (one it does not serve)."""
    if topology == c.TOPOLOGY_ACTIVE_STANDBY:
        return ACTIVE_STANDBY_NEEDS_NAMESPACES
    return f"loadbalancer_topology {topology!r} is not one of {', '.join(TOPOLOGIES)}"


def check_availability_zone(data: Mapping[str, Any], provider: str) -> None:
    """Refuse (``UnsupportedOption``) an availability zone profile's ``data`` that asks
    for more than lbaas serves; logs the ignored keys."""
    _check("availability zone", data, AVAILABILITY_ZONE_KEYS, provider)
