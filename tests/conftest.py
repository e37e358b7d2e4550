"""Fixtures shared by every suite.

``service`` is a real :class:`lbaas.service.Service` (database, worker, API)
on a fresh database: SQLite in a temporary state directory, and, for the
API suite, also a throwaway PostgreSQL cluster (``LBAAS_TEST_POSTGRES=required``
turns its absence into a failure, as in CI; ``=skip`` leaves it out).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from lbaas.config import Settings
from lbaas.db.models import Base
from lbaas.db.session import make_engine
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.support import postgres


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.Cluster | None]:
    mode = os.environ.get("LBAAS_TEST_POSTGRES", "auto")
    if mode == "skip":
        yield None
        return
    if not postgres.available():
        if mode == "required":
            pytest.fail("PostgreSQL is required (LBAAS_TEST_POSTGRES=required) but initdb "
                        "and pg_ctl are not installed")
        yield None
        return
    cluster = postgres.Cluster()
    yield cluster
    cluster.stop()


def _truncate(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = [t.name for t in Base.metadata.sorted_tables]
        if conn.dialect.has_table(conn, "load_balancer"):
            conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    engine.dispose()


def make_settings(tmp_path: Path, **changes: object) -> Settings:
    """Settings for a test service in ``tmp_path`` (noop provider by default)."""
    base = Settings(state_dir=tmp_path / "state", default_provider="noop",
                    worker_poll_interval=0.05)
    return base.replace(**changes) if changes else base


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return ""
    cluster = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("PostgreSQL not available")
    _truncate(cluster.url)
    return str(cluster.url)


@pytest.fixture
def noop() -> NoopDriver:
    return NoopDriver()


@pytest.fixture
def service(tmp_path: Path, db_url: str, noop: NoopDriver) -> Iterator[Service]:
    svc = Service(make_settings(tmp_path, database_url=db_url),
                  drivers={"noop": noop, "haproxy": noop})
    svc.start()
    yield svc
    svc.stop()
