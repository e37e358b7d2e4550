"""lbaas: load balancing as a service.

The Octavia v2 API (``api``) records what tenants ask for in a database
(``db``); a provisioning worker (``worker``) turns each load balancer's whole
graph into a provider driver call (``drivers``); the haproxy driver hands a
frozen spec to an agent (``agent``) that renders and runs HAProxy
(``dataplane``); the health manager (``health``) reads it back.
"""

__version__ = "0.1.0"
