"""Provider drivers: what realises a load balancer (``haproxy``, ``noop``).

Drivers see load balancers only as frozen specs (:mod:`lbaas.dataplane.spec`);
they never touch the database or the API.
"""
