"""The ``haproxy`` provider driver (see :mod:`lbaas.drivers.haproxy.driver`)."""

from lbaas.drivers.haproxy.driver import HaproxyDriver, refusals

__all__ = ["HaproxyDriver", "refusals"]
