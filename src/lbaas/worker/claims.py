"""Claims: each pending load balancer is worked on by exactly one control-plane process.

Several ``lbaas serve`` processes may share one PostgreSQL database (issue
12 item 4). Each scans for PENDING_* load balancers; before it runs a
change, a worker thread claims the load balancer, and skips it when another
process holds the claim (it comes back on a later scan if still pending).

On PostgreSQL a claim is a session-level advisory lock
(``pg_try_advisory_lock(CLAIM_CLASS, key)``, the key derived from the load
balancer id) taken on a connection that the claim keeps for the whole change:
no row lock is held while the driver runs, so the API's 409 for a load
balancer with a change in flight stays immediate. The lock is a lease that
expires with its holder: released after the change settles, and dropped by
the server when the holder's session ends (a killed process closes its
sockets at once; a host that vanishes is noticed by TCP keepalive), so a
surviving process takes the load balancer over on its next scan and
applies its spec again (every change is safe to re-run). Two ids whose keys
collide only serialise with each other. PostgreSQL is the only shared state:
no home-made consensus.

SQLite serves one process (:mod:`lbaas.ownership` refuses a second), whose
in-process bookkeeping (one change in flight per load balancer) is enough:
:class:`LocalClaims` grants every claim.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from typing import Final, Protocol

from sqlalchemy import Connection, Engine, text

LOG = logging.getLogger(__name__)

# "lbcl" in ASCII: the first key of every claim's advisory lock (a 32-bit int).
CLAIM_CLASS: Final = 0x6C62636C


def claim_key(lb_id: str) -> int:
    """The signed 32-bit second key of ``lb_id``'s advisory lock (first 4 bytes of SHA-256)."""
    return int.from_bytes(hashlib.sha256(lb_id.encode()).digest()[:4], "big", signed=True)


class Claims(Protocol):
    """Who works on which load balancer, across processes."""

    def claim(self, lb_id: str) -> contextlib.AbstractContextManager[bool]:
        """A context in which this process holds ``lb_id``'s claim if it yields True.

        False: another process holds it; the caller skips the load balancer.
        Never blocks on another holder.
        """
        ...

    def held(self) -> frozenset[str]:
        """The ids whose claim this process holds now (a stuck worker's report)."""
        ...


class _Held:
    """The ids whose claim is held, safe across worker threads."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def holding(self, lb_id: str) -> Iterator[None]:
        with self._lock:
            self._ids.add(lb_id)
        try:
            yield
        finally:
            with self._lock:
                self._ids.discard(lb_id)

    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._ids)


class LocalClaims:
    """One process per database (SQLite): every claim is granted."""

    def __init__(self) -> None:
        self._held = _Held()

    @contextlib.contextmanager
    def claim(self, lb_id: str) -> Iterator[bool]:
        """Always True."""
        with self._held.holding(lb_id):
            yield True

    def held(self) -> frozenset[str]:
        """The ids whose claim is held (a change of theirs runs)."""
        return self._held.held()


class AdvisoryClaims:
    """PostgreSQL: a claim is an advisory lock on a connection of ``engine`` kept for it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._held = _Held()

    @contextlib.contextmanager
    def claim(self, lb_id: str) -> Iterator[bool]:
        """Hold ``lb_id``'s advisory lock for the block (see the module docstring).

        Raises SQLAlchemy's errors when the database cannot be reached (the
        worker retries on its next scan).
        """
        key = claim_key(lb_id)
        conn = self._engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"),
                                    {"c": CLAIM_CLASS, "k": key}).scalar())
            conn.commit()  # the lock is the session's: it outlives this transaction
            if not got:
                yield False
                return
            with self._held.holding(lb_id):
                try:
                    yield True
                finally:
                    self._release(conn, key, lb_id)
        finally:
            conn.close()

    def held(self) -> frozenset[str]:
        """The ids whose advisory lock this process holds (taken, not yet released)."""
        return self._held.held()

    @staticmethod
    def _release(conn: Connection, key: int, lb_id: str) -> None:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": CLAIM_CLASS, "k": key})
            conn.commit()
        except Exception:
            # The session is unusable: dropping the connection ends it, and the lock with it.
            LOG.warning("load balancer %s: could not release its claim; closing the "
                        "connection instead", lb_id, exc_info=True)
            conn.invalidate()


def make_claims(engine: Engine) -> Claims:
    """Advisory-lock claims on PostgreSQL; on SQLite (one process) every claim is granted."""
    if engine.dialect.name == "postgresql":
        return AdvisoryClaims(engine)
    return LocalClaims()
