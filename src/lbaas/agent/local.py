"""The in-process agent: amphorae on this host, serialised per load balancer, supervised.

:class:`LocalAgent` serves :class:`~lbaas.agent.base.AgentClient` on top of
:class:`~lbaas.dataplane.amphora.Amphorae`:

- **one operation per load balancer at a time**, different load balancers in
  parallel (the callers' threads do the work);
- **coalescing**: apply() calls for one load balancer that arrive while
  another is in progress wait, and the first of them to run applies the
  newest spec for all (specs are whole snapshots, so the newest includes the
  older changes): a burst of N changes costs at most two reloads;
- **adoption**: :meth:`LocalAgent.start` looks at every load balancer
  directory; a running HAProxy (by pid file, checked against its working
  directory) is adopted as is, a dead one is started again;
- **supervision**: a daemon thread repeats that check every
  ``supervise_interval`` seconds, restarting an HAProxy that died, with a
  back-off (doubling up to 5 minutes) for one that keeps failing. When
  :meth:`LocalAgent.stats` (the health manager's poll) finds a load balancer
  with a configuration but no running HAProxy, it wakes this thread for a
  pass at once: supervision alone restarts processes, the health manager
  only reports what it saw.

Stopping the agent stops only the supervision thread: HAProxy keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from lbaas.common.exceptions import DriverError
from lbaas.dataplane.amphora import Amphorae, ApplyResult
from lbaas.dataplane.placement import LocalPlacement, Placement
from lbaas.dataplane.runtime import LoadBalancerHealth, LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec

LOG = logging.getLogger(__name__)

MAX_BACKOFF = 300.0  # seconds between restart attempts of an HAProxy that keeps dying


def make_placement(name: str) -> Placement:
    """The placement called ``name``: ``local`` or ``namespace`` (imported only then).

    Raises ValueError for another name.
    """
    if name == "local":
        return LocalPlacement()
    if name == "namespace":
        from lbaas.dataplane.netns import NamespacePlacement

        return NamespacePlacement()
    raise ValueError(f"unknown placement {name!r}: expected 'local' or 'namespace'")


@dataclass
class _Slot:
    """Per load balancer: the operation lock and the coalescing state."""

    busy: threading.Lock = field(default_factory=threading.Lock)
    state: threading.Lock = field(default_factory=threading.Lock)
    submitted: int = 0  # sequence number of the newest apply() call
    latest: LoadBalancerSpec | None = None
    done: int = 0  # newest sequence number whose spec was applied (or failed)
    outcome: ApplyResult | BaseException | None = None
    failures: int = 0  # consecutive failed restarts (supervision)
    next_try: float = 0.0  # monotonic time of the next restart attempt


class LocalAgent:
    """Amphorae of this host, in-process. ``supervise_interval`` is in seconds."""

    def __init__(self, amphorae: Amphorae, supervise_interval: float = 2.0) -> None:
        self.amphorae = amphorae
        self.supervise_interval = supervise_interval
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _slot(self, lb_id: str) -> _Slot:
        with self._slots_lock:
            return self._slots.setdefault(lb_id, _Slot())

    # -- AgentClient -------------------------------------------------------
    def validate(self, lb: LoadBalancerSpec) -> None:
        """See :meth:`AgentClient.validate`: asks the placement."""
        self.amphorae.placement.validate(lb)

    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        """See :meth:`AgentClient.apply`; coalesces concurrent calls for one load balancer."""
        slot = self._slot(lb.id)
        with slot.state:
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
                except Exception as e:  # handed to every caller this apply covered
                    outcome = e
                with slot.state:
                    slot.done, slot.outcome = target, outcome
                    slot.failures, slot.next_try = 0, 0.0
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
            self.amphorae.delete(lb_id)

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        """See :meth:`AgentClient.failover`."""
        slot = self._slot(lb.id)
        with slot.busy:
            result = self.amphorae.failover(lb)
            with slot.state:
                slot.submitted += 1
                slot.done, slot.outcome = slot.submitted, result
            return result

    def stats(self, lb_id: str) -> LoadBalancerStats:
        """See :meth:`AgentClient.stats` (read-only: not serialised).

        A load balancer that has a configuration here but no running HAProxy
        wakes the supervision thread (a pass runs at once, not after up to
        ``supervise_interval`` seconds).
        """
        stats = self.amphorae.stats(lb_id)
        if not stats.running and lb_id in self.amphorae.lb_ids():
            self._wake.set()
        return stats

    def health(self, lb_id: str) -> LoadBalancerHealth:
        """See :meth:`AgentClient.health` (read-only: not serialised)."""
        return self.amphorae.health(lb_id)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Adopt or restart every amphora on this host, then supervise in a thread."""
        self.supervise_once()
        self._stopping.clear()
        self._wake.clear()
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
        """One pass: each load balancer's HAProxy ``running``, ``restarted``, ``busy`` or
        ``failed``/``waiting`` (back-off after failures)."""
        outcome: dict[str, str] = {}
        for lb_id in self.amphorae.lb_ids():
            slot = self._slot(lb_id)
            if not slot.busy.acquire(blocking=False):
                outcome[lb_id] = "busy"  # an operation in progress owns it
                continue
            try:
                now = time.monotonic()
                if slot.next_try > now:
                    outcome[lb_id] = "waiting"
                    continue
                try:
                    restarted = self.amphorae.ensure_running(lb_id)
                except DriverError as e:  # DataplaneError, or the placement's error
                    slot.failures += 1
                    delay = min(MAX_BACKOFF, self.supervise_interval * 2 ** slot.failures)
                    slot.next_try = now + delay
                    LOG.error("load balancer %s: HAProxy could not be restarted (%s); "
                              "next attempt in %.0f s", lb_id, e.reason, delay)
                    outcome[lb_id] = "failed"
                    continue
                slot.failures, slot.next_try = 0, 0.0
                if restarted:
                    LOG.warning("load balancer %s: HAProxy was not running; restarted", lb_id)
                outcome[lb_id] = "restarted" if restarted else "running"
            finally:
                slot.busy.release()
        return outcome
