"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest

from tests.support import postgres


@pytest.fixture
def database(pg_cluster: postgres.Database | None) -> str:
    """The URL of this worker's PostgreSQL database, emptied (skips without PostgreSQL)."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL not available")
    from tests.conftest import _empty

    _empty(pg_cluster.url)
    return pg_cluster.url
