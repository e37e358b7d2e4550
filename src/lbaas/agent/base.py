"""The agent boundary: what the haproxy provider driver may ask of a data-plane host.

Every call is about one load balancer and is idempotent. Arguments are a
:class:`~lbaas.dataplane.spec.LoadBalancerSpec` (JSON through
``spec.to_json``) or a load balancer id; results are frozen dataclasses with
``to_dict`` (JSON-friendly), so a remote agent can serve this protocol over
HTTP unchanged. Failures raise :class:`~lbaas.common.exceptions.DriverError`
subclasses whose ``reason`` is shown to the tenant.

ACTIVE_STANDBY: the spec names the two amphorae (``amphorae``, each with its
``vrrp_ip``, priority and host) and their VRRP group (``vrrp``); apply() serves
those placed on this host (both, in a standalone service), the BACKUP first,
and replaces an amphora the spec no longer names by the one that took its
place (how the controller rebuilds an amphora: a new amphora on the same
``vrrp_ip``); stats() says how each amphora is
(``LoadBalancerStats.amphorae``: running, keepalived's VRRP state, why it is
broken).
"""

from __future__ import annotations

from typing import Protocol

from lbaas.dataplane.amphora import ApplyResult
from lbaas.dataplane.runtime import LoadBalancerHealth, LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec

__all__ = ["AgentClient", "ApplyResult", "LoadBalancerHealth", "LoadBalancerStats"]


class AgentClient(Protocol):
    """A data-plane host's agent, as the control plane sees it."""

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption(reason)`` if this host cannot serve ``lb``'s VIPs."""

    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        """Make ``lb``'s amphora serve exactly ``lb`` (start, runtime change or reload).

        Concurrent calls for one load balancer coalesce: the newest spec wins
        and one reload serves them all. Raises ``DriverError`` (HAProxy's
        message); the previous configuration keeps serving.
        """

    def delete(self, lb_id: str) -> None:
        """Stop ``lb_id``'s amphora and remove its files and plumbing (missing: no error)."""

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        """Rebuild SINGLE ``lb``'s amphora from scratch (ACTIVE_STANDBY amphorae are
        replaced through apply(), one at a time)."""

    def stats(self, lb_id: str) -> LoadBalancerStats:
        """Parsed ``show stat`` rows (``running=False`` when the amphora is down).

        Also the counters of old and retired workers (``others``), so that
        counters can be carried across reloads. An amphora found down here is
        handed to the agent's own supervision at once; the caller never
        restarts it. Not running, ``error`` says why the agent cannot start
        it by itself (its restart failed, or the host has no spec of it
        left): then the controller sends the spec again (apply()); None
        while a restart is on its way.
        """

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """What stats() would return now without asking the amphora (its last reading,
        that nothing has made stale), else None. Does not wait for anything."""

    def health(self, lb_id: str) -> LoadBalancerHealth:
        """Whether the amphora runs and each member's status in it."""

    def start(self) -> None:
        """Adopt running amphorae, restart dead ones, and start supervising."""

    def stop(self) -> None:
        """Stop supervising. Amphorae keep serving (the data plane outlives the agent)."""
