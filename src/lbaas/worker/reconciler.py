"""The reconciler: drives every PENDING_* load balancer to ACTIVE or ERROR.

Level-triggered: the database says which load balancers wait (any PENDING_*
status); the API also calls :meth:`Reconciler.notify` after it commits, so
that work starts at once instead of on the next scan (with the load
balancer's id, straight to a worker thread). Each load balancer has
at most one change in flight; different load balancers proceed in parallel on
``threads`` worker threads. Every step is safe to re-run: after a crash the
next start finds the same PENDING_* rows and applies the same spec again.

One change, for load balancer L::

    read L's graph, place its amphorae on agents (scheduler; not for a delete)
    -> its members: those this worker kept from L's last change, with only the
       PENDING_* ones read, when L's graph_version says nothing else changed
       (graph.MemberCache; else all of them)
    -> build the spec -> its TLS files (lbaas.worker.tls)
    -> driver.apply/delete/failover(spec)
    (no database transaction is held while the driver runs)
    -> in one transaction: status.finish(L, error)  (ACTIVE / ERROR / removed)
    -> settled ACTIVE: its members kept for the next change

Several processes on one PostgreSQL database: a worker thread claims the
load balancer before its change (:mod:`lbaas.worker.claims`); a load
balancer claimed by another process is skipped, and taken over on a later
scan if that process dies with the change unfinished.

Stopping (SIGTERM) stops taking work and waits a grace period for changes in
flight; anything still running is abandoned with its rows PENDING, to be
resumed by the next start. The data plane is never touched by stopping.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lbaas.certificates.base import CertificateError, CertManager
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.db import models as m
from lbaas.drivers.base import ProviderDriver
from lbaas.network.base import NetworkDriver
from lbaas.worker import graph, status, tls
from lbaas.worker.amphorae import lost
from lbaas.worker.claims import Claims, LocalClaims
from lbaas.worker.scheduler import NoAgentAvailable, Scheduler

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerState:
    """What the reconciler is doing at one moment (:meth:`Reconciler.state`).

    ``in_flight``: ids queued or being changed; ``queued``: how many of them
    wait for a worker thread; ``claims_held``: ids whose claim this process
    holds; ``threads``: (name, alive, thread ident) of the dispatcher and each
    worker thread; ``stopping``: :meth:`Reconciler.stop` was called.
    """

    in_flight: tuple[str, ...]
    queued: int
    claims_held: tuple[str, ...]
    threads: tuple[tuple[str, bool, int | None], ...]
    stopping: bool


class Reconciler:
    """Runs provider drivers for PENDING_* load balancers.

    ``drivers`` maps provider names (aliases included) to drivers; ``network``
    tells what is known of a VIP's subnet (for the spec).
    ``poll_interval`` is the seconds between database scans. ``certificates``
    resolves the certificate references of listeners and pools (None: specs
    go to the drivers without TLS files). Scans use ``read_sessions``
    (default ``sessions``), which never wait for a writer; reading a change
    (placing it writes) and settling statuses use ``sessions``.
    ``claims`` makes each change run in one process only when several share
    the database (default: this process is alone,
    :class:`~lbaas.worker.claims.LocalClaims`).
    """

    def __init__(self, sessions: sessionmaker[Session], drivers: Mapping[str, ProviderDriver],
                 network: NetworkDriver, threads: int = 4, poll_interval: float = 1.0,
                 certificates: CertManager | None = None,
                 scheduler: Scheduler | None = None,
                 read_sessions: sessionmaker[Session] | None = None,
                 claims: Claims | None = None) -> None:
        self._sessions = sessions
        self._read_sessions = read_sessions or sessions
        self._claims: Claims = claims or LocalClaims()
        self._certificates = certificates
        self._drivers = dict(drivers)
        self._network = network
        self._scheduler = scheduler
        self._threads = threads
        self._poll_interval = poll_interval
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)
        self._members = graph.MemberCache()

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Start the dispatcher and worker threads (daemons)."""
        self._stopping.clear()
        self._dispatcher = threading.Thread(target=self._dispatch_loop,
                                            name="lbaas-dispatcher", daemon=True)
        self._dispatcher.start()
        for i in range(self._threads):
            t = threading.Thread(target=self._work_loop, name=f"lbaas-worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)

    def stop(self, grace: float = 10.0) -> list[str]:
        """Stop taking work; wait up to ``grace`` seconds for changes in flight.

        Returns the ids of load balancers whose change was abandoned (they
        stay PENDING_* and are resumed on the next start).
        """
        self._stopping.set()
        self._wake.set()
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + grace
        for t in [*self._workers, *([self._dispatcher] if self._dispatcher else [])]:
            t.join(max(0.0, deadline - time.monotonic()))
        self._workers.clear()
        with self._lock:
            return sorted(self._in_flight)

    def notify(self, lb_id: str | None = None) -> None:
        """Tell the reconciler that something changed (cheap; call after commit).

        ``lb_id``: the load balancer the change marked PENDING_*: handed to a
        worker thread at once, not through the dispatcher's scan (issue 12: a
        thread hop and a query less per change); if it is in flight already
        (or stopping), the dispatcher is woken instead and finds it when the
        change in flight is done.
        """
        if lb_id is not None and not self._stopping.is_set():
            with self._lock:
                queued = lb_id not in self._in_flight
                if queued:
                    self._in_flight.add(lb_id)
            if queued:
                self._queue.put(lb_id)
                return
        self._wake.set()

    def reapply(self, lb_id: str) -> bool:
        """Apply ACTIVE ``lb_id`` again from the database (its data plane lost it).

        Marks it PENDING_UPDATE (:func:`status.begin_reapply`) and wakes the
        workers. Returns False if it was not ACTIVE (or is gone): nothing done.
        """
        try:
            with self._sessions() as session, session.begin():
                status.begin_reapply(session, lb_id)
        except exc.ImmutableObject:
            return False
        self.notify()
        return True

    def failover_amphora(self, lb_id: str, amphora_id: str) -> bool:
        """Replace amphora ``amphora_id`` of ACTIVE ``lb_id`` (the data plane says it cannot
        serve and will not come back by itself): :func:`status.begin_amphora_failover`,
        then the worker's failover. Returns False if ``lb_id`` was not ACTIVE (or is gone)."""
        try:
            with self._sessions() as session, session.begin():
                status.begin_amphora_failover(session, lb_id, amphora_id)
        except exc.ImmutableObject:
            return False
        self.notify()
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no PENDING_* load balancer is left (tests). True if idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pending_ids():
                with self._lock:
                    if not self._in_flight:
                        return True
            self._wake.set()
            time.sleep(0.01)
        return False

    def state(self) -> WorkerState:
        """A snapshot of the in-flight set, queue, claims and threads (why a wait failed)."""
        with self._lock:
            in_flight = tuple(sorted(self._in_flight))
        threads = [t for t in (self._dispatcher, *self._workers) if t is not None]
        return WorkerState(in_flight=in_flight, queued=self._queue.qsize(),
                           claims_held=tuple(sorted(self._claims.held())),
                           threads=tuple((t.name, t.is_alive(), t.ident) for t in threads),
                           stopping=self._stopping.is_set())

    # -- scanning ----------------------------------------------------------
    def pending_ids(self) -> list[str]:
        """Ids of load balancers waiting for the worker, oldest change first."""
        with self._read_sessions() as session:
            return list(session.scalars(
                select(m.LoadBalancer.id)
                .where(m.LoadBalancer.provisioning_status.in_(c.PENDING_STATUSES))
                .order_by(m.LoadBalancer.updated_at, m.LoadBalancer.created_at)))

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._poll_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self._enqueue_pending()
            except Exception:  # the database may be briefly unavailable
                LOG.exception("scan for pending load balancers failed")

    def _enqueue_pending(self) -> None:
        for lb_id in self.pending_ids():
            with self._lock:
                if lb_id in self._in_flight:
                    continue
                self._in_flight.add(lb_id)
            self._queue.put(lb_id)

    def _work_loop(self) -> None:
        while True:
            lb_id = self._queue.get()
            if lb_id is None or self._stopping.is_set():
                return
            try:
                with self._claims.claim(lb_id) as mine:
                    if mine:
                        self.process(lb_id)
                    else:
                        LOG.debug("load balancer %s: claimed by another process", lb_id)
            except Exception:
                LOG.exception("reconciling load balancer %s failed; will retry", lb_id)
                time.sleep(self._poll_interval)
            finally:
                with self._lock:
                    self._in_flight.discard(lb_id)
                self._wake.set()

    # -- one change --------------------------------------------------------
    def driver_for(self, provider: str) -> ProviderDriver:
        """The driver for ``provider`` (aliases resolved). Raises ProviderNotFound."""
        name = c.PROVIDER_ALIASES.get(provider, provider)
        try:
            return self._drivers[name]
        except KeyError:
            raise exc.ProviderNotFound(prov=provider) from None

    def _placed_spec(self, session: Session, lb: m.LoadBalancer) -> LoadBalancerSpec:
        """``lb``'s spec with every amphora placed on an agent (a new one placed now).
        Raises NoAgentAvailable."""
        amphorae = list(lb.amphorae)
        if self._scheduler is not None and self._scheduler.applies_to(lb.provider):
            amphorae = self._scheduler.place(session, lb)
        return graph.spec_of(session, lb, self._network, amphorae)

    def _with_tls(self, spec: LoadBalancerSpec) -> LoadBalancerSpec:
        """``spec`` with its TLS files (raises CertificateError), if certificates are on."""
        if self._certificates is None:
            return spec
        return tls.with_tls_files(spec, self._certificates)

    def _replace_amphorae(self, lb_id: str, driver: ProviderDriver) -> None:
        """An ACTIVE_STANDBY failover: each amphora marked PENDING_DELETE replaced in turn,
        the one keepalived reports BACKUP first, each replacement applied (the data
        plane retires the old one, handing the VIP over, and starts the new one)
        before the next, so that one amphora serves throughout; then the whole spec
        once more (after a crash between a replacement and its apply, this is what
        starts the new amphora)."""
        with self._sessions() as session:
            lb = graph.load_graph(session, lb_id)
            assert lb is not None
            order = [a.id for a in sorted(lb.amphorae,
                                          key=lambda a: a.role == c.AMPHORA_ROLE_MASTER)
                     if a.status == c.AMPHORA_PENDING_DELETE]
        for old_id in order:
            with self._sessions() as session, session.begin():
                lb = graph.load_graph(session, lb_id)
                assert lb is not None
                old = next((a for a in lb.amphorae if a.id == old_id), None)
                if old is None:
                    continue
                new = status.replace_amphora(session, lb, old)
                spec = self._placed_spec(session, lb)
            LOG.info("load balancer %s: amphora %s replaced by %s", lb_id, old_id, new.id)
            driver.apply(self._with_tls(spec))
        with self._sessions() as session, session.begin():
            lb = graph.load_graph(session, lb_id)
            assert lb is not None
            spec = self._placed_spec(session, lb)
        driver.apply(self._with_tls(spec))

    def process(self, lb_id: str) -> None:
        """Apply the pending change of ``lb_id`` through its driver and settle statuses."""
        error: str | None = None
        with self._sessions() as session, session.begin():
            lb = graph.load_graph(session, lb_id, members="none")  # self._members reads them
            if lb is None or not status.is_pending(lb):
                return
            version = lb.graph_version
            deleting = lb.provisioning_status == c.PENDING_DELETE
            failover = lb.failover_requested
            provider = lb.provider
            amphorae = list(lb.amphorae)
            if self._scheduler is not None and not deleting and \
                    self._scheduler.applies_to(provider):
                try:
                    with session.begin_nested():  # a placement that fails places nothing
                        amphorae = self._scheduler.place(session, lb)
                except NoAgentAvailable as e:
                    error = e.reason
                    if any(lost(a) for a in lb.amphorae):  # AgentRegistry.retry_failovers
                        error += "; failed over again as soon as an agent can take it"
            members = self._members.read(session, lb)
            spec = graph.spec_of(session, lb, self._network, amphorae, members)

        started = time.monotonic()
        if error is None:  # else it could not be placed: nothing to send
            error = self._drive(provider, spec, deleting, failover)
        LOG.info("load balancer %s: %s in %.3f s%s", lb_id,
                 "delete" if deleting else "failover" if failover else "apply",
                 time.monotonic() - started, f" failed: {error}" if error else "")

        with self._sessions() as session, session.begin():
            lb = graph.load_graph(session, lb_id, members="all" if deleting else "pending")
            if lb is None or not status.is_pending(lb):
                return
            status.finish(session, lb, error)
            settled = error is None and not deleting and lb.graph_version == version
        if settled:
            self._members.keep(lb_id, version, members)

    def _drive(self, provider: str, spec: LoadBalancerSpec, deleting: bool,
               failover: bool) -> str | None:
        """Run the driver call of one change; the reason it failed, or None."""
        try:
            driver = self.driver_for(provider)
            if not deleting:
                spec = self._with_tls(spec)
            if deleting:
                driver.delete(spec)
            elif failover and spec.topology == c.TOPOLOGY_ACTIVE_STANDBY:
                self._replace_amphorae(spec.id, driver)
            elif failover:
                driver.failover(spec)
            else:
                driver.apply(spec)
        except exc.DriverError as e:
            return e.reason
        except CertificateError as e:
            return f"certificate {e.ref}: {e.reason}"
        except exc.APIError as e:
            return e.msg
        except Exception as e:
            LOG.exception("driver %s failed on load balancer %s", provider, spec.id)
            return f"{type(e).__name__}: {e}"
        return None
