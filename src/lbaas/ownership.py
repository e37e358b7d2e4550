"""One ``lbaas serve`` per state directory and per database (issue 9, item 6).

Two processes on one state directory, or two on one database, would both
run the provisioning worker and the local agent: both apply the same load
balancers, write the same ``haproxy.cfg`` and start HAProxy masters that
fight over the same VIPs. Until load balancers have an owner (an agent per
host, a later issue), a process holds, for as long as it runs:

- the state directory: an exclusive ``flock`` on ``<state_dir>/lbaas.lock``,
  whose text names the holder (pid, host, API address, start time);
- the database: on SQLite a ``flock`` on ``<database file>.lock`` (SQLite
  serves one process); on PostgreSQL, only when the process runs the data
  plane itself (``[controller_worker] amphora_driver = in_process``, where
  every load balancer is placed on the agent inside it), the advisory lock
  :data:`ADVISORY_LOCK_KEY` (``pg_try_advisory_lock``) on a connection kept
  for it, named after the holder (``application_name``) so that a second
  process can say who has it.

Control-plane processes without an agent inside (issue 12 item 4) share a
PostgreSQL database freely: each change is claimed by one of them
(:mod:`lbaas.worker.claims`).

Both locks die with their process (the kernel drops the ``flock``, the server
the session's advisory lock): a crash never leaves a stale lock. The rule
for PostgreSQL lives in :meth:`Ownership._hold_postgresql` only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from lbaas.common.exceptions import LbaasError

LOCK_FILE = "lbaas.lock"
# "lbaas" in ASCII: the key of the PostgreSQL advisory lock of a database's data plane.
ADVISORY_LOCK_KEY = 0x6C62616173


class AlreadyRunning(LbaasError):
    """Another process holds the state directory or the database; the message names it."""


class Ownership:
    """The locks of one running lbaas: :meth:`acquire` at start, :meth:`release` at stop.

    ``holder`` describes this process (``"lbaas serve pid 4242 on host, API
    127.0.0.1:9876"``); it is what a second process is told. ``data_plane``:
    this process runs the agent of every load balancer of the database (a
    PostgreSQL database is then held too).
    """

    def __init__(self, state_dir: Path, engine: Engine, holder: str,
                 data_plane: bool = True) -> None:
        self.state_dir = state_dir
        self.engine = engine
        self.holder = holder
        self.data_plane = data_plane
        self._files: list[int] = []
        self._connection: Connection | None = None

    def acquire(self) -> None:
        """Take every lock, or none: raises AlreadyRunning naming the holder."""
        try:
            self._flock(self.state_dir / LOCK_FILE, f"state directory {self.state_dir}")
            if self.engine.dialect.name == "sqlite":
                database = self.engine.url.database
                if database and database != ":memory:":
                    self._flock(Path(f"{database}.lock"), f"database {database}")
            elif self.engine.dialect.name == "postgresql" and self.data_plane:
                self._hold_postgresql()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give every lock back (idempotent)."""
        for fd in self._files:
            os.close(fd)  # closing the file drops its flock
        self._files.clear()
        if self._connection is not None:
            # Unlocked before the close: a closed connection's backend lets its
            # locks go a moment later, and a process started right after this
            # one (a restart, the next test) would find the lock still held.
            with contextlib.suppress(Exception):  # a lost connection holds no lock
                self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
            self._connection.close()
            self._connection = None

    def _flock(self, path: Path, what: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(f"another lbaas holds {what}: {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.holder}\n".encode(), 0)
        self._files.append(fd)

    def _hold_postgresql(self) -> None:
        # A connection of its own, outside the pool: a pooled one would carry the
        # lock to its next user, and survive a dispose() of the pool.
        conn = create_engine(self.engine.url, poolclass=NullPool).connect()
        try:
            # PostgreSQL keeps at most 63 bytes of an application_name.
            conn.execute(text("SELECT set_config('application_name', :name, false)"),
                         {"name": self.holder.encode()[:63].decode(errors="ignore")})
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                               {"key": ADVISORY_LOCK_KEY}).scalar()
            if not got:
                holder = conn.execute(text(
                    "SELECT a.application_name || ' (since ' || a.backend_start::text || ')' "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND l.classid = :high AND l.objid = :low"),
                    {"high": ADVISORY_LOCK_KEY >> 32, "low": ADVISORY_LOCK_KEY & 0xFFFFFFFF},
                ).scalar() or "unknown"
                raise AlreadyRunning(f"another lbaas runs the data plane of database "
                                     f"{self.engine.url.database} on "
                                     f"{self.engine.url.host}: {holder}")
            conn.commit()
        except BaseException:
            conn.close()
            raise
        self._connection = conn


def describe_process(api: str) -> str:
    """This process as a lock holder: ``lbaas pid 4242 on host1, API 127.0.0.1:9876, since ...``."""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return f"lbaas pid {os.getpid()} on {socket.gethostname()}, API {api}, since {started}"
