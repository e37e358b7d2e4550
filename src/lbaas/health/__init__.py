"""Health and statistics: what the data plane observes, written where tenants read it.

- :mod:`lbaas.health.rollup`: HAProxy's rows + a load balancer's graph ->
  operating statuses (member, pool, listener, load balancer, health monitor);
- :mod:`lbaas.health.stats`: per-worker counters -> totals that survive
  HAProxy reloads and restarts and lbaas restarts;
- :mod:`lbaas.health.manager`: the poll loop (``[health_manager]``) that asks
  each provider driver for ``stats(lb_id)`` and writes only what changed.

Beside :mod:`lbaas.worker` (which owns provisioning_status), above the
drivers and the database; it never imports the API.
"""
