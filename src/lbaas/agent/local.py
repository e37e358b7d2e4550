"""The in-process agent: amphorae on this host, serialised per load balancer, supervised.

:class:`LocalAgent` serves :class:`~lbaas.agent.base.AgentClient` on top of
:class:`~lbaas.dataplane.amphora.Amphorae`:

- **one operation per load balancer at a time**, different load balancers in
  parallel (the callers' threads do the work);
- **coalescing**: apply() calls for one load balancer that arrive while
  another is in progress wait, and the first of them to run applies the
  newest spec for all (specs are whole snapshots, so the newest includes the
  older changes): a burst of N changes costs at most two reloads;
- **the spec is the truth**: the agent keeps the spec last applied to each
  load balancer (the controller's, from apply() or failover()) in memory and
  in ``spec.json``; a dead HAProxy is started again from that spec
  (render -> ``haproxy -c``, unless the text is exactly the configuration
  that last served -> start), never from whatever ``haproxy.cfg`` is on
  disk, which may have been deleted or damaged meanwhile;
- **adoption**: :meth:`LocalAgent.start` looks at every load balancer
  directory; a running HAProxy (by pid file, checked against its working
  directory) is adopted as is, a dead one is started again;
- **supervision**: each master is watched through a pidfd
  (:class:`~lbaas.dataplane.haproxy.ExitWatcher`): its exit (killed, crashed,
  or its worker died, which a 2.6 master follows by exiting) starts a restart
  at once. ACTIVE_STANDBY: every amphora's HAProxy master and keepalived are
  watched the same way (keys ``<lb_id>/<amphora_id>/haproxy`` and
  ``.../keepalived``), and a restart applies the load balancer's spec again,
  which starts what is missing (plumbing included) and leaves what runs alone;
  a restarted amphora joins as BACKUP (``nopreempt``). A periodic pass every
  ``supervise_interval`` seconds is the safety net (and the only detection
  where pidfds are unavailable); it also retries, with a back-off doubling up
  to 5 minutes, an HAProxy that could not be restarted, and holds back one
  that was restarted :data:`RESTART_BURST` times within :data:`RESTART_WINDOW`
  seconds (a crash loop), as systemd's start limit does; a load balancer whose
  processes are all watched through pidfds is taken as running without
  looking at it again.
  :meth:`LocalAgent.stats` (the health manager's poll) reports a load balancer
  that is not running with why (``error``): None while a restart is on its
  way, the restart's failure, or :data:`NO_SPEC` when this host has no spec
  left to start it from (the controller then sends it again from the
  database).
- **quiet readings**: a load balancer whose HAProxy has nothing new to say
  costs the health poll one ``stat`` of its log instead of a round trip to
  HAProxy (:meth:`LocalAgent.stats`), so an idle host with a thousand load
  balancers is polled for next to nothing.

Stopping the agent stops only the supervision: HAProxy keeps serving.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lbaas.common.endpoints import Endpoint
from lbaas.common.exceptions import DriverError
from lbaas.dataplane.amphora import Amphorae, ApplyResult
from lbaas.dataplane.haproxy import ExitWatcher
from lbaas.dataplane.placement import (
    DEFAULT_LOCAL_LISTENER_PORTS,
    LocalPlacement,
    Placement,
    parse_port_ranges,
)
from lbaas.dataplane.runtime import LoadBalancerHealth, LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec

LOG = logging.getLogger(__name__)

MAX_BACKOFF = 300.0  # seconds between restart attempts of an HAProxy that keeps failing
QUIET_INTERVAL = 10.0  # seconds a reading that said nothing new may be handed out again
RESTART_BURST = 5  # restarts within RESTART_WINDOW seconds before supervision holds back
RESTART_WINDOW = 10.0
NO_SPEC = ("HAProxy is not running and this host has no spec of the load balancer to "
           "start it from")


def make_placement(name: str, local_ports: str = DEFAULT_LOCAL_LISTENER_PORTS,
                   control_plane: tuple[Endpoint, ...] = ()) -> Placement:
    """The placement called ``name``: ``local`` or ``namespace`` (imported only then).

    ``local_ports`` (``"80,1024-65535"``) and ``control_plane`` are the local
    placement's listener port rules. Raises ValueError for another name or
    for ports that do not parse.
    """
    if name == "local":
        return LocalPlacement(parse_port_ranges(local_ports), control_plane)
    if name == "namespace":
        from lbaas.dataplane.netns import NamespacePlacement

        return NamespacePlacement()
    raise ValueError(f"unknown placement {name!r}: expected 'local' or 'namespace'")


@dataclass
class _Slot:
    """Per load balancer: the operation lock, the coalescing and the supervision state."""

    busy: threading.Lock = field(default_factory=threading.Lock)
    state: threading.Lock = field(default_factory=threading.Lock)
    submitted: int = 0  # sequence number of the newest apply() call
    latest: LoadBalancerSpec | None = None
    done: int = 0  # newest sequence number whose spec was applied (or failed)
    outcome: ApplyResult | BaseException | None = None
    applied: LoadBalancerSpec | None = None  # the spec HAProxy serves (or last served)
    down: str | None = None  # why supervision could not start it (None: runs, or soon will)
    failures: int = 0  # consecutive failed restarts (supervision)
    next_try: float = 0.0  # monotonic time of the next restart attempt
    restarts: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=RESTART_BURST))
    touched: float = 0.0  # monotonic time the control plane last applied or rebuilt it
    watched: tuple[str, ...] = ()  # the exit watcher's keys of its processes
    # The last answered reading (see LocalAgent.stats) and what decides whether it may
    # be handed out again without asking HAProxy.
    observed: LoadBalancerStats | None = None
    observed_key: tuple[Any, ...] | None = None
    observed_at: float = 0.0  # monotonic time of the reading
    log_size: int = -1  # size of haproxy.log before the reading
    quiet: bool = False  # the reading said nothing new (equal key to the one before)
    generation: int = 0  # bumped by every change and exit: a reading in flight is dropped
    log_path: str | None = None
    # Its spec has a health monitor (HAProxy changes server states by itself, and logs
    # it); None: not known yet. Without one, haproxy.log is not looked at.
    checked: bool | None = None


def _checked(lb: LoadBalancerSpec) -> bool:
    """True if any pool of ``lb`` has a health monitor (its servers are checked)."""
    return any(pool.health_monitor is not None for pool in lb.pools)


class LocalAgent:
    """Amphorae of this host, in-process. ``supervise_interval`` is in seconds."""

    def __init__(self, amphorae: Amphorae, supervise_interval: float = 2.0,
                 quiet_interval: float = QUIET_INTERVAL) -> None:
        self.amphorae = amphorae
        self.supervise_interval = supervise_interval
        self.quiet_interval = quiet_interval
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher: ExitWatcher | None = None
        self._restarts: ThreadPoolExecutor | None = None

    def _slot(self, lb_id: str) -> _Slot:
        """``lb_id``'s slot, made on first use. Every health poll and supervision pass
        asks for every load balancer's: a known one is a dictionary lookup (a new
        ``_Slot`` with its locks, made only to be thrown away, cost 5 us a call)."""
        slot = self._slots.get(lb_id)
        if slot is not None:
            return slot
        with self._slots_lock:
            return self._slots.setdefault(lb_id, _Slot())

    def _spec(self, lb_id: str, slot: _Slot) -> LoadBalancerSpec | None:
        """The spec to start ``lb_id`` from: in memory, else ``spec.json``."""
        if slot.applied is None:
            slot.applied = self.amphorae.last_spec(lb_id)
        return slot.applied

    @staticmethod
    def _changed(slot: _Slot) -> None:
        """Forget the last reading: HAProxy was changed, restarted or has exited."""
        slot.generation += 1
        slot.observed = slot.observed_key = None

    def _served(self, slot: _Slot, lb: LoadBalancerSpec) -> None:
        """Record that ``lb`` serves now and watch its processes (caller holds ``busy``)."""
        self._changed(slot)
        slot.applied, slot.down = lb, None
        slot.checked = _checked(lb)
        slot.failures, slot.next_try = 0, 0.0
        self._watch(lb.id, lb)

    def _watch(self, lb_id: str, lb: LoadBalancerSpec | None) -> None:
        """Watch every process of ``lb_id`` (:meth:`Amphorae.processes`)."""
        watcher = self._watcher
        if watcher is None:
            return
        processes = self.amphorae.processes(lb_id, lb)
        self._slot(lb_id).watched = tuple(processes)
        for key, (pid, cwd) in processes.items():
            if pid is None or not watcher.watch(key, pid, cwd):
                self._exited(key)  # it died before it could be watched

    def _all_watched(self, slot: _Slot) -> bool:
        """True if every process of the load balancer is watched (alive) through a pidfd."""
        watcher = self._watcher
        return watcher is not None and bool(slot.watched) and \
            all(watcher.watched(key) is not None for key in slot.watched)

    # -- AgentClient -------------------------------------------------------
    def validate(self, lb: LoadBalancerSpec) -> None:
        """See :meth:`AgentClient.validate`: asks the placement."""
        self.amphorae.placement.validate(lb)

    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        """See :meth:`AgentClient.apply`; coalesces concurrent calls for one load balancer."""
        slot = self._slot(lb.id)
        with slot.state:
            slot.touched = time.monotonic()
            slot.submitted += 1
            mine = slot.submitted
            slot.latest = lb
        with slot.busy:
            with slot.state:
                covered = slot.done >= mine
                target, spec = slot.submitted, slot.latest
            if not covered:
                assert spec is not None
                outcome: ApplyResult | BaseException
                try:
                    outcome = self.amphorae.apply(spec)
                    self._served(slot, spec)
                except Exception as e:  # handed to every caller this apply covered
                    self._changed(slot)  # runtime commands may have been sent
                    outcome = e
                with slot.state:
                    slot.done, slot.outcome = target, outcome
            with slot.state:
                result = slot.outcome
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        return result

    def delete(self, lb_id: str) -> None:
        """See :meth:`AgentClient.delete`."""
        slot = self._slot(lb_id)
        with slot.busy:
            self._delete(lb_id, slot)

    def _delete(self, lb_id: str, slot: _Slot) -> None:
        """Stop supervising ``lb_id`` and remove its amphora (caller holds ``busy``)."""
        if self._watcher is not None:
            self._watcher.unwatch(lb_id)
        slot.applied = slot.down = slot.checked = None
        self._changed(slot)
        self.amphorae.delete(lb_id)

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        """See :meth:`AgentClient.failover`."""
        slot = self._slot(lb.id)
        slot.touched = time.monotonic()
        with slot.busy:
            if self._watcher is not None:
                self._watcher.unwatch(lb.id)
            slot.applied = None  # deleted first: nothing to restart if the rebuild fails
            self._changed(slot)
            result = self.amphorae.failover(lb)
            self._served(slot, lb)
            with slot.state:
                slot.submitted += 1
                slot.done, slot.outcome = slot.submitted, result
            return result

    def held(self) -> dict[str, LoadBalancerSpec | None]:
        """Every load balancer this host holds (:meth:`held_ids`), with the spec it serves
        or last served (None: it has none left). For heartbeats that ask to be reconciled."""
        with self._slots_lock:
            slots = dict(self._slots)
        return {lb_id: (slot.applied if (slot := slots.get(lb_id)) and slot.applied
                        else self.amphorae.last_spec(lb_id))
                for lb_id in self.held_ids()}

    def held_ids(self) -> list[str]:
        """The ids of every load balancer this host holds (a spec in memory, or a
        directory), sorted. For heartbeats: no file is read (the directory listing
        is kept while the base directory is unchanged, see :meth:`Amphorae.lb_ids`),
        where :meth:`held` reads each adopted load balancer's ``spec.json`` version."""
        with self._slots_lock:
            known = {lb_id for lb_id, slot in self._slots.items() if slot.applied is not None}
        return sorted(known.union(self.amphorae.lb_ids()))

    def delete_unless_touched(self, lb_id: str, since: float) -> bool:
        """Delete ``lb_id`` unless apply() or failover() was called for it at or after
        ``since`` (monotonic seconds). True if it was deleted.

        For the control plane's heartbeat replies: a load balancer placed on
        this host while a heartbeat was on its way must survive the answer to it.
        """
        slot = self._slot(lb_id)
        with slot.busy:
            if slot.touched >= since:
                return False
            self._delete(lb_id, slot)
        return True

    def stats(self, lb_id: str) -> LoadBalancerStats:
        """See :meth:`AgentClient.stats` (read-only: not serialised).

        Readings are cheap to repeat when nothing happens: if the last
        reading of a running HAProxy said nothing new (the same
        :meth:`~lbaas.dataplane.runtime.LoadBalancerStats.key` as the one
        before), that same object is handed out again without asking HAProxy,
        until one of: HAProxy wrote to ``haproxy.log`` (a health check changed
        a server's state: checked by its size, one ``stat``, for load balancers
        with a health monitor), a process of it exited, this agent changed it, or
        ``quiet_interval`` seconds passed (traffic on a quiet load balancer is
        counted within that time; HAProxy logs no traffic here). Without an
        exit watcher on its processes (and for ACTIVE_STANDBY, whose log is
        the amphorae's), HAProxy is asked every time. An answer that says
        nothing new builds no rows (``reuse``, see
        :meth:`~lbaas.dataplane.amphora.Amphorae.stats`); a SINGLE load
        balancer's HAProxy is asked over a connection kept open (``keep``:
        closed before every change, by :meth:`stop`).

        Not running: ``error`` says why (see the module docstring); a load
        balancer this host can start again wakes the supervision thread (a
        pass runs at once, not after up to ``supervise_interval`` seconds).
        """
        slot = self._slot(lb_id)
        cached, generation = slot.observed, slot.generation
        size = self._log_size(lb_id, slot)
        now = time.monotonic()
        if self._still_quiet(slot, size, now):
            assert cached is not None
            return cached
        watcher = self._watcher
        master = watcher.watched(lb_id) if watcher is not None and slot.watched == (lb_id,) \
            else None  # SINGLE, its master watched: no directory scan, no pid file
        stats = self.amphorae.stats(lb_id, master, reuse=True, keep=True)
        if stats.running and stats.error is None and not stats.amphorae:
            key = stats.key()
            quiet = cached is not None and key == slot.observed_key
            if quiet:
                assert cached is not None
                stats = cached  # nothing new: the same object, so callers can tell at once
            if slot.generation == generation:  # else changed meanwhile: not kept
                slot.observed, slot.observed_key, slot.observed_at = stats, key, now
                slot.log_size, slot.quiet = size, quiet
            return stats
        self._changed(slot)
        if stats.running and all(a.running for a in stats.amphorae):
            return stats
        if stats.running:  # ACTIVE_STANDBY, one amphora down
            if slot.down is None:
                self._wake.set()
                return stats
            return dataclasses.replace(stats, amphorae=tuple(
                a if a.running or a.error else dataclasses.replace(a, error=slot.down)
                for a in stats.amphorae))
        if slot.down is not None:
            return dataclasses.replace(stats, error=slot.down)
        if slot.applied is None and not self.amphorae.files(lb_id).spec.exists():
            return dataclasses.replace(stats, error=NO_SPEC)
        self._wake.set()
        return stats

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """See :meth:`AgentClient.kept_stats`: the reading :meth:`stats` hands out again
        without asking HAProxy (its last one said nothing new, and nothing happened
        since), else None."""
        slot = self._slots.get(lb_id)
        if slot is None or slot.observed is None or not slot.quiet:
            return None
        cached = slot.observed
        if not self._still_quiet(slot, self._log_size(lb_id, slot), time.monotonic()):
            return None
        return cached

    def _still_quiet(self, slot: _Slot, log_size: int, now: float) -> bool:
        """True if ``slot``'s last reading may be handed out again (see :meth:`stats`):
        ``log_size`` is haproxy.log's size now, ``now`` monotonic seconds."""
        return (slot.observed is not None and slot.quiet and log_size == slot.log_size
                and now - slot.observed_at < self.quiet_interval and self._all_watched(slot))

    def _log_size(self, lb_id: str, slot: _Slot) -> int:
        """The size of ``lb_id``'s haproxy.log (-1: unreadable), which grows when HAProxy
        changes a server's state by itself: only health checks do, so without a health
        monitor in its spec (read once, from spec.json for an adopted one) it is not
        looked at: 0."""
        checked = slot.checked
        if checked is None:
            lb = slot.applied or self.amphorae.last_spec(lb_id)
            checked = slot.checked = lb is None or _checked(lb)
        if not checked:
            return 0
        if slot.log_path is None:
            slot.log_path = str(self.amphorae.files(lb_id).log)
        try:
            return os.stat(slot.log_path).st_size
        except OSError:
            return -1

    def health(self, lb_id: str) -> LoadBalancerHealth:
        """See :meth:`AgentClient.health` (read-only: not serialised)."""
        return self.amphorae.health(lb_id)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Watch exits, adopt or restart every amphora on this host, then supervise."""
        self._stopping.clear()
        self._wake.clear()
        self._restarts = ThreadPoolExecutor(max_workers=2,
                                            thread_name_prefix="lbaas-agent-restart")
        self._watcher = ExitWatcher(self._exited)
        self.supervise_once()
        self._thread = threading.Thread(target=self._loop, name="lbaas-agent-supervisor",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop supervising; HAProxy processes are left running."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None
        if self._restarts is not None:
            self._restarts.shutdown(wait=True, cancel_futures=True)
            self._restarts = None
        self.amphorae.close_connections()

    def _exited(self, key: str) -> None:
        """A watched process exited (the watcher's thread): restart it at once, elsewhere.

        ``key`` is a load balancer id (its HAProxy) or ``<lb_id>/<amphora_id>/<program>``.
        """
        lb_id = key.split("/", 1)[0]
        self._changed(self._slot(lb_id))
        restarts = self._restarts
        if self._stopping.is_set() or restarts is None:
            return
        LOG.warning("load balancer %s: %s exited", lb_id,
                    "HAProxy" if key == lb_id else key.split("/", 1)[1])
        with contextlib.suppress(RuntimeError):  # shut down meanwhile
            restarts.submit(self._supervise_one, lb_id, True)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.supervise_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.supervise_once()
            except Exception:  # keep supervising whatever one pass hit
                LOG.exception("supervision pass failed")

    def supervise_once(self) -> dict[str, str]:
        """One pass over every load balancer of this host (a directory, or a spec in memory).

        Returns each one's outcome: ``running``, ``restarted``, ``busy`` (an
        operation holds it), ``failed`` or ``waiting`` (back-off), or
        ``no-spec`` (nothing to start it from).
        """
        with self._slots_lock:
            known = {lb_id for lb_id, slot in self._slots.items() if slot.applied is not None}
        return {lb_id: self._supervise_one(lb_id)
                for lb_id in sorted(known.union(self.amphorae.lb_ids()))}

    def _supervise_one(self, lb_id: str, wait: bool = False) -> str:
        """Adopt, or restart from its spec, ``lb_id``'s HAProxy. ``wait``: for ``busy``."""
        slot = self._slot(lb_id)
        if not slot.busy.acquire(blocking=wait):
            return "busy"  # an operation in progress owns it
        try:
            if self._stopping.is_set() and wait:
                return "busy"
            if self._all_watched(slot):
                slot.down = None
                return "running"  # watched through pidfds: an exit would have been seen
            processes = self.amphorae.processes(lb_id, slot.applied)
            if all(pid is not None for pid, _ in processes.values()):
                slot.down = None
                self._watch(lb_id, slot.applied)
                return "running"
            lb = self._spec(lb_id, slot)
            if lb is None:
                if slot.down != NO_SPEC:
                    LOG.warning("load balancer %s: %s", lb_id, NO_SPEC)
                slot.down = NO_SPEC
                return "no-spec"
            now = time.monotonic()
            if slot.next_try > now:
                return "waiting"
            if len(slot.restarts) == RESTART_BURST and now - slot.restarts[0] < RESTART_WINDOW:
                slot.next_try = slot.restarts[0] + RESTART_WINDOW
                LOG.error("load balancer %s: HAProxy restarted %d times within %g s; next "
                          "attempt in %.1f s", lb_id, RESTART_BURST, RESTART_WINDOW,
                          slot.next_try - now)
                return "waiting"
            slot.restarts.append(now)
            try:
                self.amphorae.apply(lb)
            except DriverError as e:  # DataplaneError, or the placement's error
                slot.failures += 1
                delay = min(MAX_BACKOFF, self.supervise_interval * 2 ** slot.failures)
                slot.next_try = now + delay
                slot.down = f"HAProxy could not be restarted: {e.reason}"
                LOG.error("load balancer %s: %s; next attempt in %.0f s", lb_id, slot.down,
                          delay)
                return "failed"
            self._served(slot, lb)
            LOG.warning("load balancer %s: a process was not running; restarted from its spec "
                        "in %.3f s", lb_id, time.monotonic() - now)
            return "restarted"
        finally:
            slot.busy.release()
