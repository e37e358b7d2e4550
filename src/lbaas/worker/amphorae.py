"""ACTIVE_STANDBY amphora rows: how a new one is made, and the one that replaces a failed one.

An ACTIVE_STANDBY load balancer has two amphorae, one built as MASTER (VRRP
priority 100) and one as BACKUP (90), each on its own port of the VIP's
subnet (Octavia's vrrp port), both with ``vrrp_id`` 1. Which one holds the
VIP is keepalived's decision (the ``role`` column says what it last
reported); the priority says what each was built as, and the amphora that
replaces a failed one is built as the same, on the same port, so that its
peer's configuration does not change. Their ``status`` is
:mod:`lbaas.worker.status`'s.

Any topology: an amphora *lost* its agent when that agent was declared dead
(:func:`lost`, :data:`LOST`): it was placed on a remote agent once (it has an
``lb_network_ip``, the agent's address) and has no agent now.
"""

from __future__ import annotations

import socket

from sqlalchemy import ColumnElement, and_

from lbaas.common import constants as c
from lbaas.db import models as m

# SQL: the amphorae that lost their agent (see the module docstring).
LOST: ColumnElement[bool] = and_(m.Amphora.agent_id.is_(None),
                                 m.Amphora.lb_network_ip.is_not(None))


def lost(amphora: m.Amphora) -> bool:
    """True if ``amphora`` lost its agent: it was placed on a remote agent that was declared
    dead, and on none since (:data:`LOST` in SQL)."""
    return amphora.agent_id is None and amphora.lb_network_ip is not None


def built_as(amphora: m.Amphora) -> str:
    """MASTER or BACKUP: the role ``amphora`` was built for (from its VRRP priority)."""
    master = c.AMPHORA_ROLE_PRIORITY[c.AMPHORA_ROLE_MASTER]
    return c.AMPHORA_ROLE_MASTER if amphora.vrrp_priority == master else c.AMPHORA_ROLE_BACKUP


def new_amphora(lb: m.LoadBalancer, amphora_id: str, role: str, vrrp_ip: str,
                vrrp_port_id: str | None) -> m.Amphora:
    """An ACTIVE_STANDBY amphora of ``lb`` built for ``role`` on the given port, in namespace
    ``amphora-<id>`` of this host (``compute_id`` ``<host>:amphora-<id>``), PENDING_CREATE."""
    return m.Amphora(id=amphora_id, load_balancer_id=lb.id, role=role,
                     status=c.AMPHORA_PENDING_CREATE,
                     compute_id=f"{socket.gethostname()}:{c.AMPHORA_NAMESPACE_PREFIX}{amphora_id}",
                     ha_ip=lb.vip_address, ha_port_id=lb.vip_port_id, vrrp_ip=vrrp_ip,
                     vrrp_port_id=vrrp_port_id, vrrp_id=1,
                     vrrp_priority=c.AMPHORA_ROLE_PRIORITY[role])


def replacement(lb: m.LoadBalancer, old: m.Amphora) -> m.Amphora:
    """A new amphora to take ``old``'s place: built as ``old`` was, on its port. Its role
    is BACKUP, as it joins beside a running peer (``nopreempt``), until the health
    manager reports what keepalived says."""
    assert old.vrrp_ip is not None
    new = new_amphora(lb, m.new_id(), built_as(old), old.vrrp_ip, old.vrrp_port_id)
    new.role = c.AMPHORA_ROLE_BACKUP
    return new
