"""The ``haproxy`` provider: load balancers as HAProxy processes, through an agent.

The driver decides what this provider can realise (:meth:`HaproxyDriver.validate`,
asked by the API before it accepts a change) and hands whole specs to an
:class:`~lbaas.agent.base.AgentClient` (in-process by default).

What is refused (``UnsupportedOption``, HTTP 501), decided from Octavia's
amphora driver (``api/drivers/amphora_driver/v2/driver.py``) and what
HAProxy 2.6 can do without other components:

- ``ACTIVE_STANDBY`` topology unless the agents' placement serves it (the
  namespace placement: two amphorae with keepalived, see
  :mod:`lbaas.dataplane.keepalived`);
- VIP ``qos_policy_id`` and ``sg_ids`` (no Neutron here to enforce them);
- listener protocols UDP and SCTP (Octavia realises them with LVS, not
  HAProxy);
- L7 policies on non-HTTP listeners (Octavia's
  ``VALID_L7POLICY_LISTENER_PROTOCOLS``), and L7 rules on TLS client
  certificates (SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT, SSL_DN_FIELD) on
  listeners that do not terminate TLS;
- pool protocols UDP and SCTP; ``SOURCE_IP_PORT`` (OVN-only in Octavia);
- HTTP_COOKIE and APP_COOKIE persistence on a pool that is not HTTP (HAProxy
  reads cookies only in HTTP mode);
- health monitors UDP-CONNECT and SCTP (no such HAProxy checks); PING when
  the ``ping`` command is not installed on the data-plane host;
- any value the renderer cannot write safely into haproxy.cfg.

Supported beyond the minimum: TLS termination (TERMINATED_HTTPS, SNI, client
authentication, HSTS, X-SSL-* headers) and re-encryption towards members
(pool TLS), PROMETHEUS listeners (HAProxy's built-in exporter, the load
balancer's own metrics, over TLS too), PROXY and PROXYV2 pools, L7 policies
and rules, allowed_cidrs, additional VIPs (in ``local`` placement).
"""

from __future__ import annotations

import shutil
from typing import Any

from lbaas.agent.base import AgentClient
from lbaas.common import constants as c
from lbaas.common.exceptions import UnsupportedOption
from lbaas.dataplane import render
from lbaas.dataplane.errors import RenderError
from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.drivers import profiles

UNSUPPORTED_LISTENER_PROTOCOLS = (c.UDP, c.SCTP)
UNSUPPORTED_POOL_PROTOCOLS = (c.UDP, c.SCTP)
UNSUPPORTED_ALGORITHMS = (c.SOURCE_IP_PORT,)
UNSUPPORTED_MONITORS = (c.HM_UDP_CONNECT, c.HM_SCTP)
TLS_RULE_TYPES = ("SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD")


def refusals(lb: LoadBalancerSpec, ping_available: bool = True,
             topologies: tuple[str, ...] = (c.TOPOLOGY_SINGLE,)) -> list[str]:
    """Every reason this provider cannot realise ``lb`` (empty: it can); ``topologies``
    are those its agents' placement serves."""
    out: list[str] = []
    if lb.topology not in topologies:
        out.append(profiles.topology_refusal(lb.topology))
    for vip in (lb.vip, *lb.additional_vips):
        if vip.qos_policy_id:
            out.append("VIP QoS policies (vip_qos_policy_id)")
        if vip.sg_ids:
            out.append("VIP security groups (vip_sg_ids)")
    for li in lb.listeners:
        if li.protocol in UNSUPPORTED_LISTENER_PROTOCOLS:
            out.append(f"{li.protocol} protocol listeners")
        if li.l7policies and li.protocol not in (c.HTTP, c.TERMINATED_HTTPS):
            out.append(f"L7 policies on {li.protocol} listeners")
        for policy in li.l7policies:
            for rule in policy.rules:
                if rule.type in TLS_RULE_TYPES and not render.terminates_tls(li):
                    out.append(f"{rule.type} L7 rules (need TLS termination)")
    for pool in lb.pools:
        if pool.protocol in UNSUPPORTED_POOL_PROTOCOLS:
            out.append(f"{pool.protocol} protocol pools")
        if pool.lb_algorithm in UNSUPPORTED_ALGORITHMS:
            out.append(f"{pool.lb_algorithm} algorithm")
        sp = pool.session_persistence
        if sp is not None and sp.type in (c.SP_HTTP_COOKIE, c.SP_APP_COOKIE) and \
                pool.protocol not in (c.HTTP, c.PROXY, c.PROXYV2):
            out.append(f"{sp.type} session persistence on {pool.protocol} pools")
        hm = pool.health_monitor
        if hm is not None:
            if hm.type in UNSUPPORTED_MONITORS:
                out.append(f"{hm.type} health monitors")
            elif hm.type == c.HM_PING and not ping_available:
                out.append("PING health monitors (the ping command is not installed)")
    return list(dict.fromkeys(out))


class HaproxyDriver:
    """The haproxy provider over ``agent``. Errors: ``UnsupportedOption``, ``DriverError``."""

    name = c.PROVIDER_HAPROXY

    def __init__(self, agent: AgentClient, ping_available: bool | None = None,
                 topologies: tuple[str, ...] = (c.TOPOLOGY_SINGLE,)) -> None:
        self.agent = agent
        self.ping_available = shutil.which("ping") is not None if ping_available is None \
            else ping_available
        self.topologies = topologies

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption`` listing what in ``lb`` this provider cannot realise."""
        reasons = refusals(lb, self.ping_available, self.topologies)
        if reasons:
            raise UnsupportedOption("; ".join(reasons))
        try:
            render.build_view(lb)
        except RenderError as e:
            raise UnsupportedOption(e.reason) from None
        self.agent.validate(lb)

    def validate_members(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption`` if a member of ``lb`` (a member change's part of a
        load balancer) cannot be written as an HAProxy ``server``: its pools' backends
        are rendered for the listeners shown; no placement or agent is asked (a
        member changes neither the VIPs nor the listeners)."""
        try:
            render.build_view(lb)
        except RenderError as e:
            raise UnsupportedOption(e.reason) from None

    def apply(self, lb: LoadBalancerSpec) -> None:
        """Serve ``lb``; ``DriverError`` with HAProxy's message on failure (old config serves)."""
        self.agent.apply(lb)

    def delete(self, lb: LoadBalancerSpec) -> None:
        """Stop serving ``lb`` and remove its files (a missing one is fine)."""
        self.agent.delete(lb.id)

    def failover(self, lb: LoadBalancerSpec) -> None:
        """Rebuild SINGLE ``lb``'s amphora from scratch (an ACTIVE_STANDBY load balancer's
        amphorae are replaced one at a time and applied: the worker's failover)."""
        self.agent.failover(lb)

    def stats(self, lb_id: str) -> LoadBalancerStats:
        """The amphora's counters and states (see :meth:`AgentClient.stats`)."""
        return self.agent.stats(lb_id)

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """The agent's reading, if it hands it out without asking HAProxy (see
        :meth:`AgentClient.kept_stats`)."""
        return self.agent.kept_stats(lb_id)

    def flavor_capabilities(self) -> dict[str, str]:
        """Octavia's amphora flavor keys (see :mod:`lbaas.drivers.profiles`), the
        topology's description naming only the topologies served (ACTIVE_STANDBY in
        the namespace placement only)."""
        return {**profiles.FLAVOR_KEYS,
                "loadbalancer_topology": profiles.topology_description(self.topologies)}

    def availability_zone_capabilities(self) -> dict[str, str]:
        """Octavia's amphora availability zone keys (see :mod:`lbaas.drivers.profiles`)."""
        return dict(profiles.AVAILABILITY_ZONE_KEYS)

    def validate_flavor(self, flavor_data: dict[str, Any]) -> None:
        """Amphora keys; ``loadbalancer_topology`` one of those served. ``UnsupportedOption``
        per :func:`lbaas.drivers.profiles.check_flavor`."""
        profiles.check_flavor(flavor_data, self.name, self.topologies)

    def validate_availability_zone(self, zone_data: dict[str, Any]) -> None:
        """Amphora keys, per :func:`lbaas.drivers.profiles.check_availability_zone`."""
        profiles.check_availability_zone(zone_data, self.name)
