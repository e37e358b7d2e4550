"""Errors of the data plane.

All are :class:`~lbaas.common.exceptions.DriverError` subclasses, so their
``reason`` reaches the tenant unchanged as the load balancer's error (the
worker settles the load balancer in ERROR with it). Each says what failed in
words an operator can act on, with HAProxy's own message where there is one.
"""

from __future__ import annotations

from lbaas.common.exceptions import DriverError


class DataplaneError(DriverError):
    """Base of every data-plane failure."""


class RenderError(DataplaneError):
    """A spec holds a value that cannot be written into haproxy.cfg safely.

    The API refuses such values first; this is the renderer's own guard for
    specs that did not come through the API.
    """


class ConfigCheckError(DataplaneError):
    """``haproxy -c`` refused a rendered configuration; ``reason`` is HAProxy's message."""


class ProcessError(DataplaneError):
    """Starting, reloading or stopping an HAProxy process failed."""


class RuntimeApiError(DataplaneError):
    """A runtime API (stats socket) command was refused or the socket did not answer."""
