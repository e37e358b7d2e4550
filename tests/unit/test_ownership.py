"""The data-plane lock of a PostgreSQL database (lbaas.ownership)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lbaas.db.session import make_engine
from lbaas.ownership import AlreadyRunning, Ownership
from tests.support import postgres


@pytest.fixture
def engine(pg_cluster: postgres.Database | None) -> Iterator[Engine]:
    if pg_cluster is None:
        pytest.skip("PostgreSQL not available")
    engine = make_engine(pg_cluster.url)
    yield engine
    engine.dispose()


def test_a_released_lock_is_free_at_once(engine: Engine, tmp_path: Path) -> None:
    # A restart (or the next test) takes the lock right after the release: the
    # lock must be gone when release() returns, not when the server notices the
    # closed connection.
    for i in range(40):
        first = Ownership(tmp_path / f"a{i}", engine, f"first {i}")
        first.acquire()
        second = Ownership(tmp_path / f"b{i}", engine, f"second {i}")
        with pytest.raises(AlreadyRunning, match=f"first {i}"):
            second.acquire()
        first.release()
        second.acquire()  # AlreadyRunning here before the fix
        second.release()
