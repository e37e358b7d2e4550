"""The provider driver boundary.

The worker calls :meth:`ProviderDriver.apply` with the whole desired state of
one load balancer after every change, and :meth:`ProviderDriver.delete` when it
goes away; both must be idempotent (safe to re-run after a crash). The API calls
:meth:`ProviderDriver.validate` before accepting a change, so that options a
provider cannot realise are refused with Octavia's 501 instead of failing later.
The health manager calls :meth:`ProviderDriver.stats` for every settled load
balancer, every poll, to learn what the data plane observes.
"""

from __future__ import annotations

from typing import Any, Protocol

from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec


class ProviderDriver(Protocol):
    """What a provider must do. Errors: ``UnsupportedOption``, ``DriverError``."""

    name: str

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption(user_msg)`` if ``lb`` asks for what this provider lacks."""

    def validate_members(self, lb: LoadBalancerSpec) -> None:
        """Raise ``UnsupportedOption(user_msg)`` if the members in ``lb``'s pools cannot be
        realised; ``lb`` is the part of a load balancer a member change touches
        (:func:`lbaas.worker.graph.member_change_spec`), the rest was validated before
        (as Octavia's provider drivers check a member alone in ``member_create``)."""

    def apply(self, lb: LoadBalancerSpec) -> None:
        """Make the data plane serve exactly ``lb``; raise ``DriverError(reason)`` on failure.

        On failure what served before keeps serving.
        """

    def delete(self, lb: LoadBalancerSpec) -> None:
        """Stop serving ``lb`` and remove everything it left; a missing one is not an error."""

    def failover(self, lb: LoadBalancerSpec) -> None:
        """Rebuild ``lb``'s data plane from scratch (Octavia's failover)."""

    def stats(self, lb_id: str) -> LoadBalancerStats | None:
        """What the data plane observes of ``lb_id`` now, or None if this provider
        observes nothing (then the health manager leaves its statuses and counters alone).

        Must be cheap and must not wait for changes in flight: it is called for
        every load balancer every ``[health_manager] health_check_interval``.
        """

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """What :meth:`stats` would return now, if the driver holds it without asking the
        data plane (a reading that nothing has made stale); None: call :meth:`stats`.

        The health manager asks this of every load balancer in its own thread, and
        :meth:`stats` only of the others, in its pool: it must not wait for
        anything.
        """

    def flavor_capabilities(self) -> dict[str, str]:
        """Keys a flavor profile's ``flavor_data`` may hold, with their descriptions."""

    def availability_zone_capabilities(self) -> dict[str, str]:
        """Keys an availability zone profile's data may hold, with their descriptions."""

    def validate_flavor(self, flavor_data: dict[str, Any]) -> None:
        """Raise ``UnsupportedOption(user_msg)`` if ``flavor_data`` is not usable."""

    def validate_availability_zone(self, zone_data: dict[str, Any]) -> None:
        """Raise ``UnsupportedOption(user_msg)`` if ``zone_data`` is not usable."""
