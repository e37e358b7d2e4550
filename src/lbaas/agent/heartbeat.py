"""Heartbeats: what an agent tells the control plane, and what it is told back.

Every ``heartbeat_interval`` seconds an agent sends a :class:`Heartbeat`
(Neutron agents' ``report_state``, Octavia amphorae's heartbeat): who it is
(host, availability zone, where its API listens), and every load balancer
it holds, with the counters and states the health manager reads (remote
agents) and, when it asks to be reconciled (``resync``), the digest of the
spec each one serves. The control plane records the heartbeat and answers
with a :class:`HeartbeatReply`: the load balancers the database does not
place on this agent, which the agent deletes (nothing the database does
not know keeps running).

An agent asks to be reconciled in its first heartbeat after it starts and
in the first one that gets through after others failed (the control plane
was down or unreachable: it kept serving meanwhile). The control plane then
applies again, from the database, every ACTIVE load balancer placed on it
whose spec it lacks or holds in another version (:func:`spec_digest`).

The reply is computed from the database after the heartbeat was sent, so a
load balancer created on this agent later is not in it; one applied while
the heartbeat was on its way might be, and is kept: the agent deletes only
load balancers it has not touched since it sent the heartbeat
(:meth:`~lbaas.agent.local.LocalAgent.delete_unless_touched`).

Messages are frozen dataclasses; :data:`HEARTBEAT` and :data:`REPLY`
(pydantic type adapters) read and write them as JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from lbaas.agent.local import LocalAgent
from lbaas.common.periodic import Periodic
from lbaas.dataplane import spec as specs
from lbaas.dataplane.runtime import LoadBalancerStats
from lbaas.dataplane.spec import LoadBalancerSpec

LOG = logging.getLogger(__name__)


def spec_digest(lb: LoadBalancerSpec) -> str:
    """SHA-256 (hex) of ``lb``'s canonical JSON without its TLS files: equal specs,
    equal digests.

    The TLS files are left out so that the control plane can compare without
    reading the certificate store (the agent keeps only their digests); the
    references to certificates are in the listeners and pools, and count.
    """
    return hashlib.sha256(specs.to_json(dataclasses.replace(lb, tls_files=())).encode()
                          ).hexdigest()


@dataclass(frozen=True)
class Held:
    """One load balancer as its agent holds it.

    ``stats``: its HAProxy's reading (``show stat``), as
    :meth:`~lbaas.agent.base.AgentClient.stats` gives it, when the agent
    reports health through heartbeats; ``digest``: :func:`spec_digest` of
    the spec it serves, in heartbeats that ask for reconciliation (None: it
    holds no spec of it).
    """

    stats: LoadBalancerStats | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    """One agent's report. Times are ISO 8601 UTC; ``port`` is its API's (None: in-process).

    ``address`` is where the control plane reaches the agent's API; None:
    the address the heartbeat came from.
    """

    host: str
    binary: str
    availability_zone: str | None = None
    started_at: str | None = None
    port: int | None = None
    address: str | None = None
    resync: bool = False
    configurations: dict[str, Any] = field(default_factory=dict)
    load_balancers: dict[str, Held] = field(default_factory=dict)
    taken_at: float | None = None  # the agent's monotonic clock (s) when it was taken


@dataclass(frozen=True)
class HeartbeatReply:
    """The control plane's answer: the agent's id and the load balancers to delete.

    ``taken_at`` echoes the heartbeat's (a remote agent's reply comes back in
    a request of its own).
    """

    agent_id: str
    delete: tuple[str, ...] = ()
    taken_at: float | None = None


_NOTHING = Held()  # a load balancer held, with no reading and no digest (shared: frozen)

HEARTBEAT: TypeAdapter[Heartbeat] = TypeAdapter(Heartbeat)
REPLY: TypeAdapter[HeartbeatReply] = TypeAdapter(HeartbeatReply)


def to_json(message: Heartbeat | HeartbeatReply) -> bytes:
    """A heartbeat or a reply as JSON."""
    return HEARTBEAT.dump_json(message) if isinstance(message, Heartbeat) \
        else REPLY.dump_json(message)


class Heartbeater:
    """Sends ``agent``'s heartbeat every ``interval`` seconds and acts on the replies.

    ``identity`` is the heartbeat without its load balancers (host, zone,
    port...); ``send`` delivers one and returns the reply, raising any
    exception when it could not (the next heartbeat then asks for
    reconciliation, if ``reconcile`` is set: an agent on another host).
    ``with_stats``: include each load balancer's reading (the control plane
    reads health from heartbeats).
    """

    def __init__(self, agent: LocalAgent, identity: Heartbeat,
                 send: Callable[[Heartbeat], HeartbeatReply], interval: float,
                 with_stats: bool = False, reconcile: bool = False) -> None:
        self.agent = agent
        self.identity = identity
        self.send = send
        self.interval = interval
        self.with_stats = with_stats
        self.reconcile = reconcile
        self.resync = reconcile
        self.agent_id: str | None = None
        self.last_success: float | None = None  # monotonic
        self.failures = 0  # heartbeats not delivered since the last one that was
        self._periodic = Periodic(self.beat, interval, "lbaas-heartbeat", "heartbeat")

    def beat(self) -> HeartbeatReply | None:
        """Send one heartbeat now and delete what the reply names. None if it failed."""
        heartbeat = self.take()
        try:
            reply = self.send(heartbeat)
        except Exception as e:  # the control plane is down or unreachable: keep serving
            self.failed(e)
            return None
        self.answer(dataclasses.replace(reply, taken_at=heartbeat.taken_at))
        return reply

    def take(self) -> Heartbeat:
        """This agent's heartbeat now (with ``resync`` when reconciliation is due).

        Only a heartbeat with ``resync`` reads the specs (for their digests); an
        in-process agent's (no stats, no digests) is its load balancers' ids.
        """
        taken = time.monotonic()
        resync = self.resync
        if resync:
            held: dict[str, Held] = {
                lb_id: Held(stats=self._stats(lb_id) if self.with_stats else None,
                            digest=spec_digest(lb) if lb is not None else None)
                for lb_id, lb in self.agent.held().items()}
        elif self.with_stats:
            held = {lb_id: Held(stats=self._stats(lb_id)) for lb_id in self.agent.held_ids()}
        else:
            held = dict.fromkeys(self.agent.held_ids(), _NOTHING)
        return dataclasses.replace(self.identity, resync=resync, taken_at=taken,
                                   load_balancers=held)

    def failed(self, error: Exception) -> None:
        """A heartbeat was not delivered: the next one asks for reconciliation (if
        ``reconcile``)."""
        self.failures += 1
        LOG.log(logging.WARNING if self.failures == 1 else logging.DEBUG,
                "heartbeat not delivered (%s: %s); serving on, reconciled once one "
                "gets through", type(error).__name__, error)
        self.resync = self.reconcile

    def answer(self, reply: HeartbeatReply) -> None:
        """Act on the reply to the heartbeat taken at ``reply.taken_at``: delete what it
        names, unless applied since then."""
        if self.failures:
            LOG.warning("heartbeat delivered again after %d failed", self.failures)
        self.failures = 0
        self.agent_id, self.last_success = reply.agent_id, time.monotonic()
        self.resync = False
        since = reply.taken_at if reply.taken_at is not None else time.monotonic()
        for lb_id in reply.delete:
            if self.agent.delete_unless_touched(lb_id, since=since):
                LOG.warning("load balancer %s: deleted, the control plane does not place it "
                            "on this agent", lb_id)

    def _stats(self, lb_id: str) -> LoadBalancerStats | None:
        try:
            return self.agent.stats(lb_id)
        except Exception as e:  # one load balancer's failure is not the heartbeat's
            return LoadBalancerStats(lb_id=lb_id, running=True, error=f"{type(e).__name__}: {e}")

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        """Beat now, then every ``interval`` seconds in a daemon thread."""
        self.beat()
        self._periodic.start(at_once=False)

    def stop(self) -> None:
        """Stop beating (waits for a heartbeat in progress)."""
        self._periodic.stop()
