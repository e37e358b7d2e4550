"""Transaction locks that make a count-then-insert exact under concurrency.

Two checks read the database and then insert what they read as allowed: a
quota (count the project's objects, then add one) and a VIP (read the
subnet's used addresses, then take a free one). Two transactions doing the
same check at once would both see the same count or the same free address.
Each check therefore first takes a lock that the other transactions doing it
wait for, held until commit or rollback:

- :func:`lock_project_quota`: one per project, around every quota check;
- :func:`lock_subnet`: the subnet's row, around every VIP allocation on it.

On SQLite a writing transaction already holds the database's one write lock
from its ``BEGIN IMMEDIATE`` (:mod:`lbaas.db.session`), so both are no-ops
there. On PostgreSQL (READ COMMITTED) the statements after the lock see
what the previous holder committed.

Order, so that two transactions never wait on each other: project quota,
then subnet, then the load balancer's row (:mod:`lbaas.worker.status`); the
API's handlers check quotas before allocating and before locking.
"""

from __future__ import annotations

import zlib

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lbaas.db import models as m

# The class half of the quota locks' two-integer advisory keys ("quot"): a key
# space of their own, apart from lbaas.ownership's one-bigint key.
QUOTA_LOCK_CLASS = 0x71756F74


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_project_quota(session: Session, project_id: str) -> None:
    """Hold ``project_id``'s quota lock until the transaction ends.

    A PostgreSQL transaction-level advisory lock (``pg_advisory_xact_lock``),
    rather than a ``SELECT ... FOR UPDATE`` of the ``quota`` row as Octavia
    does: a project without quotas of its own has no row, and creating one
    would list it among the projects that have quotas set. Two projects
    whose ids hash alike (crc32) merely share a lock.
    """
    if not _postgresql(session):
        return
    key = zlib.crc32(project_id.encode()) - (1 << 31)  # as a signed 32-bit integer
    session.execute(text("SELECT pg_advisory_xact_lock(:cls, :key)"),
                    {"cls": QUOTA_LOCK_CLASS, "key": key})


def lock_subnet(session: Session, subnet_id: str) -> None:
    """Hold subnet ``subnet_id``'s row lock (``SELECT ... FOR UPDATE``) until
    the transaction ends: VIP allocations on one subnet take turns."""
    if not _postgresql(session):
        return
    session.execute(select(m.Subnet.id).where(m.Subnet.id == subnet_id).with_for_update())
