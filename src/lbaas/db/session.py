"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

Two kinds of sessions (:func:`make_sessionmaker`): writing ones, for every
transaction that may write, and read-only ones, for those that only read
(the API's GETs, the worker's scans, the health manager's snapshot).

On SQLite (WAL mode, foreign keys on) a writing transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock first, so two writers queue on
the busy timeout instead of one failing when its read upgrades to a write.
A read-only transaction starts with a plain ``BEGIN``: a WAL reader that
never waits for a writer, and that cannot write (``PRAGMA query_only``), so
a write slipped into a read path fails at once instead of deadlocking. On
PostgreSQL both are ordinary transactions.

:func:`write_probe` is the health check's test that the database takes a
write; :func:`storage_problem` tells a full or unwritable database apart
from other errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import InternalError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    For a SQLite file the parent directory is created. PostgreSQL sessions
    are named ``lbaas pid <pid>`` (``application_name``, seen in
    ``pg_stat_activity``): which process holds which connection and claim.
    """
    # JSON columns read by orjson: the same values as json.loads, at a third of the cost
    # (a list of a thousand load balancers reads two a row; issue 12).
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "isolation_level": None}, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            if conn.get_execution_options().get(_READ_ONLY):
                conn.exec_driver_sql("PRAGMA query_only = ON")
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("PRAGMA query_only = OFF")
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("connect_args", {"application_name": f"lbaas pid {os.getpid()}"})
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


_READ_ONLY = "lbaas_read_only"


def make_sessionmaker(engine: Engine, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (responses read them).

    ``read_only`` sessions never wait for a writer and cannot write (SQLite;
    see the module docstring); the others take the write lock first.
    """
    bind = engine.execution_options(**{_READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


def write_probe(factory: sessionmaker[Session]) -> str | None:
    """None if a writing transaction commits; else why not (the database's words).

    The write changes nothing: it rewrites the one row every lbaas database
    has (Alembic's version), which is enough for a full disk, a read-only
    file or a read-only server to refuse it.
    """
    try:
        with factory() as session, session.begin():
            session.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as e:
        return _reason(e)
    return None


# SQLite's and PostgreSQL's words (SQLSTATE class 53: insufficient resources) for a full store.
_FULL = ("database or disk is full", "disk full", "no space left on device")


def storage_problem(error: SQLAlchemyError) -> tuple[bool, str] | None:
    """``(full, reason)`` if ``error`` says the database cannot take writes now
    (full: its disk or size limit is full), None for any other error.

    Recognised: SQLite's "database or disk is full", "database is locked",
    "attempt to write a readonly database", "disk I/O error"; PostgreSQL's
    disk-full (53100), read-only transaction (25006) and lost connections.
    """
    if not isinstance(error, OperationalError | InternalError):
        return None
    reason = _reason(error)
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    if sqlstate.startswith("53") or any(word in reason.lower() for word in _FULL):
        return True, reason
    if (isinstance(error, OperationalError) or sqlstate == "25006"
            or "read-only" in reason or "readonly" in reason):
        return False, reason
    return None


def _reason(error: SQLAlchemyError) -> str:
    """The database's own message, first line."""
    orig = getattr(error, "orig", None)
    text_ = str(orig if orig is not None else error).strip()
    return text_.splitlines()[0] if text_ else type(error).__name__


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session
