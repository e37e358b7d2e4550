"""The ``noop`` provider: accepts everything, realises nothing.

For API-only use and tests, like Octavia's noop drivers. ``apply_delay``
(seconds) makes each call take time, so that tests can catch objects PENDING.
Nothing is observed (:meth:`NoopDriver.stats` is None), so, as with Octavia's
noop drivers, the health manager leaves operating statuses as created
(OFFLINE) and counters at zero.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.drivers import profiles


class NoopDriver:
    """Records the last spec applied per load balancer id and nothing else."""

    name = "noop"

    def __init__(self, apply_delay: float = 0.0) -> None:
        self.apply_delay = apply_delay
        self.applied: dict[str, LoadBalancerSpec] = {}
        self.calls: list[tuple[str, str]] = []  # (operation, lb id)
        self._lock = threading.Lock()

    def _record(self, op: str, lb: LoadBalancerSpec) -> None:
        if self.apply_delay:
            time.sleep(self.apply_delay)
        with self._lock:
            self.calls.append((op, lb.id))
            if op == "delete":
                self.applied.pop(lb.id, None)
            else:
                self.applied[lb.id] = lb

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Everything is accepted."""

    def validate_members(self, lb: LoadBalancerSpec) -> None:
        """Every member is accepted."""

    def apply(self, lb: LoadBalancerSpec) -> None:
        """Record ``lb`` as applied."""
        self._record("apply", lb)

    def delete(self, lb: LoadBalancerSpec) -> None:
        """Forget ``lb``."""
        self._record("delete", lb)

    def failover(self, lb: LoadBalancerSpec) -> None:
        """Record ``lb`` as rebuilt."""
        self._record("failover", lb)

    def stats(self, lb_id: str) -> LoadBalancerStats | None:
        """Nothing is observed: None."""
        return None

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """None: :meth:`stats` says."""
        return None

    def flavor_capabilities(self) -> dict[str, str]:
        """The same keys as the haproxy provider, so flavors can be tried out."""
        return dict(profiles.FLAVOR_KEYS)

    def availability_zone_capabilities(self) -> dict[str, str]:
        """The same keys as the haproxy provider."""
        return dict(profiles.AVAILABILITY_ZONE_KEYS)

    def validate_flavor(self, flavor_data: dict[str, Any]) -> None:
        """As the haproxy provider, but either topology (nothing is realised)."""
        profiles.check_flavor(flavor_data, self.name)

    def validate_availability_zone(self, zone_data: dict[str, Any]) -> None:
        """As the haproxy provider."""
        profiles.check_availability_zone(zone_data, self.name)
