"""Claims on PostgreSQL: advisory locks held by one session, gone with it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from lbaas.db.session import make_engine
from lbaas.worker.claims import CLAIM_CLASS, AdvisoryClaims, LocalClaims, claim_key, make_claims
from tests.support import postgres


@pytest.fixture
def engines(pg_cluster: postgres.Database | None) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database: two control-plane processes."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL not available")
    one, two = make_engine(pg_cluster.url), make_engine(pg_cluster.url)
    yield one, two
    one.dispose()
    two.dispose()


def test_one_holder_at_a_time_and_released_after(engines: tuple[Engine, Engine]) -> None:
    a, b = AdvisoryClaims(engines[0]), AdvisoryClaims(engines[1])
    with a.claim("lb-1") as mine:
        assert mine
        with b.claim("lb-1") as theirs, b.claim("lb-2") as other:
            assert not theirs  # held by the other process: skipped, never waited for
            assert other  # another load balancer is free
        with a.claim("lb-1") as again:
            assert not again  # a second thread of the holder does not get it either
    with b.claim("lb-1") as now:
        assert now


def test_a_dead_holder_loses_its_claim(engines: tuple[Engine, Engine]) -> None:
    holder = engines[0].connect()  # a process in the middle of a change on lb-1
    assert holder.execute(text("SELECT pg_try_advisory_lock(:c, :k)"),
                          {"c": CLAIM_CLASS, "k": claim_key("lb-1")}).scalar()
    holder.commit()
    b = AdvisoryClaims(engines[1])
    with b.claim("lb-1") as theirs:
        assert not theirs
    holder.invalidate()  # its session ends, as a killed process's does
    deadline = time.monotonic() + 10  # the server ends the session once it sees the socket close
    while True:
        with b.claim("lb-1") as theirs:
            if theirs:
                break
        assert time.monotonic() < deadline, "the dead holder's claim was never released"
        time.sleep(0.01)


def test_keys_and_choice() -> None:
    assert claim_key("a") != claim_key("b")
    assert -2**31 <= claim_key("x") < 2**31
    engine = make_engine("sqlite://")
    assert isinstance(make_claims(engine), LocalClaims)
    with LocalClaims().claim("lb") as mine:
        assert mine
