"""Reads never wait for writers; a database that cannot be written is reported (issue 9,
items 5 and 11).

On SQLite every transaction used to start with ``BEGIN IMMEDIATE``, reads
included, so one slow writer made every other request wait and then fail
with a 500 ("database is locked"). Reads are now WAL readers; a write that
cannot get the database says why (503, or 507 for a full database), and
``/healthcheck`` (oslo.middleware's shape, as Octavia's) answers 503 with
the reason while the database cannot be written.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from lbaas.db import session as db_session
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import Api
from tests.conftest import fresh_database, make_settings


@pytest.fixture
def svc(tmp_path: Path, db_url: str, sqlite_template: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    """A service whose health check looks at the database on every request and
    whose SQLite writers give up after 0.3 s (30 s in production)."""
    monkeypatch.setattr(db_session, "SQLITE_BUSY_TIMEOUT_MS", 300)
    fresh_database(tmp_path, db_url, sqlite_template)
    noop = NoopDriver()
    service = Service(make_settings(tmp_path, database_url=db_url,
                                    healthcheck_refresh_interval=0.0),
                      drivers={"noop": noop, "haproxy": noop})
    service.start()
    yield service
    service.stop()


@pytest.fixture
def client(svc: Service) -> Iterator[Api]:
    with TestClient(svc.app, raise_server_exceptions=False) as c:
        yield Api(c, svc)


def _health(api: Api, json: bool = False) -> Any:
    return api.client.get("/healthcheck",
                          headers={"Accept": "application/json"} if json else {})


def test_healthcheck_answers_in_oslo_middlewares_shape(client: Api) -> None:
    r = _health(client)
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["content-type"].startswith("text/plain")
    r = _health(client, json=True)
    assert (r.status_code, r.json()) == (200, {"detailed": False, "reasons": ["OK"]})


def test_reads_do_not_wait_for_a_writer(client: Api, svc: Service) -> None:
    if svc.settings.database_url:
        pytest.skip("SQLite's locking")
    lb = client.create_lb()
    writer = sqlite3.connect(svc.settings.state_dir / "lbaas.sqlite", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        writer.execute("UPDATE load_balancer SET name = 'busy'")
        started = time.monotonic()
        for _ in range(20):
            client.get("/loadbalancers", status=200)
            assert client.show("loadbalancers", "loadbalancer", lb["id"])["name"] == "lb"
        assert time.monotonic() - started < 25  # one read that waited would take 30 s
        r = client.post("/loadbalancers", {"loadbalancer": {}}, status=503)
        assert client.fault(r) == ("The database cannot be written: database is locked. "
                                   "Nothing was changed.")
        r = _health(client, json=True)
        assert r.status_code == 503
        assert r.json()["reasons"] == ["The lbaas database cannot be written: database is "
                                       "locked"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert _health(client).status_code == 200
    client.create_lb()


def test_a_full_database_is_507_and_says_so(client: Api, svc: Service) -> None:
    if svc.settings.database_url:
        pytest.skip("SQLite's size limit stands in for a full disk")
    client.create_lb()
    with svc.engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()
    # Every new connection may not grow the file: SQLite's own "database or disk is full".
    event.listen(svc.engine, "connect",
                 lambda dbapi, _record: dbapi.execute(f"PRAGMA max_page_count = {pages}"))
    svc.engine.dispose()
    body = {"loadbalancer": {"name": "big", "description": "d" * 255,
                             "tags": [f"{i:03d}" + "t" * 250 for i in range(50)]}}
    for _ in range(20):
        r = client.post("/loadbalancers", body)
        if r.status_code != 201:
            break
    assert r.status_code == 507, r.text
    assert client.fault(r) == ("The database is full (database or disk is full): free disk "
                               "space where the database lives. Nothing was changed.")
    client.get("/loadbalancers", status=200)


def test_a_read_only_postgresql_is_reported(client: Api, svc: Service) -> None:
    if not svc.settings.database_url:
        pytest.skip("PostgreSQL's read-only transactions")
    with svc.engine.begin() as conn:
        name = conn.execute(text("SELECT current_database()")).scalar()
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    svc.engine.dispose()
    try:
        r = _health(client, json=True)
        assert r.status_code == 503
        assert r.json()["reasons"][0].startswith("The lbaas database cannot be written: "
                                                 "cannot execute UPDATE in a read-only")
        r = client.post("/loadbalancers", {"loadbalancer": {}}, status=503)
        assert "read-only transaction" in client.fault(r)
        client.get("/loadbalancers", status=200)
    finally:
        with svc.engine.begin() as conn:
            conn.execute(text("SET TRANSACTION READ WRITE"))
            conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        svc.engine.dispose()
    assert _health(client).status_code == 200
