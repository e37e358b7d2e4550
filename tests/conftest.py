"""Fixtures shared by every suite.

``service`` is a real :class:`lbaas.service.Service` (database, worker, API)
on a fresh database: SQLite in a temporary state directory, and, for the
API suite, also PostgreSQL: one throwaway cluster per test run, shared by the
xdist workers, each worker with a database of its own in it
(:mod:`tests.support.postgres`; ``LBAAS_TEST_POSTGRES=required`` turns its
absence into a failure, as in CI; ``=skip`` leaves it out).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lbaas.config import Settings
from lbaas.db import migrate
from lbaas.db.models import Base
from lbaas.db.session import make_engine
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from lbaas.testing import barbican as bb
from lbaas.testing import keystone as ks
from tests.support import postgres


@pytest.fixture(scope="session")
def pg_cluster() -> postgres.Database | None:
    """This worker's database in the run's PostgreSQL cluster (``.url``), or None.

    The cluster outlives this fixture: its reaper stops it when the run ends.
    """
    mode = os.environ.get("LBAAS_TEST_POSTGRES", "auto")
    if mode == "skip":
        return None
    if not postgres.available():
        if mode == "required":
            pytest.fail("PostgreSQL is required (LBAAS_TEST_POSTGRES=required) but initdb "
                        "and pg_ctl are not installed")
        return None
    return postgres.worker_database()


def _run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The directory shared by every xdist worker of this run, and the run's PID.

    A worker's base temporary directory is inside the controller's.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return base.parent, os.getppid()
    return base, os.getpid()


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> ks.Keystone:
    """One real Keystone per test run, shared by the xdist workers (see
    :func:`lbaas.testing.keystone.shared`); ``LBAAS_TEST_KEYSTONE=required``
    makes its absence a failure (CI), ``=skip`` leaves it out."""
    mode = os.environ.get("LBAAS_TEST_KEYSTONE", "auto")
    if mode == "skip" or not ks.available():
        if mode == "required":
            pytest.fail("Keystone is required (LBAAS_TEST_KEYSTONE=required) but "
                        ".venv-keystone is missing: run scripts/setup --test")
        pytest.skip("Keystone not available (scripts/setup --test makes .venv-keystone)")
    run_dir, owner = _run_dir(tmp_path_factory)
    return ks.shared(run_dir / "keystone", owner)


@pytest.fixture(scope="session")
def barbican(tmp_path_factory: pytest.TempPathFactory, keystone: ks.Keystone) -> bb.Barbican:
    """One real Barbican per test run (on the run's Keystone, in its catalog as
    ``key-manager``), shared by the xdist workers (see
    :func:`lbaas.testing.barbican.shared`); ``LBAAS_TEST_BARBICAN=required`` makes its
    absence a failure (CI), ``=skip`` leaves it out."""
    mode = os.environ.get("LBAAS_TEST_BARBICAN", "auto")
    if mode == "skip" or not bb.available():
        if mode == "required":
            pytest.fail("Barbican is required (LBAAS_TEST_BARBICAN=required) but "
                        ".venv-barbican is missing: run scripts/setup --test")
        pytest.skip("Barbican not available (scripts/setup --test makes .venv-barbican)")
    run_dir, owner = _run_dir(tmp_path_factory)
    return bb.shared(run_dir / "barbican", keystone, owner)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's end stops its Barbican and Keystone (the controller's, or the only
    process's), and fails a schemathesis run that tried too few requests."""
    if hasattr(session.config, "workerinput"):
        return
    _check_schemathesis(session)
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and factory._basetemp is not None:
        bb.stop_shared(factory.getbasetemp() / "barbican")
        ks.stop_shared(factory.getbasetemp() / "keystone")


_PG_ENGINES: dict[str, Engine] = {}


def _empty(url: str) -> None:
    """Delete every row (DELETE is much faster than TRUNCATE on tiny tables)."""
    engine = _PG_ENGINES.get(url)
    if engine is None:
        engine = _PG_ENGINES[url] = make_engine(url)
    with engine.begin() as conn:
        if conn.dialect.has_table(conn, "load_balancer"):
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


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
    _empty(cluster.url)
    return str(cluster.url)


@pytest.fixture
def noop() -> NoopDriver:
    """The test provider: a noop driver that ``tests.api.base.held`` can pause."""
    from tests.api.base import HeldNoopDriver

    return HeldNoopDriver()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating costs ~50 ms)."""
    path = tmp_path_factory.mktemp("template") / "lbaas.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def fresh_database(tmp_path: Path, db_url: str, template: Path) -> None:
    """Put a copy of the migrated template where a SQLite test service looks."""
    if not db_url:
        (tmp_path / "state").mkdir(exist_ok=True)
        shutil.copy(template, tmp_path / "state" / "lbaas.sqlite")


@pytest.fixture
def service(tmp_path: Path, db_url: str, noop: NoopDriver,
            sqlite_template: Path) -> Iterator[Service]:
    fresh_database(tmp_path, db_url, sqlite_template)
    svc = Service(make_settings(tmp_path, database_url=db_url),
                  drivers={"noop": noop, "haproxy": noop})
    svc.start()
    yield svc
    svc.stop()


def _schemathesis_tally(stats: dict[str, list[object]]) -> tuple[int, int, int, int]:
    """(requests sent, cases run, cases in a whole run, minimum requests of a whole
    run) from the user properties of tests/api/test_schemathesis.py's reports."""
    total = ran = cases = minimum = 0
    for outcome in ("passed", "failed"):
        for report in stats.get(outcome, []):
            if getattr(report, "when", "") != "call":
                continue
            props = dict(getattr(report, "user_properties", []))
            if "schemathesis_requests" in props:
                total += int(props["schemathesis_requests"])
                ran += 1
                cases = int(props.get("schemathesis_cases", 0))
                minimum = int(props.get("schemathesis_minimum", 0))
    return total, ran, cases, minimum


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many requests schemathesis sent (summed over xdist workers)."""
    total, ran, cases, minimum = _schemathesis_tally(terminalreporter.stats)
    if total:
        terminalreporter.write_line(f"schemathesis: {total} requests tried in {ran} cases")
    if ran and ran == cases and total < minimum:
        terminalreporter.write_line(f"schemathesis: FAILED: a whole run must try at least "
                                    f"{minimum} requests", red=True)


def _check_schemathesis(session: pytest.Session) -> None:
    """A whole schemathesis run that tried fewer than its minimum fails the session."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    total, ran, cases, minimum = _schemathesis_tally(reporter.stats)
    if ran and ran == cases and total < minimum and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
