"""The health manager: what the data plane observes, written to the database.

Every ``interval`` seconds (``[health_manager] health_check_interval``,
default 2) one poll::

    read which load balancers changed (one query: ids and update times), and
    the graphs of those only (kept from earlier polls otherwise; PENDING_CREATE
    and PENDING_DELETE ones are skipped)
    -> ask each settled one's (ACTIVE, ERROR) provider driver for the reading
       it holds without asking the data plane (``kept_stats(lb_id)``: a quiet
       HAProxy's, in this thread), and for ``stats(lb_id)`` of the others
       (``threads`` in parallel, no transaction held while HAProxy answers); a
       reading older than its graph is left out
    -> skip every load balancer whose reading and graph are those of its last
       written poll (an idle host costs a dictionary lookup per load balancer)
    -> rollup.evaluate: the operating statuses that changed
       stats.collect + accumulate: the counters of new readings
    -> one transaction: UPDATE only those rows (counters re-read under lock
       first, so two managers never add the same growth twice)

Every change of a load balancer's graph moves its row's ``updated_at`` (the
worker's status transitions lock and settle it; this manager's own writes
are applied to the graphs it keeps), so a graph whose load balancer row kept
its update time is the one in the database.

A reading is judged only against the graph it was taken from
(:func:`_observe` and :func:`_unmoved`). The database holds a change
before HAProxy does: a load balancer in PENDING_UPDATE is not asked at all
(its graph is newer than what serves: a listener enabled there has no
frontend in HAProxy yet, and would be ERROR); a settled one (ACTIVE, or
ERROR: its last apply failed and the previous configuration serves) is
judged from readings taken after the snapshot that first read its current
graph (every commit that snapshot shows, the worker's last apply included,
came before it). A reading asked for now is such a reading; one handed out
later (a remote agent's, kept from its heartbeat for up to
``heartbeat_timeout`` seconds) says when it was taken (``taken_at``) and
is left out if that was earlier: the next heartbeat's is judged. The
other way round, a change begun after the snapshot may be applied before
HAProxy answers: the statuses of a load balancer whose row moved since the
snapshot are not written (checked in the writing transaction), and the
next poll judges it against its new graph. A
provider that observes nothing (``stats`` returns None: the noop provider)
is left alone, as Octavia's noop drivers are.

A missing or dead HAProxy (``running=False``) makes its load balancer (and
its enabled listeners) ERROR at once and its active connection counts 0;
the agent that answered has already handed it to its own supervision,
which restarts it from the spec it holds (this loop never does: one owner
per process). When the agent says why it cannot (``error``: no spec left on
its host, or a restart that failed), an ACTIVE load balancer is applied
again from the database, once until it is seen running again
(``reapply``, the worker's :meth:`~lbaas.worker.reconciler.Reconciler.reapply`:
PENDING_UPDATE, then ACTIVE, or ERROR with HAProxy's reason). A running
HAProxy that does not answer is skipped for ``unanswered_polls - 1`` polls,
then reported ERROR the same way. Counters are only ever moved by answered
polls.

ACTIVE_STANDBY: the agent reports each amphora too. Its ``role`` column
follows what its keepalived reports (MASTER, BACKUP); the load balancer is
DEGRADED while one amphora is not running (:func:`rollup.evaluate`); and an
amphora the agent says cannot come back by itself (its namespace or
interface gone, a restart that failed: ``error``) is failed over once
(``failover``, the worker's
:meth:`~lbaas.worker.reconciler.Reconciler.failover_amphora`: a new amphora
takes its place while the other serves), as Octavia's health manager does
with an amphora that stopped sending heartbeats.

This is the only writer of ``operating_status`` after create (and of the
statistics tables). One health manager per database is expected; a second
one would write the same statuses and, thanks to the locked re-read, add no
counter twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, insert, select, type_coerce, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from lbaas.common import constants as c
from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.db import models as m
from lbaas.drivers.base import ProviderDriver
from lbaas.health import rollup
from lbaas.health import stats as counters
from lbaas.health.rollup import LoadBalancerNode, Node, PoolNode, Ref

LOG = logging.getLogger(__name__)

_MODELS: dict[str, Any] = {
    rollup.LOADBALANCER: m.LoadBalancer, rollup.LISTENER: m.Listener, rollup.POOL: m.Pool,
    rollup.MEMBER: m.Member, rollup.HEALTHMONITOR: m.HealthMonitor,
}


@dataclass
class Stored:
    """One statistics row as stored: totals (in ``*_COUNTERS`` order), active, readings."""

    totals: tuple[int, ...]
    active: int = 0
    readings: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class CounterTable:
    """A statistics table: its model, key column and counter columns."""

    model: Any
    key: str
    columns: tuple[str, ...]

    def stored(self, row: Any) -> Stored:
        """A row (ORM object or result row) as :class:`Stored`."""
        readings = getattr(row, "readings", None) or {}
        return Stored(totals=tuple(int(getattr(row, col) or 0) for col in self.columns),
                      active=int(row.active_connections or 0),
                      readings={w: tuple(int(x) for x in v) for w, v in readings.items()})

    def values(self, key: str, s: Stored) -> dict[str, Any]:
        """The column values of ``s`` for an INSERT or a bulk UPDATE."""
        return {self.key: key, "active_connections": s.active,
                "readings": {w: list(v) for w, v in s.readings.items()},
                **dict(zip(self.columns, s.totals, strict=True))}

    def zero(self) -> Stored:
        """A row that does not exist yet."""
        return Stored(totals=(0,) * len(self.columns))


LISTENER_TABLE = CounterTable(m.ListenerStatistics, "listener_id", counters.LISTENER_COUNTERS)
MEMBER_TABLE = CounterTable(m.MemberStatistics, "member_id", counters.MEMBER_COUNTERS)


@dataclass(frozen=True)
class PollReport:
    """What one poll did. ``seconds`` is wall time."""

    polled: int  # settled load balancers whose provider has a driver here
    answered: int
    dead: tuple[str, ...]  # load balancers reported ERROR for a missing/dead/mute HAProxy
    status_changes: int
    counter_rows: int
    seconds: float


@dataclass
class _Result:
    """One load balancer's outcome in a poll (computed without the database)."""

    lb: LoadBalancerNode
    statuses: dict[Ref, str] = field(default_factory=dict)
    stats: LoadBalancerStats | None = None  # the answered reading (None: dead)
    observation: counters.Observation | None = None  # a new answered reading's counters
    dead: bool = False
    reapply: bool = False  # the agent cannot start it by itself: send the spec again
    roles: dict[str, str] = field(default_factory=dict)  # amphora id -> role keepalived says
    broken: tuple[str, ...] = ()  # amphorae that will not come back by themselves

    @property
    def counts(self) -> bool:
        """True if its counter rows may move (a new reading, or dead)."""
        return self.observation is not None or self.dead


_CHUNK = 25  # load balancers asked per task of the thread pool
SETTLED = (c.ACTIVE, c.ERROR)  # after the last apply (ERROR: it failed, the old one serves)
_VERSION = type_coerce(m.LoadBalancer.updated_at, String)  # as stored: no datetime parsing


class HealthManager:
    """Polls every settled load balancer's data plane through its provider driver.

    ``drivers`` maps provider names to drivers (aliases resolved through
    ``constants.PROVIDER_ALIASES``); ``interval`` is seconds between the
    starts of two polls; ``threads`` load balancers are asked in parallel;
    ``unanswered_polls`` and ``reapply`` (given a load balancer id, True if
    it will be applied again) are described in the module docstring. The
    snapshot is read in ``read_sessions`` (default ``sessions``), the
    results written in ``sessions``.
    """

    def __init__(self, sessions: sessionmaker[Session], drivers: Mapping[str, ProviderDriver],
                 interval: float = 2.0, threads: int = 2, unanswered_polls: int = 3,
                 reapply: Callable[[str], bool] | None = None,
                 read_sessions: sessionmaker[Session] | None = None,
                 failover: Callable[[str, str], bool] | None = None) -> None:
        self._sessions = sessions
        self._read_sessions = read_sessions or sessions
        self._drivers = dict(drivers)
        self.interval = interval
        self.unanswered_polls = unanswered_polls
        self._threads = threads
        self._reapply = reapply
        self._failover = failover
        self._failed_over: set[str] = set()  # amphorae handed to the worker, until seen again
        self._pool: ThreadPoolExecutor | None = None
        self._unanswered: dict[str, int] = {}
        self._dead: set[str] = set()
        self._reapplied: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: PollReport | None = None
        self._versions: dict[str, Any] = {}  # every load balancer's updated_at, last read
        # Settled load balancers: monotonic time (s) since which their graph is the one
        # applied (the end of the snapshot that first read it); readings must not be older.
        self._applied: dict[str, float] = {}
        self._graphs: dict[str, LoadBalancerNode] = {}  # settled ones' graphs, as written
        # Per load balancer: the graph and answered reading of its last written poll.
        self._seen: dict[str, tuple[LoadBalancerNode, LoadBalancerStats]] = {}

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="lbaas-health-manager",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling (waits up to ``timeout`` seconds for a poll in progress)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # the database may be briefly unavailable
                LOG.exception("health poll failed")
            self._stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    # -- one poll ----------------------------------------------------------
    def poll_once(self) -> PollReport:
        """Read, observe, compute and write once; returns what happened."""
        started = time.monotonic()
        lbs = self._snapshot()
        asked = [(lb, driver) for lb in lbs
                 if (driver := self._drivers.get(c.PROVIDER_ALIASES.get(lb.provider,
                                                                        lb.provider)))]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._threads,
                                            thread_name_prefix="lbaas-health")
        applied = self._applied
        observed: list[tuple[LoadBalancerNode, LoadBalancerStats | BaseException | None]] = []
        due = []  # those whose driver must ask the data plane: in the pool
        for lb, driver in asked:
            since = applied.get(lb.id)
            if since is None:  # not applied yet (PENDING_UPDATE): not asked, see _observe
                observed.append((lb, None))
                continue
            kept = driver.kept_stats(lb.id)
            if kept is not None and _describes(kept, since):
                observed.append((lb, kept))
            else:
                due.append((lb, driver))
        chunks = [due[i:i + _CHUNK] for i in range(0, len(due), _CHUNK)]
        observed += [pair for chunk in self._pool.map(
            lambda chunk: [(lb, _observe(lb, driver, applied.get(lb.id)))
                           for lb, driver in chunk], chunks)
            for pair in chunk]
        results = []
        answered = 0
        for lb, st in observed:
            if isinstance(st, LoadBalancerStats) and st.running and st.error is None:
                answered += 1
                seen = self._seen.get(lb.id)
                if seen is not None and (st is seen[1] or st == seen[1]):
                    if lb is seen[0] or lb == seen[0]:
                        continue  # nothing new: its statuses and counters are written
                    r = self._judge(lb, st)
                    if r is not None:  # the graph changed, not the reading: no counters
                        r.observation = None
                        results.append(r)
                    continue
            if (r := self._judge(lb, st)) is not None:
                results.append(r)
        known = {lb.id for lb, _ in asked}
        for gone in set(self._unanswered) - known:
            del self._unanswered[gone]
        self._dead &= known
        self._reapplied &= known
        for gone in set(self._seen) - known:
            del self._seen[gone]
        status_changes = {ref: s for r in results for ref, s in
                          rollup.changes(r.lb, r.statuses).items()}
        rows, written = 0, {r.lb.id for r in results}
        if status_changes or any(r.counts or r.roles for r in results):
            rows, written = self._write(results, status_changes)
        for r in results:
            if r.lb.id not in written:
                continue
            mine = {ref: s for ref, s in r.statuses.items() if ref in status_changes}
            lb = rollup.with_statuses(r.lb, mine) if mine else r.lb
            if r.roles:
                lb = rollup.with_roles(lb, r.roles)
            if self._graphs.get(lb.id) is r.lb:
                self._graphs[lb.id] = lb
            if r.stats is not None:
                self._seen[lb.id] = (lb, r.stats)
        for r in results:
            if r.reapply and self._reapply is not None and r.lb.id not in self._reapplied:
                self._reapplied.add(r.lb.id)
                if self._reapply(r.lb.id):
                    LOG.warning("load balancer %s: applying it again from the database",
                                r.lb.id)
        self._fail_over(results)
        report = PollReport(polled=len(asked), answered=answered,
                            dead=tuple(sorted(r.lb.id for r in results if r.dead)),
                            status_changes=len(status_changes), counter_rows=rows,
                            seconds=time.monotonic() - started)
        self.last_report = report
        return report

    def _fail_over(self, results: Sequence[_Result]) -> None:
        """Hand each broken amphora to the worker once (until it is seen gone or well)."""
        broken = {(r.lb.id, a) for r in results for a in r.broken}
        self._failed_over &= {a for _, a in broken}
        for lb_id, amphora_id in sorted(broken):
            if self._failover is None or amphora_id in self._failed_over:
                continue
            self._failed_over.add(amphora_id)
            if self._failover(lb_id, amphora_id):
                LOG.warning("load balancer %s: amphora %s cannot serve; failing it over",
                            lb_id, amphora_id)

    def _judge(self, lb: LoadBalancerNode, st: LoadBalancerStats | BaseException | None,
               ) -> _Result | None:
        """Decide one load balancer's outcome from its driver's answer."""
        if st is None:
            return None  # the provider observes nothing
        if isinstance(st, BaseException) or not st.running or st.error is not None:
            self._seen.pop(lb.id, None)
        if isinstance(st, BaseException) or (st.running and st.error is not None):
            reason = st if isinstance(st, BaseException) else st.error
            count = self._unanswered[lb.id] = self._unanswered.get(lb.id, 0) + 1
            if count < self.unanswered_polls:
                LOG.info("load balancer %s: HAProxy did not answer (%s)", lb.id, reason)
                return None
            self._report_dead(lb, f"HAProxy runs but has not answered {count} polls: {reason}")
            return _Result(lb=lb, statuses=rollup.dead(lb), dead=True)
        self._unanswered.pop(lb.id, None)
        if not st.running:
            self._report_dead(lb, f"HAProxy is not running: {st.error}" if st.error else
                              "HAProxy is not running (the agent's supervision restarts it)")
            return _Result(lb=lb, statuses=rollup.dead(lb), dead=True,
                           reapply=st.error is not None
                           and lb.provisioning_status == c.ACTIVE)
        self._reapplied.discard(lb.id)
        if lb.id in self._dead:
            LOG.warning("load balancer %s: HAProxy answers again", lb.id)
            self._dead.discard(lb.id)
        return _Result(lb=lb, statuses=rollup.evaluate(lb, st), stats=st,
                       observation=counters.collect(st), roles=rollup.amphora_roles(lb, st),
                       broken=tuple(a.id for a in st.amphorae if a.error))

    def _report_dead(self, lb: LoadBalancerNode, why: str) -> None:
        if lb.id not in self._dead:
            LOG.warning("load balancer %s: %s; operating status ERROR", lb.id, why)
            self._dead.add(lb.id)

    # -- database ------------------------------------------------------------
    def _snapshot(self) -> list[LoadBalancerNode]:
        """Settled load balancers' graphs: read again for the load balancers whose row
        changed since the last poll (or are new), kept otherwise. One short read."""
        with self._read_sessions() as session, session.begin():
            versions = dict(session.execute(select(m.LoadBalancer.id, _VERSION)).all())
            changed = [lb_id for lb_id, v in versions.items()
                       if lb_id not in self._versions or self._versions[lb_id] != v]
            fresh = read_graphs(session, changed if len(changed) <= len(versions) // 2
                                else None) if changed else []
        read_at = time.monotonic()  # after every commit this snapshot shows
        if len(changed) > len(versions) // 2:
            self._graphs.clear()
        for lb_id in changed:
            self._graphs.pop(lb_id, None)
            self._applied.pop(lb_id, None)
        for lb_id in self._versions.keys() - versions.keys():
            self._graphs.pop(lb_id, None)
            self._applied.pop(lb_id, None)
        self._graphs.update((lb.id, lb) for lb in fresh)
        for lb in fresh:
            if lb.provisioning_status in SETTLED:
                self._applied.setdefault(lb.id, read_at)
        self._versions = versions
        return list(self._graphs.values())

    def _write(self, results: list[_Result], statuses: dict[Ref, str]) -> tuple[int, set[str]]:
        """Write in one transaction; if that fails, one transaction per load balancer.

        Returns the statistics rows written and the load balancers written.
        """
        try:
            with self._sessions() as session, session.begin():
                rows = _apply(session, results, statuses, self._versions)
                return rows, {r.lb.id for r in results}
        except SQLAlchemyError as e:  # e.g. an object deleted meanwhile
            LOG.info("health poll write failed (%s); writing load balancer by load balancer",
                     type(e).__name__)
        rows, written = 0, set()
        for r in results:
            refs = dict(r.lb.refs())
            mine = {ref: s for ref, s in statuses.items() if ref in refs}
            try:
                with self._sessions() as session, session.begin():
                    rows += _apply(session, [r], mine, self._versions)
                written.add(r.lb.id)
            except SQLAlchemyError as e:
                LOG.warning("load balancer %s: health update failed (%s); next poll retries",
                            r.lb.id, e)
        return rows, written


def _observe(lb: LoadBalancerNode, driver: ProviderDriver, applied_since: float | None,
             ) -> LoadBalancerStats | BaseException | None:
    """``lb``'s reading from ``driver`` (or the exception it raised), if it may be judged
    against ``lb``'s graph; None if not (nothing observed this poll).

    ``applied_since``: ``time.monotonic()`` (seconds) since which the graph
    is the one applied; None: it is not (PENDING_UPDATE), and HAProxy is not
    asked. A reading whose ``taken_at`` is earlier describes an older
    configuration; one without was taken now, after ``applied_since``.
    """
    if applied_since is None:
        return None
    try:
        st = driver.stats(lb.id)
    except Exception as e:  # a driver's failure is this load balancer's, not the poll's
        return e
    if st is not None and not _describes(st, applied_since):
        LOG.debug("load balancer %s: reading taken at %s, before its graph was applied "
                  "at %.1f (monotonic s): not judged", lb.id, st.taken_at, applied_since)
        return None
    return st


def _describes(st: LoadBalancerStats, applied_since: float) -> bool:
    """Whether reading ``st`` was taken after the graph was applied at ``applied_since``
    (``time.monotonic()`` seconds): a reading without ``taken_at`` was taken now."""
    return st.taken_at is None or st.taken_at >= applied_since


def read_graphs(session: Session, ids: Collection[str] | None = None,
                ) -> list[LoadBalancerNode]:
    """Load balancers not being created or deleted, as frozen nodes (seven queries):
    every one, or those of ``ids``."""
    def rows(model: Any, *extra: Any, where: Any = None) -> Sequence[Any]:
        stmt = select(model.id, model.admin_state_up, model.provisioning_status,
                      model.operating_status, *extra)
        if ids is not None:
            stmt = stmt.where(where)
        return session.execute(stmt).all()

    pool_ids = select(m.Pool.id).where(m.Pool.load_balancer_id.in_(ids or ()))

    def node(row: Any) -> Node:
        return Node(id=row.id, admin_state_up=bool(row.admin_state_up),
                    provisioning_status=row.provisioning_status,
                    operating_status=row.operating_status)

    lbs = [row for row in rows(m.LoadBalancer, m.LoadBalancer.project_id,
                               m.LoadBalancer.provider, where=m.LoadBalancer.id.in_(ids or ()))
           if row.provisioning_status not in rollup.UNSETTLED]
    if not lbs:
        return []
    listeners: dict[str, list[Node]] = defaultdict(list)
    for row in rows(m.Listener, m.Listener.load_balancer_id,
                    where=m.Listener.load_balancer_id.in_(ids or ())):
        listeners[row.load_balancer_id].append(node(row))
    members: dict[str, list[Node]] = defaultdict(list)
    for row in rows(m.Member, m.Member.pool_id, where=m.Member.pool_id.in_(pool_ids)):
        members[row.pool_id].append(node(row))
    monitors = {row.pool_id: node(row) for row in rows(
        m.HealthMonitor, m.HealthMonitor.pool_id, where=m.HealthMonitor.pool_id.in_(pool_ids))}
    pools: dict[str, list[PoolNode]] = defaultdict(list)
    for row in rows(m.Pool, m.Pool.load_balancer_id,
                    where=m.Pool.load_balancer_id.in_(ids or ())):
        pools[row.load_balancer_id].append(PoolNode(
            id=row.id, admin_state_up=bool(row.admin_state_up),
            provisioning_status=row.provisioning_status, operating_status=row.operating_status,
            members=tuple(members.get(row.id, ())), health_monitor=monitors.get(row.id)))
    amphorae: dict[str, list[tuple[str, str]]] = defaultdict(list)
    stmt = select(m.Amphora.id, m.Amphora.load_balancer_id, m.Amphora.role).where(
        m.Amphora.role != c.AMPHORA_ROLE_STANDALONE)
    if ids is not None:
        stmt = stmt.where(m.Amphora.load_balancer_id.in_(ids))
    for row in session.execute(stmt):
        amphorae[row.load_balancer_id].append((row.id, row.role))
    return [LoadBalancerNode(
        id=row.id, admin_state_up=bool(row.admin_state_up),
        provisioning_status=row.provisioning_status, operating_status=row.operating_status,
        project_id=row.project_id, provider=row.provider,
        listeners=tuple(listeners.get(row.id, ())), pools=tuple(pools.get(row.id, ())),
        amphorae=tuple(amphorae.get(row.id, ())))
        for row in lbs]


def _read_counters(session: Session, table: CounterTable,
                   keys: Iterable[str] | None = None, lock: bool = False) -> dict[str, Stored]:
    stmt = select(table.model)
    if keys is not None:
        stmt = stmt.where(getattr(table.model, table.key).in_(list(keys)))
    if lock:
        stmt = stmt.with_for_update()
    return {getattr(row, table.key): table.stored(row) for row in session.scalars(stmt)}


def _counter_targets(r: _Result) -> dict[str, dict[str, counters.Observed | None]]:
    """Per table kind: each object whose row this result may move, with what was observed.

    Answered: every listener and member not being deleted (nothing observed
    is an empty observation: its workers are gone). Dead: None (only the
    active count drops to 0).
    """
    live = [li for li in r.lb.listeners if li.provisioning_status != c.PENDING_DELETE]
    mems = [mb for p in r.lb.pools for mb in p.members if mb.provisioning_status
            != c.PENDING_DELETE]
    if r.observation is None:
        return {rollup.LISTENER: dict.fromkeys(li.id for li in live),
                rollup.MEMBER: dict.fromkeys(mb.id for mb in mems)}
    empty = counters.Observed()
    return {rollup.LISTENER: {li.id: r.observation.listeners.get(li.id, empty) for li in live},
            rollup.MEMBER: {mb.id: r.observation.members.get(mb.id, empty) for mb in mems}}


def _next(table: CounterTable, before: Stored, seen: counters.Observed | None) -> Stored:
    if seen is None:  # dead: nothing observed, no connection open
        return Stored(totals=before.totals, active=0, readings=before.readings)
    totals, readings = counters.accumulate(before.totals, before.readings, seen.readings)
    return Stored(totals=totals, active=seen.active, readings=readings)


def _unmoved(session: Session, results: Sequence[_Result], statuses: Mapping[Ref, str],
             versions: Mapping[str, Any]) -> Mapping[Ref, str]:
    """``statuses`` without those of load balancers whose row moved since the snapshot
    (``versions``: id -> updated_at as read): a change begun after the graph was read
    may have been applied before HAProxy was asked, so the reading may be newer than the
    graph it was judged against. The next poll judges them again. One query, only when
    some status changes."""
    refs = {r.lb.id: [ref for ref, _ in r.lb.refs() if ref in statuses] for r in results}
    ids = [lb_id for lb_id, mine in refs.items() if mine]
    if not ids:
        return statuses
    now = dict(session.execute(select(m.LoadBalancer.id, _VERSION)
                               .where(m.LoadBalancer.id.in_(ids))).all())
    moved = {lb_id for lb_id in ids if now.get(lb_id) != versions.get(lb_id)}
    if not moved:
        return statuses
    LOG.debug("load balancers %s changed while observed: statuses judged again next poll",
              ", ".join(sorted(moved)))
    dropped = {ref for lb_id in moved for ref in refs[lb_id]}
    return {ref: s for ref, s in statuses.items() if ref not in dropped}


def _apply(session: Session, results: Sequence[_Result], statuses: Mapping[Ref, str],
           versions: Mapping[str, Any]) -> int:
    """Write ``statuses`` (but :func:`_unmoved`'s) and the counters of ``results`` (new
    readings, dead load balancers), computed from the rows re-read under lock. Returns
    the number of statistics rows written."""
    statuses = _unmoved(session, results, statuses, versions)
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (kind, obj_id), status in statuses.items():
        grouped[(kind, status)].append(obj_id)
    for (kind, status), ids in sorted(grouped.items()):
        model = _MODELS[kind]
        session.execute(update(model).where(model.id.in_(ids),
                                            model.operating_status != status)
                        .values(operating_status=status)
                        .execution_options(synchronize_session=False))
    roles: dict[str, list[str]] = defaultdict(list)
    for r in results:
        for amphora_id, role in r.roles.items():
            roles[role].append(amphora_id)
    for role, ids in sorted(roles.items()):
        session.execute(update(m.Amphora).where(m.Amphora.id.in_(ids), m.Amphora.role != role)
                        .values(role=role).execution_options(synchronize_session=False))
    written = 0
    for kind, table in ((rollup.LISTENER, LISTENER_TABLE), (rollup.MEMBER, MEMBER_TABLE)):
        targets: dict[str, counters.Observed | None] = {}
        for r in results:
            if r.counts:
                targets.update(_counter_targets(r)[kind])
        if not targets:
            continue
        current = _read_counters(session, table, targets, lock=True)
        inserts, updates = [], []
        for key, seen in targets.items():
            before = current.get(key)
            after = _next(table, before or table.zero(), seen)
            if before is None and after != table.zero():
                inserts.append(table.values(key, after))
            elif before is not None and after != before:
                updates.append(table.values(key, after))
        if inserts:
            session.execute(insert(table.model), inserts)
        if updates:
            session.execute(update(table.model), updates)
        written += len(inserts) + len(updates)
    return written
