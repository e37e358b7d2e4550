"""A migrated database (SQLite, and PostgreSQL when available) for worker-layer tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from lbaas.db import migrate
from lbaas.db.session import make_engine, make_sessionmaker
from tests.conftest import fresh_database


@pytest.fixture
def sessions(tmp_path: Path, db_url: str, sqlite_template: Path,
             ) -> Iterator[sessionmaker[Session]]:
    fresh_database(tmp_path, db_url, sqlite_template)
    engine = make_engine(db_url or f"sqlite:///{tmp_path / 'state' / 'lbaas.sqlite'}")
    migrate.upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()
