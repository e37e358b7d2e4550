"""Assembly: settings -> database, drivers, worker and API, started and stopped together.

``lbaas serve`` and the tests build a :class:`Service` the same way; only the
drivers differ when a test passes its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI
from sqlalchemy import Engine

from lbaas.api.app import create_app
from lbaas.api.deps import ApiState
from lbaas.api.policy import Policy
from lbaas.common import constants as c
from lbaas.config import Settings
from lbaas.db import ipam, migrate
from lbaas.db.session import make_engine, make_sessionmaker, transaction
from lbaas.drivers.base import ProviderDriver
from lbaas.drivers.noop import NoopDriver
from lbaas.worker.reconciler import Reconciler

LOG = logging.getLogger(__name__)


def default_drivers(settings: Settings) -> dict[str, ProviderDriver]:
    """The provider drivers of a standard deployment, by name."""
    return {c.PROVIDER_NOOP: NoopDriver(apply_delay=settings.noop_apply_delay),
            c.PROVIDER_HAPROXY: NoopDriver()}


class Service:
    """One lbaas process: API app, provisioning worker, database.

    ``drivers`` replaces :func:`default_drivers` (tests).
    """

    def __init__(self, settings: Settings,
                 drivers: Mapping[str, ProviderDriver] | None = None) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = make_engine(settings.effective_database_url)
        migrate.upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        with transaction(self.sessions) as session:
            ipam.ensure_default_subnet(session, settings.default_subnet_cidr,
                                       settings.default_subnet_pool)
        self.drivers = dict(drivers) if drivers is not None else default_drivers(settings)
        self.reconciler = Reconciler(self.sessions, self.drivers,
                                     threads=settings.worker_threads,
                                     poll_interval=settings.worker_poll_interval)
        self.app: FastAPI = create_app(ApiState(
            settings=settings, sessions=self.sessions,
            policy=Policy(settings.policy_file), drivers=self.drivers,
            notify=self.reconciler.notify))

    def start(self) -> None:
        """Start the worker (the API is served by whoever runs :attr:`app`)."""
        self.reconciler.start()
        self.reconciler.notify()

    def stop(self, grace: float = 10.0) -> None:
        """Stop the worker (abandoned changes stay PENDING) and release the database."""
        abandoned = self.reconciler.stop(grace)
        if abandoned:
            LOG.warning("stopping with changes in flight, resumed on next start: %s",
                        ", ".join(abandoned))
        self.engine.dispose()
